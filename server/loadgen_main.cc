// fastdiss-loadgen: closed- or open-loop Generate load against a fastdiss-server with a mix of
// step counts; prints throughput, latency percentiles overall and per step count, and errors by
// code.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <limits>
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
    "Usage: fastdiss-loadgen --target HOST:PORT --input FILE (--concurrency N | --rate R)\n"
    "                        [--steps 1,2,5,10,20 | --step-range MIN,MAX] [--duration S] [--warmup "
    "S]\n"
    "                        [--model M] [--deadline-seconds X[,Y...]] [--max-in-flight N] [--seed "
    "S]\n"
    "                        [--output FILE] [--json]\n"
    "                        [--model-input NAME=FILE ...] [--stream-share X] [--cancel-share X]\n"
    "                        [--cancel-within-ms MS] [--short-deadline-share X] "
    "[--short-deadline-max-ms MS]\n"
    "                        [--bad-share X] [--burst-every S --burst-size N] [--verify N] "
    "[--check]\n"
    "                        [--tls] [--tls-ca FILE] [--tls-cert FILE --tls-key FILE] "
    "[--tls-server-name NAME]\n\n"
    "Closed loop (--concurrency): N calls always open. Open loop (--rate): Poisson arrivals of R\n"
    "calls/s, whatever the server does. Each call's K is drawn uniformly from --steps, or each "
    "call\n"
    "asks for the range --step-range and the server chooses K by its load; each call's deadline "
    "is\n"
    "drawn uniformly from --deadline-seconds (default 60); texts are the non-empty lines of "
    "--input\n"
    "in turn. --output writes each counted answer as a line: input number (1-based), planned K,\n"
    "steps run, latency in ms, text (tab-separated; tabs and line breaks in the text become "
    "spaces);\n"
    "the number counts non-empty lines only. Answers during --warmup (default 3 s) are not "
    "counted;\n"
    "counting lasts --duration seconds (default 30). Prints throughput (OK answers per second),\n"
    "client latency p50/p90/p99 overall and per K, the server's queue time, and errors by code;\n"
    "--json prints the same as one JSON object.\n\n"
    "Soak runs (scripts/soak.sh): --model-input NAME=FILE (repeatable) gives each model its own "
    "texts;\n"
    "each call picks a model uniformly. The --*-share options turn that share of the open-loop "
    "calls\n"
    "into GenerateStream calls, calls the client cancels within --cancel-within-ms (default 500),\n"
    "calls with a deadline of 1..--short-deadline-max-ms (default 5), and bad requests of every "
    "kind\n"
    "in turn; --burst-every S sends --burst-size calls at once every S seconds. Every call is "
    "then\n"
    "counted by kind and final code, warmup included. --verify N asks a uniform sample of N OK\n"
    "answers again afterwards, one at a time, and compares their tokens. --check exits 1 if a "
    "call\n"
    "got no answer, ended with a code its kind does not allow, or was answered differently "
    "alone.\n";

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

}  // namespace

