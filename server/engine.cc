#include "server/engine.h"

#include <algorithm>
#include <string>
#include <utility>

namespace fastdiss {
namespace {

// The finish-time calibration tracks this quantile of actual over predicted time: predictions
// then hold for 95% of requests, which is what a latency target or a deadline asks of them.
constexpr double kCalibrationQuantile = 0.95;
// How far one answer moves the calibration (multiplicatively).
constexpr double kCalibrationRate = 0.05;

}  // namespace

struct Engine::Entry {
  uint64_t id = 0;
  std::unique_ptr<GenerateTask> task;
  std::unique_ptr<DecodeState> state;
  int rows = 0;
  int64_t tokens = 0;  // an estimate until started, then the real target tokens of its rows
  absl::Time enqueued;
  absl::Time admitted;
  absl::Duration
      uncalibrated;  // at arrival, predicted time to finish before calibration; zero: none
};

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const EngineOptions& options,
                                                       Sampler sampler, Hooks hooks) {
  if (absl::Status valid = ValidateEngineOptions(options); !valid.ok()) return valid;
  const int T = sampler.schedule().num_timesteps();
  if (options.max_steps < 1 || options.max_steps > T) {
    return absl::InvalidArgumentError("max_steps must be in [1, " + std::to_string(T) + "], got " +
                                      std::to_string(options.max_steps));
  }
  return std::unique_ptr<Engine>(new Engine(options, std::move(sampler), std::move(hooks)));
}

Engine::Engine(const EngineOptions& options, Sampler sampler, Hooks hooks)
    : options_(options), sampler_(std::move(sampler)), hooks_(std::move(hooks)) {
  thread_ = std::thread([this] { Loop(); });
}

Engine::~Engine() {
  {
    absl::MutexLock lock(&mu_);
    draining_ = true;
    stopping_ = true;
  }
  thread_.join();
}

absl::Status Engine::Schedule(std::unique_ptr<GenerateTask>* task, uint64_t* id) {
  if (task == nullptr || *task == nullptr || !(*task)->on_done) {
    return absl::InvalidArgumentError("Schedule needs a task with an on_done callback");
  }
  GenerateTask& t = **task;
  // The service validated the request (CheckRequest in generator_service.cc): a task outside
  // these bounds is the caller's bug, not bad input, and gets no message of its own per field.
  const int64_t rows = static_cast<int64_t>(t.options.length_beam) * t.options.noise_beam;
  if (t.options.steps < 1 || t.options.steps > options_.max_steps || t.min_steps < 0 ||
      t.min_steps > t.options.steps || rows < 1 || rows > options_.max_rows_per_batch) {
    return absl::InvalidArgumentError(
        "Engine::Schedule: a task outside the engine's limits: steps " +
        std::to_string(t.options.steps) + " (1.." + std::to_string(options_.max_steps) +
        "), min_steps " + std::to_string(t.min_steps) + " (0..steps), rows " +
        std::to_string(rows) + " (1.." + std::to_string(options_.max_rows_per_batch) + ")");
  }
  const int length =
      t.options.target_length > 0 ? t.options.target_length : static_cast<int>(t.source_ids.size());
  const int64_t tokens = rows * length;
  const absl::Time arrival = Now();
  absl::StatusOr<Plan> plan;
  {
    absl::MutexLock lock(&mu_);
    plan = PlanSteps(t, static_cast<int>(rows), tokens, arrival);
  }
  if (!plan.ok()) return plan.status();
  DecodeOptions options = t.options;
  options.steps = plan->steps;
  // NewState only reads the immutable config and schedule, so it is safe off the engine thread.
  auto state = sampler_.NewState(t.source_ids, options);
  if (!state.ok()) return state.status();
  auto entry = std::make_unique<Entry>();
  entry->rows = static_cast<int>(rows);
  entry->tokens = tokens;
  entry->state = std::move(state).value();
  entry->enqueued = arrival;
  entry->uncalibrated = plan->uncalibrated;
  absl::MutexLock lock(&mu_);
  if (draining_) return absl::UnavailableError("the server is shutting down");
  if (static_cast<int>(waiting_.size()) >= options_.max_queued_requests) {
    return absl::ResourceExhaustedError("the queue is full (" +
                                        std::to_string(options_.max_queued_requests) +
                                        " requests waiting)");
  }
  entry->id = next_id_++;
  t.planned_steps = plan->steps;
  entry->task = std::move(*task);
  if (id != nullptr) *id = entry->id;
  waiting_.push_back(std::move(entry));
  return absl::OkStatus();
}

