#include "model/counter_noise.h"

#include <ATen/core/PhiloxRNGEngine.h>
#include <torch/torch.h>

#include <cmath>

namespace fastdiss {

torch::Tensor CounterNormal(const std::vector<NoiseKey>& keys, c10::IntArrayRef shape,
                            torch::Device device) {
  int64_t per_row = 1;
  for (int64_t d : shape) per_row *= d;
  // Rows padded to whole vector blocks: LibTorch's vectorised log, cos and sin may differ in the
  // last bit from the scalar ones it uses on a tensor's tail, so no element may ever land there.
  constexpr int64_t kBlock = 64;
  const int64_t pairs = ((per_row + 1) / 2 + kBlock - 1) / kBlock * kBlock;
  const auto rows = static_cast<int64_t>(keys.size());
  // Two uniforms per pair of normals: u1 in (0, 1] (its log is finite), u2 in [0, 1).
  auto u1 = torch::empty({rows, pairs}, torch::kFloat32);
  auto u2 = torch::empty({rows, pairs}, torch::kFloat32);
  float* a = u1.data_ptr<float>();
  float* b = u2.data_ptr<float>();
  constexpr float kScale = 1.0f / 4294967296.0f;  // 2^-32
  for (int64_t r = 0; r < rows; ++r) {
    at::philox_engine engine(keys[r].seed, keys[r].stream, 0);
    for (int64_t j = 0; j < pairs; ++j) {
      // 24 bits each, so that the float conversion is exact and u2 < 1.
      a[r * pairs + j] = 1.0f - static_cast<float>(engine() >> 8) * (kScale * 256.0f);
      b[r * pairs + j] = static_cast<float>(engine() >> 8) * (kScale * 256.0f);
    }
  }
  auto radius = u1.log_().mul_(-2.0).sqrt_();
  auto angle = u2.mul_(static_cast<float>(2.0 * M_PI));
  auto normal = torch::stack({radius * torch::cos(angle), radius * torch::sin(angle)}, -1)
                    .view({rows, 2 * pairs})
                    .narrow(1, 0, per_row);
  std::vector<int64_t> out_shape = {rows};
  out_shape.insert(out_shape.end(), shape.begin(), shape.end());
  return normal.reshape(out_shape).to(device);
}

}  // namespace fastdiss
