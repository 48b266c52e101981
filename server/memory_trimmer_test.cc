#include "server/memory_trimmer.h"

#include <gtest/gtest.h>

#include <atomic>

#include "absl/time/clock.h"

namespace fastdiss {
namespace {

TEST(MemoryTrimmerTest, TrimsEveryIntervalAndStopsPromptly) {
  std::atomic<int> trims{0};
  absl::Time stopped;
  {
    MemoryTrimmer trimmer(absl::Milliseconds(5), [&](absl::Duration took) {
      EXPECT_GE(took, absl::ZeroDuration());
      ++trims;
    });
    const absl::Time give_up = absl::Now() + absl::Seconds(60);  // a loaded machine may be slow
    while (trims < 3 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
    stopped = absl::Now();
  }
  EXPECT_GE(trims, 3);
  // The destructor wakes the thread instead of waiting out an interval.
  EXPECT_LT(absl::Now() - stopped, absl::Seconds(30));
}

TEST(MemoryTrimmerTest, AZeroIntervalNeverTrimsAndAnHourLongOneStillStopsAtOnce) {
  std::atomic<int> trims{0};
  {
    MemoryTrimmer off(absl::ZeroDuration(), [&](absl::Duration) { ++trims; });
  }
  const absl::Time start = absl::Now();
  {
    MemoryTrimmer hourly(absl::Hours(1), [&](absl::Duration) { ++trims; });
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
  EXPECT_EQ(trims, 0);
}

}  // namespace
}  // namespace fastdiss
