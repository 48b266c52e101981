// fastdiss-loadgen: closed- or open-loop Generate load against a fastdiss-server with a mix of
// step counts; prints throughput, latency percentiles overall and per step count, and errors by
// code.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "base/command_line.h"
#include "google/protobuf/stubs/logging.h"
#include "server/load_generator.h"
#include "server/tls.h"

namespace {

constexpr char kUsage[] =
    R"(Usage: fastdiss-loadgen --target HOST:PORT --input FILE (--concurrency N | --rate R)
                        [--steps 1,2,5,10,20 | --step-range MIN,MAX] [--duration S] [--warmup S]
                        [--model M] [--deadline-seconds X[,Y...]] [--max-in-flight N] [--seed S]
                        [--output FILE] [--json]
                        [--model-input NAME=FILE ...] [--stream-share X] [--cancel-share X]
                        [--cancel-within-ms MS] [--short-deadline-share X] [--short-deadline-max-ms MS]
                        [--bad-share X] [--burst-every S --burst-size N] [--verify N] [--check]
                        [--tls] [--tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--tls-server-name NAME]

Closed loop (--concurrency): N calls always open. Open loop (--rate): Poisson arrivals of R
calls/s, whatever the server does. Each call's K is drawn uniformly from --steps, or each call
asks for the range --step-range and the server chooses K by its load; each call's deadline is
drawn uniformly from --deadline-seconds (default 60); texts are the non-empty lines of --input
in turn. --output writes each counted answer as a line: input number (1-based), planned K,
steps run, latency in ms, text (tab-separated; tabs and line breaks in the text become spaces);
the number counts non-empty lines only. Answers during --warmup (default 3 s) are not counted;
counting lasts --duration seconds (default 30). Prints throughput (OK answers per second),
client latency p50/p90/p99 overall and per K, the server's queue time, and errors by code;
--json prints the same as one JSON object.

Soak runs (scripts/soak.sh): --model-input NAME=FILE (repeatable) gives each model its own texts;
each call picks a model uniformly. The --*-share options turn that share of the open-loop calls
into GenerateStream calls, calls the client cancels within --cancel-within-ms (default 500),
calls with a deadline of 1..--short-deadline-max-ms (default 5), and bad requests of every kind
in turn; --burst-every S sends --burst-size calls at once every S seconds. Every call is then
counted by kind and final code, warmup included. --verify N asks a uniform sample of N OK
answers again afterwards, one at a time, and compares their tokens. --check exits 1 if a call
got no answer, ended with a code its kind does not allow, or was answered differently alone.
)";

constexpr int64_t kMaxInt = std::numeric_limits<int>::max();
constexpr double kMaxSeconds = 365 * 24 * 3600;  // a year: larger durations would never end

// The bad requests include a text that is not UTF-8 on purpose; protobuf's serializer logs each
// one. Every other message of protobuf's still goes to stderr.
void LogUnlessDeliberate(google::protobuf::LogLevel level, const char* file, int line,
                         const std::string& message) {
  if (absl::StrContains(message, "contains invalid UTF-8 data when serializing")) return;
  std::cerr << "[libprotobuf " << (level >= google::protobuf::LOGLEVEL_ERROR ? "ERROR" : "WARNING")
            << " " << file << ":" << line << "] " << message << "\n";
}

// The non-empty lines of `path`, appended to `lines`; false (with a message) if it cannot be read.
bool ReadLines(const std::string& path, std::vector<std::string>* lines) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << "fastdiss-loadgen: cannot read " << path << "\n";
    return false;
  }
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines->push_back(line);
  }
  return true;
}

struct LoadgenFlags {
  fastdiss::LoadOptions options;
  std::string target, input, output;
  std::vector<std::pair<std::string, std::string>> model_inputs;  // NAME, FILE
  bool json = false, steps_given = false, check = false;
  fastdiss::ClientTlsOptions tls;
};

// --deadline-seconds X[,Y...]; false (with a message) on a bad item.
bool ParseDeadlines(const std::string& list, std::vector<absl::Duration>* deadlines) {
  deadlines->clear();
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    double seconds = 0;
    if (!absl::SimpleAtod(item, &seconds) || !(seconds > 0) || seconds > kMaxSeconds) {
      std::cerr << "fastdiss-loadgen: --deadline-seconds takes positive seconds, got '" << item
                << "'\n";
      return false;
    }
    deadlines->push_back(absl::Seconds(seconds));
  }
  return true;
}

