#include "server/model_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <cstdlib>
#include <thread>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "server/generator_service.h"
#include "server/memory_trimmer.h"
#include "server/metrics.h"
#include "server/model_versions.h"
#include "server/served_model.h"
#include "server/tls.h"

namespace fastdiss {
namespace {

constexpr char kServiceName[] = "fastdiss.v1.Generator";
constexpr absl::Duration kShutdownWatchdog = absl::Seconds(30);

std::string HostPort(const std::string& host, int port) {
  const bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

void SetServing(grpc::Server* server, bool serving) {
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(serving);  // the server as a whole ("")
  health->SetServingStatus(kServiceName, serving);
}

}  // namespace

// Destroys model versions on its own thread. The last holder of a version may be an engine
// callback or a gRPC callback thread, and an engine must not be destroyed (joined) from its own
// thread nor slowly inside a gRPC callback.
class ModelServer::Reaper {
 public:
  Reaper() : thread_([this] { Run(); }) {}
  ~Reaper() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    thread_.join();
  }

  // Shared ownership of `model` whose last release hands it to this thread.
  std::shared_ptr<ServedModel> Adopt(std::unique_ptr<ServedModel> model) {
    return std::shared_ptr<ServedModel>(model.release(), [this](ServedModel* m) {
      absl::MutexLock lock(&mu_);
      dead_.push_back(m);
    });
  }

 private:
  void Run() {
    for (;;) {
      std::vector<ServedModel*> dead;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](Reaper* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu_) {
              return r->stopping_ || !r->dead_.empty();
            },
            this));
        dead.swap(dead_);
        if (dead.empty() && stopping_) return;
      }
      for (ServedModel* m : dead) delete m;
    }
  }

  absl::Mutex mu_;
  std::vector<ServedModel*> dead_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

ModelServer::ModelServer(const ServerConfig& config, std::ostream* log)
    : config_(config), log_(log), reaper_(std::make_unique<Reaper>()) {}

absl::StatusOr<std::unique_ptr<ModelServer>> ModelServer::Start(const ServerConfig& config,
                                                                std::ostream* log) {
  absl::StatusOr<EngineOptions> engine_options = config.ToEngineOptions();
  if (!engine_options.ok()) return engine_options.status();
  std::unique_ptr<ModelServer> server(new ModelServer(config, log));
  server->engine_options_ = *engine_options;
  std::vector<std::string> names;
  for (const auto& [name, spec] : config.models) names.push_back(name);
  server->metrics_ = std::make_unique<ServerMetrics>(names);
  ServerMetrics* trim_metrics = server->metrics_.get();
  server->trimmer_ = std::make_unique<MemoryTrimmer>(
      absl::Seconds(config.runtime.malloc_trim_seconds),
      [trim_metrics](absl::Duration took) { trim_metrics->RecordMallocTrim(took); });

  GeneratorServiceOptions service_options;
  service_options.default_model = config.server.default_model;
  service_options.default_deadline = absl::Seconds(config.server.default_deadline_seconds);
  service_options.max_text_bytes = config.server.max_text_bytes;
  service_options.default_early_exit_steps = config.server.default_early_exit_steps;
  server->service_ = std::make_unique<GeneratorService>(service_options, server->metrics_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  const ServerTlsFiles tls{config.tls.cert, config.tls.key, config.tls.client_ca};
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = MakeServerCredentials(tls);
  if (!credentials.ok()) return credentials.status();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(HostPort(config.server.host, config.server.port), *credentials,
                           &server->grpc_port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.server.max_message_bytes));
  builder.RegisterService(server->service_.get());
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->grpc_port_ == 0) {
    return absl::UnavailableError(
        "cannot listen for gRPC on " + HostPort(config.server.host, config.server.port) +
        (tls.cert.empty()
             ? ""
             : " with TLS (are tls.cert and tls.key a matching certificate and key?)"));
  }
  SetServing(server->grpc_server_.get(), false);
  *log << "fastdiss-server: gRPC listening on " << HostPort(config.server.host, server->grpc_port_)
       << " (" << DescribeServerTls(tls) << "; health NOT_SERVING until the models are loaded)"
       << std::endl;

  if (config.server.metrics_port >= 0) {
    const std::string& metrics_host =
        config.server.metrics_host.empty() ? config.server.host : config.server.metrics_host;
    GeneratorService* service = server->service_.get();
    ServerMetrics* metrics = server->metrics_.get();
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> http =
        MetricsHttpServer::Start(metrics_host, config.server.metrics_port, [service, metrics] {
          service->UpdateLoadMetrics();
          metrics->UpdateMemory();
          return metrics->Serialize();
        });
    if (!http.ok()) return http.status();
    server->metrics_server_ = std::move(http).value();
    *log << "fastdiss-server: metrics on http://"
         << HostPort(metrics_host, server->metrics_server_->port()) << "/metrics" << std::endl;
  }

  if (absl::Status loaded = server->LoadModels(); !loaded.ok()) return loaded;
  server->service_->SetReady();
  SetServing(server->grpc_server_.get(), true);
  *log << "fastdiss-server: ready, health SERVING" << std::endl;
  return server;
}

