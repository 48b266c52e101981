// Engine: serves one model with step-level dynamic batching.
//
// One thread owns the model (through a Sampler) and loops: admit waiting requests within the row
// and token limits (their encoder passes batched together), run one denoiser forward over the
// active rows of all requests, each row at its own step of its own schedule, then answer every
// request that just finished, was cancelled or ran past its deadline. New requests join at the
// next step; nobody waits for a batch to drain. The `request` policy instead runs a batch formed
// from the queue until its last request is done (classic dynamic batching), and `none` runs one
// request at a time; the same request and seed give the same tokens under all three.
//
// Thread-safety: Schedule, Cancel and Drain may be called from any thread and never block on
// model work. Callbacks run on the engine thread, outside the engine's lock; they must be quick.
// The destructor drains, stops and joins the thread.
#ifndef FASTDISS_SERVER_ENGINE_H_
#define FASTDISS_SERVER_ENGINE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "model/sampler.h"
#include "server/engine_options.h"
#include "server/finish_predictor.h"

namespace fastdiss {

struct GenerateOutcome {
  DecodeResult result;
  absl::Duration queue_time;    // enqueued -> admitted
  absl::Duration compute_time;  // admitted -> finished
  absl::Duration total_time;
};

struct GenerateTask {
  std::vector<int> source_ids;
  DecodeOptions options;
  // Load-adaptive steps: > 0 lets the engine run any K in [min_steps, options.steps], the most
  // whose predicted finish is within the engine's adaptive_latency_target and the deadline.
  int min_steps = 0;
  // Set by Schedule: the K this request runs with (options.steps unless adapted).
  int planned_steps = 0;
  absl::Time deadline = absl::InfiniteFuture();
  // Streaming: called after each step with the best candidate so far. May be empty.
  std::function<void(const DecodeResult& current)> on_step;
  // Called exactly once, with the outcome or the reason it failed.
  std::function<void(absl::StatusOr<GenerateOutcome>)> on_done;
};

class Engine {
 public:
  struct Hooks {
    std::function<void(const StepStats&)> on_step;  // after every denoiser forward; may be empty
    // After every admission (the newcomers' encoder pass, batched): how many requests, rows and
    // target tokens it started and how long it took. May be empty.
    std::function<void(const StepStats&)> on_admit;
    std::function<absl::Time()> now;  // test seam; empty = absl::Now
    // A running request was stopped at its deadline after this many steps (work that bought no
    // answer); may be empty.
    std::function<void(int steps_run)> on_late;
  };

  static absl::StatusOr<std::unique_ptr<Engine>> Create(const EngineOptions& options,
                                                        Sampler sampler, Hooks hooks = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates and enqueues the task, taking ownership only on OK. Never blocks:
  // INVALID_ARGUMENT bad request, RESOURCE_EXHAUSTED queue full, UNAVAILABLE draining,
  // DEADLINE_EXCEEDED when deadline_aware and its predicted finish is past its deadline. Chooses
  // the task's K (planned_steps) first when it gives a step range.
  // `id` (optional) receives the handle Cancel takes.
  absl::Status Schedule(std::unique_ptr<GenerateTask>* task, uint64_t* id = nullptr);

  // The task is answered CANCELLED: at once if waiting, at the next step if running.
  void Cancel(uint64_t id);

  // Stops taking new tasks; the ones already taken finish. Returns at once.
  void Drain();
  // Blocks until every task taken so far is answered, or the timeout passes; true if idle.
  bool WaitIdle(absl::Duration timeout);

  const EngineOptions& options() const { return options_; }
  int waiting() const;
  int running() const;

 private:
  struct Entry;
  Engine(const EngineOptions& options, Sampler sampler, Hooks hooks);
  absl::Time Now() const { return hooks_.now ? hooks_.now() : absl::Now(); }
  using Entries = std::vector<std::unique_ptr<Entry>>;
  using Rejected = std::vector<std::pair<std::unique_ptr<Entry>, absl::Status>>;
  // What one iteration of the loop takes from the queue.
  struct Intake {
    Entries admitted;
    Rejected rejected;
    std::vector<uint64_t> cancelled;  // ids of running entries
  };
  // The engine thread: each iteration takes the intake, answers the rejected, starts the
  // admitted, stops the cancelled and the late, runs one step over the rest and publishes the
  // batch for the admission predictions.
  void Loop();
  // Waits for work when `idle` (and lets an idle batch fill); false when the engine stops.
  bool TakeIntake(bool idle, Intake* intake) ABSL_LOCKS_EXCLUDED(mu_);
  bool BatchIsFull() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Entries that leave the batch, answered, go to `answered`.
  void StartAdmitted(Entries admitted, Entries* active, Entries* answered);
  void StopCancelledAndLate(const std::vector<uint64_t>& cancelled, Entries* active,
                            Entries* answered) ABSL_LOCKS_EXCLUDED(mu_);
  void StepActive(Entries* active, Entries* answered) ABSL_LOCKS_EXCLUDED(mu_);
  // Streams the entry's state after a step, and answers it when done; true when answered.
  bool ReportStep(Entry* entry) ABSL_LOCKS_EXCLUDED(mu_);
  // Records the batch that runs on, and that `answered` entries left it.
  void Publish(const Entries& active, int answered) ABSL_LOCKS_EXCLUDED(mu_);
  // Moves admissible waiting entries into `admitted` (policy and limits), and cancelled or
  // expired waiting ones into `rejected` with the status they are to be answered with.
  void TakeWaiting(Entries* admitted, Rejected* rejected) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool ShouldWake() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  struct Plan {
    int steps = 0;  // the K the task runs with (its range's choice, or its fixed K)
    absl::Duration
        uncalibrated;  // its predicted time to finish before calibration; zero: none made
  };
  // Moves the calibration by one request whose actual time to finish was `ratio` times its
  // uncalibrated prediction.
  void Calibrate(double ratio) ABSL_LOCKS_EXCLUDED(mu_);
  // The task's plan, or DEADLINE_EXCEEDED.
  absl::StatusOr<Plan> PlanSteps(const GenerateTask& task, int rows, int64_t tokens, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const EngineOptions options_;
  Sampler sampler_;  // only the engine thread touches it
  const Hooks hooks_;

  mutable absl::Mutex mu_;
  std::deque<std::unique_ptr<Entry>> waiting_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> cancelled_ ABSL_GUARDED_BY(mu_);  // ids of running entries to cancel
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  int active_rows_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t active_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<PlannedWork> active_work_
      ABSL_GUARDED_BY(mu_);  // the running requests, after the last step
  StepTimeModel step_time_ ABSL_GUARDED_BY(mu_);
  // The 95th percentile of actual over (uncalibrated) predicted time to finish, over recent
  // requests: the replay
  // of the queue cannot know the requests that will arrive and join the batch later, and this
  // measures how much they slow it under the present load.
  double calibration_ ABSL_GUARDED_BY(mu_) = 1.0;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::thread thread_;  // last: starts after everything above exists
};

}  // namespace fastdiss

#endif  // FASTDISS_SERVER_ENGINE_H_
