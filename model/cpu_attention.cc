#include "model/cpu_attention.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace fastdiss {
namespace {

// One (row, head) of an attention: its queries, keys and values as strided runs of head
// vectors, and where its output goes.
struct HeadTask {
  const float* q;
  int64_t q_stride, Lq;
  const float* k;
  int64_t k_stride;
  const float* v;
  int64_t v_stride, Lk;
  const float* bias;  // [Lk]: 0 or -inf per key; nullptr: every key is real
  float* out;
  int64_t out_stride;
};

// The loops are compiled for AVX2 + FMA too, chosen at load time where the CPU has them. Not under
// ThreadSanitizer: the clone resolver runs while the dynamic loader relocates the program, before
// TSan's runtime is up, and its instrumented code crashed there (scripts/sanitize.sh).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define FASTDISS_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define FASTDISS_VECTOR_CLONES
#endif

// Eight floats in a register (GCC vector extension: the arithmetic order is the code's).
typedef float Vec8 __attribute__((vector_size(32)));
typedef int32_t Int8 __attribute__((vector_size(32)));
constexpr int64_t kLanes = 8;

inline Vec8 Load(const float* p) {
  Vec8 v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}
inline void Store(float* p, Vec8 v) { __builtin_memcpy(p, &v, sizeof(v)); }
inline Vec8 Splat(float x) { return Vec8{} + x; }

// exp(x) for x <= 0 (scores minus their maximum), Cephes' expf polynomial: relative error about
// 1e-7 on [-87, 0]. x is clamped to that range (-inf, a masked key, gives exp(-87), which the
// caller's key mask zeroes).
inline Vec8 Exp(Vec8 x) {
  x = x < Splat(-87.0f) ? Splat(-87.0f) : (x > Splat(0.0f) ? Splat(0.0f) : x);
  const Vec8 fx = x * 1.44269504088896341f + 0.5f;  // x / ln 2, rounded by the floor below
  const Vec8 truncated = __builtin_convertvector(__builtin_convertvector(fx, Int8), Vec8);
  const Vec8 fl = truncated > fx ? truncated - 1.0f : truncated;
  const Vec8 r = x - fl * 0.693359375f + fl * 2.12194440e-4f;
  Vec8 p = Splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const Int8 exponent = (__builtin_convertvector(fl, Int8) + 127) << 23;
  Vec8 scale;
  __builtin_memcpy(&scale, &exponent, sizeof(scale));
  return p * scale;
}

// One (row, head) when hd and the padded key count are multiples of 8. keys_t [hd, Lk8] holds
// the keys transposed, zero-padded to Lk8 columns; keep [Lk8] is 1 on real keys and 0 on padding
// (masked or beyond Lk); weights is scratch [Lk8].
FASTDISS_VECTOR_CLONES
void AttendHead(const float* __restrict q_base, int64_t q_stride, int64_t Lq,
                const float* __restrict keys_t, const float* __restrict keep,
                const float* __restrict v_base, int64_t v_stride, int64_t Lk, int64_t Lk8,
                int64_t hd, float* __restrict weights, float* __restrict out_base,
                int64_t out_stride) {
  for (int64_t i = 0; i < Lq; ++i) {
    const float* __restrict q = q_base + i * q_stride;
    // Scores, eight keys at a time, each summed over d in order.
    Vec8 max = Splat(-std::numeric_limits<float>::infinity());
    for (int64_t j = 0; j < Lk8; j += kLanes) {
      Vec8 acc = Vec8{};
      for (int64_t d = 0; d < hd; ++d) acc += q[d] * Load(keys_t + d * Lk8 + j);
      const Vec8 masked =
          Load(keep + j) > 0.0f ? acc : Splat(-std::numeric_limits<float>::infinity());
      Store(weights + j, masked);
      max = max > masked ? max : masked;
    }
    float top = max[0];
    for (int l = 1; l < kLanes; ++l) top = std::max(top, max[l]);
    // Softmax weights: padding gets an exact 0, and the sum runs in key order.
    float sum = 0.0f;
    for (int64_t j = 0; j < Lk8; j += kLanes) {
      Store(weights + j, Exp(Load(weights + j) - top) * Load(keep + j));
    }
    for (int64_t j = 0; j < Lk; ++j) sum += weights[j];
    const float inverse = 1.0f / sum;
    // Weighted values, eight head dimensions at a time, each summed over keys in order.
    float* __restrict out = out_base + i * out_stride;
    for (int64_t d = 0; d < hd; d += kLanes) {
      Vec8 acc = Vec8{};
      for (int64_t j = 0; j < Lk; ++j)
        acc += (weights[j] * inverse) * Load(v_base + j * v_stride + d);
      Store(out + d, acc);
    }
  }
}

// The same in plain loops, for head sizes that are not a multiple of 8.
void AttendHeadScalar(const float* q_base, int64_t q_stride, int64_t Lq, const float* keys_t,
                      const float* keep, const float* v_base, int64_t v_stride, int64_t Lk,
                      int64_t Lk8, int64_t hd, float* weights, float* out_base,
                      int64_t out_stride) {
  for (int64_t i = 0; i < Lq; ++i) {
    const float* q = q_base + i * q_stride;
    float top = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < Lk; ++j) {
      float acc = 0.0f;
      for (int64_t d = 0; d < hd; ++d) acc += q[d] * keys_t[d * Lk8 + j];
      weights[j] = acc;
      if (keep[j] > 0.0f) top = std::max(top, acc);
    }
    float sum = 0.0f;
    for (int64_t j = 0; j < Lk; ++j) {
      weights[j] = keep[j] > 0.0f ? std::exp(weights[j] - top) : 0.0f;
      sum += weights[j];
    }
    const float inverse = 1.0f / sum;
    float* out = out_base + i * out_stride;
    for (int64_t d = 0; d < hd; ++d) {
      float acc = 0.0f;
      for (int64_t j = 0; j < Lk; ++j) acc += (weights[j] * inverse) * v_base[j * v_stride + d];
      out[d] = acc;
    }
  }
}

