// A FastDiSS checkpoint: one directory holding the format version and model config (model.yaml),
// the weights (weights.pt), the SentencePiece model (tokenizer.model), metadata (metadata.yaml:
// the training config, step, dev BLEU, code version) and, for resuming, the trainer's state
// (trainer_state.pt). Written atomically through WriteCheckpointDir (temp dir + rename) with a
// MANIFEST of sizes and hashes, so a missing, truncated, corrupted or mismatched checkpoint is a
// clear absl::Status on load, never a crash.
#ifndef FASTDISS_MODEL_CHECKPOINT_H_
#define FASTDISS_MODEL_CHECKPOINT_H_

#include <c10/core/Device.h>

#include <string>

#include "base/config_tree.h"
#include "base/status.h"
#include "model/network.h"
#include "model/tokenizer.h"

namespace fastdiss {

// Weights may be stored in half precision (the bundled model); loading always upcasts to float32.
enum class WeightPrecision { kFloat32, kFloat16 };

struct LoadedCheckpoint {
  ModelConfig config;
  FastDissModel model{nullptr};  // on the requested device, in eval mode
  Tokenizer tokenizer;
  ConfigTree metadata;
  std::string trainer_state;  // empty when the checkpoint has none
};

struct SaveCheckpointOptions {
  WeightPrecision precision = WeightPrecision::kFloat32;
  std::string trainer_state;  // opaque bytes from the trainer; empty to leave out
};

absl::Status SaveCheckpoint(const std::string& dir, FastDissModel& model,
                            const Tokenizer& tokenizer, const ConfigTree& metadata,
                            const SaveCheckpointOptions& options = {});

absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& dir,
                                                c10::Device device = c10::Device(c10::kCPU));

// The source revision this binary was built from (git describe), recorded in metadata.
std::string CodeVersion();

}  // namespace fastdiss

#endif  // FASTDISS_MODEL_CHECKPOINT_H_
