// Process-wide settings for LibTorch on CPU, chosen on purpose once at start by each main().
//
// - Allocator: glibc returns large blocks to the kernel on every free, so each tensor of a
//   transformer step is a fresh mmap + page faults; raising the mmap threshold (to glibc's 32 MiB
//   cap) and the trim threshold keeps them in the heap (docs/performance.md).
// - Threads: LibTorch's intra-op pool (elementwise ops, softmax, layer norm) and OpenBLAS's own
//   pthreads (matmul: LibTorch does not split a GEMM itself) are sized separately and on purpose;
//   docs/performance.md has the measurements behind the defaults.
#ifndef FASTDISS_MODEL_RUNTIME_H_
#define FASTDISS_MODEL_RUNTIME_H_

#include <c10/core/Device.h>

#include <string>

#include "base/status.h"

namespace fastdiss {

struct RuntimeOptions {
  int intra_op_threads = 0;  // 0: the number of cores this process may use
  // OpenBLAS's own pthreads. 1 by default: with 2 of them beside 2 LibTorch threads a batched
  // denoiser step ran 2x slower on 2 cores (docs/performance.md). 0: the same as intra_op_threads.
  int blas_threads = 1;
  bool tune_allocator = true;
};

// Applies the options; returns a one-line description for the log ("threads=2 blas_threads=1 ...").
std::string ConfigureRuntime(const RuntimeOptions& options);

// OpenBLAS's idle threads spin for 2^OPENBLAS_THREAD_TIMEOUT cycles (default 2^28, about a tenth
// of a second) before they sleep. Beside other busy processes a spinning thread holds the core the
// working one needs: a 32-row step with 2 OpenBLAS threads took 194-198 ms instead of 14-16 ms
// alone; with 2^4 cycles it took 30-36 ms, and 15-16 ms alone (docs/performance.md). OpenBLAS
// reads the variable once, as it loads, before main runs. So this, called first in main, sets it
// to kBlasThreadTimeout and re-executes the program, unless it is set already (a user's value
// wins). It returns only when no re-execution happened.
inline constexpr char kBlasThreadTimeout[] = "4";
void ReexecWithBlasThreadTimeout(char** argv);

// The LibTorch device for a name IsDeviceName accepts ("cpu", "cuda", "cuda:N").
// INVALID_ARGUMENT for another name; FAILED_PRECONDITION when this LibTorch has no CUDA or the
// machine has no such GPU.
absl::StatusOr<c10::Device> ResolveDevice(const std::string& name);

// Cores this process may run on (its CPU affinity), at least 1.
int AvailableCores();

}  // namespace fastdiss

#endif  // FASTDISS_MODEL_RUNTIME_H_