absl::StatusOr<std::shared_ptr<ServedModel>> ModelServer::LoadVersion(const std::string& name,
                                                                      const std::string& dir) {
  const absl::Time start = absl::Now();
  Engine::Hooks hooks;
  ServerMetrics* metrics = metrics_.get();
  hooks.on_step = [metrics, name](const StepStats& stats) { metrics->RecordStep(name, stats); };
  hooks.on_admit = [metrics, name](const StepStats& stats) {
    metrics->RecordAdmission(name, stats);
  };
  hooks.on_late = [metrics, name](int steps_run) { metrics->RecordLateSteps(name, steps_run); };
  ModelSpec spec = config_.ResolvedModel(name);
  spec.checkpoint = dir;
  absl::StatusOr<std::unique_ptr<ServedModel>> model =
      ServedModel::Load(name, spec, engine_options_, hooks);
  if (!model.ok()) return model.status();
  const absl::Time loaded = absl::Now();
  if (absl::Status warm = (*model)->WarmUp(config_.server.warmup_steps); !warm.ok()) return warm;
  const ServedModelInfo& info = (*model)->info();
  *log_ << "fastdiss-server: model '" << name << "' version " << info.version << " from " << dir
        << " on " << info.device << ": loaded in " << absl::FormatDuration(loaded - start)
        << ", warmed up in " << absl::FormatDuration(absl::Now() - loaded) << "; steps 1.."
        << info.max_steps << ", policy " << BatchPolicyName(engine_options_.policy) << ", "
        << LinearPrecisionName(info.precision) << std::endl;
  return reaper_->Adopt(std::move(model).value());
}

absl::Status ModelServer::LoadModels() {
  for (const auto& [name, spec] : config_.models) {
    absl::StatusOr<std::string> dir = ResolveCheckpointDir(spec.checkpoint);
    if (!dir.ok())
      return absl::Status(dir.status().code(),
                          "model '" + name + "': " + std::string(dir.status().message()));
    absl::StatusOr<std::shared_ptr<ServedModel>> model = LoadVersion(name, *dir);
    if (!model.ok()) return model.status();
    service_->AddModel(std::move(model).value());
  }
  return absl::OkStatus();
}

void ModelServer::ReloadModels() {
  for (const auto& [name, spec] : config_.models) {
    std::shared_ptr<ServedModel> current = service_->Current(name);
    absl::StatusOr<std::string> dir = ResolveCheckpointDir(spec.checkpoint);
    absl::StatusOr<std::string> digest = dir.ok() ? ManifestDigest(*dir) : dir.status();
    if (!digest.ok()) {
      const std::string error(digest.status().message());
      if (refused_[name] != error) {
        *log_ << "fastdiss-server: model '" << name << "': no new version to load: " << error
              << std::endl;
        service_->SetLoadFailed(name, spec.checkpoint, error);
        refused_[name] = error;
      }
      continue;
    }
    if (current != nullptr && current->info().checkpoint_dir == *dir &&
        current->info().manifest_digest == *digest) {
      continue;  // what it serves already
    }
    const std::string candidate = *dir + " " + *digest;
    if (refused_[name] == candidate)
      continue;  // refused before; a new version will have a new folder or MANIFEST
    service_->SetLoading(name, *dir);
    absl::StatusOr<std::shared_ptr<ServedModel>> model = LoadVersion(name, *dir);
    if (!model.ok()) {
      *log_ << "fastdiss-server: model '" << name << "': refused the new version in " << *dir
            << ", "
            << (current != nullptr ? "version " + current->info().version + " keeps serving"
                                   : "none serving")
            << ": " << model.status().message() << std::endl;
      service_->SetLoadFailed(name, *dir, std::string(model.status().message()));
      refused_[name] = candidate;
      continue;
    }
    refused_.erase(name);
    const std::string version = (*model)->info().version;
    std::shared_ptr<ServedModel> old = service_->ReplaceModel(std::move(model).value());
    *log_ << "fastdiss-server: model '" << name << "' now serves version " << version
          << (old != nullptr
                  ? "; version " + old->info().version + " finishes its calls and retires"
                  : "")
          << std::endl;
  }
}

int ModelServer::metrics_port() const {
  return metrics_server_ != nullptr ? metrics_server_->port() : -1;
}

bool ModelServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return true;
  shut_down_ = true;
  // NOT_SERVING first, so load balancers stop sending while the rest drains; the health
  // service's own Shutdown also freezes that status.
  grpc_server_->GetHealthCheckService()->Shutdown();
  service_->StartDraining();
  // Every live version, those retiring with calls in flight included.
  std::vector<std::shared_ptr<ServedModel>> models = service_->LiveVersions();
  int in_flight = 0;
  for (auto& model : models) {
    model->engine().Drain();
    in_flight += model->engine().waiting() + model->engine().running();
  }
  *log_ << "fastdiss-server: draining, health NOT_SERVING, " << in_flight
        << " requests in flight, grace " << absl::FormatDuration(grace) << std::endl;
  const absl::Time deadline = absl::Now() + grace;
  bool idle = true;
  for (auto& model : models) idle = model->engine().WaitIdle(deadline - absl::Now()) && idle;
  if (!idle) *log_ << "fastdiss-server: grace period over; cancelling what is left" << std::endl;
  // Calls still open are cancelled; their engines answer them at the next step, and Shutdown
  // returns once every call has finished. A wedged engine (a hung device) would make that wait
  // endless, so a watchdog ends the process if it takes much longer than a step could.
  absl::Notification stopped;
  std::thread watchdog([this, &stopped] {
    if (!stopped.WaitForNotificationWithTimeout(kShutdownWatchdog)) {
      *log_ << "fastdiss-server: calls still open " << absl::FormatDuration(kShutdownWatchdog)
            << " after the grace period; exiting without them" << std::endl;
      std::_Exit(1);
    }
  });
  grpc_server_->Shutdown(absl::ToChronoTime(idle ? absl::Now() + absl::Seconds(1) : absl::Now()));
  stopped.Notify();
  watchdog.join();
  metrics_server_.reset();
  *log_ << "fastdiss-server: stopped" << std::endl;
  return idle;
}

ModelServer::~ModelServer() {
  if (grpc_server_ != nullptr) Shutdown(absl::ZeroDuration());
}

}  // namespace fastdiss
