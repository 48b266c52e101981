#include "server/load_generator.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "base/json.h"
#include "fastdiss/v1/generator.grpc.pb.h"

namespace fastdiss {
namespace {

using fastdiss::v1::GenerateEvent;
using fastdiss::v1::GenerateRequest;
using fastdiss::v1::GenerateResponse;

enum class Kind { kPlain, kStream, kCancel, kShortDeadline, kBurst, kBad };

struct BadRequest {
  const char* name;
  grpc::StatusCode code;  // the one code it may end with
  void (*make)(GenerateRequest*);
};

// Each kind of request the server must refuse, made from a valid one.
const std::vector<BadRequest>& BadRequests() {
  static const std::vector<BadRequest> kinds = {
      {"unknown model", grpc::StatusCode::NOT_FOUND,
       [](GenerateRequest* r) { r->set_model("no-such-model"); }},
      {"steps 0", grpc::StatusCode::INVALID_ARGUMENT, [](GenerateRequest* r) { r->set_steps(0); }},
      {"steps too many", grpc::StatusCode::INVALID_ARGUMENT,
       [](GenerateRequest* r) { r->set_steps(100000); }},
      {"empty text", grpc::StatusCode::INVALID_ARGUMENT,
       [](GenerateRequest* r) { r->set_text(""); }},
      // Only a raw or C++ client can send this: the standard clients refuse to.
      {"invalid UTF-8", grpc::StatusCode::INVALID_ARGUMENT,
       [](GenerateRequest* r) { r->set_text(r->text() + " \xff\xfe"); }},
      {"too many tokens", grpc::StatusCode::INVALID_ARGUMENT,
       [](GenerateRequest* r) {
         std::string text;
         while (text.size() < 6000) text += "word ";
         r->set_text(text);
       }},
      {"oversized text", grpc::StatusCode::INVALID_ARGUMENT,
       [](GenerateRequest* r) { r->set_text(std::string(200000, 'q')); }},
      {"noise beam too wide", grpc::StatusCode::INVALID_ARGUMENT,
       [](GenerateRequest* r) { r->set_noise_beam(1000); }},
      {"negative length beam", grpc::StatusCode::INVALID_ARGUMENT,
       [](GenerateRequest* r) { r->set_length_beam(-1); }},
      {"step range reversed", grpc::StatusCode::INVALID_ARGUMENT,
       [](GenerateRequest* r) {
         r->set_steps(0);
         r->set_min_steps(10);
         r->set_max_steps(5);
       }},
      {"negative early exit", grpc::StatusCode::INVALID_ARGUMENT,
       [](GenerateRequest* r) { r->set_early_exit_steps(-1); }},
  };
  return kinds;
}

std::string CodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

class Driver;

// One call, unary or streamed. It owns itself (`self`) until its end is recorded; the canceller
// and the registry of open calls hold weak references only.
struct Call : grpc::ClientReadReactor<GenerateEvent> {
  grpc::ClientContext context;
  GenerateRequest request;
  GenerateResponse response;  // the unary answer, or the stream's result event
  GenerateEvent event;        // the stream's read buffer
  absl::Time start;
  uint64_t index = 0;
  Kind kind = Kind::kPlain;
  int bad = -1;  // index into BadRequests() for Kind::kBad
  Driver* driver = nullptr;
  std::shared_ptr<Call> self;

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream has ended; OnDone follows
    if (event.has_result()) response.Swap(event.mutable_result());
    StartRead(&event);
  }
  void OnDone(const grpc::Status& status) override;
};

std::string KindName(const Call& call) {
  switch (call.kind) {
    case Kind::kPlain:
      return "plain";
    case Kind::kStream:
      return "stream";
    case Kind::kCancel:
      return "cancel";
    case Kind::kShortDeadline:
      return "short deadline";
    case Kind::kBurst:
      return "burst";
    case Kind::kBad:
      return std::string("bad: ") + BadRequests()[call.bad].name;
  }
  return "?";
}

bool Allowed(const Call& call, grpc::StatusCode code) {
  using grpc::StatusCode;
  if (call.kind == Kind::kBad) return code == BadRequests()[call.bad].code;
  // A valid call may always be answered; refused when the queue is full; or refused, or stopped,
  // when the server predicts it cannot finish by its deadline (engine.deadline_aware), which a
  // burst can bring about even for a deadline of a minute.
  if (code == StatusCode::OK || code == StatusCode::RESOURCE_EXHAUSTED ||
      code == StatusCode::DEADLINE_EXCEEDED) {
    return true;
  }
  return call.kind == Kind::kCancel && code == StatusCode::CANCELLED;
}

class Driver {
 public:
  Driver(const std::shared_ptr<grpc::Channel>& channel, const LoadOptions& options)
      : stub_(fastdiss::v1::Generator::NewStub(channel)), options_(options), rng_(options.seed) {
    if (options_.models.empty()) options_.models.push_back({options_.model, options_.inputs});
    for (absl::Duration d : options_.deadlines) longest_deadline_ = std::max(longest_deadline_, d);
  }

