// fastdiss-engine-bench: the server's engine alone, in one process, under a closed loop of calls
// that arrive the moment the previous one is answered: no gRPC, no network, no load generator
// sharing the cores. It loads a model exactly as fastdiss-server does (the same config file and
// --set keys, the same runtime settings and warm-up), and prints the answers per second, each K's
// latency, and where the engine thread's time went: denoiser forwards, admissions (the
// newcomers' encoder pass) and the rest (answering, bookkeeping, waiting). Beside a served run
// with fastdiss-loadgen, the difference is what gRPC and the client cost on the same machine.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/command_line.h"
#include "model/runtime.h"
#include "server/engine.h"
#include "server/load_generator.h"
#include "server/served_model.h"
#include "server/server_config.h"

namespace {

constexpr char kUsage[] =
    R"(Usage: fastdiss-engine-bench --input FILE [--config FILE] [--set key=value ...]
                             [--model NAME] [--concurrency 32] [--steps 1,2,5,10,20]
                             [--duration 20] [--warmup 3] [--seed 1]

Runs one model of the server's config (--config and --set as fastdiss-server takes them; --model
picks it, default the config's default model) under a closed loop of --concurrency calls inside
this process: each answer schedules the next call at once. Texts are the non-empty lines of
--input in turn; each call's K is drawn uniformly from --steps. Answers during --warmup seconds
are not counted; counting lasts --duration seconds. Prints answers/s, latency per K, and the
engine thread's time split into forwards, admissions and the rest.
)";

constexpr int64_t kMaxInt = std::numeric_limits<int>::max();

struct BenchFlags {
  std::string config_path, input, model;
  std::vector<std::string> overrides;
  int concurrency = 32;
  std::vector<int> steps = {1, 2, 5, 10, 20};
  double duration = 20, warmup = 3;
  uint64_t seed = 1;
};

std::optional<int> ParseFlags(int argc, char** argv, BenchFlags* out) {
  fastdiss::FlagReader flags("fastdiss-engine-bench", argc, argv);
  while (flags.Next()) {
    if (flags.Is("--help") || flags.Is("-h")) {
      std::cout << kUsage;
      return 0;
    } else if (flags.Is("--config")) {
      out->config_path = flags.String();
    } else if (flags.Is("--set")) {
      out->overrides.push_back(flags.String());
    } else if (flags.Is("--model")) {
      out->model = flags.String();
    } else if (flags.Is("--input")) {
      out->input = flags.String();
    } else if (flags.Is("--concurrency")) {
      out->concurrency = static_cast<int>(flags.Int(1, 100000));
    } else if (flags.Is("--steps")) {
      out->steps.clear();
      for (int64_t k : flags.IntList(1, kMaxInt)) out->steps.push_back(static_cast<int>(k));
    } else if (flags.Is("--duration")) {
      out->duration = flags.Double(0.1, 24 * 3600);
    } else if (flags.Is("--warmup")) {
      out->warmup = flags.Double(0, 24 * 3600);
    } else if (flags.Is("--seed")) {
      out->seed = flags.Uint64();
    } else {
      flags.Unknown();
    }
  }
  if (out->input.empty()) flags.Fail("--input is required");
  return std::nullopt;
}

// Time spent in one kind of engine work within the counting window.
struct Work {
  int64_t count = 0, rows = 0, requests = 0;
  absl::Duration time;

  void Add(const fastdiss::StepStats& stats) {
    ++count;
    rows += stats.rows;
    requests += stats.requests;
    time += stats.duration;
  }
};

// The closed loop: every answer (or error) schedules the next call from the engine's thread.
class ClosedLoop {
 public:
  ClosedLoop(const BenchFlags& flags, std::vector<std::vector<int>> sources, bool clamp)
      : flags_(flags), sources_(std::move(sources)), clamp_(clamp), rng_(flags.seed) {}

  // Counting starts at `from` and ends at `until`; after `until` no new call is made.
  void Start(fastdiss::Engine* engine, absl::Time from, absl::Time until) {
    {
      absl::MutexLock lock(&mu_);
      engine_ = engine;
      from_ = from;
      until_ = until;
    }
    for (int c = 0; c < flags_.concurrency; ++c) Next();
  }

