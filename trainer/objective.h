// The FastDiSS training objective (METHOD.md sections 3-5) for one batch:
//   sample t -> MANS gives per-token t_i -> z_t -> SCP gives the self-conditioning estimate from a
//   noisier t' > t_i -> loss on f(z_t, t_i, sc): MSE to z0 + label-smoothed rounding cross-entropy
//   + weighted length cross-entropy.
// With scp and mans off it is standard self-conditioning, the baseline. Uses the default LibTorch
// generator (seeded by the trainer, saved in checkpoints) for every random draw.
#ifndef FASTDISS_TRAINER_OBJECTIVE_H_
#define FASTDISS_TRAINER_OBJECTIVE_H_

#include <torch/types.h>

#include <vector>

#include "model/network.h"
#include "model/schedule.h"
#include "trainer/data.h"
#include "trainer/train_config.h"

namespace fastdiss {

struct Batch {
  torch::Tensor source;       // [B, S] int64, padded with pad_id
  torch::Tensor source_mask;  // [B, S] bool
  torch::Tensor target;       // [B, L] int64
  torch::Tensor target_mask;  // [B, L] bool
};

Batch Collate(const std::vector<Example>& examples, const std::vector<int>& indices, int pad_id,
              torch::Device device);

struct LossParts {
  torch::Tensor total;      // scalar, differentiable
  double mse = 0;
  double rounding = 0;      // cross-entropy of the rounding
  double length = 0;
  double mean_t = 0;        // mean per-token timestep after MANS
  double mans_shift = 0;    // mean extra timesteps MANS added
  int64_t target_tokens = 0;
};

// The MANS per-token timesteps: t_i = t + c_i (min(T-1, t + s (T-1)) - t), with confidence
// c_i = clamp((d_hi - d_i) / (d_hi - d_lo), 0, 1) from the per-dimension squared error d_i of a
// probe estimate. Padding keeps t. Exposed for tests.
torch::Tensor MansTimesteps(const torch::Tensor& t, const torch::Tensor& probe, const torch::Tensor& z0,
                            const torch::Tensor& target_mask, const ObjectiveConfig& config,
                            int num_timesteps);

// SCP's noisier timesteps t' = min(T-1, t_i + offset), offset = round(T / K) with K drawn per
// sequence from config.scp_steps, or config.scp_offset when set. Exposed for tests.
torch::Tensor ScpTimesteps(const torch::Tensor& t, const ObjectiveConfig& config, int num_timesteps);

LossParts ComputeLoss(FastDissModel& model, const NoiseSchedule& schedule,
                      const ObjectiveConfig& config, const Batch& batch);

}  // namespace fastdiss

#endif  // FASTDISS_TRAINER_OBJECTIVE_H_
