#include "server/server_config.h"

#include <cctype>
#include <utility>

#include "base/config_tree.h"
#include "base/device_name.h"

namespace fastdiss {
namespace {

constexpr char kModelsPrefix[] = "models.";

bool ValidModelName(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

// Reads every "models.NAME.KEY" entry of the tree into `models`.
absl::Status ReadModels(ConfigTree& tree, std::map<std::string, ModelSpec>* models) {
  for (const std::string& key : tree.Keys()) {
    if (key.rfind(kModelsPrefix, 0) != 0) continue;
    const std::string rest = key.substr(sizeof(kModelsPrefix) - 1);
    const size_t dot = rest.find('.');
    if (dot == std::string::npos) continue;  // left unconsumed: CheckAllConsumed names it
    const std::string name = rest.substr(0, dot), field = rest.substr(dot + 1);
    ModelSpec& spec = (*models)[name];
    if (field == "checkpoint") {
      if (absl::Status s = tree.Get(key, &spec.checkpoint); !s.ok()) return s;
    } else if (field == "device") {
      if (absl::Status s = tree.Get(key, &spec.device); !s.ok()) return s;
    } else if (field == "clamp") {
      bool clamp = false;
      if (absl::Status s = tree.Get(key, &clamp); !s.ok()) return s;
      spec.clamp = clamp;
    } else if (field == "precision") {
      std::string name;
      if (absl::Status s = tree.Get(key, &name); !s.ok()) return s;
      absl::StatusOr<LinearPrecision> precision = ParseLinearPrecision(name);
      if (!precision.ok()) {
        return absl::InvalidArgumentError(key + ": " + std::string(precision.status().message()));
      }
      spec.precision = *precision;
    }
  }
  return absl::OkStatus();
}

}  // namespace

ConfigFields ServerConfig::Fields() {
  return {
      {"server.host", "address the gRPC and metrics servers listen on", &server.host},
      {"server.port", "gRPC port; 0 picks a free one (the log says which)", &server.port},
      {"server.metrics_port", "Prometheus /metrics HTTP port; 0 picks a free one, -1 turns it off",
       &server.metrics_port},
      {"server.metrics_host",
       "address the metrics server listens on (plain HTTP even when gRPC uses TLS); empty: "
       "server.host",
       &server.metrics_host},
      {"server.default_model",
       "model for requests that name none; empty: the only model, if there is one",
       &server.default_model},
      {"server.default_deadline_seconds", "deadline of requests that carry no gRPC deadline",
       &server.default_deadline_seconds},
      {"server.drain_grace_seconds",
       "after SIGTERM, in-flight requests get this long to finish before the server stops",
       &server.drain_grace_seconds},
      {"server.max_text_bytes", "longest source text accepted, in bytes (INVALID_ARGUMENT beyond)",
       &server.max_text_bytes},
      {"server.max_message_bytes",
       "largest request message gRPC accepts (RESOURCE_EXHAUSTED beyond)",
       &server.max_message_bytes},
      {"server.warmup_steps",
       "one warm-up request per entry (its step count), per model, before SERVING",
       &server.warmup_steps},
      {"server.default_early_exit_steps",
       "early exit for requests that leave early_exit_steps unset: stop once the rounded tokens "
       "have not "
       "changed for this many steps; 0 runs every step",
       &server.default_early_exit_steps},
      {"server.default_clamp",
       "clamping for requests that leave clamp unset: every update moves toward the rounded "
       "estimate's embedding (keeps large K from drifting); models.NAME.clamp overrides it per "
       "model",
       &server.default_clamp},
      {"server.model_poll_seconds",
       "look for new model versions (a model's newest version folder) this often; 0: only at "
       "SIGHUP",
       &server.model_poll_seconds},
      {"tls.cert",
       "PEM certificate chain of the gRPC port; with tls.key turns TLS on (empty: plaintext)",
       &tls.cert},
      {"tls.key", "PEM private key of tls.cert", &tls.key},
      {"tls.client_ca",
       "PEM CA certificates; set: mutual TLS, clients without a certificate it signed are refused",
       &tls.client_ca},
      {"engine.policy",
       "batching: step (rows at any step share a forward), request (classic), none",
       &engine.policy},
      {"engine.max_rows_per_batch", "most rows (requests x beams) in one denoiser forward",
       &engine.max_rows_per_batch},
      {"engine.max_tokens_per_batch", "most target tokens in one denoiser forward",
       &engine.max_tokens_per_batch},
      {"engine.max_queued_requests",
       "waiting requests per model; beyond: RESOURCE_EXHAUSTED at once",
       &engine.max_queued_requests},
      {"engine.max_queue_delay_seconds", "an idle engine waits this long for a batch to fill",
       &engine.max_queue_delay_seconds},
      {"engine.max_steps", "most denoising steps a request may ask for (capped at the model's T)",
       &engine.max_steps},
      {"engine.admission_order",
       "when the batch is full: fifo, or shortest_first (fewest steps first)",
       &engine.admission_order},
      {"engine.deadline_aware",
       "refuse a request at once when its predicted finish is past its deadline, and stop one that "
       "can no "
       "longer make it",
       &engine.deadline_aware},
      {"engine.adaptive_latency_target_seconds",
       "a request giving min_steps..max_steps runs the most steps predicted to finish within this",
       &engine.adaptive_latency_target_seconds},
      {"runtime.threads",
       "LibTorch intra-op threads; 0: the cores this process may use (docs/serving.md)",
       &runtime.threads},
      {"runtime.blas_threads",
       "OpenBLAS threads; 0: as many as runtime.threads (docs/performance.md)",
       &runtime.blas_threads},
      {"runtime.malloc_trim_seconds",
       "give the heap's free pages back to the kernel this often, so RSS follows the memory in "
       "use; 0: never "
       "(docs/reliability.md)",
       &runtime.malloc_trim_seconds},
  };
}

absl::Status ServerConfig::Validate() const {
  auto invalid = [](const std::string& message) { return absl::InvalidArgumentError(message); };
  if (server.port < 0 || server.port > 65535) {
    return invalid("server.port must be in [0, 65535], got " + std::to_string(server.port));
  }
  if (server.metrics_port < -1 || server.metrics_port > 65535) {
    return invalid("server.metrics_port must be in [-1, 65535], got " +
                   std::to_string(server.metrics_port));
  }
  if (!(server.default_deadline_seconds > 0)) {
    return invalid("server.default_deadline_seconds must be positive, got " +
                   std::to_string(server.default_deadline_seconds));
  }
  if (!(server.drain_grace_seconds >= 0)) {
    return invalid("server.drain_grace_seconds must not be negative, got " +
                   std::to_string(server.drain_grace_seconds));
  }
  if (server.max_text_bytes < 1) {
    return invalid("server.max_text_bytes must be positive, got " +
                   std::to_string(server.max_text_bytes));
  }
  if (server.max_message_bytes < server.max_text_bytes + 1024 ||
      server.max_message_bytes > (int64_t{1} << 30)) {
    return invalid("server.max_message_bytes must be in [max_text_bytes + 1024, 2^30], got " +
                   std::to_string(server.max_message_bytes));
  }
  if (server.default_early_exit_steps < 0 || server.default_early_exit_steps > engine.max_steps) {
    return invalid(
        "server.default_early_exit_steps must be in [0, engine.max_steps] (0: off), got " +
        std::to_string(server.default_early_exit_steps));
  }
  if (!(server.model_poll_seconds == 0 ||
        (server.model_poll_seconds >= 1 && server.model_poll_seconds <= 86400))) {
    return invalid("server.model_poll_seconds must be 0 (only at SIGHUP) or in [1, 86400], got " +
                   std::to_string(server.model_poll_seconds));
  }
  if (tls.cert.empty() != tls.key.empty()) {
    return invalid("tls.cert and tls.key go together: set both for TLS, or neither");
  }
  if (!tls.client_ca.empty() && tls.cert.empty()) {
    return invalid("tls.client_ca (mutual TLS) needs tls.cert and tls.key");
  }
  for (int64_t steps : server.warmup_steps) {
    if (steps < 1 || steps > engine.max_steps) {
      return invalid("server.warmup_steps entries must be in [1, engine.max_steps], got " +
                     std::to_string(steps));
    }
  }
  absl::StatusOr<EngineOptions> engine_options = ToEngineOptions();
  if (!engine_options.ok()) return engine_options.status();
  if (runtime.threads < 0)
    return invalid("runtime.threads must not be negative, got " + std::to_string(runtime.threads));
  if (runtime.blas_threads < 0) {
    return invalid("runtime.blas_threads must not be negative, got " +
                   std::to_string(runtime.blas_threads));
  }
  if (!(runtime.malloc_trim_seconds == 0 ||
        (runtime.malloc_trim_seconds >= 0.1 && runtime.malloc_trim_seconds <= 3600))) {
    return invalid("runtime.malloc_trim_seconds must be 0 (never) or in [0.1, 3600], got " +
                   std::to_string(runtime.malloc_trim_seconds));
  }
  if (models.empty()) {
    return invalid(
        "no models: give at least one with --model NAME=CHECKPOINT_DIR or models.NAME.checkpoint");
  }
  for (const auto& [name, spec] : models) {
    if (!ValidModelName(name)) {
      return invalid("model name '" + name + "' must be non-empty letters, digits, '_' or '-'");
    }
    if (spec.checkpoint.empty()) return invalid("models." + name + ".checkpoint is required");
    if (!IsDeviceName(spec.device)) {
      return invalid("models." + name + ".device must be cpu, cuda or cuda:N, got '" + spec.device +
                     "'");
    }
  }
  if (!server.default_model.empty() && models.count(server.default_model) == 0) {
    return invalid("server.default_model '" + server.default_model +
                   "' is not one of the configured models");
  }
  return absl::OkStatus();
}

absl::StatusOr<EngineOptions> ServerConfig::ToEngineOptions() const {
  EngineOptions options;
  absl::StatusOr<BatchPolicy> policy = ParseBatchPolicy(engine.policy);
  if (!policy.ok())
    return absl::InvalidArgumentError("engine.policy: " + std::string(policy.status().message()));
  options.policy = *policy;
  options.max_rows_per_batch = engine.max_rows_per_batch;
  options.max_tokens_per_batch = engine.max_tokens_per_batch;
  options.max_queued_requests = engine.max_queued_requests;
  if (!(engine.max_queue_delay_seconds >= 0) || engine.max_queue_delay_seconds > 60) {
    return absl::InvalidArgumentError("engine.max_queue_delay_seconds must be in [0, 60], got " +
                                      std::to_string(engine.max_queue_delay_seconds));
  }
  options.max_queue_delay = absl::Seconds(engine.max_queue_delay_seconds);
  options.max_steps = engine.max_steps;
  absl::StatusOr<AdmissionOrder> order = ParseAdmissionOrder(engine.admission_order);
  if (!order.ok())
    return absl::InvalidArgumentError("engine.admission_order: " +
                                      std::string(order.status().message()));
  options.admission_order = *order;
  options.deadline_aware = engine.deadline_aware;
  if (!(engine.adaptive_latency_target_seconds > 0) ||
      engine.adaptive_latency_target_seconds > 3600) {
    return absl::InvalidArgumentError(
        "engine.adaptive_latency_target_seconds must be in (0, 3600], got " +
        std::to_string(engine.adaptive_latency_target_seconds));
  }
  options.adaptive_latency_target = absl::Seconds(engine.adaptive_latency_target_seconds);
  if (absl::Status valid = ValidateEngineOptions(options); !valid.ok()) {
    return absl::InvalidArgumentError("engine." + std::string(valid.message()));
  }
  return options;
}

std::string ServerConfig::Describe() {
  std::string text = DescribeFields(Fields());
  text +=
      "\n# The hosted models, by name (--model NAME=CHECKPOINT_DIR adds or replaces "
      "one).\nmodels:\n";
  for (const auto& [name, spec] : models) {
    text += "  " + name + ":\n";
    text += "    # checkpoint directory (fastdiss-train's last/ or best/)\n";
    ConfigValue checkpoint, device;
    checkpoint.scalar = spec.checkpoint;
    device.scalar = spec.device;
    text += "    checkpoint: " + YamlValueText(checkpoint, /*quote_scalar=*/true) + "\n";
    text += "    # cpu, cuda or cuda:N\n";
    text += "    device: " + YamlValueText(device) + "\n";
    text +=
        "    # float32, or bfloat16: the linear layers' weights and products (activations stay "
        "float32)\n";
    text += "    precision: " + std::string(LinearPrecisionName(spec.precision)) + "\n";
    if (spec.clamp.has_value()) {
      text += "    # requests that leave clamp unset are clamped (unset: server.default_clamp)\n";
      text += std::string("    clamp: ") + (*spec.clamp ? "true" : "false") + "\n";
    }
  }
  return text;
}

absl::StatusOr<ServerConfig> ServerConfig::Load(const std::string& path,
                                                const std::vector<std::string>& overrides,
                                                const std::vector<std::string>& model_flags) {
  ConfigTree tree;
  if (!path.empty()) {
    absl::StatusOr<ConfigTree> loaded = ConfigTree::LoadFile(path);
    if (!loaded.ok()) return loaded.status();
    tree = std::move(loaded).value();
  }
  for (const std::string& assignment : overrides) {
    if (absl::Status s = tree.Set(assignment); !s.ok()) return s;
  }
  ServerConfig config;
  if (absl::Status s = ReadFields(tree, config.Fields()); !s.ok()) return s;
  if (absl::Status s = ReadModels(tree, &config.models); !s.ok()) return s;
  if (absl::Status s = tree.CheckAllConsumed(); !s.ok()) return s;
  for (const std::string& flag : model_flags) {
    const size_t eq = flag.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == flag.size()) {
      return absl::InvalidArgumentError("--model takes NAME=CHECKPOINT_DIR, got '" + flag + "'");
    }
    config.models[flag.substr(0, eq)].checkpoint = flag.substr(eq + 1);
  }
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  return config;
}

}  // namespace fastdiss
