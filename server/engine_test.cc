#include "server/engine.h"

#include <gtest/gtest.h>

#include <map>

#include "absl/synchronization/notification.h"
#include "tests/test_models.h"

namespace fastdiss {
namespace {

// Collects one request's answer; Wait() blocks until on_done ran.
struct Reply {
  absl::Notification done;
  absl::StatusOr<GenerateOutcome> outcome = absl::UnknownError("not answered");
  int steps_seen = 0;

  std::unique_ptr<GenerateTask> Task(std::vector<int> source, int steps, uint64_t seed) {
    auto task = std::make_unique<GenerateTask>();
    task->source_ids = std::move(source);
    task->options.steps = steps;
    task->options.seed = seed;
    task->on_done = [this](absl::StatusOr<GenerateOutcome> o) {
      outcome = std::move(o);
      done.Notify();
    };
    return task;
  }
  absl::StatusCode Code() {
    done.WaitForNotification();
    return outcome.status().code();
  }
};

class EngineTest : public ::testing::Test {
 protected:
  EngineTest() : model_(testing::TinyModel()) {}

  std::unique_ptr<Engine> Make(EngineOptions options, Engine::Hooks hooks = {}) {
    auto engine = Engine::Create(
        options, Sampler(model_, testing::TinySchedule(model_->config()), torch::kCPU),
        std::move(hooks));
    EXPECT_TRUE(engine.ok()) << engine.status();
    return std::move(engine).value();
  }

  std::vector<int> Reference(const std::vector<int>& source, int steps, uint64_t seed) {
    Sampler sampler(model_, testing::TinySchedule(model_->config()), torch::kCPU);
    DecodeOptions options;
    options.steps = steps;
    options.seed = seed;
    auto state = sampler.NewState(source, options);
    EXPECT_TRUE(sampler.Start({state->get()}).ok());
    while (!(*state)->finished()) EXPECT_TRUE(sampler.Step({state->get()}).ok());
    return sampler.Result(**state)->tokens;
  }

