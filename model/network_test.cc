#include "model/network.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "tests/test_models.h"

namespace fastdiss {
namespace {

using testing::TinyConfig;
using testing::TinyModel;

TEST(ModelConfigTest, ValidatesWithKeyNames) {
  ModelConfig c = TinyConfig();
  EXPECT_TRUE(c.Validate().ok());
  c.num_heads = 3;
  EXPECT_NE(c.Validate().message().find("model.num_heads"), std::string::npos);
  c = TinyConfig();
  c.dropout = 1.5;
  EXPECT_NE(c.Validate().message().find("model.dropout"), std::string::npos);
  c = TinyConfig();
  c.vocab_size = 0;
  EXPECT_EQ(c.Validate().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FastDissModelTest, ShapesAndUnitVarianceEmbedding) {
  FastDissModel model = TinyModel();
  torch::NoGradGuard no_grad;
  auto source = torch::randint(4, 40, {3, 5});
  auto source_mask = torch::ones({3, 5}, torch::kBool);
  auto encoded = model->Encode(source, source_mask);
  EXPECT_EQ(encoded.sizes(), (std::vector<int64_t>{3, 5, 32}));
  EXPECT_EQ(model->PredictLength(encoded, source_mask).sizes(), (std::vector<int64_t>{3, 17}));
  auto target = torch::randint(4, 40, {3, 7});
  auto z0 = model->Embed(target);
  EXPECT_EQ(z0.sizes(), (std::vector<int64_t>{3, 7, 16}));
  // Each clean latent has norm sqrt(D): unit variance per dimension.
  EXPECT_TRUE(torch::allclose(z0.norm(2, -1), torch::full({3, 7}, 4.0), 1e-4, 1e-4));
  auto t = torch::full({3, 7}, 100, torch::kLong);
  auto out = model->Denoise(z0, t, torch::zeros_like(z0), torch::ones({3, 7}, torch::kBool),
                            encoded, source_mask);
  EXPECT_EQ(out.sizes(), z0.sizes());
  EXPECT_EQ(model->Logits(out).sizes(), (std::vector<int64_t>{3, 7, 40}));
  // Tied rounding: a clean latent rounds to its own token.
  EXPECT_TRUE(torch::equal(model->Logits(z0).argmax(-1), target));
}

// The learned logit scale multiplies the tied logits; without it the model has no such weight,
// so checkpoints written before it existed load unchanged.
TEST(FastDissModelTest, LearnedLogitScaleMultipliesTheTiedLogits) {
  ModelConfig config = TinyConfig();
  config.learned_logit_scale = true;
  FastDissModel scaled(config);
  FastDissModel plain = TinyModel();
  EXPECT_EQ(plain->named_parameters().find("log_logit_scale"), nullptr);
  torch::NoGradGuard no_grad;
  auto z = torch::randn({2, 3, config.d_latent});
  torch::Tensor* log_scale = scaled->named_parameters().find("log_logit_scale");
  ASSERT_NE(log_scale, nullptr);
  EXPECT_EQ(log_scale->item<float>(), 0.0f);  // starts at scale 1
  const auto unscaled = scaled->Logits(z);
  log_scale->fill_(std::log(3.0));
  EXPECT_TRUE(torch::allclose(scaled->Logits(z), 3 * unscaled, 1e-5, 1e-5));
  EXPECT_TRUE(torch::equal(scaled->Logits(z).argmax(-1), unscaled.argmax(-1)));
}

TEST(FastDissModelTest, PaddingDoesNotChangeRealPositions) {
  FastDissModel model = TinyModel();
  torch::NoGradGuard no_grad;
  auto source = torch::randint(4, 40, {1, 6});
  auto target_z = torch::randn({1, 5, 16});
  auto t = torch::full({1, 5}, 150, torch::kLong);
  auto alone = model->Denoise(
      target_z, t, torch::zeros_like(target_z), torch::ones({1, 5}, torch::kBool),
      model->Encode(source, torch::ones({1, 6}, torch::kBool)), torch::ones({1, 6}, torch::kBool));
  // The same row padded to 9 target and 10 source positions, garbage in the padding.
  auto padded_source = torch::cat({source, torch::randint(4, 40, {1, 4})}, 1);
  auto source_mask =
      torch::cat({torch::ones({1, 6}, torch::kBool), torch::zeros({1, 4}, torch::kBool)}, 1);
  auto padded_z = torch::cat({target_z, torch::randn({1, 4, 16}) * 100}, 1);
  auto target_mask =
      torch::cat({torch::ones({1, 5}, torch::kBool), torch::zeros({1, 4}, torch::kBool)}, 1);
  auto padded_t = torch::full({1, 9}, 150, torch::kLong);
  auto padded = model->Denoise(padded_z, padded_t, torch::zeros_like(padded_z), target_mask,
                               model->Encode(padded_source, source_mask), source_mask);
  EXPECT_TRUE(torch::allclose(padded.narrow(1, 0, 5), alone, 1e-5, 1e-5))
      << (padded.narrow(1, 0, 5) - alone).abs().max();
}

TEST(FastDissModelTest, TimestepIsPerToken) {
  FastDissModel model = TinyModel();
  torch::NoGradGuard no_grad;
  auto source = torch::randint(4, 40, {1, 4});
  auto mask = torch::ones({1, 4}, torch::kBool);
  auto encoded = model->Encode(source, mask);
  auto z = torch::randn({1, 4, 16});
  auto t = torch::full({1, 4}, 50, torch::kLong);
  auto a = model->Denoise(z, t, torch::zeros_like(z), mask, encoded, mask);
  t[0][2] = 190;
  auto b = model->Denoise(z, t, torch::zeros_like(z), mask, encoded, mask);
  EXPECT_FALSE(torch::allclose(a[0][2], b[0][2]));  // the token whose t changed
}

TEST(FastDissModelTest, OneTimestepPerRowEqualsThatTimestepOnEveryToken) {
  FastDissModel model = TinyModel();
  c10::InferenceMode guard;
  auto source = torch::randint(4, 40, {2, 4});
  auto mask = torch::ones({2, 4}, torch::kBool);
  auto encoded = model->Encode(source, mask);
  auto z = torch::randn({2, 4, 16});
  auto per_token =
      model->Denoise(z, torch::tensor({{70, 70, 70, 70}, {9, 9, 9, 9}}), z, mask, encoded, mask);
  auto per_row = model->DenoiseWithMemory(z, torch::tensor({70, 9}), z, mask,
                                          model->CrossKeysValues(encoded), mask);
  EXPECT_TRUE(torch::allclose(per_row, per_token, 1e-5, 1e-5));
}

TEST(FastDissModelTest, InferenceUsesTheWeightsAsTheyAreNow) {
  // The fused attention projections are cached in inference; a weight change must reach them.
  FastDissModel model = TinyModel();
  auto source = torch::randint(4, 40, {1, 4});
  auto mask = torch::ones({1, 4}, torch::kBool);
  auto z = torch::randn({1, 4, 16});
  auto t = torch::full({1, 4}, 50, torch::kLong);
  auto run = [&] {
    c10::InferenceMode guard;
    return model->Denoise(z, t, z, mask, model->Encode(source, mask), mask);
  };
  const auto before = run();
  EXPECT_TRUE(torch::equal(run(), before));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters()) {
      if (p.key().find("self_attention.k.weight") != std::string::npos) p.value().mul_(3.0);
    }
  }
  const auto after = run();
  EXPECT_FALSE(torch::allclose(after, before));
  // And the cached result equals a fresh model's with the same weights.
  FastDissModel fresh = TinyModel();
  {
    torch::NoGradGuard no_grad;
    auto from = model->named_parameters();
    for (auto& p : fresh->named_parameters()) p.value().copy_(from[p.key()]);
  }
  c10::InferenceMode guard;
  EXPECT_TRUE(torch::allclose(fresh->Denoise(z, t, z, mask, fresh->Encode(source, mask), mask),
                              after, 1e-6, 1e-6));
}

// bfloat16 linear layers (a served model's precision): weights and products in bfloat16, every
// activation, the embedding and the layer norms still float32, and the estimate close to float32's,
// padded and packed alike.
TEST(FastDissModelTest, BFloat16LinearLayersStayCloseToFloat32) {
  FastDissModel full = TinyModel(), reduced = TinyModel();
  {
    torch::NoGradGuard no_grad;
    auto from = full->named_parameters();
    for (auto& p : reduced->named_parameters()) p.value().copy_(from[p.key()]);
  }
  full->eval();
  reduced->eval();
  reduced->SetLinearPrecision(LinearPrecision::kBFloat16);
  for (const auto& p : reduced->named_parameters()) {
    const bool linear =
        p.key().find("norm") == std::string::npos && p.key().find("embedding") == std::string::npos;
    EXPECT_EQ(p.value().scalar_type(), linear ? torch::kBFloat16 : torch::kFloat32) << p.key();
  }
  c10::InferenceMode guard;
  auto source = torch::randint(4, 40, {2, 4});
  auto mask = torch::ones({2, 4}, torch::kBool);
  auto z = torch::randn({2, 4, 16});
  auto t = torch::tensor({70, 9});
  const auto relative = [](const torch::Tensor& a, const torch::Tensor& b) {
    return ((a - b).norm() / b.norm()).item<double>();
  };
  auto padded = [&](FastDissModel& m) {
    return m->DenoiseWithMemory(z, t, z, mask, m->CrossKeysValues(m->Encode(source, mask)), mask);
  };
  const auto a = padded(full), b = padded(reduced);
  EXPECT_EQ(b.scalar_type(), torch::kFloat32);
  EXPECT_FALSE(torch::equal(a, b)) << "bfloat16 changed nothing: the test tests nothing";
  EXPECT_LT(relative(b, a), 0.03);
  ASSERT_TRUE(reduced->CanDenoisePacked());
  FastDissModelImpl::PackedRows rows{{0, 4, 8},
                                     torch::tensor({0, 0, 0, 0, 1, 1, 1, 1}, torch::kLong),
                                     torch::tensor({0, 1, 2, 3, 0, 1, 2, 3}, torch::kLong)};
  auto packed = [&](FastDissModel& m) {
    auto flat = z.reshape({8, 16});
    return m->DenoisePacked(flat, t, flat, rows, m->CrossKeysValues(m->Encode(source, mask)), mask);
  };
  const auto c = packed(full), d = packed(reduced);
  EXPECT_TRUE(torch::allclose(c, a.reshape({8, 16}), 1e-4, 1e-5));
  EXPECT_LT(relative(d, c), 0.03);
  EXPECT_TRUE(torch::allclose(d, b.reshape({8, 16}), 1e-2, 1e-2));
}

}  // namespace
}  // namespace fastdiss