// Runs task_of(unit, head) for every unit (a batch row) and head, split across LibTorch's threads.
template <typename TaskOf>
void RunHeads(int64_t units, int64_t heads, int64_t hd, int64_t max_keys, const TaskOf& task_of) {
  const int64_t max_keys8 = (max_keys + kLanes - 1) / kLanes * kLanes;
  at::parallel_for(0, units * heads, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> keys_t(hd * max_keys8), keep(max_keys8), weights(max_keys8);
    for (int64_t unit_head = begin; unit_head < end; ++unit_head) {
      const HeadTask t = task_of(unit_head / heads, unit_head % heads);
      if (t.Lq == 0) continue;
      // Keys transposed and zero-padded to whole vectors; keep is 1 on real keys only.
      const int64_t Lk8 = (t.Lk + kLanes - 1) / kLanes * kLanes;
      for (int64_t j = 0; j < Lk8; ++j) {
        const bool real = j < t.Lk;
        const float* kj = t.k + j * t.k_stride;
        for (int64_t d = 0; d < hd; ++d) keys_t[d * Lk8 + j] = real ? kj[d] : 0.0f;
        keep[j] = real && (t.bias == nullptr || !std::isinf(t.bias[j])) ? 1.0f : 0.0f;
      }
      auto* attend = hd % kLanes == 0 ? &AttendHead : &AttendHeadScalar;
      attend(t.q, t.q_stride, t.Lq, keys_t.data(), keep.data(), t.v, t.v_stride, t.Lk, Lk8, hd,
             weights.data(), t.out, t.out_stride);
    }
  });
}

void CheckFloatCpu(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  TORCH_CHECK(q.is_cpu() && q.scalar_type() == torch::kFloat32 &&
                  k.scalar_type() == torch::kFloat32 && v.scalar_type() == torch::kFloat32,
              "CpuAttention: float32 CPU tensors only");
  TORCH_CHECK(q.stride(-1) == 1 && k.stride(-1) == 1 && v.stride(-1) == 1,
              "CpuAttention: head dims must be contiguous");
}

}  // namespace

