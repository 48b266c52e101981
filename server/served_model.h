// ServedModel: one hosted model: its checkpoint loaded onto its device, its tokenizer, and the
// Engine (with its own thread) that batches its requests. Load blocks on disk and model work;
// WarmUp blocks until its requests are answered. After that, everything it hands out is safe to
// use from any thread: the tokenizer and info are immutable, and the Engine is thread-safe.
#ifndef FASTDISS_SERVER_SERVED_MODEL_H_
#define FASTDISS_SERVER_SERVED_MODEL_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/tokenizer.h"
#include "server/engine.h"
#include "server/server_config.h"

namespace fastdiss {

struct ServedModelInfo {
  std::string name;
  std::string
      version;  // "step-N-<hash>": the training step and a hash of the checkpoint's MANIFEST
  std::string checkpoint_dir;   // the directory it was loaded from
  std::string manifest_digest;  // ManifestDigest of that directory
  std::string device;
  int max_steps = 0;  // the engine's max_steps capped at num_timesteps
  int max_source_tokens = 0;
  int max_target_tokens = 0;
  int max_beam = 0;
  int max_rows = 0;  // the engine's max_rows_per_batch: length_beam x noise_beam at most
  int num_timesteps = 0;
  std::string source_units;       // model.source_units: how request text is cut before tokenizing
  bool source_lowercase = false;  // model.source_lowercase: ASCII capitals lowercased first
  bool default_clamp = true;      // for requests that leave clamp unset (ModelSpec::clamp)
  LinearPrecision precision = LinearPrecision::kFloat32;  // of the linear layers
};

class ServedModel {
 public:
  // Loads the checkpoint directory `spec.checkpoint` (resolved already: server/model_versions.h)
  // onto `spec.device` and starts its engine. `hooks` go to the engine.
  static absl::StatusOr<std::unique_ptr<ServedModel>> Load(const std::string& name,
                                                           const ModelSpec& spec,
                                                           EngineOptions options,
                                                           Engine::Hooks hooks);

  // Runs one request per entry of `steps`, one after another, through the engine, so the first
  // real request finds every code path and allocation warm (with clamping as the server's
  // default has it). Blocks.
  absl::Status WarmUp(const std::vector<int64_t>& steps);

  const ServedModelInfo& info() const { return info_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  // The token ids of a request's source text, cut by the model's source rule first (the same
  // path the trainer and fastdiss-eval use).
  std::vector<int> EncodeSource(std::string_view text) const {
    return tokenizer_.Encode(PrepareSource(text, {info_.source_units, info_.source_lowercase}));
  }
  Engine& engine() { return *engine_; }

 private:
  ServedModel() = default;

  ServedModelInfo info_;
  Tokenizer tokenizer_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace fastdiss

#endif  // FASTDISS_SERVER_SERVED_MODEL_H_
