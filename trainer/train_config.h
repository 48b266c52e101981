// The validated configuration of fastdiss-train. Parsed once from YAML (+ --set overrides) into
// these structs; every key is bound in TrainConfig::Fields(), which also documents it for --help
// and configs/*.yaml. Unknown keys and bad values are rejected with the key's name.
#ifndef FASTDISS_TRAINER_TRAIN_CONFIG_H_
#define FASTDISS_TRAINER_TRAIN_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "base/config_fields.h"
#include "base/status.h"
#include "model/network.h"

namespace fastdiss {

struct DataConfig {
  std::vector<std::string> train_source;  // parallel files, line by line
  std::vector<std::string> train_target;
  std::string dev_source;
  std::string dev_target;
  int64_t vocab_size = 8000;
  std::string tokenizer_type = "unigram";
  int64_t tokenizer_sentences = 1000000;  // lines spm_train samples; 0 = all
  std::string tokenizer;                  // an existing SentencePiece .model; empty = train one
};

// The training objective of docs/method.md sections 3-5. Baseline = scp and mans off.
struct ObjectiveConfig {
  double self_cond_prob = 0.5;                         // p_sc
  bool scp = true;                                     // self-conditioning perturbation
  std::vector<int64_t> scp_steps = {1, 2, 5, 10, 20};  // K set: t' = t + round(T / K)
  int64_t scp_offset = 0;                              // > 0: fixed t' = t + offset instead
  bool scp_fresh_noise = true;                         // z_t' with fresh noise (else the same eps)
  bool mans = true;                                    // model-aware noise scaling
  double mans_d_lo = 0.1;                              // anchors of the confidence ramp
  double mans_d_hi = 1.0;
  double mans_scale = 0.5;  // s: most extra noise, as a share of T-1
  // "absolute": t_i = t + c s (T-1), method.md's rule. "proportional": t_i = t + c s t, which
  // keeps confident tokens near their t, so low timesteps still train (docs/results.md).
  std::string mans_shift = "absolute";
  double label_smoothing = 0.1;
  double length_loss_weight = 0.1;
};

struct OptimConfig {
  int64_t max_steps = 100000;
  double max_minutes = 0;     // > 0: also stop (with a checkpoint) after this wall time
  int64_t max_tokens = 4096;  // tokens per batch, padded source + target
  double lr = 5e-4;
  int64_t warmup_steps = 4000;
  double clip_norm = 1.0;
  double weight_decay = 0.0;
  int64_t seed = 1;
  std::string output_dir;
  std::string resume;     // checkpoint dir to resume from; "auto" = output_dir/last if present
  std::string init_from;  // checkpoint dir whose weights and tokenizer start a fresh run
  int64_t log_every = 100;
  int64_t threads = 0;         // 0 = all cores available
  std::string device = "cpu";  // cpu, cuda (under torchrun: cuda:LOCAL_RANK) or cuda:N
};

struct EvalConfig {
  int64_t every = 2000;                            // steps between dev evaluations + checkpoints
  std::vector<int64_t> steps = {1, 2, 5, 10, 20};  // K values for dev BLEU
  int64_t select_steps = 5;                        // "best" means best dev BLEU at this K
  int64_t dev_sentences = 500;                     // 0 = the whole dev set
  int64_t max_rows = 256;                          // rows per decoding batch
  int64_t keep_last = 3;                           // periodic checkpoints kept besides last/best
  int64_t length_beam = 1;
  int64_t noise_beam = 1;
  bool clamp = true;  // clamping, as the server does by default (DecodeOptions::clamp)
};

struct TrainConfig {
  DataConfig data;
  ModelConfig model;
  ObjectiveConfig objective;
  OptimConfig train;
  EvalConfig eval;

  ConfigFields Fields();
  absl::Status Validate() const;

  // Reads a YAML file (may be empty for all defaults), applies "key=value" overrides in order,
  // rejects unknown keys, validates. Relative paths are relative to the working directory.
  static absl::StatusOr<TrainConfig> Load(const std::string& path,
                                          const std::vector<std::string>& overrides);
};

}  // namespace fastdiss

#endif  // FASTDISS_TRAINER_TRAIN_CONFIG_H_
