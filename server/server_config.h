// ServerConfig: everything fastdiss-server reads from its YAML file, --set overrides and flags,
// parsed once and validated before anything starts. Every fixed key is bound in Fields(), which
// also documents it (--help, configs/server.yaml); the hosted models are a map under `models.`:
//
//   models:
//     g2p:
//       checkpoint: models/g2p
//       device: cpu
//
// Unknown keys and bad values are rejected by name, like the trainer's config.
#ifndef FASTDISS_SERVER_SERVER_CONFIG_H_
#define FASTDISS_SERVER_SERVER_CONFIG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/config_fields.h"
#include "model/precision.h"
#include "server/engine_options.h"

namespace fastdiss {

struct ModelSpec {
  std::string checkpoint;      // directory of a fastdiss checkpoint
  std::string device = "cpu";  // "cpu", "cuda" or "cuda:N"
  // Whether requests that leave `clamp` unset are clamped; unset: server.default_clamp.
  std::optional<bool> clamp;
  // The linear layers' weights and products: float32, or bfloat16 (model/precision.h).
  LinearPrecision precision = LinearPrecision::kFloat32;
};

struct ServerConfig {
  struct Server {
    std::string host = "0.0.0.0";
    int port = 8500;            // gRPC; 0 picks a free port (logged)
    int metrics_port = 9090;    // Prometheus /metrics over HTTP; 0 picks one, -1 disables
    std::string metrics_host;   // the metrics server's address; empty: `host`
    std::string default_model;  // for requests naming none; empty: the only model, if one
    double default_deadline_seconds = 60;  // bounds requests that carry no gRPC deadline
    double drain_grace_seconds = 25;       // after SIGTERM, in-flight work gets this long
    int64_t max_text_bytes = 65536;        // longer source text: INVALID_ARGUMENT
    int64_t max_message_bytes =
        1048576;  // gRPC receive limit; beyond it gRPC answers RESOURCE_EXHAUSTED
    std::vector<int64_t> warmup_steps = {1, 5};  // one warm-up request per entry, per model
    int default_early_exit_steps = 0;  // for requests that leave early_exit_steps unset; 0 = off
    bool default_clamp = true;      // for requests that leave clamp unset, unless models.NAME.clamp
    double model_poll_seconds = 0;  // look for new model versions this often; 0: only at SIGHUP
  } server;
  struct Tls {  // PEM files (server/tls.h); all empty: plaintext gRPC
    std::string cert;
    std::string key;
    std::string client_ca;  // set: mutual TLS, every client must present a certificate it signed
  } tls;
  struct Engine {
    std::string policy = "step";  // step | request | none
    int max_rows_per_batch = 256;
    int64_t max_tokens_per_batch = 8192;
    int max_queued_requests = 256;
    double max_queue_delay_seconds = 0;
    int max_steps = 200;
    std::string admission_order = "fifo";  // fifo | shortest_first
    bool deadline_aware = true;
    double adaptive_latency_target_seconds = 1.0;
  } engine;
  struct Runtime {
    // LibTorch intra-op threads; 0 = the cores this process may use. 1 by default: on 2 cores a
    // second intra-op thread made serving slower at every load measured (docs/serving.md).
    int threads = 1;
    int blas_threads = 2;  // OpenBLAS threads; GEMMs split over 2 cores won (docs/performance.md)
    double malloc_trim_seconds = 10;  // server/memory_trimmer.h; 0: never
  } runtime;
  std::map<std::string, ModelSpec> models;  // by name

  ConfigFields Fields();
  absl::Status Validate() const;
  // The engine section as EngineOptions (max_steps is capped per model at load).
  absl::StatusOr<EngineOptions> ToEngineOptions() const;
  // models.at(name) with its clamping default settled (server.default_clamp when unset).
  ModelSpec ResolvedModel(const std::string& name) const {
    ModelSpec spec = models.at(name);
    if (!spec.clamp.has_value()) spec.clamp = server.default_clamp;
    return spec;
  }
  // The config as a commented YAML file (fixed keys, then the models).
  std::string Describe();

  // Reads `path` (empty: defaults only), applies "key=value" overrides in order, then the
  // "NAME=CHECKPOINT_DIR" model flags, rejects unknown keys and validates.
  static absl::StatusOr<ServerConfig> Load(const std::string& path,
                                           const std::vector<std::string>& overrides,
                                           const std::vector<std::string>& model_flags);
};

}  // namespace fastdiss

#endif  // FASTDISS_SERVER_SERVER_CONFIG_H_
