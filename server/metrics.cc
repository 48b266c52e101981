#include "server/metrics.h"

#include <httplib.h>
#include <malloc.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <fstream>
#include <utility>

#include "absl/time/clock.h"

namespace fastdiss {
namespace {

// 1 ms .. ~66 s for requests and queueing; 0.25 ms .. ~8 s for one forward.
prometheus::Histogram::BucketBoundaries Exponential(double start, double factor, int count) {
  prometheus::Histogram::BucketBoundaries buckets;
  for (double b = start; count-- > 0; b *= factor) buckets.push_back(b);
  return buckets;
}

}  // namespace

ServerMetrics::ServerMetrics(const std::vector<std::string>& models)
    : registry_(std::make_unique<prometheus::Registry>()) {
  auto& request_seconds =
      prometheus::BuildHistogram()
          .Name("fastdiss_request_duration_seconds")
          .Help("Time from a Generate call's arrival to its answer, every status code")
          .Register(*registry_);
  auto& queue_seconds = prometheus::BuildHistogram()
                            .Name("fastdiss_queue_duration_seconds")
                            .Help("Time a request waited before its first denoising step")
                            .Register(*registry_);
  auto& step_seconds = prometheus::BuildHistogram()
                           .Name("fastdiss_step_duration_seconds")
                           .Help("Time of one batched denoiser forward (all rows of all requests)")
                           .Register(*registry_);
  auto& admission_seconds =
      prometheus::BuildHistogram()
          .Name("fastdiss_admission_duration_seconds")
          .Help("Time of one admission: the encoder pass of the requests that join the batch")
          .Register(*registry_);
  auto& rows = prometheus::BuildHistogram()
                   .Name("fastdiss_batch_rows")
                   .Help("Rows (requests x beams) in one denoiser forward")
                   .Register(*registry_);
  auto& waiting = prometheus::BuildGauge()
                      .Name("fastdiss_requests_waiting")
                      .Help("Requests queued and not yet admitted")
                      .Register(*registry_);
  auto& running = prometheus::BuildGauge()
                      .Name("fastdiss_requests_running")
                      .Help("Requests admitted and being denoised")
                      .Register(*registry_);
  auto& steps = prometheus::BuildCounter()
                    .Name("fastdiss_denoising_steps_total")
                    .Help("Batched denoiser forwards run")
                    .Register(*registry_);
  auto& tokens = prometheus::BuildCounter()
                     .Name("fastdiss_denoised_tokens_total")
                     .Help("Target tokens denoised, summed over the rows of every forward")
                     .Register(*registry_);
  auto& steps_saved =
      prometheus::BuildCounter()
          .Name("fastdiss_early_exit_steps_saved_total")
          .Help("Denoising steps requests did not run because early exit stopped them")
          .Register(*registry_);
  auto& steps_given_up =
      prometheus::BuildCounter()
          .Name("fastdiss_adaptive_steps_given_up_total")
          .Help("Steps below max_steps that load-adaptive requests were planned without")
          .Register(*registry_);
  auto& request_steps = prometheus::BuildCounter()
                            .Name("fastdiss_request_steps_total")
                            .Help("Denoising steps run, counted once per request in each forward")
                            .Register(*registry_);
  auto& late_steps =
      prometheus::BuildCounter()
          .Name("fastdiss_late_request_steps_total")
          .Help("Steps run by requests then stopped at their deadline (no answer came of them)")
          .Register(*registry_);
  auto& requests = prometheus::BuildCounter()
                       .Name("fastdiss_requests_total")
                       .Help("Generate and GenerateStream calls answered, by model and gRPC code")
                       .Register(*registry_);
  resident_bytes_ = &prometheus::BuildGauge()
                         .Name("process_resident_memory_bytes")
                         .Help("Resident memory size in bytes (read at each scrape)")
                         .Register(*registry_)
                         .Add({});
  auto& heap =
      prometheus::BuildGauge()
          .Name("fastdiss_heap_bytes")
          .Help(
              "malloc's heap at each scrape: bytes in use by the program, and bytes free but kept")
          .Register(*registry_);
  heap_in_use_bytes_ = &heap.Add({{"state", "in_use"}});
  heap_free_bytes_ = &heap.Add({{"state", "free"}});
  trims_ = &prometheus::BuildCounter()
                .Name("fastdiss_malloc_trims_total")
                .Help(
                    "Times the heap's free pages were given back to the kernel "
                    "(runtime.malloc_trim_seconds)")
                .Register(*registry_)
                .Add({});
  trim_seconds_ = &prometheus::BuildCounter()
                       .Name("fastdiss_malloc_trim_seconds_total")
                       .Help(
                           "Time spent giving the heap's free pages back (each arena is locked "
                           "while it is trimmed)")
                       .Register(*registry_)
                       .Add({});
  std::vector<std::string> names = models;
  names.push_back(kUnknownModel);
  for (const std::string& name : names) {
    const prometheus::Labels labels = {{"model", name}};
    ModelMetrics& m = models_[name];
    m.request_seconds = &request_seconds.Add(labels, Exponential(0.001, 2, 17));
    m.queue_seconds = &queue_seconds.Add(labels, Exponential(0.001, 2, 17));
    m.step_seconds = &step_seconds.Add(labels, Exponential(0.00025, 2, 16));
    m.rows_per_forward = &rows.Add(labels, Exponential(1, 2, 11));
    m.admission_seconds = &admission_seconds.Add(labels, Exponential(0.00025, 2, 16));
    m.waiting = &waiting.Add(labels);
    m.running = &running.Add(labels);
    m.steps = &steps.Add(labels);
    m.tokens = &tokens.Add(labels);
    m.steps_saved = &steps_saved.Add(labels);
    m.steps_given_up = &steps_given_up.Add(labels);
    m.request_steps = &request_steps.Add(labels);
    m.late_steps = &late_steps.Add(labels);
    for (size_t code = 0; code < m.requests.size(); ++code) {
      const std::string code_name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
      m.requests[code] = &requests.Add({{"model", name}, {"code", code_name}});
    }
  }
}

ServerMetrics::~ServerMetrics() = default;

const ServerMetrics::ModelMetrics& ServerMetrics::For(const std::string& model) const {
  auto it = models_.find(model);
  return it != models_.end() ? it->second : models_.at(kUnknownModel);
}

void ServerMetrics::RecordRequest(const std::string& model, absl::StatusCode code,
                                  absl::Duration latency) {
  const ModelMetrics& m = For(model);
  const size_t index = static_cast<size_t>(code) < m.requests.size()
                           ? static_cast<size_t>(code)
                           : static_cast<size_t>(absl::StatusCode::kUnknown);
  m.requests[index]->Increment();
  m.request_seconds->Observe(absl::ToDoubleSeconds(latency));
}

void ServerMetrics::RecordQueueTime(const std::string& model, absl::Duration waited) {
  For(model).queue_seconds->Observe(absl::ToDoubleSeconds(waited));
}

void ServerMetrics::RecordStepsSaved(const std::string& model, int steps) {
  For(model).steps_saved->Increment(steps);
}

void ServerMetrics::RecordAdaptiveStepsGivenUp(const std::string& model, int steps) {
  For(model).steps_given_up->Increment(steps);
}

void ServerMetrics::RecordLateSteps(const std::string& model, int steps) {
  For(model).late_steps->Increment(steps);
}

void ServerMetrics::RecordStep(const std::string& model, const StepStats& stats) {
  const ModelMetrics& m = For(model);
  m.step_seconds->Observe(absl::ToDoubleSeconds(stats.duration));
  m.rows_per_forward->Observe(stats.rows);
  m.steps->Increment();
  m.request_steps->Increment(stats.requests);
  m.tokens->Increment(static_cast<double>(stats.tokens));
}

void ServerMetrics::RecordAdmission(const std::string& model, const StepStats& stats) {
  For(model).admission_seconds->Observe(absl::ToDoubleSeconds(stats.duration));
}

void ServerMetrics::SetLoad(const std::string& model, int waiting, int running) {
  const ModelMetrics& m = For(model);
  m.waiting->Set(waiting);
  m.running->Set(running);
}

void ServerMetrics::UpdateMemory() {
  // statm: size resident shared ... in pages.
  std::ifstream statm("/proc/self/statm");
  long long pages = 0, resident = 0;
  if (statm >> pages >> resident)
    resident_bytes_->Set(static_cast<double>(resident) * sysconf(_SC_PAGESIZE));
  const struct mallinfo2 heap = mallinfo2();
  heap_in_use_bytes_->Set(static_cast<double>(heap.uordblks + heap.hblkhd));
  heap_free_bytes_->Set(static_cast<double>(heap.fordblks));
}

void ServerMetrics::RecordMallocTrim(absl::Duration took) {
  trims_->Increment();
  trim_seconds_->Increment(absl::ToDoubleSeconds(took));
}

std::string ServerMetrics::Serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& host, int port, std::function<std::string()> body) {
  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer());
  server->server_ = std::make_unique<httplib::Server>();
  // Scrapes are rare and cheap: two workers, not httplib's default of one per core (at least 8).
  server->server_->new_task_queue = [] { return new httplib::ThreadPool(2); };
  // A worker waiting on an idle keep-alive connection does not see stop() until that wait ends
  // (5 s by default), which would stretch every shutdown: one request per connection.
  server->server_->set_keep_alive_max_count(1);
  server->server_->Get(
      "/metrics", [body = std::move(body)](const httplib::Request&, httplib::Response& response) {
        response.set_content(body(), "text/plain; version=0.0.4; charset=utf-8");
      });
  server->server_->Get("/", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("fastdiss-server metrics: GET /metrics\n", "text/plain");
  });
  if (port == 0) {
    server->port_ = server->server_->bind_to_any_port(host);
    if (server->port_ <= 0) return absl::UnavailableError("metrics: cannot bind a port on " + host);
  } else {
    if (!server->server_->bind_to_port(host, port)) {
      return absl::UnavailableError("metrics: cannot bind " + host + ":" + std::to_string(port));
    }
    server->port_ = port;
  }
  httplib::Server* raw = server->server_.get();
  server->thread_ = std::thread([raw] { raw->listen_after_bind(); });
  // httplib's stop() does nothing before the listening loop has started, so a server destroyed
  // right after Start would never join: wait for the loop.
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!raw->is_running() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  if (!raw->is_running()) return absl::InternalError("metrics: the HTTP server did not start");
  return server;
}

MetricsHttpServer::~MetricsHttpServer() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace fastdiss
