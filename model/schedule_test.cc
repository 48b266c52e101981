#include "model/schedule.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace fastdiss {
namespace {

NoiseSchedule Make(int T = 2000, double F = 4.0) {
  auto schedule = NoiseSchedule::Create({T, F});
  EXPECT_TRUE(schedule.ok()) << schedule.status();
  return *schedule;
}

TEST(NoiseScheduleTest, MatchesReferenceValues) {
  // docs/method.md section 2, T = 2000.
  NoiseSchedule s = Make();
  EXPECT_NEAR(s.alpha_bar(0), 0.985359, 1e-6);
  EXPECT_NEAR(s.alpha_bar(499), 0.504950, 1e-6);
  EXPECT_NEAR(s.alpha_bar(999), 0.295780, 1e-6);
  EXPECT_NEAR(s.alpha_bar(1499), 0.135270, 1e-6);
  EXPECT_NEAR(s.alpha_bar(1998) / 2.0204e-4, 1.0, 1e-4);
  EXPECT_NEAR(s.alpha_bar(1999) / 2.0204e-7, 1.0, 1e-4);
  EXPECT_DOUBLE_EQ(s.beta(1999), 0.999);  // clipped
}

TEST(NoiseScheduleTest, RejectsBadOptions) {
  EXPECT_EQ(NoiseSchedule::Create({1, 4.0}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NoiseSchedule::Create({2000, 0.0}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(NoiseScheduleTest, RespacesIncludingOneStep) {
  NoiseSchedule s = Make();
  EXPECT_EQ(*s.Respace(1), std::vector<int>({1999}));  // K = 1 runs at T-1, not at 0
  EXPECT_EQ(*s.Respace(2), std::vector<int>({1999, 0}));
  EXPECT_EQ(*s.Respace(5), std::vector<int>({1999, 1499, 1000, 500, 0}));  // round(999.5) = 1000
  auto all = *s.Respace(2000);
  ASSERT_EQ(all.size(), 2000u);
  for (int i = 0; i < 2000; ++i) EXPECT_EQ(all[i], 1999 - i);
  EXPECT_FALSE(s.Respace(0).ok());
  EXPECT_FALSE(s.Respace(2001).ok());
}

TEST(NoiseScheduleTest, PosteriorCoefficientsMatchClosedForm) {
  NoiseSchedule s = Make();
  const int t = 1500, u = 1000;
  const double at = s.alpha_bar(t), au = s.alpha_bar(u);
  const double beta = 1 - at / au;
  StepCoefficients c = s.Step(t, u, UpdateRule::kDdpm);
  EXPECT_NEAR(c.mean_z0, std::sqrt(au) * beta / (1 - at), 1e-12);
  EXPECT_NEAR(c.mean_zt, std::sqrt(1 - beta) * (1 - au) / (1 - at), 1e-12);
  EXPECT_NEAR(c.noise_std, 4.0 * std::sqrt(beta * (1 - au) / (1 - at)), 1e-12);
  // Consecutive steps: the respaced posterior is the ordinary one-step DDPM posterior.
  StepCoefficients one = s.Step(10, 9, UpdateRule::kDdpm);
  const double b10 = s.beta(10);
  EXPECT_NEAR(one.mean_z0, std::sqrt(s.alpha_bar(9)) * b10 / (1 - s.alpha_bar(10)), 1e-9);
  // The posterior mean is consistent: with z_t exactly on the forward marginal's mean,
  // mean_z0 + mean_zt * sqrt(abar_t) = sqrt(abar_s).
  EXPECT_NEAR(c.mean_z0 + c.mean_zt * std::sqrt(at), std::sqrt(au), 1e-12);
  StepCoefficients d = s.Step(t, u, UpdateRule::kDdim);
  EXPECT_EQ(d.noise_std, 0.0);
  EXPECT_NEAR(d.mean_z0 + d.mean_zt * std::sqrt(at), std::sqrt(au), 1e-12);
}

// The respaced chain against the many-step reference: with the exact clean latent, every DDPM
// step of every respacing lands on the forward marginal q(z_s | z0) = N(sqrt(abar_s) z0,
// F^2 (1 - abar_s)), mean and variance, and a DDIM step keeps the same noise. So K steps sample
// what 2,000 steps would, and drift at large K cannot come from the coefficients.
TEST(NoiseScheduleTest, EveryRespacedStepKeepsTheForwardMarginal) {
  NoiseSchedule s = Make();
  const double F2 = 16.0;
  for (int K : {2, 3, 5, 10, 20, 50, 200, 2000}) {
    const std::vector<int> kept = *s.Respace(K);
    for (size_t i = 0; i + 1 < kept.size(); ++i) {
      const int t = kept[i], u = kept[i + 1];
      const double at = s.alpha_bar(t), au = s.alpha_bar(u);
      const StepCoefficients c = s.Step(t, u, UpdateRule::kDdpm);
      EXPECT_NEAR(c.mean_z0 + c.mean_zt * std::sqrt(at), std::sqrt(au), 1e-9) << K << " " << t;
      const double variance = c.mean_zt * c.mean_zt * F2 * (1 - at) + c.noise_std * c.noise_std;
      EXPECT_NEAR(variance / (F2 * (1 - au)), 1.0, 1e-9) << "K " << K << " t " << t;
      const StepCoefficients d = s.Step(t, u, UpdateRule::kDdim);
      EXPECT_NEAR(d.mean_zt * d.mean_zt * F2 * (1 - at) / (F2 * (1 - au)), 1.0, 1e-9);
    }
  }
}

TEST(NoiseScheduleTest, PerTokenNoisingEqualsPerSequenceWhenTimestepsAgree) {
  NoiseSchedule s = Make();
  torch::manual_seed(0);
  auto z0 = torch::randn({3, 7, 16});
  auto noise = torch::randn({3, 7, 16});
  std::vector<int64_t> seq_t = {0, 999, 1999};
  auto t = torch::tensor(seq_t).unsqueeze(1).expand({3, 7}).contiguous();
  auto per_token = s.AddNoise(z0, t, noise);
  for (int b = 0; b < 3; ++b) {
    const double a = s.alpha_bar(static_cast<int>(seq_t[b]));
    auto expected = std::sqrt(a) * z0[b] + 4.0 * std::sqrt(1 - a) * noise[b];
    EXPECT_TRUE(torch::allclose(per_token[b], expected, 1e-5, 1e-5)) << "row " << b;
  }
  // Different timesteps in one row noise each token at its own level.
  auto mixed = torch::tensor(std::vector<int64_t>{0, 1999}).view({1, 2});
  auto z =
      s.AddNoise(z0.narrow(0, 0, 1).narrow(1, 0, 2), mixed, noise.narrow(0, 0, 1).narrow(1, 0, 2));
  const double a0 = s.alpha_bar(0), a1 = s.alpha_bar(1999);
  EXPECT_TRUE(torch::allclose(
      z[0][1], std::sqrt(a1) * z0[0][1] + 4.0 * std::sqrt(1 - a1) * noise[0][1], 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(
      z[0][0], std::sqrt(a0) * z0[0][0] + 4.0 * std::sqrt(1 - a0) * noise[0][0], 1e-5, 1e-5));
}

}  // namespace
}  // namespace fastdiss
