#include "server/load_generator.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <utility>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "fastdiss/v1/generator.grpc.pb.h"
#include "model/json_writer.h"

namespace fastdiss {
namespace {

struct Call {
  grpc::ClientContext context;
  fastdiss::v1::GenerateRequest request;
  fastdiss::v1::GenerateResponse response;
  absl::Time start;
  uint64_t index = 0;
};

class Driver {
 public:
  Driver(const std::shared_ptr<grpc::Channel>& channel, const LoadOptions& options)
      : stub_(fastdiss::v1::Generator::NewStub(channel)), options_(options), rng_(options.seed) {}

  LoadReport Run() {
    const absl::Time begin = absl::Now();
    window_start_ = begin + options_.warmup;
    window_end_ = window_start_ + options_.duration;
    if (options_.concurrency > 0) {
      for (int i = 0; i < options_.concurrency; ++i) StartCall();
    } else {
      std::exponential_distribution<double> gap(options_.rate);
      absl::Time next = begin;
      while (next < window_end_) {
        absl::SleepFor(next - absl::Now());
        bool full;
        {
          absl::MutexLock lock(&mu_);
          full = in_flight_ >= options_.max_in_flight;
          if (full && next >= window_start_) ++errors_["dropped"];
          next += absl::Seconds(gap(rng_));
        }
        if (!full) StartCall();
      }
    }
    absl::MutexLock lock(&mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
    mu_.Await(absl::Condition(&idle));
    return Report();
  }

 private:
  void StartCall() {
    {
      absl::MutexLock lock(&mu_);
      ++in_flight_;
    }
    Launch();
  }

  // Starts one call already counted in in_flight_.
  void Launch() {
    auto* call = new Call();
    absl::Duration deadline;
    {
      absl::MutexLock lock(&mu_);
      const uint64_t index = next_index_++;
      call->index = index;
      call->request.set_model(options_.model);
      call->request.set_text(options_.inputs[index % options_.inputs.size()]);
      if (options_.max_steps > 0) {
        call->request.set_min_steps(options_.min_steps);
        call->request.set_max_steps(options_.max_steps);
      } else {
        call->request.set_steps(options_.steps[Draw(options_.steps.size())]);
      }
      call->request.set_seed(index);
      deadline = options_.deadlines[Draw(options_.deadlines.size())];
    }
    call->start = absl::Now();
    call->context.set_deadline(absl::ToChronoTime(call->start + deadline));
    stub_->async()->Generate(&call->context, &call->request, &call->response,
                             [this, call](grpc::Status status) { Finished(call, status); });
  }

  // Runs on a gRPC thread. In closed loop, the finished call's slot starts the next call.
  void Finished(Call* call, const grpc::Status& status) {
    const absl::Time end = absl::Now();
    bool again = false;
    {
      absl::MutexLock lock(&mu_);
      if (end >= window_start_ && end < window_end_) {
        if (status.ok()) {
          const double seconds = absl::ToDoubleSeconds(end - call->start);
          latencies_.push_back(seconds);
          by_steps_[call->response.planned_steps()].push_back(seconds);
          answers_.push_back({call->index, call->response.planned_steps(), call->response.steps(), seconds,
                              call->response.text()});
          queue_.push_back(call->response.timing().queue_seconds());
          if (model_version_.empty()) model_version_ = call->response.model_version();
        } else {
          ++errors_[absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()))];
          if (first_error_.empty()) first_error_ = status.error_message();
        }
      }
      again = options_.concurrency > 0 && end < window_end_;
      if (!again) --in_flight_;
    }
    delete call;
    if (again) Launch();
  }

  size_t Draw(size_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return std::uniform_int_distribution<size_t>(0, n - 1)(rng_);
  }

  LoadReport Report() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    LoadReport report;
    report.mode = options_.concurrency > 0 ? "closed" : "open";
    report.concurrency = options_.concurrency;
    report.rate = options_.rate;
    report.steps = options_.steps;
    report.min_steps = options_.min_steps;
    report.max_steps = options_.max_steps;
    report.measured_seconds = absl::ToDoubleSeconds(options_.duration);
    report.errors = errors_;
    report.ok = static_cast<int64_t>(latencies_.size());
    report.throughput = report.ok / report.measured_seconds;
    report.overall = Summarize(&latencies_);
    for (auto& [steps, seconds] : by_steps_) report.by_steps[steps] = Summarize(&seconds);
    report.server_queue = Summarize(&queue_);
    report.model_version = model_version_;
    report.first_error = first_error_;
    double planned = 0;
    for (const Answer& a : answers_) planned += a.planned_steps;
    report.mean_planned_steps = answers_.empty() ? 0 : planned / static_cast<double>(answers_.size());
    report.answers = std::move(answers_);
    return report;
  }

  std::unique_ptr<fastdiss::v1::Generator::Stub> stub_;
  const LoadOptions options_;
  absl::Time window_start_, window_end_;

  absl::Mutex mu_;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  uint64_t next_index_ ABSL_GUARDED_BY(mu_) = 0;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<double> latencies_ ABSL_GUARDED_BY(mu_);
  std::map<int, std::vector<double>> by_steps_ ABSL_GUARDED_BY(mu_);
  std::vector<double> queue_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> errors_ ABSL_GUARDED_BY(mu_);
  std::string first_error_ ABSL_GUARDED_BY(mu_);
  std::string model_version_ ABSL_GUARDED_BY(mu_);
  std::vector<Answer> answers_ ABSL_GUARDED_BY(mu_);
};

