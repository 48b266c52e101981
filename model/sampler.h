// Few-step sampling (docs/method.md section 6) through a step-level API that a server can batch.
//
// A DecodeState is one request's decoding state: its candidate rows (length beam x noise beam),
// its respaced schedule and step index, and its seed. Sampler::Start runs the encoder for any set
// of new states in one batch; Sampler::Step advances any set of started states by one step each,
// every row at its own timestep of its own schedule, in one batched denoiser call.
//
// The rows themselves live in the sampler's row slots: persistent buffers with one slot per row
// for the latent, the self-conditioning estimate and every decoder block's cross-attention keys
// and values (computed once, at Start). Start takes slots, finishing or destroying a state frees
// them, and the last rows move into the holes, so the running rows always fill slots [0, n): a
// step over all of them reads the buffers in place, with host work per row but no tensor
// operation per request. All noise comes from a counter-based generator keyed by (seed, draw,
// row) (model/counter_noise.h), drawn for every row in one call, and the rounding of the requests
// that finish in a step is one batched call too. So the same request and seed decode to the same
// tokens whatever they share a batch with, on a given device and build (tested; and measured on a
// trained de-en model with the earlier per-request generator: 200 dev sentences with 2x2 beams
// decoded to identical text in batches of 1, 64 and 256 rows). Scores agree up to float rounding
// only: OpenBLAS rounds a row of a product differently at other positions in a batch.
//
// Not thread-safe: the thread that owns the model calls Start and Step (the model must be in eval
// mode), and destroys started states. States are owned by the caller and may outlive the sampler.
#ifndef FASTDISS_MODEL_SAMPLER_H_
#define FASTDISS_MODEL_SAMPLER_H_

#include <c10/core/Device.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "base/status.h"
#include "model/network.h"
#include "model/schedule.h"

namespace fastdiss {

inline constexpr int kMaxBeam = 16;

struct DecodeOptions {
  int steps = 5;        // K, in [1, T]
  int length_beam = 1;  // candidate lengths: predicted, -1, +1, -2, +2, ...
  int noise_beam = 1;   // independent noise draws per length
  uint64_t seed = 0;
  int target_length = 0;  // > 0 fixes the length instead of predicting it
  UpdateRule rule = UpdateRule::kDdpm;
  // Early exit: > 0 stops the request once the rounded tokens of all its rows have stayed the
  // same for this many steps in a row (the answer is then that rounding); 0 runs all K steps.
  int early_exit_steps = 0;
  // Clamping (Diffusion-LM's trick): every step's update moves toward the embedding of the
  // rounded estimate, sqrt(D) E[argmax], instead of the raw estimate. The self-conditioning input
  // stays the raw estimate, as in training.
  bool clamp = false;
};

struct DecodeResult {
  std::vector<int> tokens;  // the best candidate
  float score = 0;          // its mean token log-probability
  int steps = 0;
};

class RowSlots;  // sampler.cc

class DecodeState {
 public:
  ~DecodeState();  // frees its row slots
  DecodeState(const DecodeState&) = delete;
  DecodeState& operator=(const DecodeState&) = delete;

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
  friend class RowSlots;
  DecodeState() = default;

  std::vector<int64_t> source_;
  DecodeOptions options_;
  std::vector<int> schedule_;  // kept timesteps, descending
  int step_ = 0;
  bool started_ = false;
  std::vector<int> lengths_;  // per row
  // While running: the sampler's row slots and the slot of each row.
  std::shared_ptr<RowSlots> slots_owner_;
  std::vector<int> slots_;
  // Set by the step that finishes the request (rows are rounded there, in one batch).
  DecodeResult final_;
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
  absl::StatusOr<std::unique_ptr<DecodeState>> NewState(std::vector<int> source_ids,
                                                        const DecodeOptions& options) const;

  // Encodes all given new states in one batch, fixes their candidate lengths and draws their
  // starting noise.
  absl::Status Start(const std::vector<DecodeState*>& states);

  // One denoising step for every given started, unfinished state, in one batched forward. States
  // with early exit also get their estimate rounded (one batched output projection), and finish
  // once it has stopped changing.
  absl::Status Step(const std::vector<DecodeState*>& states);

  // The best candidate so far (rounding the latest z0 estimate); after the last step this is the
  // final result, rounded by that step. Needs at least one step.
  absl::StatusOr<DecodeResult> Result(const DecodeState& state);

  // Decodes a list of requests to completion, in batches of up to max_rows rows of similar source
  // length (for evaluation). Request i uses seed options.seed + i; results are in input order.
  absl::StatusOr<std::vector<DecodeResult>> DecodeAll(const std::vector<std::vector<int>>& sources,
                                                      const DecodeOptions& options, int max_rows);

 private:
  absl::Status CheckReady() const;

  // Step's phases, in order (sampler.cc): check the states, lay out the batch rows, denoise,
  // update early exit, clamp the estimates of the rows that ask for it, advance every row (the
  // noise for all rows in one call), and round and release the requests that finished.
  struct StepPlan;
  absl::Status CheckStep(const std::vector<DecodeState*>& states) const;
  void LayOut(StepPlan* plan) const;
  void Denoise(StepPlan* plan);
  void UpdateEarlyExit(const StepPlan& plan);
  void Clamp(StepPlan* plan);
  void Advance(StepPlan* plan) const;
  void Finish(const StepPlan& plan);

  FastDissModel model_;
  NoiseSchedule schedule_;
  torch::Device device_;
  std::shared_ptr<RowSlots> slots_;
};

}  // namespace fastdiss

#endif  // FASTDISS_MODEL_SAMPLER_H_
