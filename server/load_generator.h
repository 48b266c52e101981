// LoadGenerator: drives a fastdiss-server with Generate calls for fastdiss-loadgen.
//
// Closed loop: `concurrency` calls are always open; each answer starts the next call. Open loop:
// calls start at Poisson arrivals of `rate` per second whatever the server does (so queueing
// shows), at most `max_in_flight` open at once (starts beyond that are counted as "dropped", never
// silently skipped). Each call's step count is drawn uniformly from `steps` (or it asks for the
// range `min_steps`..`max_steps` and the server chooses), its deadline uniformly from
// `deadlines`, its text cycles through `inputs`, its seed is its index. Calls started during the first `warmup` are answered but
// not counted; counting stops at `duration`, and calls still open are then waited for (up to their
// deadline) so none is lost. Run blocks; it uses the gRPC callback API, so one thread paces and
// gRPC's own threads take the answers.
#ifndef FASTDISS_SERVER_LOAD_GENERATOR_H_
#define FASTDISS_SERVER_LOAD_GENERATOR_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace fastdiss {

struct LoadOptions {
  std::vector<std::string> inputs;  // source texts, used in turn
  std::string model;                // empty: the server's default
  std::vector<int> steps = {1, 2, 5, 10, 20};
  int min_steps = 0, max_steps = 0;  // max_steps > 0: every call gives this range instead of steps
  int concurrency = 0;              // > 0: closed loop
  double rate = 0;                  // > 0: open loop, calls per second
  int max_in_flight = 4096;         // open loop only
  absl::Duration duration = absl::Seconds(30);
  absl::Duration warmup = absl::Seconds(3);
  std::vector<absl::Duration> deadlines = {absl::Seconds(60)};  // per call, drawn uniformly
  uint64_t seed = 1;                // of the step-count and arrival draws
};

struct LatencySummary {
  int64_t count = 0;
  double mean = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;  // seconds
};

// Nearest-rank percentiles of `seconds` (sorted in place). Empty input gives all zeros.
LatencySummary Summarize(std::vector<double>* seconds);

// One counted OK answer, for scoring what the server gave (`--output`).
struct Answer {
  uint64_t index = 0;  // the call's index; its text is inputs[index % inputs.size()]
  int planned_steps = 0;
  int steps_run = 0;
  double seconds = 0;  // client latency
  std::string text;
};

struct LoadReport {
  std::string mode;             // "closed" or "open"
  int concurrency = 0;
  double rate = 0;
  std::vector<int> steps;
  int min_steps = 0, max_steps = 0;
  double measured_seconds = 0;  // the counting window
  int64_t ok = 0;
  std::map<std::string, int64_t> errors;  // by gRPC code name, "dropped" for open-loop overflow
  double throughput = 0;        // OK answers per second in the window
  LatencySummary overall;       // OK calls, client-side latency
  std::map<int, LatencySummary> by_steps;  // by the K the server planned
  double mean_planned_steps = 0;           // over OK answers
  LatencySummary server_queue;  // the server's reported queue time of OK calls
  std::string model_version;    // from the answers
  std::string first_error;      // message of the first failed call counted
  std::vector<Answer> answers;  // the OK answers counted, in order of arrival

  std::string ToText() const;
  std::string ToJson() const;
};

absl::StatusOr<LoadReport> RunLoad(const std::shared_ptr<grpc::Channel>& channel, const LoadOptions& options);

}  // namespace fastdiss

#endif  // FASTDISS_SERVER_LOAD_GENERATOR_H_