void Engine::Calibrate(double ratio) {
  // A stochastic quantile estimate: up by q when the request took longer than the calibration
  // says, down by 1 - q when it took less; it settles where a share 1 - q takes longer.
  absl::MutexLock lock(&mu_);
  calibration_ *= ratio > calibration_ ? 1 + kCalibrationRate * kCalibrationQuantile
                                       : 1 - kCalibrationRate * (1 - kCalibrationQuantile);
  calibration_ = std::clamp(calibration_, 0.25, 20.0);
}

absl::StatusOr<Engine::Plan> Engine::PlanSteps(const GenerateTask& task, int rows, int64_t tokens,
                                               absl::Time now) {
  const int most = task.options.steps;
  const bool adaptive = task.min_steps > 0 && task.min_steps < most;
  if (!step_time_.ready() || (!adaptive && !options_.deadline_aware))
    return Plan{most, absl::ZeroDuration()};
  // The time from now until this request would finish at K steps, behind the work the engine has.
  std::vector<PlannedWork> waiting;
  waiting.reserve(waiting_.size());
  for (const auto& e : waiting_) waiting.push_back({e->rows, e->tokens, e->state->options().steps});
  const AdmissionLimits limits{options_.max_rows_per_batch, options_.max_tokens_per_batch,
                               options_.policy};
  auto predict = [&](int k) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return PredictFinish(active_work_, waiting, {rows, tokens, k}, limits, options_.admission_order,
                         step_time_);
  };
  int steps = most;
  absl::Duration uncalibrated;  // predict(lo) whenever set: the search's last accepted K
  if (adaptive) {
    // The finish time grows with K, so a binary search finds the most steps within the budget.
    const absl::Duration budget = std::min(options_.adaptive_latency_target, task.deadline - now);
    int lo = task.min_steps, hi = most;
    while (lo < hi) {
      const int mid = lo + (hi - lo + 1) / 2;
      const absl::Duration at_mid = predict(mid);
      if (calibration_ * at_mid <= budget) {
        lo = mid;
        uncalibrated = at_mid;
      } else {
        hi = mid - 1;
      }
    }
    steps = lo;
  }
  if (uncalibrated == absl::ZeroDuration())
    uncalibrated = predict(steps);  // K not searched, or min_steps
  const absl::Duration finish = calibration_ * uncalibrated;
  if (options_.deadline_aware) {
    if (now + finish > task.deadline) {
      return absl::DeadlineExceededError(
          "refused at once: predicted to finish in " +
          absl::FormatDuration(absl::Ceil(finish, absl::Milliseconds(1))) + " (" +
          std::to_string(steps) + " steps behind " + std::to_string(waiting_.size()) +
          " waiting and " + std::to_string(active_work_.size()) +
          " running requests), after its deadline in " +
          absl::FormatDuration(absl::Ceil(task.deadline - now, absl::Milliseconds(1))));
    }
  }
  return Plan{steps, uncalibrated};
}

void Engine::Cancel(uint64_t id) {
  absl::MutexLock lock(&mu_);
  cancelled_.push_back(id);
}

void Engine::Drain() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
}

bool Engine::WaitIdle(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return waiting_.empty() && running_ == 0; };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

int Engine::waiting() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(waiting_.size());
}

int Engine::running() const {
  absl::MutexLock lock(&mu_);
  return running_;
}

bool Engine::ShouldWake() const { return stopping_ || !waiting_.empty() || !cancelled_.empty(); }

