// fastdiss-loadgen: closed- or open-loop Generate load against a fastdiss-server with a mix of
// step counts; prints throughput, latency percentiles overall and per step count, and errors by code.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "model/command_line.h"
#include "server/load_generator.h"
#include "server/tls.h"

namespace {

constexpr char kUsage[] =
    "Usage: fastdiss-loadgen --target HOST:PORT --input FILE (--concurrency N | --rate R)\n"
    "                        [--steps 1,2,5,10,20 | --step-range MIN,MAX] [--duration S] [--warmup S]\n"
    "                        [--model M] [--deadline-seconds X[,Y...]] [--max-in-flight N] [--seed S]\n"
    "                        [--output FILE] [--json]\n"
    "                        [--tls] [--tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--tls-server-name NAME]\n\n"
    "Closed loop (--concurrency): N calls always open. Open loop (--rate): Poisson arrivals of R\n"
    "calls/s, whatever the server does. Each call's K is drawn uniformly from --steps, or each call\n"
    "asks for the range --step-range and the server chooses K by its load; each call's deadline is\n"
    "drawn uniformly from --deadline-seconds (default 60); texts are the non-empty lines of --input\n"
    "in turn. --output writes each counted answer as a line: input number (1-based), planned K,\n"
    "steps run, latency in ms, text (tab-separated; tabs and line breaks in the text become spaces);\n"
    "the number counts non-empty lines only. Answers during --warmup (default 3 s) are not counted;\n"
    "counting lasts --duration seconds (default 30). Prints throughput (OK answers per second),\n"
    "client latency p50/p90/p99 overall and per K, the server's queue time, and errors by code;\n"
    "--json prints the same as one JSON object.\n";

constexpr int64_t kMaxInt = std::numeric_limits<int>::max();
constexpr double kMaxSeconds = 365 * 24 * 3600;  // a year: larger durations would never end

}  // namespace

int main(int argc, char** argv) {
  fastdiss::LoadOptions options;
  std::string target, input, output;
  bool json = false, steps_given = false;
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
          std::cerr << "fastdiss-loadgen: --deadline-seconds takes positive seconds, got '" << item << "'\n";
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
  if (target.empty() || input.empty()) {
    std::cerr << "fastdiss-loadgen: --target and --input are required (see --help)\n";
    return 2;
  }
  std::ifstream in(input);
  if (!in) {
    std::cerr << "fastdiss-loadgen: cannot read " << input << "\n";
    return 2;
  }
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) options.inputs.push_back(line);
  }
  if (options.max_steps > 0 && steps_given) {
    std::cerr << "fastdiss-loadgen: give --steps or --step-range, not both\n";
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
      std::replace_if(text.begin(), text.end(), [](char c) { return c == '\t' || c == '\n' || c == '\r'; }, ' ');
      out << a.index % options.inputs.size() + 1 << '\t' << a.planned_steps << '\t' << a.steps_run << '\t'
          << a.seconds * 1e3 << '\t' << text << '\n';
    }
    out.close();
    if (!out) {
      std::cerr << "fastdiss-loadgen: cannot write " << output << "\n";
      return 2;
    }
  }
  std::cout << (json ? report->ToJson() + "\n" : report->ToText());
  return 0;
}
