// The row count a bfloat16 product on the CPU is padded to.
//
// LibTorch runs a CPU bfloat16 GEMM through oneDNN, which compiles a kernel for each problem
// shape and keeps the last 1,024 in its primitive cache. A served batch's token count changes at
// nearly every step, and a model has about a dozen weight shapes, so unpadded products missed that
// cache almost every time and compiled anew: at mixed K the served bfloat16 step ran 8.4-9.4 ms
// instead of 6.9-7.0 ms with every shape cached (docs/performance.md). A larger cache is no cure:
// each cached primitive keeps its own buffers, and 16,000 shapes of rows up to 4,000 held 12 GB.
// Rounding the rows up to 8 sizes per power of two bounds the shapes (under 90 row counts up to
// 8,192 per weight shape) at no more than 12.5% extra rows, 6% on average.
#ifndef FASTDISS_MODEL_GEMM_ROWS_H_
#define FASTDISS_MODEL_GEMM_ROWS_H_

#include <cstdint>

namespace fastdiss {

// `rows` itself below 16; above, the next multiple of 2^(floor(log2(rows)) - 3).
inline int64_t PaddedGemmRows(int64_t rows) {
  if (rows < 16) return rows;
  int exponent = 0;
  while ((rows >> (exponent + 1)) != 0) ++exponent;  // floor(log2(rows))
  const int64_t granule = int64_t{1} << (exponent - 3);
  return (rows + granule - 1) / granule * granule;
}

}  // namespace fastdiss

#endif  // FASTDISS_MODEL_GEMM_ROWS_H_