  LoadReport Run() {
    const absl::Time begin = absl::Now();
    window_start_ = begin + options_.warmup;
    window_end_ = window_start_ + options_.duration;
    std::thread canceller([this] { CancelLoop(); });
    if (options_.concurrency > 0) {
      for (int i = 0; i < options_.concurrency; ++i) StartCall(Kind::kPlain);
    } else {
      std::exponential_distribution<double> gap(options_.rate);
      const bool bursts =
          options_.faults.burst_every > absl::ZeroDuration() && options_.faults.burst_size > 0;
      absl::Time next = begin;
      absl::Time next_burst = bursts ? begin + options_.faults.burst_every : absl::InfiniteFuture();
      while (std::min(next, next_burst) < window_end_) {
        if (next_burst < next) {
          absl::SleepFor(next_burst - absl::Now());
          // A burst ignores max_in_flight: its point is to overrun the server's queue.
          for (int i = 0; i < options_.faults.burst_size; ++i) StartCall(Kind::kBurst);
          next_burst += options_.faults.burst_every;
          continue;
        }
        absl::SleepFor(next - absl::Now());
        bool full;
        Kind kind;
        {
          absl::MutexLock lock(&mu_);
          full = in_flight_ >= options_.max_in_flight;
          if (full && next >= window_start_) ++errors_["dropped"];
          next += absl::Seconds(gap(rng_));
          kind = DrawKind();
        }
        if (!full) StartCall(kind);
      }
    }
    WaitForAll();
    {
      absl::MutexLock lock(&cancel_mu_);
      stop_ = true;
    }
    canceller.join();
    VerifyReport verify = Verify();
    absl::MutexLock lock(&mu_);
    LoadReport report = Report();
    report.verify = verify;
    return report;
  }

  // Runs on a gRPC thread when a call has ended, however it ended. In closed loop, the finished
  // call's slot starts the next call.
  void Finished(Call* call, const grpc::Status& status) {
    const absl::Time end = absl::Now();
    std::shared_ptr<Call> keep =
        std::move(call->self);  // released last, after the call is recorded
    bool again = false;
    {
      absl::MutexLock lock(&mu_);
      live_.erase(call->index);
      const std::string code = CodeName(status.error_code());
      ++all_codes_[code];
      KindCount& kind = kinds_[KindName(*call)];
      ++kind.codes[code];
      if (!Allowed(*call, status.error_code())) {
        ++kind.unexpected;
        if (kind.first_unexpected.empty())
          kind.first_unexpected = code + ": " + status.error_message();
      }
      if (status.ok() && call->kind != Kind::kBad) Sample(*call);
      const bool timed =
          call->kind == Kind::kPlain || call->kind == Kind::kStream || call->kind == Kind::kBurst;
      if (timed && end >= window_start_ && end < window_end_) {
        if (status.ok()) {
          const double seconds = absl::ToDoubleSeconds(end - call->start);
          latencies_.push_back(seconds);
          by_steps_[call->response.planned_steps()].push_back(seconds);
          answers_.push_back({call->index, call->response.planned_steps(), call->response.steps(),
                              seconds, call->response.text()});
          queue_.push_back(call->response.timing().queue_seconds());
          if (model_version_.empty()) model_version_ = call->response.model_version();
        } else {
          ++errors_[code];
          if (first_error_.empty()) first_error_ = status.error_message();
        }
      }
      again = options_.concurrency > 0 && end < window_end_;
      if (!again) --in_flight_;
    }
    if (again) Launch(Kind::kPlain);
  }

