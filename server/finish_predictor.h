// What the engine knows about time before it spends it: a request's cost is its K denoising
// steps, so its finish time follows from the step time and the work ahead of it.
//
// StepTimeModel fits the duration of one denoiser forward to its target tokens, online, by
// exponentially weighted least squares (recent forwards count most, so it follows a change of
// load or machine). PredictFinish replays the engine's admission rules over the work it has
// (running requests and their remaining steps, the queue in admission order, the new request) and
// adds up each stretch of steps at the modelled step time of the batch that runs it. Predictions
// assume every request runs all its steps; early exit only makes them pessimistic. No LibTorch.
#ifndef FASTDISS_SERVER_FINISH_PREDICTOR_H_
#define FASTDISS_SERVER_FINISH_PREDICTOR_H_

#include <cstdint>
#include <vector>

#include "absl/time/time.h"
#include "server/engine_options.h"

namespace fastdiss {

class StepTimeModel {
 public:
  // `weight`: the share of the fit given to each new forward, in (0, 1].
  explicit StepTimeModel(double weight = 0.05) : weight_(weight) {}

  void Observe(int64_t tokens, absl::Duration duration);
  // True once enough forwards were seen for predictions to mean anything.
  bool ready() const { return observations_ >= kMinObservations; }
  // The predicted duration of a forward over `tokens` target tokens (zero until ready). While
  // every forward seen had about the same size, larger batches are predicted proportionally
  // slower and smaller ones as fast as those seen: pessimistic, never optimistic.
  absl::Duration Predict(int64_t tokens) const;

 private:
  static constexpr int kMinObservations = 3;
  double weight_;
  int64_t observations_ = 0;
  // Weighted means of x (tokens), y (seconds), x*x and x*y.
  double mean_x_ = 0, mean_y_ = 0, mean_xx_ = 0, mean_xy_ = 0;
};

// One request's share of the engine's work.
struct PlannedWork {
  int rows = 0;
  int64_t tokens = 0;       // target tokens of its rows
  int remaining_steps = 0;  // steps still to run (all K while it waits)
};

struct AdmissionLimits {
  int max_rows = 0;
  int64_t max_tokens = 0;
  // kStep: newcomers join the running batch; kRequest: only an empty batch takes newcomers;
  // kNone: one request at a time.
  BatchPolicy policy = BatchPolicy::kStep;
};

// The time from now until `candidate` has run all its steps, had it joined the queue behind
// `waiting` (given in arrival order), with `running` in the batch. Admission follows the engine:
// its policy, in `order`, nobody overtaking the head, the first request always admitted into an
// empty batch.
// Zero when `model` is not ready.
absl::Duration PredictFinish(const std::vector<PlannedWork>& running,
                             const std::vector<PlannedWork>& waiting, const PlannedWork& candidate,
                             const AdmissionLimits& limits, AdmissionOrder order,
                             const StepTimeModel& model);

}  // namespace fastdiss

#endif  // FASTDISS_SERVER_FINISH_PREDICTOR_H_
