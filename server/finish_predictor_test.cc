#include "server/finish_predictor.h"

#include <gtest/gtest.h>

namespace fastdiss {
namespace {

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

// 0.1 ms per target token and nothing fixed, fitted from three batch sizes.
StepTimeModel PerTokenModel() {
  StepTimeModel model;
  model.Observe(100, absl::Milliseconds(10));
  model.Observe(200, absl::Milliseconds(20));
  model.Observe(300, absl::Milliseconds(30));
  return model;
}

TEST(StepTimeModelTest, PredictsNothingUntilItHasSeenEnough) {
  StepTimeModel model;
  model.Observe(100, absl::Milliseconds(10));
  model.Observe(100, absl::Milliseconds(10));
  EXPECT_FALSE(model.ready());
  EXPECT_EQ(model.Predict(100), absl::ZeroDuration());
  model.Observe(100, absl::Milliseconds(10));
  EXPECT_TRUE(model.ready());
  EXPECT_NEAR(Ms(model.Predict(100)), 10.0, 1e-9);
}

TEST(StepTimeModelTest, OneBatchSizeSeenScalesUpButNeverDown) {
  StepTimeModel model;
  for (int i = 0; i < 5; ++i) model.Observe(100, absl::Milliseconds(8));
  EXPECT_NEAR(Ms(model.Predict(300)), 24.0, 1e-9);
  EXPECT_NEAR(Ms(model.Predict(10)), 8.0, 1e-9);
}

TEST(StepTimeModelTest, FitsAFixedCostPlusACostPerToken) {
  StepTimeModel model;
  for (int i = 0; i < 40; ++i) {
    const int64_t tokens = 50 + 25 * (i % 8);
    model.Observe(tokens, absl::Microseconds(2000 + 30 * tokens));  // 2 ms + 30 us per token
  }
  EXPECT_NEAR(Ms(model.Predict(0)), 2.0, 1e-6);
  EXPECT_NEAR(Ms(model.Predict(1000)), 32.0, 1e-6);
}

TEST(StepTimeModelTest, FollowsAChangeOfSpeed) {
  StepTimeModel model;
  for (int i = 0; i < 50; ++i) model.Observe(100, absl::Milliseconds(10));
  for (int i = 0; i < 100; ++i) model.Observe(100, absl::Milliseconds(30));
  EXPECT_NEAR(Ms(model.Predict(100)), 30.0, 0.2);
}

const AdmissionLimits kLimits{/*max_rows=*/8, /*max_tokens=*/1000};

TEST(PredictFinishTest, AnIdleEngineRunsTheRequestAlone) {
  const PlannedWork candidate{1, 50, 5};
  EXPECT_NEAR(Ms(PredictFinish({}, {}, candidate, kLimits, AdmissionOrder::kFifo, PerTokenModel())),
              5 * 5.0, 1e-6);
}

TEST(PredictFinishTest, NothingIsPredictedBeforeTheModelIsReady) {
  EXPECT_EQ(PredictFinish({{8, 800, 100}}, {}, {1, 50, 5}, kLimits, AdmissionOrder::kFifo,
                          StepTimeModel()),
            absl::ZeroDuration());
}

TEST(PredictFinishTest, ARequestThatFitsSharesTheBatchAtItsCost) {
  // 4 steps at 150 tokens (both), then the running one alone would go on; the candidate is done.
  const double ms = Ms(PredictFinish({{2, 100, 10}}, {}, {1, 50, 4}, kLimits, AdmissionOrder::kFifo,
                                     PerTokenModel()));
  EXPECT_NEAR(ms, 4 * 15.0, 1e-6);
}

TEST(PredictFinishTest, AFullBatchMakesTheRequestWaitForRows) {
  // 8 rows running for 3 more steps; then the candidate runs alone.
  const double ms = Ms(PredictFinish({{8, 400, 3}}, {}, {1, 50, 5}, kLimits, AdmissionOrder::kFifo,
                                     PerTokenModel()));
  EXPECT_NEAR(ms, 3 * 40.0 + 5 * 5.0, 1e-6);
}

TEST(PredictFinishTest, FifoMakesAShortRequestWaitBehindALongOneThatShortestFirstOvertakes) {
  const std::vector<PlannedWork> running = {{4, 200, 2}};
  const std::vector<PlannedWork> waiting = {{8, 400, 50}};
  const PlannedWork candidate{4, 200, 1};
  // FIFO: 2 steps at 200 tokens, 50 at 400 (the long one alone fills the rows), then 1 at 200.
  EXPECT_NEAR(Ms(PredictFinish(running, waiting, candidate, kLimits, AdmissionOrder::kFifo,
                               PerTokenModel())),
              2 * 20.0 + 50 * 40.0 + 20.0, 1e-6);
  // Shortest first: the candidate joins the running one at once (8 rows) and is done after 1 step.
  EXPECT_NEAR(Ms(PredictFinish(running, waiting, candidate, kLimits, AdmissionOrder::kShortestFirst,
                               PerTokenModel())),
              40.0, 1e-6);
}

TEST(PredictFinishTest, UnderTheRequestAndNonePoliciesNobodyJoinsARunningBatch) {
  const std::vector<PlannedWork> running = {{2, 100, 10}};
  const std::vector<PlannedWork> waiting = {{1, 50, 4}};
  const PlannedWork candidate{1, 50, 4};
  // request: 10 steps of the running batch, then the two waiting ones together (4 steps at 100).
  AdmissionLimits request = kLimits;
  request.policy = BatchPolicy::kRequest;
  EXPECT_NEAR(Ms(PredictFinish(running, waiting, candidate, request, AdmissionOrder::kFifo,
                               PerTokenModel())),
              10 * 10.0 + 4 * 10.0, 1e-6);
  // none: one at a time: 10 steps, then 4 for the one ahead, then 4 alone.
  AdmissionLimits none = kLimits;
  none.policy = BatchPolicy::kNone;
  EXPECT_NEAR(
      Ms(PredictFinish(running, waiting, candidate, none, AdmissionOrder::kFifo, PerTokenModel())),
      10 * 10.0 + 4 * 5.0 + 4 * 5.0, 1e-6);
}

TEST(PredictFinishTest, TheTokenLimitBindsLikeTheRowLimit) {
  const AdmissionLimits limits{/*max_rows=*/100, /*max_tokens=*/500};
  const double ms = Ms(
      PredictFinish({{2, 480, 2}}, {}, {1, 50, 1}, limits, AdmissionOrder::kFifo, PerTokenModel()));
  EXPECT_NEAR(ms, 2 * 48.0 + 5.0, 1e-6);
}

}  // namespace
}  // namespace fastdiss
