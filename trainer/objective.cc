#include "trainer/objective.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace fastdiss {

Batch Collate(const std::vector<Example>& examples, const std::vector<int>& indices, int pad_id,
              torch::Device device) {
  size_t max_source = 0, max_target = 0;
  for (int i : indices) {
    max_source = std::max(max_source, examples[i].source.size());
    max_target = std::max(max_target, examples[i].target.size());
  }
  const int64_t B = static_cast<int64_t>(indices.size());
  auto source = torch::full({B, static_cast<int64_t>(max_source)}, pad_id, torch::kLong);
  auto target = torch::full({B, static_cast<int64_t>(max_target)}, pad_id, torch::kLong);
  auto source_mask = torch::zeros({B, static_cast<int64_t>(max_source)}, torch::kBool);
  auto target_mask = torch::zeros({B, static_cast<int64_t>(max_target)}, torch::kBool);
  auto src = source.accessor<int64_t, 2>();
  auto tgt = target.accessor<int64_t, 2>();
  auto src_mask = source_mask.accessor<bool, 2>();
  auto tgt_mask = target_mask.accessor<bool, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const Example& e = examples[indices[b]];
    for (size_t j = 0; j < e.source.size(); ++j) src[b][j] = e.source[j], src_mask[b][j] = true;
    for (size_t j = 0; j < e.target.size(); ++j) tgt[b][j] = e.target[j], tgt_mask[b][j] = true;
  }
  return {source.to(device), source_mask.to(device), target.to(device), target_mask.to(device)};
}

torch::Tensor MansTimesteps(const torch::Tensor& t, const torch::Tensor& probe,
                            const torch::Tensor& z0, const torch::Tensor& target_mask,
                            const ObjectiveConfig& config, int num_timesteps) {
  auto distance = (probe - z0).pow(2).mean(-1);  // d_i, per dimension
  auto confidence =
      ((config.mans_d_hi - distance) / (config.mans_d_hi - config.mans_d_lo)).clamp(0.0, 1.0);
  auto t_float = t.to(torch::kFloat32);
  const auto room = config.mans_shift == "proportional"
                        ? t_float * config.mans_scale
                        : torch::full_like(t_float, config.mans_scale * (num_timesteps - 1));
  auto ceiling = (t_float + room).clamp_max(num_timesteps - 1);
  auto scaled = torch::round(t_float + confidence * (ceiling - t_float)).to(torch::kLong);
  return torch::where(target_mask, scaled, t);
}

torch::Tensor ScpTimesteps(const torch::Tensor& t, const torch::Tensor& choice,
                           const ObjectiveConfig& config, int num_timesteps) {
  torch::Tensor offset;
  if (config.scp_offset > 0) {
    offset = torch::full({t.size(0), 1}, config.scp_offset, t.options());
  } else {
    std::vector<int64_t> offsets;
    for (int64_t k : config.scp_steps) {
      offsets.push_back(static_cast<int64_t>(std::lround(static_cast<double>(num_timesteps) / k)));
    }
    auto table = torch::tensor(offsets, t.options());
    offset = table.index({choice});
  }
  return (t + offset).clamp_max(num_timesteps - 1);
}

LossNoise LossNoise::Draw(int64_t sequences, int64_t length, int64_t d_latent,
                          const ObjectiveConfig& config, int num_timesteps,
                          at::Generator generator) {
  LossNoise n;
  const auto floats = torch::TensorOptions().dtype(torch::kFloat32);
  const auto longs = torch::TensorOptions().dtype(torch::kLong);
  n.t = torch::randint(num_timesteps, {sequences, 1}, generator, longs);
  n.noise = torch::randn({sequences, length, d_latent}, generator, floats);
  n.use_sc = (torch::rand({sequences, 1, 1}, generator, floats) < config.self_cond_prob)
                 .to(torch::kFloat32);
  const int64_t choices = std::max<int64_t>(1, static_cast<int64_t>(config.scp_steps.size()));
  n.scp_choice = torch::randint(choices, {sequences, 1}, generator, longs);
  if (config.scp && config.scp_fresh_noise)
    n.noise_prime = torch::randn({sequences, length, d_latent}, generator, floats);
  return n;
}

LossNoise LossNoise::Rows(const torch::Tensor& rows, int64_t length) const {
  LossNoise n;
  n.t = t.index_select(0, rows);
  n.noise = noise.index_select(0, rows).narrow(1, 0, length).contiguous();
  n.use_sc = use_sc.index_select(0, rows);
  n.scp_choice = scp_choice.index_select(0, rows);
  if (noise_prime.defined())
    n.noise_prime = noise_prime.index_select(0, rows).narrow(1, 0, length).contiguous();
  return n;
}

LossNoise LossNoise::To(torch::Device device) const {
  LossNoise n;
  n.t = t.to(device);
  n.noise = noise.to(device);
  n.use_sc = use_sc.to(device);
  n.scp_choice = scp_choice.to(device);
  if (noise_prime.defined()) n.noise_prime = noise_prime.to(device);
  return n;
}

LossParts ComputeLoss(FastDissModel& model, const NoiseSchedule& schedule,
                      const ObjectiveConfig& config, const Batch& batch, at::Generator generator) {
  const int64_t B = batch.target.size(0), L = batch.target.size(1);
  LossNoise noise =
      LossNoise::Draw(B, L, model->config().d_latent, config, schedule.num_timesteps(), generator);
  LossScale scale;
  scale.tokens = std::max<double>(1.0, batch.target_mask.sum().item<double>());
  scale.sequences = static_cast<double>(B);
  return ComputeLoss(model, schedule, config, batch, noise, scale);
}

