// Few-step sampling (docs/method.md section 6) through a step-level API that a server can batch.
//
// A DecodeState is one request's whole decoding state: its candidate rows (length beam x noise
// beam), its respaced schedule and step index, its cached encoder output, its self-conditioning
// estimate and its own seeded random generator. Sampler::Start runs the encoder for any set of new
// states in one batch; Sampler::Step advances any set of started states by one step each, every
// row at its own timestep of its own schedule, in one batched denoiser call. All noise a request
// uses comes from its own generator and is drawn in its own shape, so the same request and seed
// decode to the same tokens whatever they share a batch with (tested; and measured on a trained
// de-en model: 200 dev sentences with 2x2 beams decoded to identical text in batches of 1, 64 and
// 256 rows, so float reductions over padded shapes did not reach the tokens there).
//
// Not thread-safe: the thread that owns the model calls Start and Step (the model must be in eval
// mode). States are owned by the caller; a state is touched only by the Sampler calls it is passed to.
#ifndef FASTDISS_MODEL_SAMPLER_H_
#define FASTDISS_MODEL_SAMPLER_H_

#include <ATen/core/Generator.h>
#include <c10/core/Device.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "model/network.h"
#include "model/schedule.h"
#include "model/status.h"

namespace fastdiss {

inline constexpr int kMaxBeam = 16;

struct DecodeOptions {
  int steps = 5;                  // K, in [1, T]
  int length_beam = 1;            // candidate lengths: predicted, -1, +1, -2, +2, ...
  int noise_beam = 1;             // independent noise draws per length
  uint64_t seed = 0;
  int target_length = 0;          // > 0 fixes the length instead of predicting it
  UpdateRule rule = UpdateRule::kDdpm;
  // Early exit: > 0 stops the request once the rounded tokens of all its rows have stayed the
  // same for this many steps in a row (the answer is then that rounding); 0 runs all K steps.
  int early_exit_steps = 0;
};

struct DecodeResult {
  std::vector<int> tokens;  // the best candidate
  float score = 0;          // its mean token log-probability
  int steps = 0;
};

class DecodeState {
 public:
  const DecodeOptions& options() const { return options_; }
  int rows() const { return static_cast<int>(lengths_.size()); }
  // Steps taken so far, in [0, options().steps].
  int steps_done() const { return step_; }
  bool started() const { return started_; }
  // After the last step, or an early exit.
  bool finished() const { return step_ == options_.steps || exited_early_; }
  bool exited_early() const { return exited_early_; }
  // Target tokens of this request's rows summed (its share of a batch's work), 0 before Start.
  int64_t target_tokens() const;
  int source_length() const { return static_cast<int>(source_.size()); }

 private:
  friend class Sampler;
  DecodeState() = default;

  std::vector<int64_t> source_;
  DecodeOptions options_;
  std::vector<int> schedule_;  // kept timesteps, descending
  int step_ = 0;
  bool started_ = false;
  std::vector<int> lengths_;   // per row
  int max_length_ = 0;         // over rows
  at::Generator generator_;
  torch::Tensor encoded_;      // [rows, S, H], the encoder output repeated per row
  torch::Tensor z_;            // [rows, max_length, D]
  torch::Tensor z0_hat_;       // latest estimate, also the next step's self-conditioning input
  // Early exit: the latest rounding (every row's tokens within its length, row after row) and
  // for how many steps in a row it has not changed.
  std::vector<int64_t> rounded_;
  int unchanged_steps_ = 0;
  bool exited_early_ = false;
};

class Sampler {
 public:
  Sampler(FastDissModel model, NoiseSchedule schedule, torch::Device device);

  const NoiseSchedule& schedule() const { return schedule_; }
  const FastDissModel& model() const { return model_; }

  // Validates and makes a state; no model work. Source ids must be non-empty, within
  // max_source_tokens and the vocabulary.
  StatusOr<std::unique_ptr<DecodeState>> NewState(std::vector<int> source_ids,
                                                  const DecodeOptions& options) const;

  // Encodes all given new states in one batch, fixes their candidate lengths and draws their
  // starting noise.
  Status Start(const std::vector<DecodeState*>& states);

  // One denoising step for every given started, unfinished state, in one batched forward. States
  // with early exit also get their estimate rounded (one batched output projection), and finish
  // once it has stopped changing.
  Status Step(const std::vector<DecodeState*>& states);

  // The best candidate so far (rounding the latest z0 estimate); after the last step this is the
  // final result. Needs at least one step.
  StatusOr<DecodeResult> Result(const DecodeState& state);

  // Decodes a list of requests to completion, in batches of up to max_rows rows of similar source
  // length (for evaluation). Request i uses seed options.seed + i; results are in input order.
  StatusOr<std::vector<DecodeResult>> DecodeAll(const std::vector<std::vector<int>>& sources,
                                                const DecodeOptions& options, int max_rows);

 private:
  Status CheckReady() const;

  FastDissModel model_;
  NoiseSchedule schedule_;
  torch::Device device_;
};

}  // namespace fastdiss

#endif  // FASTDISS_MODEL_SAMPLER_H_
