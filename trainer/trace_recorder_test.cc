#include "trainer/trace_recorder.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

namespace fastdiss {
namespace {

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

void NamedWork() {
  RECORD_USER_SCOPE("test::outer");
  auto x = torch::ones({4, 4});
  {
    RECORD_USER_SCOPE("test::inner");
    x = torch::matmul(x, x);
  }
  EXPECT_EQ(x[0][0].item<float>(), 4.0f);
}

TEST(TraceRecorderTest, KeepsUserScopesOnlyByDefault) {
  auto recorder = TraceRecorder::Start(/*operators=*/false);
  ASSERT_TRUE(recorder.ok()) << recorder.status();
  NamedWork();
  const std::string trace = (*recorder)->ChromeTraceJson();
  EXPECT_EQ((*recorder)->span_count(), 2);
  EXPECT_EQ(Count(trace, "\"name\":\"test::outer\""), 1) << trace;
  EXPECT_EQ(Count(trace, "\"name\":\"test::inner\""), 1) << trace;
  EXPECT_EQ(Count(trace, "aten::matmul"), 0) << trace;
  EXPECT_EQ(Count(trace, "\"ph\":\"X\""), 2) << trace;
}

TEST(TraceRecorderTest, KeepsOperatorsWhenAsked) {
  auto recorder = TraceRecorder::Start(/*operators=*/true);
  ASSERT_TRUE(recorder.ok()) << recorder.status();
  NamedWork();
  const std::string trace = (*recorder)->ChromeTraceJson();
  EXPECT_EQ(Count(trace, "\"name\":\"test::inner\""), 1) << trace;
  EXPECT_GE(Count(trace, "\"name\":\"aten::matmul\""), 1) << trace;
}

TEST(TraceRecorderTest, OneAtATimeAndNothingAfterStop) {
  auto first = TraceRecorder::Start(false);
  ASSERT_TRUE(first.ok());
  auto second = TraceRecorder::Start(false);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  first->reset();
  NamedWork();  // no recorder: must not crash or record
  auto third = TraceRecorder::Start(false);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ((*third)->span_count(), 0);
  EXPECT_EQ((*third)->ChromeTraceJson(), "[]");
}

TEST(TraceRecorderTest, LeavesOutWorkUnderADisabledGuard) {
  auto recorder = TraceRecorder::Start(false);
  ASSERT_TRUE(recorder.ok());
  {
    at::RecordFunctionGuard off(false);
    NamedWork();
  }
  EXPECT_EQ((*recorder)->span_count(), 0);
}

}  // namespace
}  // namespace fastdiss