void Engine::TakeWaiting(Entries* admitted, Rejected* rejected) {
  const absl::Time now = Now();
  // Cancelled or expired waiting requests are answered at once, whatever the policy; so are
  // those that could no longer finish in time even if they started now.
  const bool predict = options_.deadline_aware && step_time_.ready();
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    Entry& e = **it;
    auto cancelled = std::find(cancelled_.begin(), cancelled_.end(), e.id);
    const bool was_cancelled = cancelled != cancelled_.end();
    if (was_cancelled) cancelled_.erase(cancelled);
    absl::Status reason;
    if (was_cancelled) {
      reason = absl::CancelledError("the request was cancelled");
    } else if (e.task->deadline <= now) {
      reason = absl::DeadlineExceededError("the deadline passed while the request waited");
    } else if (predict &&
               now + e.state->options().steps * step_time_.Predict(active_tokens_ + e.tokens) >
                   e.task->deadline) {
      reason = absl::DeadlineExceededError("stopped while waiting: its " +
                                           std::to_string(e.state->options().steps) +
                                           " steps could no longer finish before its deadline");
    }
    if (!reason.ok()) {
      rejected->emplace_back(std::move(*it), std::move(reason));
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  if (options_.admission_order == AdmissionOrder::kShortestFirst) {
    std::stable_sort(waiting_.begin(), waiting_.end(), [](const auto& a, const auto& b) {
      return a->state->options().steps < b->state->options().steps;
    });
  }
  if (options_.policy != BatchPolicy::kStep && running_ > 0) return;  // no one joins a batch
  int rows = active_rows_;
  int64_t tokens = active_tokens_;
  while (!waiting_.empty()) {
    Entry& next = *waiting_.front();
    const bool first = running_ == 0 && admitted->empty();
    if (!first && (rows + next.rows > options_.max_rows_per_batch ||
                   tokens + next.tokens > options_.max_tokens_per_batch)) {
      break;  // nobody overtakes the head of the admission order (FIFO: the oldest)
    }
    rows += next.rows;
    tokens += next.tokens;
    next.admitted = now;
    admitted->push_back(std::move(waiting_.front()));
    waiting_.pop_front();
    if (options_.policy == BatchPolicy::kNone) break;
  }
}

void Engine::Loop() {
  Entries active;
  for (;;) {
    Intake intake;
    if (!TakeIntake(active.empty(), &intake)) return;
    for (auto& [entry, status] : intake.rejected) entry->task->on_done(std::move(status));
    Entries answered;  // leave the batch in this iteration
    StartAdmitted(std::move(intake.admitted), &active, &answered);
    StopCancelledAndLate(intake.cancelled, &active, &answered);
    StepActive(&active, &answered);
    Publish(active, static_cast<int>(intake.rejected.size() + answered.size()));
  }
}

bool Engine::TakeIntake(bool idle, Intake* intake) {
  absl::MutexLock lock(&mu_);
  if (idle) {
    mu_.Await(absl::Condition(this, &Engine::ShouldWake));
    if (stopping_ && waiting_.empty()) return false;
    if (options_.max_queue_delay > absl::ZeroDuration() && !waiting_.empty()) {
      // Give an idle batch a moment to fill before paying for a forward. The wait is real time
      // (the lock's clock), measured from the oldest arrival.
      const absl::Duration waited = Now() - waiting_.front()->enqueued;
      mu_.AwaitWithTimeout(absl::Condition(this, &Engine::BatchIsFull),
                           options_.max_queue_delay - waited);
    }
  }
  TakeWaiting(&intake->admitted, &intake->rejected);
  // Predictions made while this iteration runs count the admitted as running already.
  for (const auto& entry : intake->admitted) {
    active_work_.push_back({entry->rows, entry->tokens, entry->state->options().steps});
  }
  intake->cancelled.swap(cancelled_);
  // Rejected entries count as running until answered, so WaitIdle never returns early.
  running_ += static_cast<int>(intake->admitted.size() + intake->rejected.size());
  return true;
}

bool Engine::BatchIsFull() const {
  int rows = 0;
  int64_t tokens = 0;
  for (const auto& e : waiting_) {
    rows += e->rows;
    tokens += e->tokens;
  }
  return stopping_ || !cancelled_.empty() || rows >= options_.max_rows_per_batch ||
         tokens >= options_.max_tokens_per_batch;
}

void Engine::StartAdmitted(Entries admitted, Entries* active, Entries* answered) {
  if (admitted.empty()) return;
  std::vector<DecodeState*> states;
  for (auto& entry : admitted) states.push_back(entry->state.get());
  const absl::Time start = Now();
  const absl::Status started = sampler_.Start(states);
  StepStats stats;
  stats.duration = Now() - start;
  for (auto& entry : admitted) {
    if (!started.ok()) {
      entry->task->on_done(started);
      answered->push_back(std::move(entry));
      continue;
    }
    entry->rows = entry->state->rows();  // fewer when the length beam meets the length limit
    entry->tokens = entry->state->target_tokens();
    ++stats.requests;
    stats.rows += entry->rows;
    stats.tokens += entry->tokens;
    active->push_back(std::move(entry));
  }
  if (started.ok() && hooks_.on_admit) hooks_.on_admit(stats);
}

void Engine::StopCancelledAndLate(const std::vector<uint64_t>& cancelled, Entries* active,
                                  Entries* answered) {
  // Requests cancelled or out of time (the just admitted too) leave before the next step; so do
  // those whose remaining steps would end past their deadline.
  const absl::Time now = Now();
  absl::Duration step_time;
  if (options_.deadline_aware) {
    int64_t tokens = 0;
    for (const auto& entry : *active) tokens += entry->tokens;
    absl::MutexLock lock(&mu_);
    step_time = step_time_.Predict(tokens);  // zero until known
  }
  for (auto& entry : *active) {
    const bool is_cancelled =
        std::find(cancelled.begin(), cancelled.end(), entry->id) != cancelled.end();
    const DecodeState& state = *entry->state;
    const int remaining = state.options().steps - state.steps_done();
    if (is_cancelled) {
      entry->task->on_done(absl::CancelledError("the request was cancelled"));
    } else if (entry->task->deadline <= now) {
      if (hooks_.on_late) hooks_.on_late(state.steps_done());
      entry->task->on_done(
          absl::DeadlineExceededError("the deadline passed while the request ran"));
    } else if (now + remaining * step_time > entry->task->deadline) {
      // These are the requests the plan misjudged most: the calibration learns from them too.
      if (entry->uncalibrated > absl::ZeroDuration()) {
        Calibrate(
            absl::FDivDuration(now + remaining * step_time - entry->enqueued, entry->uncalibrated));
      }
      if (hooks_.on_late) hooks_.on_late(state.steps_done());
      entry->task->on_done(absl::DeadlineExceededError(
          "stopped after " + std::to_string(state.steps_done()) + " of " +
          std::to_string(state.options().steps) +
          " steps: the rest could no longer finish before its deadline"));
    } else {
      continue;
    }
    answered->push_back(std::move(entry));
  }
  active->erase(std::remove(active->begin(), active->end(), nullptr), active->end());
}

void Engine::StepActive(Entries* active, Entries* answered) {
  if (active->empty()) return;
  std::vector<DecodeState*> states;
  StepStats stats;
  for (auto& entry : *active) {
    states.push_back(entry->state.get());
    stats.rows += entry->rows;
    stats.tokens += entry->tokens;
  }
  stats.requests = static_cast<int>(active->size());
  const absl::Time step_start = Now();
  const absl::Status stepped = sampler_.Step(states);
  stats.duration = Now() - step_start;
  if (stepped.ok()) {
    absl::MutexLock lock(&mu_);
    step_time_.Observe(stats.tokens, stats.duration);
  }
  if (hooks_.on_step) hooks_.on_step(stats);
  for (auto& entry : *active) {
    if (!stepped.ok()) {
      entry->task->on_done(stepped);
    } else if (!ReportStep(entry.get())) {
      continue;
    }
    answered->push_back(std::move(entry));
  }
  active->erase(std::remove(active->begin(), active->end(), nullptr), active->end());
}

bool Engine::ReportStep(Entry* entry) {
  const bool done = entry->state->finished();
  if (!done && !entry->task->on_step) return false;
  auto result = sampler_.Result(*entry->state);
  if (!result.ok()) {
    entry->task->on_done(result.status());
    return true;
  }
  if (entry->task->on_step) entry->task->on_step(*result);
  if (!done) return false;
  const absl::Time end = Now();
  if (entry->uncalibrated > absl::ZeroDuration() &&
      entry->state->steps_done() == entry->state->options().steps) {
    // Early exit ends a request before its plan; only full runs say how good the plan was.
    Calibrate(absl::FDivDuration(end - entry->enqueued, entry->uncalibrated));
  }
  GenerateOutcome outcome{std::move(result).value(), entry->admitted - entry->enqueued,
                          end - entry->admitted, end - entry->enqueued};
  entry->task->on_done(std::move(outcome));
  return true;
}

void Engine::Publish(const Entries& active, int answered) {
  absl::MutexLock lock(&mu_);
  running_ -= answered;
  active_rows_ = 0;
  active_tokens_ = 0;
  active_work_.clear();
  for (const auto& entry : active) {
    active_rows_ += entry->rows;
    active_tokens_ += entry->tokens;
    const DecodeState& state = *entry->state;
    active_work_.push_back(
        {entry->rows, entry->tokens, state.options().steps - state.steps_done()});
  }
}

}  // namespace fastdiss
