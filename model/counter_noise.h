// Gaussian noise as a pure function of a key, so that a batch of many requests' rows draws its
// noise in one call and each row still gets exactly the numbers it would get alone.
//
// Row i of the result is Philox4x32-10 (the counter-based generator CUDA's PyTorch uses) keyed by
// keys[i].seed on subsequence keys[i].stream, mapped to N(0, 1) by the Box-Muller transform: its
// element j depends only on (seed, stream, j). Rows are drawn in a plain host loop and moved to
// the device in one copy. Thread-safe (no shared state).
#ifndef FASTDISS_MODEL_COUNTER_NOISE_H_
#define FASTDISS_MODEL_COUNTER_NOISE_H_

#include <c10/core/Device.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace fastdiss {

struct NoiseKey {
  uint64_t seed = 0;    // the request's
  uint64_t stream = 0;  // which draw of that request: see NoiseStream
};

// The stream of a request's candidate row `row` at draw `draw` (0: the starting noise, k: the
// noise added after step k).
inline uint64_t NoiseStream(int draw, int row) {
  return (static_cast<uint64_t>(draw) << 32) | static_cast<uint32_t>(row);
}

// Float32 noise of shape [keys.size(), shape...] on device; shape's elements are each row's j.
torch::Tensor CounterNormal(const std::vector<NoiseKey>& keys, c10::IntArrayRef shape,
                            torch::Device device);

}  // namespace fastdiss

#endif  // FASTDISS_MODEL_COUNTER_NOISE_H_
