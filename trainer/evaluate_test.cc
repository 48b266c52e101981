#include "trainer/evaluate.h"

#include <gtest/gtest.h>

#include "tests/test_models.h"

namespace fastdiss {
namespace {

TEST(ApproximationGapTest, IsSeededFiniteAndNeedsTwoSteps) {
  FastDissModel model = testing::TinyModel();
  NoiseSchedule schedule = testing::TinySchedule(model->config());
  std::vector<Example> examples = {{{5, 6, 7}, {8, 9}}, {{10, 11}, {12, 13, 14, 15}}, {{16}, {17}}};
  auto gap = ApproximationGap(model, schedule, examples, 5, /*max_rows=*/2, /*seed=*/3);
  ASSERT_TRUE(gap.ok()) << gap.status();
  EXPECT_EQ(gap->steps, 5);
  EXPECT_GT(gap->error_inference, 0);
  EXPECT_GT(gap->error_same, 0);
  EXPECT_TRUE(std::isfinite(gap->gap()));
  auto again = ApproximationGap(model, schedule, examples, 5, 2, 3);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->error_inference, gap->error_inference);
  EXPECT_EQ(again->error_same, gap->error_same);
  auto other_seed = ApproximationGap(model, schedule, examples, 5, 2, 4);
  EXPECT_NE(other_seed->error_inference, gap->error_inference);
  EXPECT_EQ(ApproximationGap(model, schedule, examples, 1, 2, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApproximationGap(model, schedule, {}, 5, 2, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fastdiss
