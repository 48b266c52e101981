// fastdiss-loadgen: closed- or open-loop Generate load against a fastdiss-server with a mix of
// step counts; prints throughput, latency percentiles overall and per step count, and errors by code.
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "model/command_line.h"
#include "server/load_generator.h"
#include "server/tls.h"

namespace {

constexpr char kUsage[] =
    "Usage: fastdiss-loadgen --target HOST:PORT --input FILE (--concurrency N | --rate R)\n"
    "                        [--steps 1,2,5,10,20] [--duration S] [--warmup S] [--model M]\n"
    "                        [--deadline-seconds X] [--max-in-flight N] [--seed S] [--json]\n"
    "                        [--tls] [--tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--tls-server-name NAME]\n\n"
    "Closed loop (--concurrency): N calls always open. Open loop (--rate): Poisson arrivals of R\n"
    "calls/s, whatever the server does. Each call's K is drawn uniformly from --steps; texts are\n"
    "the non-empty lines of --input in turn. Answers during --warmup (default 3 s) are not counted;\n"
    "counting lasts --duration seconds (default 30). Prints throughput (OK answers per second),\n"
    "client latency p50/p90/p99 overall and per K, the server's queue time, and errors by code;\n"
    "--json prints the same as one JSON object.\n";

constexpr int64_t kMaxInt = std::numeric_limits<int>::max();
constexpr double kMaxSeconds = 365 * 24 * 3600;  // a year: larger durations would never end

}  // namespace

int main(int argc, char** argv) {
  fastdiss::LoadOptions options;
  std::string target, input;
  bool json = false;
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
      options.deadline = absl::Seconds(flags.Double(0, kMaxSeconds));
    } else if (flags.Is("--max-in-flight")) {
      options.max_in_flight = static_cast<int>(flags.Int(1, kMaxInt));
    } else if (flags.Is("--seed")) {
      options.seed = flags.Uint64();
    } else if (flags.Is("--json")) {
      json = flags.Switch();
    } else if (flags.Is("--steps")) {
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
  std::cout << (json ? report->ToJson() + "\n" : report->ToText());
  return 0;
}
