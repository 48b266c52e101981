#include "model/schedule.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>

namespace fastdiss {
namespace {

// The sqrt schedule of Li et al. (Diffusion-LM): abar(s) = 1 - sqrt(s + 1e-4), s in [0, 1].
double SqrtAlphaBar(double s) { return 1.0 - std::sqrt(s + 1e-4); }

}  // namespace

absl::StatusOr<NoiseSchedule> NoiseSchedule::Create(const NoiseScheduleOptions& options) {
  if (options.num_timesteps < 2 || options.num_timesteps > 100000) {
    return absl::InvalidArgumentError("num_timesteps must be in [2, 100000], got " +
                                      std::to_string(options.num_timesteps));
  }
  if (!(options.noise_factor > 0) || !std::isfinite(options.noise_factor)) {
    return absl::InvalidArgumentError("noise_factor must be positive, got " +
                                      std::to_string(options.noise_factor));
  }
  const int T = options.num_timesteps;
  std::vector<double> beta(T), alpha_bar(T);
  double product = 1.0;
  for (int i = 0; i < T; ++i) {
    beta[i] = std::min(1.0 - SqrtAlphaBar((i + 1.0) / T) / SqrtAlphaBar(static_cast<double>(i) / T),
                       0.999);
    product *= 1.0 - beta[i];
    alpha_bar[i] = product;
  }
  NoiseSchedule schedule(alpha_bar, beta, options.noise_factor);
  auto table = torch::tensor(alpha_bar, torch::kFloat64);
  schedule.sqrt_alpha_bar_ = table.sqrt().to(torch::kFloat32);
  schedule.noise_std_ = ((1.0 - table).sqrt() * options.noise_factor).to(torch::kFloat32);
  return schedule;
}

torch::Tensor NoiseSchedule::AddNoise(const torch::Tensor& z0, const torch::Tensor& t,
                                      const torch::Tensor& noise) const {
  auto index = t.to(torch::kLong);
  auto signal = sqrt_alpha_bar_.to(z0.device()).index({index}).unsqueeze(-1);
  auto sigma = noise_std_.to(z0.device()).index({index}).unsqueeze(-1);
  return signal * z0 + sigma * noise;
}

absl::StatusOr<std::vector<int>> NoiseSchedule::Respace(int steps) const {
  const int T = num_timesteps();
  if (steps < 1 || steps > T) {
    return absl::InvalidArgumentError("steps must be in [1, " + std::to_string(T) + "], got " +
                                      std::to_string(steps));
  }
  if (steps == 1) return std::vector<int>{T - 1};
  std::vector<int> kept(steps);
  for (int i = 0; i < steps; ++i) {
    kept[steps - 1 - i] =
        static_cast<int>(std::lround(static_cast<double>(i) * (T - 1) / (steps - 1)));
  }
  return kept;
}

StepCoefficients NoiseSchedule::Step(int t, int s, UpdateRule rule) const {
  const double abar_t = alpha_bar_.at(t);
  const double abar_s = alpha_bar_.at(s);
  StepCoefficients c;
  if (rule == UpdateRule::kDdim) {
    // Deterministic (eta = 0): keep the implied noise direction; F cancels.
    const double ratio = std::sqrt((1.0 - abar_s) / (1.0 - abar_t));
    c.mean_zt = ratio;
    c.mean_z0 = std::sqrt(abar_s) - ratio * std::sqrt(abar_t);
    return c;
  }
  const double beta_ts = 1.0 - abar_t / abar_s;  // beta of the respaced chain
  c.mean_z0 = std::sqrt(abar_s) * beta_ts / (1.0 - abar_t);
  c.mean_zt = std::sqrt(1.0 - beta_ts) * (1.0 - abar_s) / (1.0 - abar_t);
  c.noise_std = noise_factor_ * std::sqrt(beta_ts * (1.0 - abar_s) / (1.0 - abar_t));
  return c;
}

}  // namespace fastdiss
