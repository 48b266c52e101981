#include "model/dropout.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace fastdiss {
namespace {

TEST(DropoutTest, ZeroesAboutPAndScalesTheRest) {
  torch::manual_seed(1);
  const auto x = torch::full({1000, 1000}, 2.0f);
  const auto y = Dropout(x, 0.1, /*training=*/true);
  const double dropped = (y == 0).to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(dropped, 0.1, 0.002);
  EXPECT_TRUE(torch::allclose(y.masked_select(y != 0), torch::full({1}, 2.0f / 0.9f)));
  // Mean preserved, as torch::dropout's.
  EXPECT_NEAR(y.mean().item<double>(), 2.0, 0.01);
}

TEST(DropoutTest, EvalAndZeroRateAreTheIdentity) {
  const auto x = torch::randn({7, 5});
  EXPECT_TRUE(Dropout(x, 0.3, /*training=*/false).equal(x));
  EXPECT_TRUE(Dropout(x, 0.0, /*training=*/true).equal(x));
  EXPECT_TRUE(Dropout(x, 1.0, /*training=*/true).eq(0).all().item<bool>());
}

TEST(DropoutTest, TheSeedFixesTheMaskAndCallsDiffer) {
  const auto x = torch::ones({64, 256});
  torch::manual_seed(7);
  const auto a = Dropout(x, 0.5, true), b = Dropout(x, 0.5, true);
  torch::manual_seed(7);
  const auto a_again = Dropout(x, 0.5, true);
  EXPECT_TRUE(a.equal(a_again));
  // Two calls draw two seeds: their masks agree on about half the elements, not all.
  const double same = (a == b).to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(same, 0.45);
  EXPECT_LT(same, 0.55);
}

TEST(DropoutTest, GradientFlowsThroughTheKeptElements) {
  torch::manual_seed(3);
  auto x = torch::randn({32, 16}, torch::requires_grad());
  auto y = Dropout(x, 0.25, true);
  y.sum().backward();
  const auto kept = y.detach() != 0;
  EXPECT_TRUE(torch::allclose(x.grad().masked_select(kept), torch::full({1}, 1.0f / 0.75f)));
  EXPECT_TRUE(x.grad().masked_select(kept.logical_not()).eq(0).all().item<bool>());
}

TEST(DropoutTest, SameMaskForAnyThreadCount) {
  const auto x = torch::ones({300, 1000});
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  torch::manual_seed(11);
  const auto one = Dropout(x, 0.2, true);
  torch::set_num_threads(2);
  torch::manual_seed(11);
  const auto two = Dropout(x, 0.2, true);
  torch::set_num_threads(threads);
  EXPECT_TRUE(one.equal(two));
}

TEST(DropoutTest, RejectsABadRate) {
  EXPECT_THROW(Dropout(torch::ones({2}), 1.5, true), c10::Error);
}

}  // namespace
}  // namespace fastdiss
