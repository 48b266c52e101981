#include "trainer/trace_recorder.h"

#include <ATen/record_function.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "base/json.h"

namespace fastdiss {
namespace {

int64_t NowNanoseconds() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Span {
  std::string name;
  int64_t start_ns;
  int64_t end_ns;
  uint64_t thread;
};

struct StartTime : at::ObserverContext {
  explicit StartTime(int64_t ns) : start_ns(ns) {}
  int64_t start_ns;
};

}  // namespace

struct TraceRecorder::State {
  at::CallbackHandle handle = 0;
  int64_t origin_ns = NowNanoseconds();
  mutable std::mutex mutex;
  std::vector<Span> spans;
};

namespace {

// The recorder the callbacks write to (RecordFunction callbacks are plain function pointers).
std::atomic<TraceRecorder::State*> active{nullptr};

std::unique_ptr<at::ObserverContext> OnStart(const at::RecordFunction&) {
  return std::make_unique<StartTime>(NowNanoseconds());
}

void OnEnd(const at::RecordFunction& fn, at::ObserverContext* context) {
  const int64_t end = NowNanoseconds();
  TraceRecorder::State* state = active.load();
  if (state == nullptr || context == nullptr) return;
  const int64_t start = static_cast<StartTime*>(context)->start_ns;
  std::lock_guard<std::mutex> lock(state->mutex);
  state->spans.push_back({fn.name(), start, end, fn.threadId()});
}

}  // namespace

absl::StatusOr<std::unique_ptr<TraceRecorder>> TraceRecorder::Start(bool operators) {
  auto state = std::make_unique<State>();
  State* expected = nullptr;
  if (!active.compare_exchange_strong(expected, state.get())) {
    return absl::FailedPreconditionError("a TraceRecorder is already recording");
  }
  std::unordered_set<at::RecordScope, std::hash<at::RecordScope>> scopes = {
      at::RecordScope::USER_SCOPE};
  if (operators) {
    scopes.insert(at::RecordScope::FUNCTION);
    scopes.insert(at::RecordScope::BACKWARD_FUNCTION);
  }
  state->handle = at::addGlobalCallback(
      at::RecordFunctionCallback(OnStart, OnEnd).needsInputs(false).scopes(scopes));
  return std::unique_ptr<TraceRecorder>(new TraceRecorder(std::move(state)));
}

TraceRecorder::TraceRecorder(std::unique_ptr<State> state) : state_(std::move(state)) {}

TraceRecorder::~TraceRecorder() {
  at::removeCallback(state_->handle);
  active.store(nullptr);
}

int64_t TraceRecorder::span_count() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return static_cast<int64_t>(state_->spans.size());
}

std::string TraceRecorder::ChromeTraceJson() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  Json json = Json::array();
  for (const Span& span : state_->spans) {
    json.push_back({{"name", span.name},
                    {"ph", "X"},
                    {"ts", (span.start_ns - state_->origin_ns) / 1e3},
                    {"dur", (span.end_ns - span.start_ns) / 1e3},
                    {"pid", 0},
                    {"tid", span.thread}});
  }
  return JsonText(json);
}

absl::Status TraceRecorder::WriteChromeTrace(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << ChromeTraceJson() << "\n";
  out.close();
  if (!out) return absl::InternalError("cannot write the trace to " + path);
  return absl::OkStatus();
}

}  // namespace fastdiss
