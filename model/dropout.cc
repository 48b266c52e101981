#include "model/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <mutex>

namespace fastdiss {
namespace {

// MurmurHash3's 32-bit finaliser: every input bit flips each output bit with probability ~1/2.
inline uint32_t Mix(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

uint64_t DrawSeed() {
  auto* generator = at::check_generator<at::CPUGeneratorImpl>(at::detail::getDefaultCPUGenerator());
  std::lock_guard<std::mutex> lock(generator->mutex_);
  return generator->random64();
}

// mask[i] = keep ? scale : 0, keep when the hash of (seed, i) is at least p * 2^32.
void FillMask(float* mask, int64_t n, uint64_t seed, double p) {
  const auto threshold = static_cast<uint32_t>(std::min(4294967295.0, std::ldexp(p, 32)));
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  const auto seed_low = static_cast<uint32_t>(seed), seed_high = static_cast<uint32_t>(seed >> 32);
  at::parallel_for(0, n, 1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const uint32_t key = seed_high ^ static_cast<uint32_t>(static_cast<uint64_t>(i) >> 32);
      const uint32_t hash = Mix(Mix(static_cast<uint32_t>(i) * 0x9e3779b9u + seed_low) ^ key);
      mask[i] = hash >= threshold ? scale : 0.0f;
    }
  });
}

}  // namespace

torch::Tensor Dropout(const torch::Tensor& x, double p, bool training) {
  TORCH_CHECK(p >= 0 && p <= 1, "dropout probability must be in [0, 1], got ", p);
  if (!training || p == 0 || x.numel() == 0) return x;
  if (!x.device().is_cpu() || x.scalar_type() != torch::kFloat32 || p == 1)
    return torch::dropout(x, p, true);
  auto mask = torch::empty(x.sizes(), x.options().requires_grad(false));
  FillMask(mask.data_ptr<float>(), mask.numel(), DrawSeed(), p);
  return x * mask;
}

}  // namespace fastdiss