LossParts ComputeLoss(FastDissModel& model, const NoiseSchedule& schedule,
                      const ObjectiveConfig& config, const Batch& batch,
                      const LossNoise& drawn_anywhere, const LossScale& scale) {
  const LossNoise drawn = drawn_anywhere.To(batch.target.device());
  const int T = schedule.num_timesteps();
  const int64_t B = batch.target.size(0), L = batch.target.size(1);
  const auto mask = batch.target_mask;
  const auto mask_f = mask.to(torch::kFloat32);
  const double tokens = std::max(1.0, scale.tokens);

  torch::Tensor encoded, z0;
  {
    RECORD_USER_SCOPE("fastdiss::encode");
    encoded = model->Encode(batch.source, batch.source_mask);
    z0 = model->Embed(batch.target);
  }
  auto t = drawn.t.expand({B, L}).contiguous();
  const auto& noise = drawn.noise;
  auto zeros = torch::zeros_like(z0);

  LossParts parts;
  if (config.mans) {
    torch::Tensor probe;
    {
      RECORD_USER_SCOPE("fastdiss::mans_probe");
      torch::NoGradGuard no_grad;
      probe = model->Denoise(schedule.AddNoise(z0, t, noise), t, zeros, mask, encoded,
                             batch.source_mask);
    }
    auto scaled = MansTimesteps(t, probe, z0.detach(), mask, config, T);
    parts.mans_shift = ((scaled - t).to(torch::kFloat32) * mask_f).sum().item<double>() / tokens;
    t = scaled;
  }
  auto z_t = schedule.AddNoise(z0, t, noise);

  // Self-conditioning input, per sequence with probability p_sc, else zeros. The estimate is
  // computed for those sequences only: the others would multiply theirs by zero.
  torch::Tensor self_cond = zeros;
  const auto sc_rows = drawn.use_sc.reshape({-1}).nonzero().reshape({-1});
  if (sc_rows.size(0) > 0) {
    RECORD_USER_SCOPE("fastdiss::self_cond_pass");
    torch::NoGradGuard no_grad;
    const bool every_row = sc_rows.size(0) == B;
    auto rows = [&](const torch::Tensor& x) { return every_row ? x : x.index_select(0, sc_rows); };
    torch::Tensor t_sc = rows(t), z_sc;
    if (config.scp) {
      t_sc = ScpTimesteps(t_sc, rows(drawn.scp_choice), config, T);
      z_sc = schedule.AddNoise(rows(z0), t_sc,
                               rows(config.scp_fresh_noise ? drawn.noise_prime : noise));
    } else {
      z_sc = rows(z_t);
    }
    auto estimate =
        model->Denoise(z_sc, t_sc, rows(zeros), rows(mask), rows(encoded), rows(batch.source_mask));
    self_cond = every_row ? estimate : zeros.index_copy(0, sc_rows, estimate);
  }

  RECORD_USER_SCOPE("fastdiss::trained_pass");
  auto z0_hat = model->Denoise(z_t, t, self_cond, mask, encoded, batch.source_mask);
  auto token_mse = (z0_hat - z0).pow(2).mean(-1);  // [B, L]
  auto mse = (token_mse * mask_f).sum() / tokens;
  {
    torch::NoGradGuard no_grad;
    auto bins = (t.to(torch::kLong) * kTimestepBins)
                    .div(T, "floor")
                    .clamp(0, kTimestepBins - 1)
                    .reshape({-1});
    auto weights = mask_f.reshape({-1});
    parts.timestep_tokens =
        torch::zeros({kTimestepBins}, weights.options()).index_add_(0, bins, weights);
    parts.timestep_squared_error =
        torch::zeros({kTimestepBins}, weights.options())
            .index_add_(0, bins, token_mse.detach().reshape({-1}) * weights);
  }
  auto logits = model->Logits(z0_hat);
  auto ce =
      torch::nn::functional::cross_entropy(logits.view({B * L, -1}), batch.target.view({B * L}),
                                           torch::nn::functional::CrossEntropyFuncOptions()
                                               .reduction(torch::kNone)
                                               .label_smoothing(config.label_smoothing));
  auto rounding = (ce * mask_f.view({B * L})).sum() / tokens;

  const ModelConfig& mc = model->config();
  auto source_lengths = batch.source_mask.sum(1);
  auto target_lengths = mask.sum(1);
  auto length_class =
      (target_lengths - source_lengths + mc.length_offset).clamp(0, mc.length_classes() - 1);
  auto length_ce = torch::nn::functional::cross_entropy(
                       model->PredictLength(encoded, batch.source_mask), length_class,
                       torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)) /
                   std::max(1.0, scale.sequences);

  parts.total = mse + rounding + config.length_loss_weight * length_ce;
  parts.mse = mse.item<double>();
  parts.rounding = rounding.item<double>();
  parts.length = length_ce.item<double>();
  parts.mean_t = (t.to(torch::kFloat32) * mask_f).sum().item<double>() / tokens;
  parts.target_tokens = static_cast<int64_t>(mask_f.sum().item<double>());
  return parts;
}

}  // namespace fastdiss