  void RecordForward(const fastdiss::StepStats& stats) {
    absl::MutexLock lock(&mu_);
    if (Counting(absl::Now())) forwards_.Add(stats);
  }
  void RecordAdmission(const fastdiss::StepStats& stats) {
    absl::MutexLock lock(&mu_);
    if (Counting(absl::Now())) admissions_.Add(stats);
  }

  void Report(std::ostream& out) {
    absl::MutexLock lock(&mu_);
    const double seconds = absl::ToDoubleSeconds(until_ - from_);
    int64_t answers = 0;
    for (const auto& [k, latencies] : latency_) answers += static_cast<int64_t>(latencies.size());
    char line[256];
    std::snprintf(line, sizeof line, "answers/s %.1f (%lld answers in %.1f s), errors %lld\n",
                  answers / seconds, static_cast<long long>(answers), seconds,
                  static_cast<long long>(errors_));
    out << line;
    for (auto& [k, latencies] : latency_) {
      const fastdiss::LatencySummary s = fastdiss::Summarize(&latencies);
      std::snprintf(line, sizeof line, "K=%-3d answers %6lld  p50 %7.1f ms  p99 %7.1f ms\n", k,
                    static_cast<long long>(s.count), 1e3 * s.p50, 1e3 * s.p99);
      out << line;
    }
    const auto share = [seconds](absl::Duration d) {
      return 100.0 * absl::ToDoubleSeconds(d) / seconds;
    };
    const auto per = [](absl::Duration d, int64_t n) {
      return n > 0 ? absl::ToDoubleMilliseconds(d) / n : 0.0;
    };
    std::snprintf(line, sizeof line,
                  "forwards   %6.1f/s  %5.1f rows each  %6.2f ms each  %5.1f%% of the time\n",
                  forwards_.count / seconds,
                  forwards_.count ? static_cast<double>(forwards_.rows) / forwards_.count : 0.0,
                  per(forwards_.time, forwards_.count), share(forwards_.time));
    out << line;
    std::snprintf(
        line, sizeof line,
        "admissions %6.1f/s  %5.1f calls each %6.2f ms each  %5.1f%% of the time\n",
        admissions_.count / seconds,
        admissions_.count ? static_cast<double>(admissions_.requests) / admissions_.count : 0.0,
        per(admissions_.time, admissions_.count), share(admissions_.time));
    out << line;
    std::snprintf(line, sizeof line,
                  "the rest (answering, bookkeeping, waiting) %5.1f%% of the time\n",
                  100.0 - share(forwards_.time) - share(admissions_.time));
    out << line;
  }

 private:
  bool Counting(absl::Time t) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return t >= from_ && t < until_;
  }

  void Next() {
    auto task = std::make_unique<fastdiss::GenerateTask>();
    {
      absl::MutexLock lock(&mu_);
      if (absl::Now() >= until_) return;
      const uint64_t index = next_index_++;
      task->source_ids = sources_[index % sources_.size()];
      task->options.steps =
          flags_.steps[std::uniform_int_distribution<size_t>(0, flags_.steps.size() - 1)(rng_)];
      task->options.seed = index;
      task->options.clamp = clamp_;
    }
    const int k = task->options.steps;
    const absl::Time start = absl::Now();
    task->on_done = [this, k, start](absl::StatusOr<fastdiss::GenerateOutcome> outcome) {
      const absl::Time end = absl::Now();
      {
        absl::MutexLock lock(&mu_);
        if (Counting(end)) {
          if (outcome.ok()) {
            latency_[k].push_back(absl::ToDoubleSeconds(end - start));
          } else {
            ++errors_;
          }
        }
      }
      Next();
    };
    fastdiss::Engine* engine;
    {
      absl::MutexLock lock(&mu_);
      engine = engine_;
    }
    if (absl::Status scheduled = engine->Schedule(&task); !scheduled.ok()) {
      std::cerr << "fastdiss-engine-bench: a call was refused: " << scheduled << "\n";
      absl::MutexLock lock(&mu_);
      ++errors_;
    }
  }

  const BenchFlags& flags_;
  const std::vector<std::vector<int>> sources_;
  const bool clamp_;
  absl::Mutex mu_;
  fastdiss::Engine* engine_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::Time from_ ABSL_GUARDED_BY(mu_), until_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  uint64_t next_index_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int, std::vector<double>> latency_ ABSL_GUARDED_BY(mu_);
  int64_t errors_ ABSL_GUARDED_BY(mu_) = 0;
  Work forwards_ ABSL_GUARDED_BY(mu_), admissions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