 private:
  void StartCall(Kind kind) {
    {
      absl::MutexLock lock(&mu_);
      ++in_flight_;
    }
    Launch(kind);
  }

  // Starts one call already counted in in_flight_.
  void Launch(Kind kind) {
    auto call = std::make_shared<Call>();
    Call* c = call.get();
    c->self = call;
    c->driver = this;
    c->kind = kind;
    absl::Duration deadline, cancel_after;
    {
      absl::MutexLock lock(&mu_);
      const uint64_t index = next_index_++;
      c->index = index;
      const LoadOptions::ModelInputs& target = options_.models[Draw(options_.models.size())];
      c->request.set_model(target.model);
      c->request.set_text(target.inputs[index % target.inputs.size()]);
      if (options_.max_steps > 0) {
        c->request.set_min_steps(options_.min_steps);
        c->request.set_max_steps(options_.max_steps);
      } else {
        c->request.set_steps(options_.steps[Draw(options_.steps.size())]);
      }
      c->request.set_seed(index);
      deadline = options_.deadlines[Draw(options_.deadlines.size())];
      if (kind == Kind::kBad) {
        c->bad = static_cast<int>(next_bad_++ % BadRequests().size());
        BadRequests()[c->bad].make(&c->request);
      } else if (kind == Kind::kShortDeadline) {
        const double max_ms =
            std::max(1.0, absl::ToDoubleMilliseconds(options_.faults.short_deadline_max));
        deadline = absl::Milliseconds(std::uniform_real_distribution<double>(1.0, max_ms)(rng_));
      } else if (kind == Kind::kCancel) {
        cancel_after = absl::Milliseconds(std::uniform_real_distribution<double>(
            0.0, absl::ToDoubleMilliseconds(options_.faults.cancel_within))(rng_));
      }
      live_[index] = call;
    }
    c->start = absl::Now();
    c->context.set_deadline(absl::ToChronoTime(c->start + deadline));
    if (kind == Kind::kCancel) {
      absl::MutexLock lock(&cancel_mu_);
      cancels_.emplace(c->start + cancel_after, call);
      wake_ = true;
    }
    call.reset();  // from here the call may end at any time; `c` is not touched again here
    if (kind == Kind::kStream) {
      stub_->async()->GenerateStream(&c->context, &c->request, c);
      c->StartRead(&c->event);
      c->StartCall();
    } else {
      stub_->async()->Generate(&c->context, &c->request, &c->response,
                               [c](grpc::Status status) { c->OnDone(status); });
    }
  }

  Kind DrawKind() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const FaultMix& f = options_.faults;
    double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    if ((u -= f.stream) < 0) return Kind::kStream;
    if ((u -= f.cancel) < 0) return Kind::kCancel;
    if ((u -= f.short_deadline) < 0) return Kind::kShortDeadline;
    if ((u -= f.bad) < 0) return Kind::kBad;
    return Kind::kPlain;
  }

  // Cancels the calls of Kind::kCancel at their times, whatever state they are in then.
  void CancelLoop() {
    cancel_mu_.Lock();
    while (!stop_) {
      const absl::Time next = cancels_.empty() ? absl::InfiniteFuture() : cancels_.begin()->first;
      if (next <= absl::Now()) {
        std::weak_ptr<Call> weak = cancels_.begin()->second;
        cancels_.erase(cancels_.begin());
        cancel_mu_.Unlock();
        if (std::shared_ptr<Call> call = weak.lock()) call->context.TryCancel();
        cancel_mu_.Lock();
        continue;
      }
      wake_ = false;
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(cancel_mu_) { return stop_ || wake_; };
      cancel_mu_.AwaitWithDeadline(absl::Condition(&woken), next);
    }
    cancel_mu_.Unlock();
  }

