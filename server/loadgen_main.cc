// fastdiss-loadgen: closed- or open-loop Generate load against a fastdiss-server with a mix of
// step counts; prints throughput, latency percentiles overall and per step count, and errors by code.
#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "server/load_generator.h"

namespace {

constexpr char kUsage[] =
    "Usage: fastdiss-loadgen --target HOST:PORT --input FILE (--concurrency N | --rate R)\n"
    "                        [--steps 1,2,5,10,20] [--duration S] [--warmup S] [--model M]\n"
    "                        [--deadline-seconds X] [--max-in-flight N] [--seed S] [--json]\n\n"
    "Closed loop (--concurrency): N calls always open. Open loop (--rate): Poisson arrivals of R\n"
    "calls/s, whatever the server does. Each call's K is drawn uniformly from --steps; texts are\n"
    "the non-empty lines of --input in turn. Answers during --warmup (default 3 s) are not counted;\n"
    "counting lasts --duration seconds (default 30). Prints throughput (OK answers per second),\n"
    "client latency p50/p90/p99 overall and per K, the server's queue time, and errors by code;\n"
    "--json prints the same as one JSON object.\n";

}  // namespace

int main(int argc, char** argv) {
  fastdiss::LoadOptions options;
  std::string target, input;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "fastdiss-loadgen: " << arg << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    auto real = [&]() -> double {
      const std::string v = value();
      char* end = nullptr;
      const double x = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0') {
        std::cerr << "fastdiss-loadgen: " << arg << " takes a number, got '" << v << "'\n";
        std::exit(2);
      }
      return x;
    };
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--target") {
      target = value();
    } else if (arg == "--input") {
      input = value();
    } else if (arg == "--model") {
      options.model = value();
    } else if (arg == "--concurrency") {
      options.concurrency = static_cast<int>(real());
    } else if (arg == "--rate") {
      options.rate = real();
    } else if (arg == "--duration") {
      options.duration = absl::Seconds(real());
    } else if (arg == "--warmup") {
      options.warmup = absl::Seconds(real());
    } else if (arg == "--deadline-seconds") {
      options.deadline = absl::Seconds(real());
    } else if (arg == "--max-in-flight") {
      options.max_in_flight = static_cast<int>(real());
    } else if (arg == "--seed") {
      options.seed = static_cast<uint64_t>(real());
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "--steps") {
      options.steps.clear();
      std::stringstream list(value());
      for (std::string item; std::getline(list, item, ',');) {
        char* end = nullptr;
        const long k = std::strtol(item.c_str(), &end, 10);
        if (item.empty() || *end != '\0' || k < 1) {
          std::cerr << "fastdiss-loadgen: --steps takes positive integers separated by commas, got '" << item << "'\n";
          return 2;
        }
        options.steps.push_back(static_cast<int>(k));
      }
    } else {
      std::cerr << "fastdiss-loadgen: unknown argument '" << arg << "' (see --help)\n";
      return 2;
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
  auto report = fastdiss::RunLoad(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()), options);
  if (!report.ok()) {
    std::cerr << "fastdiss-loadgen: " << report.status().message() << "\n";
    return 2;
  }
  std::cout << (json ? report->ToJson() + "\n" : report->ToText());
  return 0;
}