  FastDissModel model_;
};

std::vector<int> Source(int i) { return std::vector<int>(3 + i % 9, 4 + i % 30); }

TEST_F(EngineTest, ManyConcurrentMixedStepRequestsMatchDecodingAloneUnderEveryPolicy) {
  const std::vector<int> steps = {1, 2, 5, 10, 20};
  std::map<int, std::vector<int>> expected;
  for (int i = 0; i < 15; ++i) expected[i] = Reference(Source(i), steps[i % 5], 100 + i);
  for (BatchPolicy policy : {BatchPolicy::kStep, BatchPolicy::kRequest, BatchPolicy::kNone}) {
    EngineOptions options;
    options.policy = policy;
    options.max_rows_per_batch = 6;
    int max_rows_seen = 0, max_requests_seen = 0;
    int admitted = 0, admitted_rows = 0, max_admitted_together = 0;
    Engine::Hooks hooks;
    hooks.on_step = [&](const StepStats& s) {  // runs on the engine thread only
      max_rows_seen = std::max(max_rows_seen, s.rows);
      max_requests_seen = std::max(max_requests_seen, s.requests);
    };
    hooks.on_admit = [&](const StepStats& s) {  // so does this
      admitted += s.requests;
      admitted_rows += s.rows;
      max_admitted_together = std::max(max_admitted_together, s.requests);
      EXPECT_GE(s.duration, absl::ZeroDuration());
    };
    auto engine = Make(options, hooks);
    std::vector<std::unique_ptr<Reply>> replies;
    for (int i = 0; i < 15; ++i) {
      replies.push_back(std::make_unique<Reply>());
      auto task = replies.back()->Task(Source(i), steps[i % 5], 100 + i);
      ASSERT_TRUE(engine->Schedule(&task).ok());
    }
    for (int i = 0; i < 15; ++i) {
      ASSERT_EQ(replies[i]->Code(), absl::StatusCode::kOk) << replies[i]->outcome.status();
      const GenerateOutcome& o = *replies[i]->outcome;
      EXPECT_EQ(o.result.steps, steps[i % 5]);
      EXPECT_EQ(o.result.tokens, expected[i]) << BatchPolicyName(policy) << " request " << i;
      EXPECT_GE(o.total_time, o.compute_time);
    }
    EXPECT_TRUE(engine->WaitIdle(absl::Seconds(10)));
    EXPECT_LE(max_rows_seen, 6);
    EXPECT_EQ(admitted, 15);  // every request admitted once, one row each
    EXPECT_EQ(admitted_rows, 15);
    EXPECT_LE(max_admitted_together, 6);
    if (policy == BatchPolicy::kNone) EXPECT_EQ(max_admitted_together, 1);
    if (policy == BatchPolicy::kNone) EXPECT_EQ(max_requests_seen, 1);
    if (policy != BatchPolicy::kNone) EXPECT_GT(max_requests_seen, 1);
  }
}

// Holds the engine thread inside a step until released, so tests can arrange the queue.
struct Gate {
  absl::Notification entered, release;
  void operator()(const DecodeResult&) {
    if (!entered.HasBeenNotified()) {
      entered.Notify();
      release.WaitForNotification();
    }
  }
};

TEST_F(EngineTest, StepPolicyLetsNewRequestsJoinARunningBatchButRequestPolicyDoesNot) {
  for (BatchPolicy policy : {BatchPolicy::kStep, BatchPolicy::kRequest}) {
    EngineOptions options;
    options.policy = policy;
    std::vector<int> requests_per_step;
    Engine::Hooks hooks;
    hooks.on_step = [&](const StepStats& s) { requests_per_step.push_back(s.requests); };
    auto engine = Make(options, hooks);
    Gate gate;
    Reply long_reply, short_reply;
    auto long_task = long_reply.Task(Source(1), 30, 1);
    long_task->on_step = [&gate](const DecodeResult& r) { gate(r); };
    ASSERT_TRUE(engine->Schedule(&long_task).ok());
    gate.entered.WaitForNotification();  // the long request is running its first step
    auto short_task = short_reply.Task(Source(2), 2, 2);
    ASSERT_TRUE(engine->Schedule(&short_task).ok());
    gate.release.Notify();
    ASSERT_EQ(short_reply.Code(), absl::StatusCode::kOk);
    ASSERT_EQ(long_reply.Code(), absl::StatusCode::kOk);
    EXPECT_TRUE(engine->WaitIdle(absl::Seconds(10)));
    const int shared =
        static_cast<int>(std::count(requests_per_step.begin(), requests_per_step.end(), 2));
    if (policy == BatchPolicy::kStep) {
      EXPECT_EQ(shared, 2);  // the short request's 2 steps ran beside the long one
      EXPECT_LT(short_reply.outcome->total_time, long_reply.outcome->total_time);
    } else {
      EXPECT_EQ(shared, 0);  // it waited for the batch to finish
    }
  }
}

TEST_F(EngineTest, FullQueueCancellationAndDrain) {
  EngineOptions options;
  options.max_queued_requests = 2;
  auto engine = Make(options);
  Gate gate;
  Reply running, waiting_a, waiting_b, rejected, cancelled_running;
  auto first = running.Task(Source(1), 5, 1);
  first->on_step = [&gate](const DecodeResult& r) { gate(r); };
  uint64_t running_id = 0;
  ASSERT_TRUE(engine->Schedule(&first, &running_id).ok());
  gate.entered.WaitForNotification();
  uint64_t waiting_id = 0;
  auto a = waiting_a.Task(Source(2), 5, 2);
  ASSERT_TRUE(engine->Schedule(&a, &waiting_id).ok());
  auto b = waiting_b.Task(Source(3), 5, 3);
  ASSERT_TRUE(engine->Schedule(&b).ok());
  auto c = rejected.Task(Source(4), 5, 4);
  absl::Status full = engine->Schedule(&c);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_NE(c, nullptr);  // ownership stays with the caller on error
  EXPECT_EQ(engine->waiting(), 2);
  engine->Cancel(running_id);
  engine->Cancel(waiting_id);  // the last pending cancel (a lost-cancel bug hid here once)
  gate.release.Notify();
  EXPECT_EQ(waiting_a.Code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(running.Code(), absl::StatusCode::kCancelled);
  engine->Drain();
  auto d = rejected.Task(Source(5), 5, 5);
  EXPECT_EQ(engine->Schedule(&d).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(waiting_b.Code(), absl::StatusCode::kOk);  // what was taken still finishes
  EXPECT_TRUE(engine->WaitIdle(absl::Seconds(10)));
}

TEST_F(EngineTest, DeadlinesAnswerWaitingAtOnceAndRunningAtTheNextStep) {
  absl::Mutex clock_mu;
  absl::Time now = absl::UnixEpoch() + absl::Hours(1);
  Engine::Hooks hooks;
  hooks.now = [&] {
    absl::MutexLock lock(&clock_mu);
    return now;
  };
  auto engine = Make(EngineOptions{}, hooks);
  Gate gate;
  Reply running, waiting;
  auto first = running.Task(Source(1), 20, 1);
  first->deadline = now + absl::Seconds(5);
  first->on_step = [&gate](const DecodeResult& r) { gate(r); };
  ASSERT_TRUE(engine->Schedule(&first).ok());
  gate.entered.WaitForNotification();
  auto second = waiting.Task(Source(2), 3, 2);
  second->deadline = now + absl::Seconds(1);
  ASSERT_TRUE(engine->Schedule(&second).ok());
  {
    absl::MutexLock lock(&clock_mu);
    now += absl::Seconds(10);
  }
  gate.release.Notify();
  EXPECT_EQ(waiting.Code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(running.Code(), absl::StatusCode::kDeadlineExceeded);
}

// Runs a few requests so the engine has measured its step time.
void WarmUp(Engine& engine) {
  for (int i = 0; i < 2; ++i) {
    Reply reply;
    auto task = reply.Task(Source(i), 3, i);
    ASSERT_TRUE(engine.Schedule(&task).ok());
    ASSERT_EQ(reply.Code(), absl::StatusCode::kOk);
  }
}

TEST_F(EngineTest, ARequestThatCannotMeetItsDeadlineIsRefusedAtOnceWhenDeadlineAware) {
  for (bool aware : {true, false}) {
    EngineOptions options;
    options.deadline_aware = aware;
    int late_steps = -1;
    Engine::Hooks hooks;
    hooks.on_late = [&](int steps) { late_steps = steps; };  // engine thread; read after Code()
    auto engine = Make(options, hooks);
    WarmUp(*engine);
    Reply reply;
    auto task = reply.Task(Source(1), 200, 1);  // 200 steps cannot finish within 1 us
    task->deadline = absl::Now() + absl::Microseconds(1);
    absl::Status scheduled = engine->Schedule(&task);
    if (aware) {
      EXPECT_EQ(scheduled.code(), absl::StatusCode::kDeadlineExceeded) << scheduled;
      EXPECT_NE(scheduled.message().find("predicted to finish"), std::string::npos) << scheduled;
      EXPECT_NE(task, nullptr);  // refused: the caller keeps it
    } else {
      ASSERT_TRUE(scheduled.ok()) << scheduled;
      EXPECT_EQ(reply.Code(), absl::StatusCode::kDeadlineExceeded);
    }
    EXPECT_TRUE(engine->WaitIdle(absl::Seconds(10)));
  }
}

TEST_F(EngineTest, ARunningRequestThatCanNoLongerFinishInTimeStopsAtOnceWhenDeadlineAware) {
  for (bool aware : {true, false}) {
    // A clock that moves 10 ms at every reading: each forward measures 10 ms, and the engine's
    // step time is unknown until its third forward, so the request is admitted.
    absl::Mutex clock_mu;
    absl::Time now = absl::UnixEpoch() + absl::Hours(1);
    Engine::Hooks hooks;
    hooks.now = [&] {
      absl::MutexLock lock(&clock_mu);
      return now += absl::Milliseconds(10);
    };
    int late_steps = -1;
    hooks.on_late = [&](int steps) { late_steps = steps; };
    EngineOptions options;
    options.deadline_aware = aware;
    auto engine = Make(options, hooks);
    Reply reply;
    auto task = reply.Task(Source(1), 100, 1);
    task->deadline = hooks.now() + absl::Milliseconds(500);  // 100 steps need about 1 s
    ASSERT_TRUE(engine->Schedule(&task).ok());
    ASSERT_EQ(reply.Code(), absl::StatusCode::kDeadlineExceeded);
    EXPECT_TRUE(engine->WaitIdle(absl::Seconds(10)));
    if (aware) {
      EXPECT_NE(reply.outcome.status().message().find("could no longer finish"), std::string::npos)
          << reply.outcome.status();
      EXPECT_GE(late_steps, 3);  // stopped once the step time was known
      EXPECT_LE(late_steps, 4);
    } else {
      EXPECT_GE(late_steps, 10);  // ran until the deadline itself passed
    }
  }
}

TEST_F(EngineTest, AStepRangeRunsTheMostStepsTheLatencyTargetAllows) {
  for (double target_seconds : {1e-6, 3600.0}) {
    EngineOptions options;
    options.adaptive_latency_target = absl::Seconds(target_seconds);
    auto engine = Make(options);
    WarmUp(*engine);
    Reply reply;
    auto task = reply.Task(Source(3), 40, 7);
    task->min_steps = 4;
    GenerateTask* scheduled = task.get();
    ASSERT_TRUE(engine->Schedule(&task).ok());
    const int planned = scheduled->planned_steps;  // set before Schedule returns
    ASSERT_EQ(reply.Code(), absl::StatusCode::kOk);
    EXPECT_EQ(planned, target_seconds < 1 ? 4 : 40);
    EXPECT_EQ(reply.outcome->result.steps, planned);
    EXPECT_EQ(reply.outcome->result.tokens, Reference(Source(3), planned, 7));
  }
}

TEST_F(EngineTest, ShortestFirstAdmitsFewerStepsAheadOfMoreWhenTheBatchIsFull) {
  for (AdmissionOrder order : {AdmissionOrder::kFifo, AdmissionOrder::kShortestFirst}) {
    EngineOptions options;
    options.max_rows_per_batch = 1;
    options.admission_order = order;
    auto engine = Make(options);
    Gate gate;
    Reply blocker, many, few;
    absl::Mutex order_mu;
    std::vector<int> finished;  // steps of the requests in the order they finished
    auto record = [&](Reply* reply, int steps) {
      return [&, reply, steps](absl::StatusOr<GenerateOutcome> o) {
        {
          absl::MutexLock lock(&order_mu);
          finished.push_back(steps);
        }
        reply->outcome = std::move(o);
        reply->done.Notify();
      };
    };
    auto first = blocker.Task(Source(1), 3, 1);
    first->on_step = [&gate](const DecodeResult& r) { gate(r); };
    ASSERT_TRUE(engine->Schedule(&first).ok());
    gate.entered.WaitForNotification();
    auto a = many.Task(Source(2), 12, 2);
    a->on_done = record(&many, 12);
    ASSERT_TRUE(engine->Schedule(&a).ok());
    auto b = few.Task(Source(3), 2, 3);
    b->on_done = record(&few, 2);
    ASSERT_TRUE(engine->Schedule(&b).ok());
    gate.release.Notify();
    ASSERT_EQ(many.Code(), absl::StatusCode::kOk);
    ASSERT_EQ(few.Code(), absl::StatusCode::kOk);
    absl::MutexLock lock(&order_mu);
    EXPECT_EQ(finished,
              (order == AdmissionOrder::kFifo ? std::vector<int>{12, 2} : std::vector<int>{2, 12}))
        << AdmissionOrderName(order);
  }
}

TEST_F(EngineTest, BadRequestsAreRejectedWithTheReason) {
  EngineOptions options;
  options.max_steps = 50;
  options.max_rows_per_batch = 8;
  auto engine = Make(options);
  Reply reply;
  auto zero_steps = reply.Task(Source(1), 0, 1);
  EXPECT_EQ(engine->Schedule(&zero_steps).code(), absl::StatusCode::kInvalidArgument);
  auto too_many = reply.Task(Source(1), 51, 1);
  absl::Status status = engine->Schedule(&too_many);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("50"), std::string::npos) << status;
  auto empty = reply.Task({}, 5, 1);
  EXPECT_EQ(engine->Schedule(&empty).code(), absl::StatusCode::kInvalidArgument);
  auto beams = reply.Task(Source(1), 5, 1);
  beams->options.length_beam = 3;
  beams->options.noise_beam = 3;
  EXPECT_EQ(engine->Schedule(&beams).code(), absl::StatusCode::kInvalidArgument);
  std::unique_ptr<GenerateTask> none;
  EXPECT_EQ(engine->Schedule(&none).code(), absl::StatusCode::kInvalidArgument);
  auto no_callback = reply.Task(Source(1), 5, 1);
  no_callback->on_done = nullptr;
  EXPECT_EQ(engine->Schedule(&no_callback).code(), absl::StatusCode::kInvalidArgument);
  auto bad_range = reply.Task(Source(1), 5, 1);
  bad_range->min_steps = 6;
  EXPECT_EQ(engine->Schedule(&bad_range).code(), absl::StatusCode::kInvalidArgument);
  auto long_source = reply.Task(std::vector<int>(100, 5), 5, 1);
  EXPECT_EQ(engine->Schedule(&long_source).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(Engine::Create({.max_rows_per_batch = 0},
                              Sampler(model_, testing::TinySchedule(model_->config()), torch::kCPU))
                   .ok());
}

}  // namespace
}  // namespace fastdiss
