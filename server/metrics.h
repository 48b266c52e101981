// ServerMetrics: the server's Prometheus metrics, one object made in main and injected (no
// global registry). Families are built once and every label child is created up front for the
// hosted models (plus "unknown", for requests naming no hosted model), so recording is a lookup in
// a fixed map and a lock-free update; labels are only model and gRPC code.
//
// MetricsHttpServer serves GET /metrics in Prometheus's text format with cpp-httplib (the
// prometheus-cpp civetweb exposer cannot start its threads beside Debian's LibTorch). It owns its
// listening thread and joins it on destruction.
#ifndef FASTDISS_SERVER_METRICS_H_
#define FASTDISS_SERVER_METRICS_H_

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/engine_options.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
}  // namespace prometheus

namespace httplib {
class Server;
}  // namespace httplib

namespace fastdiss {

class ServerMetrics {
 public:
  // Label value for requests that name no hosted model.
  static constexpr char kUnknownModel[] = "unknown";

  explicit ServerMetrics(const std::vector<std::string>& models);
  ~ServerMetrics();
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  // A finished RPC: its code and, for every code, the time from arrival to answer.
  void RecordRequest(const std::string& model, absl::StatusCode code, absl::Duration latency);
  // A request admitted after waiting this long.
  void RecordQueueTime(const std::string& model, absl::Duration waited);
  // Steps a request did not run because early exit stopped it.
  void RecordStepsSaved(const std::string& model, int steps);
  // Steps below its max_steps that a load-adaptive request was planned without.
  void RecordAdaptiveStepsGivenUp(const std::string& model, int steps);
  // Steps a running request had run when it was stopped at its deadline.
  void RecordLateSteps(const std::string& model, int steps);
  // One denoiser forward of the model's engine.
  void RecordStep(const std::string& model, const StepStats& stats);
  // One admission of the model's engine: the newcomers' encoder pass, batched.
  void RecordAdmission(const std::string& model, const StepStats& stats);
  void SetLoad(const std::string& model, int waiting, int running);
  // Reads the process's memory now (at each scrape): resident set, and the malloc heap split into
  // bytes in use and bytes free but kept. RSS that grows while "in use" stays flat is the
  // allocator keeping memory, not a leak (docs/reliability.md).
  void UpdateMemory();
  // One malloc_trim of the heap (server/memory_trimmer.h) and how long it took.
  void RecordMallocTrim(absl::Duration took);

  // Everything, in Prometheus's text exposition format.
  std::string Serialize() const;

 private:
  struct ModelMetrics {
    prometheus::Histogram* request_seconds = nullptr;
    prometheus::Histogram* queue_seconds = nullptr;
    prometheus::Histogram* step_seconds = nullptr;
    prometheus::Histogram* rows_per_forward = nullptr;
    prometheus::Histogram* admission_seconds = nullptr;
    prometheus::Gauge* waiting = nullptr;
    prometheus::Gauge* running = nullptr;
    prometheus::Counter* steps = nullptr;
    prometheus::Counter* tokens = nullptr;
    prometheus::Counter* steps_saved = nullptr;
    prometheus::Counter* steps_given_up = nullptr;
    prometheus::Counter* request_steps = nullptr;
    prometheus::Counter* late_steps = nullptr;
    std::array<prometheus::Counter*, 17> requests{};  // by absl::StatusCode 0..16
  };
  const ModelMetrics& For(const std::string& model) const;

  std::unique_ptr<prometheus::Registry> registry_;
  prometheus::Gauge* resident_bytes_ = nullptr;
  prometheus::Gauge* heap_in_use_bytes_ = nullptr;
  prometheus::Gauge* heap_free_bytes_ = nullptr;
  prometheus::Counter* trims_ = nullptr;
  prometheus::Counter* trim_seconds_ = nullptr;
  std::map<std::string, ModelMetrics> models_;  // fixed after construction
};

class MetricsHttpServer {
 public:
  // Listens on host:port (0 picks a free port) and serves `body()` at GET /metrics.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& host, int port, std::function<std::string()> body);
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  int port() const { return port_; }

 private:
  MetricsHttpServer() = default;

  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace fastdiss

#endif  // FASTDISS_SERVER_METRICS_H_
