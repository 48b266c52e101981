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

torch::Tensor MansTimesteps(const torch::Tensor& t, const torch::Tensor& probe, const torch::Tensor& z0,
                            const torch::Tensor& target_mask, const ObjectiveConfig& config,
                            int num_timesteps) {
  auto distance = (probe - z0).pow(2).mean(-1);  // d_i, per dimension
  auto confidence = ((config.mans_d_hi - distance) / (config.mans_d_hi - config.mans_d_lo)).clamp(0.0, 1.0);
  auto t_float = t.to(torch::kFloat32);
  auto ceiling = (t_float + config.mans_scale * (num_timesteps - 1)).clamp_max(num_timesteps - 1);
  auto scaled = torch::round(t_float + confidence * (ceiling - t_float)).to(torch::kLong);
  return torch::where(target_mask, scaled, t);
}

torch::Tensor ScpTimesteps(const torch::Tensor& t, const ObjectiveConfig& config, int num_timesteps) {
  torch::Tensor offset;
  if (config.scp_offset > 0) {
    offset = torch::full({t.size(0), 1}, config.scp_offset, t.options());
  } else {
    std::vector<int64_t> offsets;
    for (int64_t k : config.scp_steps) {
      offsets.push_back(static_cast<int64_t>(std::lround(static_cast<double>(num_timesteps) / k)));
    }
    auto table = torch::tensor(offsets, t.options());
    auto choice = torch::randint(static_cast<int64_t>(offsets.size()), {t.size(0), 1},
                                 t.options().dtype(torch::kLong));
    offset = table.index({choice});
  }
  return (t + offset).clamp_max(num_timesteps - 1);
}

LossParts ComputeLoss(FastDissModel& model, const NoiseSchedule& schedule,
                      const ObjectiveConfig& config, const Batch& batch) {
  const int T = schedule.num_timesteps();
  const int64_t B = batch.target.size(0), L = batch.target.size(1);
  const auto mask = batch.target_mask;
  const auto mask_f = mask.to(torch::kFloat32);
  const double tokens = std::max(1.0, mask_f.sum().item<double>());

  auto encoded = model->Encode(batch.source, batch.source_mask);
  auto z0 = model->Embed(batch.target);
  auto t = torch::randint(T, {B, 1}, batch.target.options()).expand({B, L}).contiguous();
  auto noise = torch::randn_like(z0);
  auto zeros = torch::zeros_like(z0);

  LossParts parts;
  if (config.mans) {
    torch::Tensor probe;
    {
      torch::NoGradGuard no_grad;
      probe = model->Denoise(schedule.AddNoise(z0, t, noise), t, zeros, mask, encoded, batch.source_mask);
    }
    auto scaled = MansTimesteps(t, probe, z0.detach(), mask, config, T);
    parts.mans_shift = ((scaled - t).to(torch::kFloat32) * mask_f).sum().item<double>() / tokens;
    t = scaled;
  }
  auto z_t = schedule.AddNoise(z0, t, noise);

  // Self-conditioning input, per sequence with probability p_sc, else zeros.
  auto use_sc = (torch::rand({B, 1, 1}, z0.options()) < config.self_cond_prob).to(z0.dtype());
  torch::Tensor self_cond = zeros;
  if (use_sc.sum().item<double>() > 0) {
    torch::NoGradGuard no_grad;
    torch::Tensor estimate;
    if (config.scp) {
      auto t_prime = ScpTimesteps(t, config, T);
      auto noise_prime = config.scp_fresh_noise ? torch::randn_like(z0) : noise;
      estimate = model->Denoise(schedule.AddNoise(z0, t_prime, noise_prime), t_prime, zeros, mask,
                                encoded, batch.source_mask);
    } else {
      estimate = model->Denoise(z_t, t, zeros, mask, encoded, batch.source_mask);
    }
    self_cond = estimate.detach() * use_sc;
  }

  auto z0_hat = model->Denoise(z_t, t, self_cond, mask, encoded, batch.source_mask);
  auto mse = ((z0_hat - z0).pow(2).mean(-1) * mask_f).sum() / tokens;
  auto logits = model->Logits(z0_hat);
  auto ce = torch::nn::functional::cross_entropy(
      logits.view({B * L, -1}), batch.target.view({B * L}),
      torch::nn::functional::CrossEntropyFuncOptions()
          .reduction(torch::kNone)
          .label_smoothing(config.label_smoothing));
  auto rounding = (ce * mask_f.view({B * L})).sum() / tokens;

  const ModelConfig& mc = model->config();
  auto source_lengths = batch.source_mask.sum(1);
  auto target_lengths = mask.sum(1);
  auto length_class = (target_lengths - source_lengths + mc.length_offset).clamp(0, mc.length_classes() - 1);
  auto length_ce = torch::nn::functional::cross_entropy(model->PredictLength(encoded, batch.source_mask),
                                                        length_class);

  parts.total = mse + rounding + config.length_loss_weight * length_ce;
  parts.mse = mse.item<double>();
  parts.rounding = rounding.item<double>();
  parts.length = length_ce.item<double>();
  parts.mean_t = (t.to(torch::kFloat32) * mask_f).sum().item<double>() / tokens;
  parts.target_tokens = static_cast<int64_t>(tokens);
  return parts;
}

}  // namespace fastdiss
