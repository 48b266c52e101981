// Scaled-dot-product attention for inference on the CPU, in one pass per (row, head).
//
// LibTorch 1.13 built without MKL (Debian's) runs a CPU bmm as one dispatched GEMM per batch
// entry, each with OpenBLAS's packing: the denoiser's attention (4 heads x 32 rows of 16 x 32 x 16
// products, twice, per block) spent more time there than in arithmetic (docs/performance.md).
// Here each (row, head) computes its scores, softmax and weighted values in plain loops the
// compiler vectorises over keys and over head dimensions, never across a reduction whose length
// depends on the batch: a row's output is bitwise the same whatever it is batched or padded with.
//
// q [B, heads, Lq, hd], k and v [B, heads, Lk, hd] (any strides with the last one 1, so heads
// split from a fused projection are read in place); q already scaled by 1/sqrt(hd); bias [B, Lk]
// float, 0 on real keys and -inf on padding, at least one real key per row. Returns [B, Lq, heads *
// hd], heads merged, ready for the output projection. Float32 CPU tensors only; not differentiable.
#ifndef FASTDISS_MODEL_CPU_ATTENTION_H_
#define FASTDISS_MODEL_CPU_ATTENTION_H_

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace fastdiss {

torch::Tensor CpuAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                           const torch::Tensor& bias);

// The same over packed rows: q [N, heads, hd] holds rows of different lengths back to back, row r
// at [offsets[r], offsets[r + 1]) (offsets: rows + 1 values from 0 to N). Keys and values are
// either packed the same way (k, v [N, heads, hd]: self-attention within each row, bias unused)
// or one padded run per row (k, v [rows, heads, Lk, hd] with bias [rows, Lk]: cross-attention).
// Returns [N, heads * hd].
torch::Tensor CpuAttentionPacked(const torch::Tensor& q, const torch::Tensor& k,
                                 const torch::Tensor& v, const torch::Tensor& bias,
                                 const std::vector<int64_t>& offsets);

}  // namespace fastdiss

#endif  // FASTDISS_MODEL_CPU_ATTENTION_H_
