// LoadGenerator: drives a fastdiss-server with Generate calls for fastdiss-loadgen.
//
// Closed loop: `concurrency` calls are always open; each answer starts the next call. Open loop:
// calls start at Poisson arrivals of `rate` per second whatever the server does (so queueing
// shows), at most `max_in_flight` open at once (starts beyond that are counted as "dropped", never
// silently skipped). Each call's step count is drawn uniformly from `steps` (or it asks for the
// range `min_steps`..`max_steps` and the server chooses), its deadline uniformly from
// `deadlines`, its text cycles through `inputs`, its seed is its index. Calls started during the
// first `warmup` are answered but not counted; counting stops at `duration`, and calls still open
// are then waited for (up to their deadline) so none is lost. Run blocks; it uses the gRPC callback
// API, so one thread paces and gRPC's own threads take the answers.
//
// For soak runs (scripts/soak.sh) a FaultMix turns a share of the calls into the faults a server
// meets in production: streams, calls the client cancels, deadlines too short to meet, bad
// requests of every kind, and bursts past the queue limit. Every call then has a kind, each kind
// the status codes it may end with, and the report counts every call (warmup included) by kind
// and code, the calls that ended with a code their kind does not allow, and the calls that got no
// answer at all. With `verify` > 0, a uniform sample of the OK answers is afterwards asked again
// one at a time, alone on the server, and must give the same tokens.
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

// Shares of calls (each in [0, 1], together at most 1); the rest are plain Generate calls.
struct FaultMix {
  double stream = 0;  // GenerateStream, reading every step update
  double cancel = 0;  // cancelled by the client after a uniform delay in [0, cancel_within)
  absl::Duration cancel_within = absl::Milliseconds(500);
  double short_deadline = 0;  // a deadline uniform in [1 ms, short_deadline_max], too short to meet
  absl::Duration short_deadline_max = absl::Milliseconds(5);
  double bad = 0;  // a bad request; the kinds of BadRequestKinds() in turn
  absl::Duration burst_every =
      absl::ZeroDuration();  // > 0: every so often, burst_size calls at once
  int burst_size = 0;
  bool any() const {
    return stream > 0 || cancel > 0 || short_deadline > 0 || bad > 0 ||
           burst_every > absl::ZeroDuration();
  }
};

// The names of the bad requests a FaultMix sends, in turn (e.g. "unknown model", "invalid UTF-8").
std::vector<std::string> BadRequestKinds();

struct LoadOptions {
  std::vector<std::string> inputs;  // source texts, used in turn
  std::string model;                // empty: the server's default
  // Non-empty: each call picks one of these uniformly and names its model; `model` and `inputs`
  // are then not used.
  struct ModelInputs {
    std::string model;
    std::vector<std::string> inputs;
  };
  std::vector<ModelInputs> models;
  std::vector<int> steps = {1, 2, 5, 10, 20};
  int min_steps = 0, max_steps = 0;  // max_steps > 0: every call gives this range instead of steps
  int concurrency = 0;               // > 0: closed loop
  double rate = 0;                   // > 0: open loop, calls per second
  int max_in_flight = 4096;          // open loop only
  absl::Duration duration = absl::Seconds(30);
  absl::Duration warmup = absl::Seconds(3);
  std::vector<absl::Duration> deadlines = {absl::Seconds(60)};  // per call, drawn uniformly
  uint64_t seed = 1;  // of the step-count and arrival draws
  FaultMix faults;
  int verify = 0;  // OK answers to ask again alone afterwards (a uniform sample)
  absl::Duration answer_grace =
      absl::Seconds(30);  // past its deadline, an open call is "unanswered"
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

// Every call of one kind, by final status code, counted whether or not it fell in the window.
struct KindCount {
  std::map<std::string, int64_t> codes;  // by gRPC code name
  int64_t unexpected = 0;                // ended with a code this kind does not allow
  std::string first_unexpected;          // "CODE: message" of the first of them
};

// The sample of OK answers asked again alone (LoadOptions::verify).
struct VerifyReport {
  int64_t checked = 0;     // answers asked again, and answered OK the second time
  int64_t mismatched = 0;  // of those, token ids differed
  int64_t failed = 0;      // the second ask itself failed
  std::string first_mismatch;
};

struct LoadReport {
  std::string mode;  // "closed" or "open"
  int concurrency = 0;
  double rate = 0;
  std::vector<int> steps;
  int min_steps = 0, max_steps = 0;
  double measured_seconds = 0;  // the counting window
  int64_t ok = 0;
  std::map<std::string, int64_t> errors;   // by gRPC code name, "dropped" for open-loop overflow
  double throughput = 0;                   // OK answers per second in the window
  LatencySummary overall;                  // OK calls, client-side latency
  std::map<int, LatencySummary> by_steps;  // by the K the server planned
  double mean_planned_steps = 0;           // over OK answers
  LatencySummary server_queue;             // the server's reported queue time of OK calls
  std::string model_version;               // from the answers
  std::string first_error;                 // message of the first failed call counted
  std::vector<Answer> answers;             // the OK answers counted, in order of arrival
  // Every call, warmup, drain and the verify asks included (the server's counters cover the same
  // calls). calls_started does not count the verify asks.
  int64_t calls_started = 0;
  int64_t unanswered = 0;  // no answer by deadline + answer_grace; then cancelled
  std::map<std::string, KindCount>
      kinds;  // "plain", "stream", "cancel", "short deadline", "burst", "bad: ...", "verify"
  std::map<std::string, int64_t> all_codes;  // every call by final code
  int64_t unexpected = 0;                    // sum over kinds
  VerifyReport verify;

  std::string ToText() const;
  std::string ToJson() const;
};

absl::StatusOr<LoadReport> RunLoad(const std::shared_ptr<grpc::Channel>& channel,
                                   const LoadOptions& options);

}  // namespace fastdiss

#endif  // FASTDISS_SERVER_LOAD_GENERATOR_H_
