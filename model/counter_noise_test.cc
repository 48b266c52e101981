#include "model/counter_noise.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace fastdiss {
namespace {

TEST(CounterNoiseTest, ARowDependsOnlyOnItsKeyNotOnItsBatchOrWidth) {
  const NoiseKey key{42, NoiseStream(3, 1)};
  auto alone = CounterNormal({key}, {5, 16}, torch::kCPU);
  auto batched =
      CounterNormal({{7, NoiseStream(0, 0)}, key, {42, NoiseStream(3, 2)}}, {9, 16}, torch::kCPU);
  EXPECT_TRUE(torch::equal(batched[1].narrow(0, 0, 5), alone[0]));
  EXPECT_FALSE(torch::equal(batched[0].narrow(0, 0, 5), alone[0]));  // another seed
  EXPECT_FALSE(torch::equal(batched[2].narrow(0, 0, 5), alone[0]));  // another row
  EXPECT_FALSE(
      torch::equal(CounterNormal({{42, NoiseStream(4, 1)}}, {5, 16}, torch::kCPU)[0], alone[0]));
}

TEST(CounterNoiseTest, IsStandardNormal) {
  std::vector<NoiseKey> keys;
  for (int r = 0; r < 64; ++r) keys.push_back({1234, NoiseStream(1, r)});
  auto x = CounterNormal(keys, {1001}, torch::kCPU);  // odd width: the last pair is cut
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{64, 1001}));
  EXPECT_TRUE(torch::isfinite(x).all().item<bool>());
  EXPECT_NEAR(x.mean().item<double>(), 0.0, 0.01);
  EXPECT_NEAR(x.std().item<double>(), 1.0, 0.01);
  EXPECT_NEAR((x > 1.96).to(torch::kFloat64).mean().item<double>(), 0.025, 0.003);
  // Neighbouring elements (the two halves of a Box-Muller pair) are uncorrelated.
  auto pairs = x.narrow(1, 0, 1000).reshape({-1, 2});
  EXPECT_NEAR((pairs.select(1, 0) * pairs.select(1, 1)).mean().item<double>(), 0.0, 0.01);
}

}  // namespace
}  // namespace fastdiss
