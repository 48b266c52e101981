#include "server/model_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <cstdlib>
#include <thread>
#include <utility>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "server/generator_service.h"
#include "server/metrics.h"
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
  health->SetServingStatus(serving);                 // the server as a whole ("")
  health->SetServingStatus(kServiceName, serving);
}

}  // namespace

ModelServer::ModelServer(std::ostream* log) : log_(log) {}

absl::StatusOr<std::unique_ptr<ModelServer>> ModelServer::Start(const ServerConfig& config, std::ostream* log) {
  std::unique_ptr<ModelServer> server(new ModelServer(log));
  std::vector<std::string> names;
  for (const auto& [name, spec] : config.models) names.push_back(name);
  server->metrics_ = std::make_unique<ServerMetrics>(names);

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
  builder.AddListeningPort(HostPort(config.server.host, config.server.port), *credentials, &server->grpc_port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.server.max_message_bytes));
  builder.RegisterService(server->service_.get());
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->grpc_port_ == 0) {
    return absl::UnavailableError(
        "cannot listen for gRPC on " + HostPort(config.server.host, config.server.port) +
        (tls.cert.empty() ? "" : " with TLS (are tls.cert and tls.key a matching certificate and key?)"));
  }
  SetServing(server->grpc_server_.get(), false);
  *log << "fastdiss-server: gRPC listening on " << HostPort(config.server.host, server->grpc_port_) << " ("
       << DescribeServerTls(tls) << "; health NOT_SERVING until the models are loaded)" << std::endl;

  if (config.server.metrics_port >= 0) {
    const std::string& metrics_host =
        config.server.metrics_host.empty() ? config.server.host : config.server.metrics_host;
    GeneratorService* service = server->service_.get();
    ServerMetrics* metrics = server->metrics_.get();
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> http =
        MetricsHttpServer::Start(metrics_host, config.server.metrics_port, [service, metrics] {
          service->UpdateLoadMetrics();
          return metrics->Serialize();
        });
    if (!http.ok()) return http.status();
    server->metrics_server_ = std::move(http).value();
    *log << "fastdiss-server: metrics on http://" << HostPort(metrics_host, server->metrics_server_->port())
         << "/metrics" << std::endl;
  }

  if (absl::Status loaded = server->LoadModels(config); !loaded.ok()) return loaded;
  server->service_->SetReady();
  SetServing(server->grpc_server_.get(), true);
  *log << "fastdiss-server: ready, health SERVING" << std::endl;
  return server;
}

absl::Status ModelServer::LoadModels(const ServerConfig& config) {
  absl::StatusOr<EngineOptions> engine_options = config.ToEngineOptions();
  if (!engine_options.ok()) return engine_options.status();
  for (const auto& [name, spec] : config.models) {
    const absl::Time start = absl::Now();
    Engine::Hooks hooks;
    ServerMetrics* metrics = metrics_.get();
    hooks.on_step = [metrics, name = name](const StepStats& stats) { metrics->RecordStep(name, stats); };
    hooks.on_late = [metrics, name = name](int steps_run) { metrics->RecordLateSteps(name, steps_run); };
    absl::StatusOr<std::unique_ptr<ServedModel>> model = ServedModel::Load(name, spec, *engine_options, hooks);
    if (!model.ok()) return model.status();
    const absl::Time loaded = absl::Now();
    if (absl::Status warm = (*model)->WarmUp(config.server.warmup_steps); !warm.ok()) return warm;
    const ServedModelInfo& info = (*model)->info();
    *log_ << "fastdiss-server: model '" << name << "' version " << info.version << " from " << spec.checkpoint
          << " on " << info.device << ": loaded in " << absl::FormatDuration(loaded - start) << ", warmed up in "
          << absl::FormatDuration(absl::Now() - loaded) << "; steps 1.." << info.max_steps << ", policy "
          << BatchPolicyName(engine_options->policy) << std::endl;
    service_->AddModel(model->get());
    models_.push_back(std::move(model).value());
  }
  return absl::OkStatus();
}

int ModelServer::metrics_port() const { return metrics_server_ != nullptr ? metrics_server_->port() : -1; }

bool ModelServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return true;
  shut_down_ = true;
  // NOT_SERVING first, so load balancers stop sending while the rest drains; the health
  // service's own Shutdown also freezes that status.
  grpc_server_->GetHealthCheckService()->Shutdown();
  service_->StartDraining();
  int in_flight = 0;
  for (auto& model : models_) {
    model->engine().Drain();
    in_flight += model->engine().waiting() + model->engine().running();
  }
  *log_ << "fastdiss-server: draining, health NOT_SERVING, " << in_flight << " requests in flight, grace "
        << absl::FormatDuration(grace) << std::endl;
  const absl::Time deadline = absl::Now() + grace;
  bool idle = true;
  for (auto& model : models_) idle = model->engine().WaitIdle(deadline - absl::Now()) && idle;
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