  // Waits for every call to end. One still open past the longest deadline plus the grace got no
  // answer from the server: it is counted, then cancelled so that it ends.
  void WaitForAll() {
    const absl::Time give_up = absl::Now() + longest_deadline_ + options_.answer_grace;
    std::vector<std::shared_ptr<Call>> stuck;
    {
      absl::MutexLock lock(&mu_);
      auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
      if (!mu_.AwaitWithDeadline(absl::Condition(&idle), give_up)) {
        unanswered_ = in_flight_;
        for (auto& [index, weak] : live_) {
          if (std::shared_ptr<Call> call = weak.lock()) stuck.push_back(std::move(call));
        }
      }
    }
    for (auto& call : stuck) call->context.TryCancel();
    stuck.clear();
    absl::MutexLock lock(&mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
    mu_.Await(absl::Condition(&idle));
  }

  // Reservoir sampling: every OK answer is equally likely to be among the `verify` kept.
  void Sample(const Call& call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (options_.verify <= 0) return;
    ++sample_seen_;
    size_t slot = samples_.size();
    if (samples_.size() >= static_cast<size_t>(options_.verify)) {
      slot = std::uniform_int_distribution<uint64_t>(0, sample_seen_ - 1)(rng_);
      if (slot >= samples_.size()) return;
    } else {
      samples_.emplace_back();
    }
    samples_[slot] = {call.request, call.response};
  }

  // Asks each sampled request again, one at a time with nothing else running, and compares tokens.
  VerifyReport Verify() {
    std::vector<std::pair<GenerateRequest, GenerateResponse>> samples;
    {
      absl::MutexLock lock(&mu_);
      samples.swap(samples_);
    }
    VerifyReport report;
    for (const auto& [request, first] : samples) {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(120)));
      GenerateResponse again;
      const grpc::Status status = stub_->Generate(&context, request, &again);
      {
        // Counted like every other call, so that the server's counters still agree.
        absl::MutexLock lock(&mu_);
        const std::string code = CodeName(status.error_code());
        ++all_codes_[code];
        KindCount& kind = kinds_["verify"];
        ++kind.codes[code];
        if (!status.ok()) {
          ++kind.unexpected;
          if (kind.first_unexpected.empty())
            kind.first_unexpected = code + ": " + status.error_message();
        }
      }
      if (!status.ok()) {
        ++report.failed;
        continue;
      }
      ++report.checked;
      const bool same =
          first.token_ids_size() == again.token_ids_size() &&
          std::equal(first.token_ids().begin(), first.token_ids().end(), again.token_ids().begin());
      if (!same) {
        ++report.mismatched;
        if (report.first_mismatch.empty()) {
          report.first_mismatch = "model '" + request.model() + "' text '" + request.text() +
                                  "' K " + std::to_string(request.steps()) + " seed " +
                                  std::to_string(request.seed()) + ": under load '" + first.text() +
                                  "', alone '" + again.text() + "'";
        }
      }
    }
    return report;
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
    report.mean_planned_steps =
        answers_.empty() ? 0 : planned / static_cast<double>(answers_.size());
    report.answers = std::move(answers_);
    report.calls_started = static_cast<int64_t>(next_index_);
    report.unanswered = unanswered_;
    report.kinds = kinds_;
    report.all_codes = all_codes_;
    for (const auto& [name, kind] : kinds_) report.unexpected += kind.unexpected;
    return report;
  }

  std::unique_ptr<fastdiss::v1::Generator::Stub> stub_;
  LoadOptions options_;
  absl::Duration longest_deadline_ = absl::ZeroDuration();
  absl::Time window_start_, window_end_;

  absl::Mutex mu_;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  uint64_t next_index_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_bad_ ABSL_GUARDED_BY(mu_) = 0;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t unanswered_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, std::weak_ptr<Call>> live_ ABSL_GUARDED_BY(mu_);
  std::vector<double> latencies_ ABSL_GUARDED_BY(mu_);
  std::map<int, std::vector<double>> by_steps_ ABSL_GUARDED_BY(mu_);
  std::vector<double> queue_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> errors_ ABSL_GUARDED_BY(mu_);
  std::string first_error_ ABSL_GUARDED_BY(mu_);
  std::string model_version_ ABSL_GUARDED_BY(mu_);
  std::vector<Answer> answers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, KindCount> kinds_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> all_codes_ ABSL_GUARDED_BY(mu_);
  uint64_t sample_seen_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::pair<GenerateRequest, GenerateResponse>> samples_ ABSL_GUARDED_BY(mu_);

  absl::Mutex cancel_mu_;
  std::multimap<absl::Time, std::weak_ptr<Call>> cancels_ ABSL_GUARDED_BY(cancel_mu_);
  bool wake_ ABSL_GUARDED_BY(cancel_mu_) = false;
  bool stop_ ABSL_GUARDED_BY(cancel_mu_) = false;
};