// Reads the soak options' flag when `flags` is at one; false otherwise.
bool ReadFaultFlag(fastdiss::FlagReader& flags, fastdiss::FaultMix* faults) {
  if (flags.Is("--stream-share")) {
    faults->stream = flags.Double(0, 1);
  } else if (flags.Is("--cancel-share")) {
    faults->cancel = flags.Double(0, 1);
  } else if (flags.Is("--cancel-within-ms")) {
    faults->cancel_within = absl::Milliseconds(flags.Double(1, kMaxSeconds * 1e3));
  } else if (flags.Is("--short-deadline-share")) {
    faults->short_deadline = flags.Double(0, 1);
  } else if (flags.Is("--short-deadline-max-ms")) {
    faults->short_deadline_max = absl::Milliseconds(flags.Double(1, kMaxSeconds * 1e3));
  } else if (flags.Is("--bad-share")) {
    faults->bad = flags.Double(0, 1);
  } else if (flags.Is("--burst-every")) {
    faults->burst_every = absl::Seconds(flags.Double(0, kMaxSeconds));
  } else if (flags.Is("--burst-size")) {
    faults->burst_size = static_cast<int>(flags.Int(0, 1000000));
  } else {
    return false;
  }
  return true;
}

// Reads the flags into *out; returns an exit status when the program is to end here.
std::optional<int> ParseFlags(int argc, char** argv, LoadgenFlags* out) {
  fastdiss::LoadOptions& options = out->options;
  fastdiss::FlagReader flags("fastdiss-loadgen", argc, argv);
  while (flags.Next()) {
    if (flags.Is("--help") || flags.Is("-h")) {
      std::cout << kUsage << "\n" << fastdiss::kClientTlsUsage;
      return 0;
    } else if (fastdiss::ReadClientTlsFlag(flags, &out->tls) ||
               ReadFaultFlag(flags, &options.faults)) {
    } else if (flags.Is("--target")) {
      out->target = flags.String();
    } else if (flags.Is("--input")) {
      out->input = flags.String();
    } else if (flags.Is("--model")) {
      options.model = flags.String();
    } else if (flags.Is("--concurrency")) {
      options.concurrency = static_cast<int>(flags.Int(1, kMaxInt));
    } else if (flags.Is("--rate")) {
      options.rate = flags.Double(0, 1e6);
    } else if (flags.Is("--duration")) {
      options.duration = absl::Seconds(flags.Double(0, kMaxSeconds));
    } else if (flags.Is("--warmup")) {
      options.warmup = absl::Seconds(flags.Double(0, kMaxSeconds));
    } else if (flags.Is("--deadline-seconds")) {
      if (!ParseDeadlines(flags.String(), &options.deadlines)) return 2;
    } else if (flags.Is("--step-range")) {
      std::vector<int64_t> range = flags.IntList(1, kMaxInt);
      if (range.size() != 2 || range[0] > range[1]) {
        std::cerr << "fastdiss-loadgen: --step-range takes MIN,MAX with MIN <= MAX\n";
        return 2;
      }
      options.min_steps = static_cast<int>(range[0]);
      options.max_steps = static_cast<int>(range[1]);
    } else if (flags.Is("--output")) {
      out->output = flags.String();
    } else if (flags.Is("--max-in-flight")) {
      options.max_in_flight = static_cast<int>(flags.Int(1, kMaxInt));
    } else if (flags.Is("--seed")) {
      options.seed = flags.Uint64();
    } else if (flags.Is("--model-input")) {
      const std::string pair = flags.String();
      const size_t eq = pair.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == pair.size()) {
        std::cerr << "fastdiss-loadgen: --model-input takes NAME=FILE, got '" << pair << "'\n";
        return 2;
      }
      out->model_inputs.emplace_back(pair.substr(0, eq), pair.substr(eq + 1));
    } else if (flags.Is("--verify")) {
      options.verify = static_cast<int>(flags.Int(0, 1000000));
    } else if (flags.Is("--check")) {
      out->check = flags.Switch();
    } else if (flags.Is("--json")) {
      out->json = flags.Switch();
    } else if (flags.Is("--steps")) {
      out->steps_given = true;
      options.steps.clear();
      for (int64_t k : flags.IntList(1, kMaxInt)) options.steps.push_back(static_cast<int>(k));
    } else {
      flags.Unknown();
    }
  }
  return std::nullopt;
}

