#include "server/memory_trimmer.h"

#include <malloc.h>

#include <utility>

#include "absl/time/clock.h"

namespace fastdiss {

MemoryTrimmer::MemoryTrimmer(absl::Duration interval,
                             std::function<void(absl::Duration took)> on_trim)
    : interval_(interval), on_trim_(std::move(on_trim)) {
  if (interval_ > absl::ZeroDuration()) thread_ = std::thread([this] { Loop(); });
}

MemoryTrimmer::~MemoryTrimmer() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void MemoryTrimmer::Loop() {
  absl::MutexLock lock(&mu_);
  auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
  while (!mu_.AwaitWithTimeout(absl::Condition(&stopping), interval_)) {
    mu_.Unlock();
    const absl::Time start = absl::Now();
    malloc_trim(0);
    const absl::Duration took = absl::Now() - start;
    if (on_trim_) on_trim_(took);
    mu_.Lock();
  }
}

}  // namespace fastdiss