void WriteSummary(const LatencySummary& s, JsonWriter* json) {
  json->BeginObject();
  json->Key("count").Int(s.count);
  json->Key("mean_ms").Double(s.mean * 1e3);
  json->Key("p50_ms").Double(s.p50 * 1e3);
  json->Key("p90_ms").Double(s.p90 * 1e3);
  json->Key("p99_ms").Double(s.p99 * 1e3);
  json->Key("max_ms").Double(s.max * 1e3);
  json->EndObject();
}

std::string SummaryRow(const std::string& label, const LatencySummary& s) {
  char line[160];
  std::snprintf(line, sizeof(line), "  %-8s %8lld %9.1f %9.1f %9.1f %9.1f %9.1f\n", label.c_str(),
                static_cast<long long>(s.count), s.mean * 1e3, s.p50 * 1e3, s.p90 * 1e3, s.p99 * 1e3, s.max * 1e3);
  return line;
}

}  // namespace

LatencySummary Summarize(std::vector<double>* seconds) {
  LatencySummary s;
  if (seconds->empty()) return s;
  std::sort(seconds->begin(), seconds->end());
  const size_t n = seconds->size();
  // Nearest rank: the smallest value with at least q of the values at or below it.
  auto rank = [&](double q) {
    const size_t r = std::max<size_t>(1, static_cast<size_t>(std::ceil(q * static_cast<double>(n))));
    return (*seconds)[std::min(n, r) - 1];
  };
  s.count = static_cast<int64_t>(n);
  double sum = 0;
  for (double x : *seconds) sum += x;
  s.mean = sum / n;
  s.p50 = rank(0.50);
  s.p90 = rank(0.90);
  s.p99 = rank(0.99);
  s.max = seconds->back();
  return s;
}

std::string LoadReport::ToText() const {
  std::string text;
  char line[256];
  std::string mix;
  for (int k : steps) mix += (mix.empty() ? "" : ",") + std::to_string(k);
  mix = max_steps > 0 ? "K chosen by the server in " + std::to_string(min_steps) + ".." + std::to_string(max_steps)
                      : "K uniform over {" + mix + "}";
  if (mode == "closed") {
    std::snprintf(line, sizeof(line), "closed loop, concurrency %d, %s, %.0f s measured\n", concurrency, mix.c_str(),
                  measured_seconds);
  } else {
    std::snprintf(line, sizeof(line), "open loop, %.1f calls/s (Poisson), %s, %.0f s measured\n", rate, mix.c_str(),
                  measured_seconds);
  }
  text += line;
  int64_t failed = 0;
  for (const auto& [code, n] : errors) failed += n;
  std::snprintf(line, sizeof(line),
                "answers: %lld OK, %lld failed; throughput %.2f requests/s; mean K %.2f; model %s\n",
                static_cast<long long>(ok), static_cast<long long>(failed), throughput, mean_planned_steps,
                model_version.c_str());
  text += line;
  text += "latency (ms)   count      mean       p50       p90       p99       max\n";
  text += SummaryRow("all", overall);
  for (const auto& [k, s] : by_steps) text += SummaryRow("K=" + std::to_string(k), s);
  text += SummaryRow("queue", server_queue);
  for (const auto& [code, n] : errors) text += "errors " + code + ": " + std::to_string(n) + "\n";
  if (!first_error.empty()) text += "first error: " + first_error + "\n";
  return text;
}

std::string LoadReport::ToJson() const {
  JsonWriter json;
  json.BeginObject();
  json.Key("mode").String(mode);
  json.Key("concurrency").Int(concurrency);
  json.Key("rate").Double(rate);
  json.Key("steps").BeginArray();
  for (int k : steps) json.Int(k);
  json.EndArray();
  json.Key("min_steps").Int(min_steps);
  json.Key("max_steps").Int(max_steps);
  json.Key("mean_planned_steps").Double(mean_planned_steps);
  json.Key("measured_seconds").Double(measured_seconds);
  json.Key("ok").Int(ok);
  json.Key("errors").BeginObject();
  for (const auto& [code, n] : errors) json.Key(code).Int(n);
  json.EndObject();
  json.Key("throughput_rps").Double(throughput);
  json.Key("model_version").String(model_version);
  json.Key("first_error").String(first_error);
  json.Key("latency").BeginObject();
  json.Key("all");
  WriteSummary(overall, &json);
  for (const auto& [k, s] : by_steps) {
    json.Key("K=" + std::to_string(k));
    WriteSummary(s, &json);
  }
  json.EndObject();
  json.Key("server_queue");
  WriteSummary(server_queue, &json);
  json.EndObject();
  return json.str();
}

absl::StatusOr<LoadReport> RunLoad(const std::shared_ptr<grpc::Channel>& channel, const LoadOptions& options) {
  if (options.inputs.empty()) return absl::InvalidArgumentError("no input texts");
  if (options.steps.empty() && options.max_steps <= 0) return absl::InvalidArgumentError("no step counts");
  if (options.max_steps > 0 && (options.min_steps < 1 || options.min_steps > options.max_steps)) {
    return absl::InvalidArgumentError("the step range needs 1 <= min_steps <= max_steps");
  }
  if (options.deadlines.empty()) return absl::InvalidArgumentError("no deadlines");
  for (absl::Duration d : options.deadlines) {
    if (d <= absl::ZeroDuration()) return absl::InvalidArgumentError("deadlines must be positive");
  }
  if ((options.concurrency > 0) == (options.rate > 0)) {
    return absl::InvalidArgumentError("give exactly one of concurrency (closed loop) and rate (open loop)");
  }
  if (options.duration <= absl::ZeroDuration() || options.warmup < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("duration must be positive and warmup not negative");
  }
  if (options.max_in_flight < 1) return absl::InvalidArgumentError("max_in_flight must be positive");
  Driver driver(channel, options);
  return driver.Run();
}

}  // namespace fastdiss
