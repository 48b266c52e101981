// fastdiss-train's training run: builds (or resumes) the tokenizer, data, model and optimizer from
// a validated TrainConfig, trains with the FastDiSS objective, evaluates dev BLEU at several step
// counts every eval.every steps, and keeps output_dir/{last,best,step-N} checkpoints.
//
// Resuming from a checkpoint restores weights, Adam state, step, data position (epoch and batch)
// and the random generator, so a resumed run continues exactly as the uninterrupted one would.
// Single-threaded driver: Run() blocks until max_steps or max_minutes.
//
// train.device places the model, batches and optimizer state on the CPU or a CUDA GPU (under
// torchrun, "cuda" means cuda:LOCAL_RANK). Checkpoints are device-free: a run trained on a GPU
// resumes on the CPU and back. The noise of each batch is drawn on the CPU (so it is the same on
// every device and rank count); dropout uses the device's generator, whose state is saved too. On
// CUDA a resumed run continues with the same data and noise, but not bit for bit: some CUDA
// kernels (embedding and index backward) sum in a nondeterministic order.
//
// Data-parallel (a Communicator with world size N > 1): every rank builds the same global batches
// and trains on its share of each (the examples at positions p with p % N == rank); the batch's
// noise is drawn from a generator seeded by (train.seed, step) and gradients are summed over the
// ranks, so N processes take the same steps as one process with the same batches (with dropout 0,
// up to float rounding). Rank 0 trains the tokenizer and shares it, evaluates, logs and writes
// every checkpoint; resuming works with any N, since nothing in the state depends on it.
#ifndef FASTDISS_TRAINER_TRAINER_H_
#define FASTDISS_TRAINER_TRAINER_H_

#include <torch/optim/adam.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "model/network.h"
#include "model/schedule.h"
#include "model/tokenizer.h"
#include "trainer/data.h"
#include "trainer/distributed.h"
#include "trainer/train_config.h"

namespace fastdiss {

struct TrainSummary {
  int64_t step = 0;
  double last_loss = 0;
  double tokens_per_second = 0;
  double best_bleu = -1;
  bool stopped = false;  // by RequestStop: last/ holds the state at `step`, without an evaluation
};

class Trainer {
 public:
  // log receives progress lines (rank 0 only); it must outlive the trainer, and so must `comm`
  // (null: a single process).
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(TrainConfig config, std::ostream* log,
                                                         Communicator* comm = nullptr);

  absl::StatusOr<TrainSummary> Run();

  // Ends Run at the end of the current step, at the same step on every rank: rank 0 saves last/
  // (no dev evaluation, so it is quick) and Run returns; resuming continues exactly. Callable
  // from any thread and from a signal handler (it only sets a lock-free atomic flag).
  void RequestStop() { stop_requested_.store(true, std::memory_order_relaxed); }

  // Optimizer steps taken so far (including those of the run it resumed).
  int64_t step() const { return step_; }

 private:
  Trainer(TrainConfig config, std::ostream* log, Communicator* comm);
  bool is_chief() const { return comm_ == nullptr || comm_->rank() == 0; }
  int rank() const { return comm_ == nullptr ? 0 : comm_->rank(); }
  int world_size() const { return comm_ == nullptr ? 1 : comm_->world_size(); }
  // Initialize's parts, in order: what to resume from, the device, the model (resumed, started
  // from another checkpoint's weights, or new with its tokenizer), then the data.
  absl::Status Initialize();
  absl::StatusOr<std::string> ChooseResume();  // "" for a fresh run
  absl::Status ChooseDevice();
  absl::Status ResumeModel(const std::string& resume, std::string* trainer_state);
  absl::Status InitModelFrom(const std::string& from);
  absl::Status CreateModel();
  absl::StatusOr<std::string> ReadOrTrainTokenizer();  // the .model's bytes; rank 0 only
  absl::Status ReadTrainData();
  absl::Status ReadDevData();

  // Run's parts: one optimizer step is NextBatch, then TrainStep (ForwardBackward on this rank's
  // share, SumOverRanks with the gradients, the optimizer step); ReportProgress writes the
  // progress line and the metrics every train.log_every steps.
  using Clock = std::chrono::steady_clock;
  struct StepBatch;
  struct StepTotals;
  struct ProgressWindow;
  StepBatch NextBatch();
  absl::StatusOr<StepTotals> TrainStep(const StepBatch& batch, Clock::time_point run_start);
  void ForwardBackward(const StepBatch& batch, StepTotals* totals);
  absl::Status SumOverRanks(StepTotals* totals);
  // Returns the window's tokens per second and starts a new window.
  double ReportProgress(Clock::time_point run_start, int64_t first_step, ProgressWindow* window);

  absl::Status EvaluateAndCheckpoint(double loss);
  absl::Status SaveTo(const std::string& dir, const std::vector<std::pair<int64_t, double>>& bleu);
  std::string SerializeState() const;
  absl::Status RestoreState(const std::string& bytes);
  void AppendMetrics(const std::string& json_line);
  double LearningRate(int64_t step) const;

  TrainConfig config_;
  torch::Device device_{torch::kCPU};
  std::ostream null_log_{nullptr};  // what ranks other than 0 log to
  std::ostream* log_;
  std::atomic<bool> stop_requested_{false};
  Communicator* comm_;
  Tokenizer tokenizer_;
  FastDissModel model_{nullptr};
  std::unique_ptr<NoiseSchedule> schedule_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
  TokenizedData train_;
  std::vector<std::string> dev_source_, dev_target_;
  std::vector<Example> dev_examples_;

  int64_t step_ = 0;
  int64_t epoch_ = 0;
  int64_t batch_index_ = 0;  // next batch of epoch_
  std::vector<std::vector<int>> epoch_batches_;
  double best_bleu_ = -1;
  int64_t trained_tokens_ = 0;
};

}  // namespace fastdiss

#endif  // FASTDISS_TRAINER_TRAINER_H_