void Call::OnDone(const grpc::Status& status) { driver->Finished(this, status); }

Json SummaryJson(const LatencySummary& s) {
  Json json;
  json["count"] = s.count;
  json["mean_ms"] = s.mean * 1e3;
  json["p50_ms"] = s.p50 * 1e3;
  json["p90_ms"] = s.p90 * 1e3;
  json["p99_ms"] = s.p99 * 1e3;
  json["max_ms"] = s.max * 1e3;
  return json;
}

std::string SummaryRow(const std::string& label, const LatencySummary& s) {
  char line[160];
  std::snprintf(line, sizeof(line), "  %-8s %8lld %9.1f %9.1f %9.1f %9.1f %9.1f\n", label.c_str(),
                static_cast<long long>(s.count), s.mean * 1e3, s.p50 * 1e3, s.p90 * 1e3,
                s.p99 * 1e3, s.max * 1e3);
  return line;
}

}  // namespace

std::vector<std::string> BadRequestKinds() {
  std::vector<std::string> names;
  for (const BadRequest& bad : BadRequests()) names.push_back(bad.name);
  return names;
}

LatencySummary Summarize(std::vector<double>* seconds) {
  LatencySummary s;
  if (seconds->empty()) return s;
  std::sort(seconds->begin(), seconds->end());
  const size_t n = seconds->size();
  // Nearest rank: the smallest value with at least q of the values at or below it.
  auto rank = [&](double q) {
    const size_t r =
        std::max<size_t>(1, static_cast<size_t>(std::ceil(q * static_cast<double>(n))));
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
  mix = max_steps > 0 ? "K chosen by the server in " + std::to_string(min_steps) + ".." +
                            std::to_string(max_steps)
                      : "K uniform over {" + mix + "}";
  if (mode == "closed") {
    std::snprintf(line, sizeof(line), "closed loop, concurrency %d, %s, %.0f s measured\n",
                  concurrency, mix.c_str(), measured_seconds);
  } else {
    std::snprintf(line, sizeof(line), "open loop, %.1f calls/s (Poisson), %s, %.0f s measured\n",
                  rate, mix.c_str(), measured_seconds);
  }
  text += line;
  int64_t failed = 0;
  for (const auto& [code, n] : errors) failed += n;
  std::snprintf(
      line, sizeof(line),
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
  text += "every call (" + std::to_string(calls_started) + " started, " +
          std::to_string(unanswered) + " unanswered, " + std::to_string(unexpected) +
          " with a code their kind does not allow):\n";
  for (const auto& [name, kind] : kinds) {
    std::string codes;
    for (const auto& [code, n] : kind.codes) codes += " " + code + " " + std::to_string(n);
    text += "  " + name + ":" + codes;
    if (kind.unexpected > 0)
      text +=
          "; UNEXPECTED " + std::to_string(kind.unexpected) + " (" + kind.first_unexpected + ")";
    text += "\n";
  }
  if (verify.checked + verify.failed > 0) {
    text += "asked again alone: " + std::to_string(verify.checked) + " answers, " +
            std::to_string(verify.mismatched) + " with other tokens, " +
            std::to_string(verify.failed) + " failed\n";
    if (!verify.first_mismatch.empty()) text += "first mismatch: " + verify.first_mismatch + "\n";
  }
  return text;
}

std::string LoadReport::ToJson() const {
  Json json;
  json["mode"] = mode;
  json["concurrency"] = concurrency;
  json["rate"] = rate;
  json["steps"] = steps;
  json["min_steps"] = min_steps;
  json["max_steps"] = max_steps;
  json["mean_planned_steps"] = mean_planned_steps;
  json["measured_seconds"] = measured_seconds;
  json["ok"] = ok;
  json["errors"] = Json::object();
  for (const auto& [code, n] : errors) json["errors"][code] = n;
  json["throughput_rps"] = throughput;
  json["model_version"] = model_version;
  json["first_error"] = first_error;
  json["latency"]["all"] = SummaryJson(overall);
  for (const auto& [k, s] : by_steps) json["latency"]["K=" + std::to_string(k)] = SummaryJson(s);
  json["server_queue"] = SummaryJson(server_queue);
  json["calls_started"] = calls_started;
  json["unanswered"] = unanswered;
  json["unexpected"] = unexpected;
  json["all_codes"] = Json::object();
  for (const auto& [code, n] : all_codes) json["all_codes"][code] = n;
  json["kinds"] = Json::object();
  for (const auto& [name, kind] : kinds) {
    Json& entry = json["kinds"][name];
    entry["codes"] = Json::object();
    for (const auto& [code, n] : kind.codes) entry["codes"][code] = n;
    entry["unexpected"] = kind.unexpected;
    entry["first_unexpected"] = kind.first_unexpected;
  }
  json["verify"]["checked"] = verify.checked;
  json["verify"]["mismatched"] = verify.mismatched;
  json["verify"]["failed"] = verify.failed;
  json["verify"]["first_mismatch"] = verify.first_mismatch;
  return JsonText(json);
}

absl::StatusOr<LoadReport> RunLoad(const std::shared_ptr<grpc::Channel>& channel,
                                   const LoadOptions& options) {
  if (options.models.empty() && options.inputs.empty())
    return absl::InvalidArgumentError("no input texts");
  for (const LoadOptions::ModelInputs& m : options.models) {
    if (m.inputs.empty())
      return absl::InvalidArgumentError("no input texts for model '" + m.model + "'");
  }
  const FaultMix& f = options.faults;
  for (double share : {f.stream, f.cancel, f.short_deadline, f.bad}) {
    if (!(share >= 0 && share <= 1))
      return absl::InvalidArgumentError("fault shares must be in [0, 1]");
  }
  if (f.stream + f.cancel + f.short_deadline + f.bad > 1 + 1e-9) {
    return absl::InvalidArgumentError("fault shares add up to more than 1");
  }
  if (f.any() && options.concurrency > 0) {
    return absl::InvalidArgumentError(
        "faults need the open loop (rate), which keeps arriving whatever the server does");
  }
  if (f.cancel_within <= absl::ZeroDuration() || f.short_deadline_max < absl::Milliseconds(1) ||
      f.burst_size < 0) {
    return absl::InvalidArgumentError(
        "cancel_within must be positive, short_deadline_max at least 1 ms, burst_size >= 0");
  }
  if (options.verify < 0) return absl::InvalidArgumentError("verify must not be negative");
  if (options.steps.empty() && options.max_steps <= 0)
    return absl::InvalidArgumentError("no step counts");
  if (options.max_steps > 0 && (options.min_steps < 1 || options.min_steps > options.max_steps)) {
    return absl::InvalidArgumentError("the step range needs 1 <= min_steps <= max_steps");
  }
  if (options.deadlines.empty()) return absl::InvalidArgumentError("no deadlines");
  for (absl::Duration d : options.deadlines) {
    if (d <= absl::ZeroDuration()) return absl::InvalidArgumentError("deadlines must be positive");
  }
  if ((options.concurrency > 0) == (options.rate > 0)) {
    return absl::InvalidArgumentError(
        "give exactly one of concurrency (closed loop) and rate (open loop)");
  }
  if (options.duration <= absl::ZeroDuration() || options.warmup < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("duration must be positive and warmup not negative");
  }
  if (options.max_in_flight < 1)
    return absl::InvalidArgumentError("max_in_flight must be positive");
  Driver driver(channel, options);
  return driver.Run();
}

}  // namespace fastdiss
