// MemoryTrimmer: gives the malloc heap's free pages back to the kernel every `interval`.
//
// The runtime keeps freed memory in the heap (M_TRIM_THRESHOLD of 1 GiB, model/runtime.cc):
// handing tensors back to the kernel on every free made batched steps 3-5x slower. Under load
// whose batch shapes keep changing, the kept memory fragments and grows: in a 10-minute soak RSS
// rose 4.4 MiB/min while the bytes in use stayed flat (docs/reliability.md). malloc_trim(0)
// returns the free pages (madvise, the heap's layout is untouched), so RSS follows what is in use;
// the cost is a page fault when such a page is used again, and each arena locked for the
// duration of its trim. Every trim's duration goes to `on_trim`.
#ifndef FASTDISS_SERVER_MEMORY_TRIMMER_H_
#define FASTDISS_SERVER_MEMORY_TRIMMER_H_

#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace fastdiss {

class MemoryTrimmer {
 public:
  // Starts the thread; an `interval` of zero or less starts nothing.
  MemoryTrimmer(absl::Duration interval, std::function<void(absl::Duration took)> on_trim);
  ~MemoryTrimmer();  // stops and joins the thread
  MemoryTrimmer(const MemoryTrimmer&) = delete;
  MemoryTrimmer& operator=(const MemoryTrimmer&) = delete;

 private:
  void Loop();

  const absl::Duration interval_;
  const std::function<void(absl::Duration)> on_trim_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace fastdiss

#endif  // FASTDISS_SERVER_MEMORY_TRIMMER_H_