// Checks the flags against each other and reads the input files; false (with a message) if
// the run cannot start.
bool PrepareInputs(LoadgenFlags* flags) {
  fastdiss::LoadOptions& options = flags->options;
  if (flags->target.empty() || (flags->input.empty() == flags->model_inputs.empty())) {
    std::cerr << "fastdiss-loadgen: --target and one of --input and --model-input are required "
                 "(see --help)\n";
    return false;
  }
  if (!flags->input.empty() && !ReadLines(flags->input, &options.inputs)) return false;
  for (const auto& [model, file] : flags->model_inputs) {
    options.models.push_back({model, {}});
    if (!ReadLines(file, &options.models.back().inputs)) return false;
  }
  if (options.max_steps > 0 && flags->steps_given) {
    std::cerr << "fastdiss-loadgen: give --steps or --step-range, not both\n";
    return false;
  }
  if (!flags->output.empty() && flags->input.empty()) {
    std::cerr << "fastdiss-loadgen: --output numbers the lines of --input; it does not go with "
                 "--model-input\n";
    return false;
  }
  return true;
}

// One line per answer (see --output in the usage); false (with a message) if it fails.
bool WriteAnswers(std::ofstream& out, const std::string& path, const fastdiss::LoadReport& report,
                  size_t inputs) {
  for (const fastdiss::Answer& a : report.answers) {
    // Tabs and line breaks inside the text become spaces.
    std::string text = a.text;
    std::replace_if(
        text.begin(), text.end(), [](char c) { return c == '\t' || c == '\n' || c == '\r'; }, ' ');
    out << a.index % inputs + 1 << '\t' << a.planned_steps << '\t' << a.steps_run << '\t'
        << a.seconds * 1e3 << '\t' << text << '\n';
  }
  out.close();
  if (!out) std::cerr << "fastdiss-loadgen: cannot write " << path << "\n";
  return static_cast<bool>(out);
}

// --check: false (with a message) when a call went wrong.
bool CheckReport(const fastdiss::LoadReport& report) {
  if (report.unanswered == 0 && report.unexpected == 0 && report.verify.mismatched == 0 &&
      report.verify.failed == 0) {
    return true;
  }
  std::cerr << "fastdiss-loadgen: check failed: " << report.unanswered << " unanswered, "
            << report.unexpected << " with a code their kind does not allow, "
            << report.verify.mismatched << " answered differently alone, " << report.verify.failed
            << " failed when asked again\n";
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  LoadgenFlags flags;
  if (std::optional<int> exit_status = ParseFlags(argc, argv, &flags)) return *exit_status;
  if (!PrepareInputs(&flags)) return 2;
  std::ofstream out;  // opened before the run, so that a bad path costs no load
  if (!flags.output.empty()) {
    out.open(flags.output);
    if (!out) {
      std::cerr << "fastdiss-loadgen: cannot write " << flags.output << "\n";
      return 2;
    }
  }
  if (flags.options.faults.bad > 0) google::protobuf::SetLogHandler(&LogUnlessDeliberate);
  auto channel = fastdiss::MakeChannel(flags.target, flags.tls);
  if (!channel.ok()) {
    std::cerr << "fastdiss-loadgen: " << channel.status().message() << "\n";
    return 2;
  }
  auto report = fastdiss::RunLoad(*channel, flags.options);
  if (!report.ok()) {
    std::cerr << "fastdiss-loadgen: " << report.status().message() << "\n";
    return 2;
  }
  if (!flags.output.empty() &&
      !WriteAnswers(out, flags.output, *report, flags.options.inputs.size())) {
    return 2;
  }
  std::cout << (flags.json ? report->ToJson() + "\n" : report->ToText());
  if (flags.check && !CheckReport(*report)) return 1;
  return 0;
}