torch::Tensor CpuAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                           const torch::Tensor& bias) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "CpuAttention: q, k, v must be 4-D");
  CheckFloatCpu(q, k, v);
  const int64_t B = q.size(0), heads = q.size(1), Lq = q.size(2), hd = q.size(3), Lk = k.size(2);
  TORCH_CHECK(k.size(0) == B && v.size(0) == B && k.size(1) == heads && v.size(1) == heads &&
                  k.size(3) == hd && v.size(3) == hd && v.size(2) == Lk,
              "CpuAttention: q, k, v shapes disagree");
  const auto key_bias = bias.reshape({B, Lk}).to(torch::kFloat32).contiguous();
  auto out = torch::empty({B, Lq, heads * hd}, q.options());
  const float *qd = q.data_ptr<float>(), *kd = k.data_ptr<float>(), *vd = v.data_ptr<float>();
  const float* bias_data = key_bias.data_ptr<float>();
  float* out_data = out.data_ptr<float>();
  RunHeads(B, heads, hd, Lk, [&](int64_t b, int64_t h) {
    return HeadTask{qd + b * q.stride(0) + h * q.stride(1),
                    q.stride(2),
                    Lq,
                    kd + b * k.stride(0) + h * k.stride(1),
                    k.stride(2),
                    vd + b * v.stride(0) + h * v.stride(1),
                    v.stride(2),
                    Lk,
                    bias_data + b * Lk,
                    out_data + b * Lq * heads * hd + h * hd,
                    heads * hd};
  });
  return out;
}

torch::Tensor CpuAttentionPacked(const torch::Tensor& q, const torch::Tensor& k,
                                 const torch::Tensor& v, const torch::Tensor& bias,
                                 const std::vector<int64_t>& offsets) {
  TORCH_CHECK(q.dim() == 3, "CpuAttentionPacked: q must be [N, heads, hd]");
  CheckFloatCpu(q, k, v);
  const int64_t N = q.size(0), heads = q.size(1), hd = q.size(2);
  const auto rows = static_cast<int64_t>(offsets.size()) - 1;
  TORCH_CHECK(rows >= 0 && offsets.front() == 0 && offsets.back() == N,
              "CpuAttentionPacked: offsets must run from 0 to N");
  const bool packed_keys = k.dim() == 3;
  TORCH_CHECK(packed_keys ? (k.sizes() == q.sizes() && v.sizes() == q.sizes())
                          : (k.dim() == 4 && k.size(0) == rows && k.size(1) == heads &&
                             k.size(3) == hd && v.sizes() == k.sizes()),
              "CpuAttentionPacked: k and v must be packed like q, or [rows, heads, Lk, hd]");
  torch::Tensor key_bias;
  int64_t max_keys = 0;
  if (packed_keys) {
    for (int64_t r = 0; r < rows; ++r) max_keys = std::max(max_keys, offsets[r + 1] - offsets[r]);
  } else {
    max_keys = k.size(2);
    key_bias = bias.reshape({rows, max_keys}).to(torch::kFloat32).contiguous();
  }
  auto out = torch::empty({N, heads * hd}, q.options());
  const float *qd = q.data_ptr<float>(), *kd = k.data_ptr<float>(), *vd = v.data_ptr<float>();
  float* out_data = out.data_ptr<float>();
  RunHeads(rows, heads, hd, max_keys, [&](int64_t r, int64_t h) {
    const int64_t first = offsets[r], Lq = offsets[r + 1] - offsets[r];
    const float* qr = qd + first * q.stride(0) + h * q.stride(1);
    float* out_r = out_data + first * heads * hd + h * hd;
    if (packed_keys) {
      return HeadTask{qr,          q.stride(0),
                      Lq,          kd + first * k.stride(0) + h * k.stride(1),
                      k.stride(0), vd + first * v.stride(0) + h * v.stride(1),
                      v.stride(0), Lq,
                      nullptr,     out_r,
                      heads * hd};
    }
    return HeadTask{qr,
                    q.stride(0),
                    Lq,
                    kd + r * k.stride(0) + h * k.stride(1),
                    k.stride(2),
                    vd + r * v.stride(0) + h * v.stride(1),
                    v.stride(2),
                    max_keys,
                    key_bias.data_ptr<float>() + r * max_keys,
                    out_r,
                    heads * hd};
  });
  return out;
}

}  // namespace fastdiss
