// TraceRecorder: records LibTorch's RecordFunction spans while it lives, and writes them as a
// Chrome trace (chrome://tracing, ui.perfetto.dev, scripts/profile-summary.py).
//
// By default only the user scopes are kept: the phases the trainer names with RECORD_USER_SCOPE
// ("fastdiss::step", "fastdiss::backward", ...), a dozen spans per step at a clock read each, so a
// whole run can be recorded. With `operators` every ATen operator and autograd function is kept
// too, hundreds of thousands of spans per step that slow the run: profile a few steps only.
// Times are host wall-clock: on a CUDA device they show when work was launched, not run.
// One recorder at a time per process; spans of every thread are kept.
#ifndef FASTDISS_TRAINER_TRACE_RECORDER_H_
#define FASTDISS_TRAINER_TRACE_RECORDER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"

namespace fastdiss {

class TraceRecorder {
 public:
  // Fails when another recorder is active.
  static absl::StatusOr<std::unique_ptr<TraceRecorder>> Start(bool operators);
  ~TraceRecorder();  // stops recording
  TraceRecorder(const TraceRecorder&) = delete;
  TraceRecorder& operator=(const TraceRecorder&) = delete;

  int64_t span_count() const;
  // The spans recorded so far as a Chrome trace: a JSON array of complete ("X") events, times in
  // us.
  std::string ChromeTraceJson() const;
  absl::Status WriteChromeTrace(const std::string& path) const;

  struct State;  // shared with the RecordFunction callbacks

 private:
  explicit TraceRecorder(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace fastdiss

#endif  // FASTDISS_TRAINER_TRACE_RECORDER_H_
