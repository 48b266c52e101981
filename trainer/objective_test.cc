#include "trainer/objective.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/test_models.h"

namespace fastdiss {
namespace {

TEST(ObjectiveTest, ScpTimestepsAreNoisierByTheDrawnStepOffset) {
  torch::manual_seed(0);
  ObjectiveConfig config;
  config.scp_steps = {2, 5, 20};
  const int T = 2000;
  auto t = torch::randint(0, T - 1, {64, 1}).expand({64, 9}).contiguous();
  auto choice = torch::randint(3, {64, 1}, torch::kLong);
  auto t_prime = ScpTimesteps(t, choice, config, T);
  for (int b = 0; b < 64; ++b) {
    const int64_t base = t[b][0].item<int64_t>(), noisier = t_prime[b][0].item<int64_t>();
    EXPECT_GT(noisier, base);
    const int64_t offset = noisier - base;
    const bool known = offset == 1000 || offset == 400 || offset == 100 || noisier == T - 1;
    EXPECT_TRUE(known) << "offset " << offset;
    EXPECT_TRUE(
        torch::equal(t_prime[b], torch::full({9}, noisier, torch::kLong)));  // per sequence K
  }
  config.scp_offset = 7;
  EXPECT_TRUE(torch::equal(ScpTimesteps(t, choice, config, T), (t + 7).clamp_max(T - 1)));
  auto top = torch::full({2, 3}, T - 1, torch::kLong);
  EXPECT_TRUE(
      torch::equal(ScpTimesteps(top, choice.narrow(0, 0, 2), config, T), top));  // never beyond T-1
}

TEST(ObjectiveTest, MansGivesMoreNoiseToBetterPredictedTokens) {
  ObjectiveConfig config;
  config.mans_d_lo = 0.1;
  config.mans_d_hi = 1.0;
  config.mans_scale = 0.5;
  const int T = 2000;
  auto z0 = torch::randn({1, 4, 8});
  auto probe = z0.clone();
  probe[0][1] += 0.5;  // d = 0.25: partly confident
  probe[0][2] += 2.0;  // d = 4: not confident
  probe[0][3] += 0.0;  // perfect, but padding
  auto t = torch::full({1, 4}, 600, torch::kLong);
  auto mask = torch::tensor({true, true, true, false}).view({1, 4});
  auto scaled = MansTimesteps(t, probe, z0, mask, config, T);
  const int64_t ceiling = 600 + static_cast<int64_t>(0.5 * (T - 1));  // 1599.5 -> within rounding
  EXPECT_NEAR(scaled[0][0].item<int64_t>(), ceiling, 1);  // perfect prediction: the most noise
  EXPECT_GT(scaled[0][1].item<int64_t>(), 600);
  EXPECT_LT(scaled[0][1].item<int64_t>(), scaled[0][0].item<int64_t>());
  EXPECT_EQ(scaled[0][2].item<int64_t>(), 600);  // poor prediction keeps t
  EXPECT_EQ(scaled[0][3].item<int64_t>(), 600);  // padding keeps t
  // Never beyond T-1.
  auto high = MansTimesteps(torch::full({1, 4}, 1900, torch::kLong), z0, z0, mask, config, T);
  EXPECT_LE(high.max().item<int64_t>(), T - 1);
}

// The proportional shift moves a confident token by at most s t: low timesteps stay low.
TEST(ObjectiveTest, ProportionalMansShiftScalesWithTheTimestep) {
  ObjectiveConfig config;
  config.mans_shift = "proportional";
  config.mans_scale = 0.5;
  const int T = 2000;
  auto z0 = torch::randn({1, 3, 8});
  auto mask = torch::ones({1, 3}, torch::kBool);
  auto t = torch::tensor({100, 600, 1800}, torch::kLong).view({1, 3});
  auto scaled = MansTimesteps(t, z0, z0, mask, config, T);  // perfect probe: the whole shift
  EXPECT_EQ(scaled[0][0].item<int64_t>(), 150);
  EXPECT_EQ(scaled[0][1].item<int64_t>(), 900);
  EXPECT_EQ(scaled[0][2].item<int64_t>(), T - 1);  // 2700 capped
}

TEST(ObjectiveTest, EveryVariantGivesAFiniteLossWithGradients) {
  FastDissModel model = testing::TinyModel();
  model->train();
  NoiseSchedule schedule = testing::TinySchedule(model->config());
  std::vector<Example> examples = {{{5, 6, 7}, {8, 9}}, {{10, 11}, {12, 13, 14, 15}}};
  Batch batch = Collate(examples, {0, 1}, 0, torch::kCPU);
  EXPECT_EQ(batch.target.sizes(), (std::vector<int64_t>{2, 4}));
  EXPECT_FALSE(batch.target_mask[0][2].item<bool>());
  for (bool scp : {false, true}) {
    for (bool mans : {false, true}) {
      ObjectiveConfig config;
      config.scp = scp;
      config.mans = mans;
      config.self_cond_prob = 1.0;
      config.scp_steps = {2, 5};
      model->zero_grad();
      LossParts loss =
          ComputeLoss(model, schedule, config, batch, at::detail::getDefaultCPUGenerator());
      ASSERT_TRUE(std::isfinite(loss.total.item<double>()));
      EXPECT_GT(loss.mse, 0);
      EXPECT_GT(loss.rounding, 0);
      EXPECT_EQ(loss.target_tokens, 6);
      // The timestep bins hold every target token once, and their errors average to the MSE.
      ASSERT_EQ(loss.timestep_tokens.numel(), kTimestepBins);
      EXPECT_DOUBLE_EQ(loss.timestep_tokens.sum().item<double>(), 6.0);
      EXPECT_NEAR(loss.timestep_squared_error.sum().item<double>() / 6.0, loss.mse, 1e-5);
      if (!mans) {  // one t per sequence: at most two bins are used
        EXPECT_LE((loss.timestep_tokens > 0).sum().item<int64_t>(), 2);
      }
      loss.total.backward();
      double grad = 0;
      for (const auto& p : model->parameters()) {
        if (p.grad().defined()) grad += p.grad().abs().sum().item<double>();
      }
      EXPECT_GT(grad, 0) << "scp " << scp << " mans " << mans;
      if (!mans) EXPECT_EQ(loss.mans_shift, 0);
    }
  }
}

// Data-parallel training relies on this: shards of a batch, each with its rows of the batch's
// noise and the batch's scale, give gradients that sum to the whole batch's.
TEST(ObjectiveTest, ShardGradientsSumToTheWholeBatchGradient) {
  FastDissModel model = testing::TinyModel();
  model->train();  // TinyConfig has no dropout, so train mode is deterministic
  NoiseSchedule schedule = testing::TinySchedule(model->config());
  std::vector<Example> examples = {
      {{5, 6, 7}, {8, 9}}, {{10, 11}, {12, 13, 14, 15}}, {{16, 17, 18, 19}, {20}}};
  auto gradients = [&]() {
    std::vector<torch::Tensor> grads;
    for (const auto& p : model->parameters())
      grads.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    return grads;
  };
  for (bool fastdiss : {false, true}) {
    ObjectiveConfig config;
    config.scp = config.mans = fastdiss;
    config.self_cond_prob = 0.5;
    config.scp_steps = {2, 5};
    config.scp_fresh_noise = true;
    const Batch whole = Collate(examples, {0, 1, 2}, 0, torch::kCPU);
    const LossNoise noise =
        LossNoise::Draw(3, 4, model->config().d_latent, config, schedule.num_timesteps(),
                        at::make_generator<at::CPUGeneratorImpl>(11));
    const LossScale scale{7, 3};
    model->zero_grad();
    LossParts all = ComputeLoss(model, schedule, config, whole, noise, scale);
    all.total.backward();
    const std::vector<torch::Tensor> expected = gradients();

    model->zero_grad();
    double total = 0;
    for (const std::vector<int>& rows : {std::vector<int>{0, 2}, std::vector<int>{1}}) {
      const Batch shard = Collate(examples, rows, 0, torch::kCPU);
      auto index = torch::tensor(std::vector<int64_t>(rows.begin(), rows.end()), torch::kLong);
      LossParts part = ComputeLoss(model, schedule, config, shard,
                                   noise.Rows(index, shard.target.size(1)), scale);
      part.total.backward();  // accumulates, as an all-reduce sum would
      total += part.total.item<double>();
    }
    EXPECT_NEAR(total, all.total.item<double>(), 1e-4);
    const std::vector<torch::Tensor> summed = gradients();
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_TRUE(torch::allclose(summed[i], expected[i], 1e-4, 1e-5))
          << "parameter " << i << " fastdiss " << fastdiss;
    }
  }
}

// The self-conditioning estimate is computed for the rows that use it only, and scattered back:
// a batch where some rows use it and some do not gives the sum of the rows computed one by one.
TEST(ObjectiveTest, SelfConditioningIsComputedForItsRowsOnly) {
  FastDissModel model = testing::TinyModel();
  model->train();  // no dropout in TinyConfig
  NoiseSchedule schedule = testing::TinySchedule(model->config());
  std::vector<Example> examples = {{{5, 6, 7}, {8, 9}},
                                   {{10, 11}, {12, 13, 14, 15}},
                                   {{16, 17, 18, 19}, {20}},
                                   {{21, 22}, {23, 24, 25}}};
  for (bool scp : {false, true}) {
    ObjectiveConfig config;
    config.scp = scp;
    config.mans = false;
    config.scp_steps = {2, 5};
    const Batch whole = Collate(examples, {0, 1, 2, 3}, 0, torch::kCPU);
    LossNoise noise =
        LossNoise::Draw(4, 4, model->config().d_latent, config, schedule.num_timesteps(),
                        at::make_generator<at::CPUGeneratorImpl>(5));
    noise.use_sc = torch::tensor({1.0f, 0.0f, 0.0f, 1.0f}).view({4, 1, 1});
    const LossScale scale{10, 4};
    const double all =
        ComputeLoss(model, schedule, config, whole, noise, scale).total.item<double>();
    double by_row = 0;
    for (int64_t row = 0; row < 4; ++row) {
      const Batch one = Collate(examples, {static_cast<int>(row)}, 0, torch::kCPU);
      by_row += ComputeLoss(model, schedule, config, one,
                            noise.Rows(torch::tensor({row}), one.target.size(1)), scale)
                    .total.item<double>();
    }
    EXPECT_NEAR(all, by_row, 1e-4) << "scp " << scp;
  }
}

}  // namespace
}  // namespace fastdiss
