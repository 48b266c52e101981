#include "model/runtime.h"

#include <dlfcn.h>
#include <malloc.h>
#include <sched.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>

#include "base/device_name.h"

namespace fastdiss {
namespace {

constexpr char kBlasThreadTimeoutVariable[] = "OPENBLAS_THREAD_TIMEOUT";

// OpenBLAS is loaded by LibTorch at run time; its thread setter is looked up, not linked, so
// the build does not depend on which BLAS Debian's alternatives picked.
int SetBlasThreads(int threads) {
  using SetThreads = void (*)(int);
  for (const char* name : {"openblas_set_num_threads", "goto_set_num_threads"}) {
    if (auto fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, name))) {
      fn(threads);
      return threads;
    }
  }
  return -1;  // not OpenBLAS: leave it alone
}

}  // namespace

absl::StatusOr<c10::Device> ResolveDevice(const std::string& name) {
  if (!IsDeviceName(name))
    return absl::InvalidArgumentError("bad device '" + name + "': expected cpu, cuda or cuda:N");
  c10::Device device(name);
  if (device.is_cuda()) {
    const int64_t count =
        torch::cuda::is_available() ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
    if (count == 0) {
      return absl::FailedPreconditionError("device '" + name +
                                           "' asked for, but no CUDA GPU is available (this "
                                           "LibTorch has no CUDA, or no GPU is visible)");
    }
    if (device.has_index() && device.index() >= count) {
      return absl::FailedPreconditionError("device '" + name + "' asked for, but only " +
                                           std::to_string(count) + " CUDA GPU(s) are visible");
    }
  }
  return device;
}

int AvailableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return 1;
}

std::string ConfigureRuntime(const RuntimeOptions& options) {
  std::string allocator = "glibc(default)";
  if (options.tune_allocator) {
    // glibc caps the mmap threshold at 32 MiB on 64-bit (larger values are refused); blocks below
    // it stay in the heap, and a 1 GiB trim threshold keeps freed heap memory for reuse.
    const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
    const bool trim_ok = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
    allocator = std::string("glibc(mmap_threshold=") + (mmap_ok ? "32MiB" : "unchanged") +
                " trim_threshold=" + (trim_ok ? "1GiB" : "unchanged") + ")";
  }
  const int threads = options.intra_op_threads > 0 ? options.intra_op_threads : AvailableCores();
  torch::set_num_threads(threads);
  const int blas = SetBlasThreads(options.blas_threads > 0 ? options.blas_threads : threads);
  const char* timeout = std::getenv(kBlasThreadTimeoutVariable);
  return "intra_op_threads=" + std::to_string(threads) +
         " blas_threads=" + (blas > 0 ? std::to_string(blas) : std::string("default")) +
         " blas_thread_timeout=" + (timeout != nullptr ? timeout : "default") +
         " allocator=" + allocator;
}

void ReexecWithBlasThreadTimeout(char** argv) {
  if (std::getenv(kBlasThreadTimeoutVariable) != nullptr) return;
  setenv(kBlasThreadTimeoutVariable, kBlasThreadTimeout, 1);
  execv("/proc/self/exe", argv);
  unsetenv(kBlasThreadTimeoutVariable);  // exec failed: OpenBLAS keeps its default
}

}  // namespace fastdiss
