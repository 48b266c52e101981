// The FastDiSS training objective (docs/method.md sections 3-5) for one batch:
//   sample t -> MANS gives per-token t_i -> z_t -> SCP gives the self-conditioning estimate from a
//   noisier t' > t_i -> loss on f(z_t, t_i, sc): MSE to z0 + label-smoothed rounding cross-entropy
//   + weighted length cross-entropy.
// With scp and mans off it is standard self-conditioning, the baseline.
//
// Data-parallel training splits each batch across ranks, and must give the same gradient as the
// whole batch in one process. So every random number of a batch is drawn up front for the whole
// batch (LossNoise, one row per sequence) and each shard takes its rows; and each shard's loss is
// divided by the whole batch's token and sequence counts (LossScale), so that the ranks' gradients
// sum to the whole batch's.
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
  torch::Tensor total;  // scalar, differentiable
  double mse = 0;
  double rounding = 0;  // cross-entropy of the rounding
  double length = 0;
  double mean_t = 0;      // mean per-token timestep after MANS
  double mans_shift = 0;  // mean extra timesteps MANS added
  int64_t target_tokens = 0;
  // Which timesteps the trained pass visits, and how well: per tenth of [0, T) (bin b holds
  // t in [b T / 10, (b + 1) T / 10)), the target tokens trained there and their summed MSE.
  // [kTimestepBins] float, detached, on the batch's device (read them without a host sync
  // per step).
  torch::Tensor timestep_tokens;
  torch::Tensor timestep_squared_error;
};
inline constexpr int64_t kTimestepBins = 10;

// The MANS per-token timesteps: t_i = t + c_i (min(T-1, t + s (T-1)) - t), with confidence
// c_i = clamp((d_hi - d_i) / (d_hi - d_lo), 0, 1) from the per-dimension squared error d_i of a
// probe estimate. Padding keeps t. Exposed for tests.
torch::Tensor MansTimesteps(const torch::Tensor& t, const torch::Tensor& probe,
                            const torch::Tensor& z0, const torch::Tensor& target_mask,
                            const ObjectiveConfig& config, int num_timesteps);

// SCP's noisier timesteps t' = min(T-1, t_i + offset), offset = round(T / K) with K per sequence
// from config.scp_steps (index `choice`, [B, 1]), or config.scp_offset when set. Exposed for tests.
torch::Tensor ScpTimesteps(const torch::Tensor& t, const torch::Tensor& choice,
                           const ObjectiveConfig& config, int num_timesteps);

// Every random draw of one batch's loss, for `sequences` rows padded to `length` tokens.
struct LossNoise {
  torch::Tensor t;            // [B, 1] int64, the sampled timestep
  torch::Tensor noise;        // [B, L, D]
  torch::Tensor use_sc;       // [B, 1, 1] float, 1 where self-conditioning is used
  torch::Tensor scp_choice;   // [B, 1] int64, index into config.scp_steps
  torch::Tensor noise_prime;  // [B, L, D], SCP's fresh noise (undefined unless scp_fresh_noise)

  static LossNoise Draw(int64_t sequences, int64_t length, int64_t d_latent,
                        const ObjectiveConfig& config, int num_timesteps, at::Generator generator);
  // The rows `rows` ([n] int64), trimmed to `length` tokens.
  LossNoise Rows(const torch::Tensor& rows, int64_t length) const;
  // The same draws on `device` (they are drawn on the CPU, so every device gets the same numbers).
  LossNoise To(torch::Device device) const;
};

// What the losses are divided by: the token and sequence counts of the whole batch.
struct LossScale {
  double tokens = 0;
  double sequences = 0;
};

// The loss of `batch` (the whole batch, or one rank's shard of it with the shard's noise rows and
// the whole batch's scale). LossParts' numbers are this shard's share of the batch's values.
LossParts ComputeLoss(FastDissModel& model, const NoiseSchedule& schedule,
                      const ObjectiveConfig& config, const Batch& batch, const LossNoise& noise,
                      const LossScale& scale);
// The whole batch, its noise drawn from `generator`.
LossParts ComputeLoss(FastDissModel& model, const NoiseSchedule& schedule,
                      const ObjectiveConfig& config, const Batch& batch, at::Generator generator);

}  // namespace fastdiss

#endif  // FASTDISS_TRAINER_OBJECTIVE_H_