int main(int argc, char** argv) {
  fastdiss::LoadOptions options;
  std::string target, input, output;
  std::vector<std::pair<std::string, std::string>> model_inputs;  // NAME, FILE
  bool json = false, steps_given = false, check = false;
  fastdiss::ClientTlsOptions tls;
  fastdiss::FlagReader flags("fastdiss-loadgen", argc, argv);
  while (flags.Next()) {
    if (flags.Is("--help") || flags.Is("-h")) {
      std::cout << kUsage << "\n" << fastdiss::kClientTlsUsage;
      return 0;
    } else if (fastdiss::ReadClientTlsFlag(flags, &tls)) {
    } else if (flags.Is("--target")) {
      target = flags.String();
    } else if (flags.Is("--input")) {
      input = flags.String();
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
      options.deadlines.clear();
      const std::string list = flags.String();
      for (absl::string_view item : absl::StrSplit(list, ',')) {
        double seconds = 0;
        if (!absl::SimpleAtod(item, &seconds) || !(seconds > 0) || seconds > kMaxSeconds) {
          std::cerr << "fastdiss-loadgen: --deadline-seconds takes positive seconds, got '" << item
                    << "'\n";
          return 2;
        }
        options.deadlines.push_back(absl::Seconds(seconds));
      }
    } else if (flags.Is("--step-range")) {
      std::vector<int64_t> range = flags.IntList(1, kMaxInt);
      if (range.size() != 2 || range[0] > range[1]) {
        std::cerr << "fastdiss-loadgen: --step-range takes MIN,MAX with MIN <= MAX\n";
        return 2;
      }
      options.min_steps = static_cast<int>(range[0]);
      options.max_steps = static_cast<int>(range[1]);
    } else if (flags.Is("--output")) {
      output = flags.String();
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
      model_inputs.emplace_back(pair.substr(0, eq), pair.substr(eq + 1));
    } else if (flags.Is("--stream-share")) {
      options.faults.stream = flags.Double(0, 1);
    } else if (flags.Is("--cancel-share")) {
      options.faults.cancel = flags.Double(0, 1);
    } else if (flags.Is("--cancel-within-ms")) {
      options.faults.cancel_within = absl::Milliseconds(flags.Double(1, kMaxSeconds * 1e3));
    } else if (flags.Is("--short-deadline-share")) {
      options.faults.short_deadline = flags.Double(0, 1);
    } else if (flags.Is("--short-deadline-max-ms")) {
      options.faults.short_deadline_max = absl::Milliseconds(flags.Double(1, kMaxSeconds * 1e3));
    } else if (flags.Is("--bad-share")) {
      options.faults.bad = flags.Double(0, 1);
    } else if (flags.Is("--burst-every")) {
      options.faults.burst_every = absl::Seconds(flags.Double(0, kMaxSeconds));
    } else if (flags.Is("--burst-size")) {
      options.faults.burst_size = static_cast<int>(flags.Int(0, 1000000));
    } else if (flags.Is("--verify")) {
      options.verify = static_cast<int>(flags.Int(0, 1000000));
    } else if (flags.Is("--check")) {
      check = flags.Switch();
    } else if (flags.Is("--json")) {
      json = flags.Switch();
    } else if (flags.Is("--steps")) {
      steps_given = true;
      options.steps.clear();
      for (int64_t k : flags.IntList(1, kMaxInt)) options.steps.push_back(static_cast<int>(k));
    } else {
      flags.Unknown();
    }
  }
  if (target.empty() || (input.empty() == model_inputs.empty())) {
    std::cerr << "fastdiss-loadgen: --target and one of --input and --model-input are required "
                 "(see --help)\n";
    return 2;
  }
  if (!input.empty() && !ReadLines(input, &options.inputs)) return 2;
  for (const auto& [model, file] : model_inputs) {
    options.models.push_back({model, {}});
    if (!ReadLines(file, &options.models.back().inputs)) return 2;
  }
  if (options.max_steps > 0 && steps_given) {
    std::cerr << "fastdiss-loadgen: give --steps or --step-range, not both\n";
    return 2;
  }
  if (!output.empty() && input.empty()) {
    std::cerr << "fastdiss-loadgen: --output numbers the lines of --input; it does not go with "
                 "--model-input\n";
    return 2;
  }
  std::ofstream out;
  if (!output.empty()) {
    out.open(output);
    if (!out) {
      std::cerr << "fastdiss-loadgen: cannot write " << output << "\n";
      return 2;
    }
  }
  if (options.faults.bad > 0) google::protobuf::SetLogHandler(&LogUnlessDeliberate);
  auto channel = fastdiss::MakeChannel(target, tls);
  if (!channel.ok()) {
    std::cerr << "fastdiss-loadgen: " << channel.status().message() << "\n";
    return 2;
  }
  auto report = fastdiss::RunLoad(*channel, options);
  if (!report.ok()) {
    std::cerr << "fastdiss-loadgen: " << report.status().message() << "\n";
    return 2;
  }
  if (!output.empty()) {
    for (const fastdiss::Answer& a : report->answers) {
      // One line per answer: tabs and line breaks inside the text become spaces.
      std::string text = a.text;
      std::replace_if(
          text.begin(), text.end(), [](char c) { return c == '\t' || c == '\n' || c == '\r'; },
          ' ');
      out << a.index % options.inputs.size() + 1 << '\t' << a.planned_steps << '\t' << a.steps_run
          << '\t' << a.seconds * 1e3 << '\t' << text << '\n';
    }
    out.close();
    if (!out) {
      std::cerr << "fastdiss-loadgen: cannot write " << output << "\n";
      return 2;
    }
  }
  std::cout << (json ? report->ToJson() + "\n" : report->ToText());
  if (check && (report->unanswered > 0 || report->unexpected > 0 || report->verify.mismatched > 0 ||
                report->verify.failed > 0)) {
    std::cerr << "fastdiss-loadgen: check failed: " << report->unanswered << " unanswered, "
              << report->unexpected << " with a code their kind does not allow, "
              << report->verify.mismatched << " answered differently alone, "
              << report->verify.failed << " failed when asked again\n";
    return 1;
  }
  return 0;
}