int main(int argc, char** argv) {
  fastdiss::ReexecWithBlasThreadTimeout(argv);
  BenchFlags flags;
  if (std::optional<int> exit_status = ParseFlags(argc, argv, &flags)) return *exit_status;
  auto config = fastdiss::ServerConfig::Load(flags.config_path, flags.overrides, {});
  if (!config.ok()) {
    std::cerr << "fastdiss-engine-bench: " << config.status().message() << "\n";
    return 2;
  }
  std::string name = flags.model.empty() ? config->server.default_model : flags.model;
  if (name.empty() && config->models.size() == 1) name = config->models.begin()->first;
  if (config->models.count(name) == 0) {
    std::cerr << "fastdiss-engine-bench: no model '" << name << "' in the config (--model)\n";
    return 2;
  }
  auto engine_options = config->ToEngineOptions();
  if (!engine_options.ok()) {
    std::cerr << "fastdiss-engine-bench: " << engine_options.status().message() << "\n";
    return 2;
  }
  fastdiss::RuntimeOptions runtime;
  runtime.intra_op_threads = config->runtime.threads;
  runtime.blas_threads = config->runtime.blas_threads;
  std::cerr << "fastdiss-engine-bench: runtime " << fastdiss::ConfigureRuntime(runtime) << "\n";

  const fastdiss::ModelSpec spec = config->ResolvedModel(name);
  // The hooks reach the loop through this pointer, set after the warm-up, before any call.
  std::atomic<ClosedLoop*> loop{nullptr};
  fastdiss::Engine::Hooks hooks;
  hooks.on_step = [&loop](const fastdiss::StepStats& s) {
    if (ClosedLoop* l = loop.load()) l->RecordForward(s);
  };
  hooks.on_admit = [&loop](const fastdiss::StepStats& s) {
    if (ClosedLoop* l = loop.load()) l->RecordAdmission(s);
  };
  auto model = fastdiss::ServedModel::Load(name, spec, *engine_options, hooks);
  if (!model.ok()) {
    std::cerr << "fastdiss-engine-bench: " << model.status().message() << "\n";
    return 1;
  }
  if (absl::Status warm = (*model)->WarmUp(config->server.warmup_steps); !warm.ok()) {
    std::cerr << "fastdiss-engine-bench: warm-up: " << warm.message() << "\n";
    return 1;
  }

  std::ifstream in(flags.input);
  if (!in) {
    std::cerr << "fastdiss-engine-bench: cannot read " << flags.input << "\n";
    return 2;
  }
  std::vector<std::vector<int>> sources;
  const int max_source = (*model)->info().max_source_tokens;
  int64_t too_long = 0;
  for (std::string text; std::getline(in, text);) {
    if (text.empty()) continue;
    std::vector<int> ids = (*model)->EncodeSource(text);
    if (static_cast<int>(ids.size()) > max_source) {
      ++too_long;  // the server would refuse these: INVALID_ARGUMENT
      continue;
    }
    sources.push_back(std::move(ids));
  }
  if (sources.empty()) {
    std::cerr << "fastdiss-engine-bench: no usable line in " << flags.input << "\n";
    return 2;
  }

  const fastdiss::ServedModelInfo& info = (*model)->info();
  std::cout << "model " << name << " " << info.version << " on " << info.device << ", precision "
            << fastdiss::LinearPrecisionName(info.precision) << ", clamp "
            << (info.default_clamp ? "on" : "off") << ", policy "
            << fastdiss::BatchPolicyName((*model)->engine().options().policy) << ", "
            << flags.concurrency << " calls open, " << sources.size() << " texts (" << too_long
            << " over " << max_source << " tokens left out)\n";
  ClosedLoop closed(flags, std::move(sources), info.default_clamp);
  loop.store(&closed);
  const absl::Time from = absl::Now() + absl::Seconds(flags.warmup);
  const absl::Time until = from + absl::Seconds(flags.duration);
  closed.Start(&(*model)->engine(), from, until);
  absl::SleepFor(until - absl::Now());
  if (!(*model)->engine().WaitIdle(absl::Seconds(600))) {
    std::cerr << "fastdiss-engine-bench: the engine did not finish its calls\n";
    return 1;
  }
  closed.Report(std::cout);
  return 0;
}
