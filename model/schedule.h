// The diffusion process of docs/method.md section 2: sqrt noise schedule over T steps, forward
// noising with a noise factor, respacing to K sampling steps, and the per-step update
// coefficients of the DDPM posterior and DDIM between two kept steps.
//
// Immutable after Create(); every method is const and thread-safe. Tables are kept in double so the
// coefficients match the reference values exactly; tensors handed to the network are float32.
#ifndef FASTDISS_MODEL_SCHEDULE_H_
#define FASTDISS_MODEL_SCHEDULE_H_

#include <torch/types.h>

#include <vector>

#include "base/status.h"

namespace fastdiss {

struct NoiseScheduleOptions {
  int num_timesteps = 2000;   // T
  double noise_factor = 4.0;  // F in z_t = sqrt(abar) z0 + F sqrt(1 - abar) eps
};

// How one sampling step moves from a kept timestep t to the next kept timestep s < t.
enum class UpdateRule { kDdpm, kDdim };

// z_s = mean_z0 * z0_hat + mean_zt * z_t + noise_std * eps (noise_std is 0 for DDIM).
struct StepCoefficients {
  double mean_z0 = 0;
  double mean_zt = 0;
  double noise_std = 0;
};

class NoiseSchedule {
 public:
  static absl::StatusOr<NoiseSchedule> Create(const NoiseScheduleOptions& options);

  int num_timesteps() const { return static_cast<int>(alpha_bar_.size()); }
  double noise_factor() const { return noise_factor_; }
  double alpha_bar(int t) const { return alpha_bar_.at(t); }
  double beta(int t) const { return beta_.at(t); }

  // q(z_t | z0) with a timestep per token: z0 and noise [B, L, D], t [B, L] (int64, in [0, T)).
  torch::Tensor AddNoise(const torch::Tensor& z0, const torch::Tensor& t,
                         const torch::Tensor& noise) const;

  // The K kept timesteps in sampling order (descending): round(i (T-1) / (K-1)) for i = K-1..0.
  // K = 1 runs its single step at t = T-1. K must be in [1, T].
  absl::StatusOr<std::vector<int>> Respace(int steps) const;

  // Coefficients for moving from kept step t to kept step s (s < t) given the network's estimate
  // of z0. The DDPM posterior uses the respaced beta 1 - abar_t / abar_s; variances carry F^2.
  StepCoefficients Step(int t, int s, UpdateRule rule) const;

 private:
  NoiseSchedule(std::vector<double> alpha_bar, std::vector<double> beta, double noise_factor)
      : alpha_bar_(std::move(alpha_bar)), beta_(std::move(beta)), noise_factor_(noise_factor) {}

  std::vector<double> alpha_bar_;
  std::vector<double> beta_;
  double noise_factor_;
  torch::Tensor sqrt_alpha_bar_;  // float32 [T]
  torch::Tensor noise_std_;       // float32 [T]: F sqrt(1 - abar_t)
};

}  // namespace fastdiss

#endif  // FASTDISS_MODEL_SCHEDULE_H_
