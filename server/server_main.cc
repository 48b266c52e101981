// fastdiss-server [--config FILE] [--port N] [--metrics-port N] [--model NAME=DIR ...] [--set k=v
// ...]: parses flags and config, starts a ModelServer, and on SIGTERM or SIGINT drains it and exits
// 0.
#include <pthread.h>
#include <signal.h>

#include <iostream>
#include <string>
#include <vector>

#include "base/command_line.h"
#include "model/runtime.h"
#include "server/model_server.h"
#include "server/server_config.h"

namespace {

void PrintHelp() {
  fastdiss::ServerConfig defaults;
  defaults.server.default_model = "g2p";
  defaults.models["g2p"].checkpoint = "models/g2p";
  defaults.models["de-en"].checkpoint = "models/de-en";
  std::cout << R"(Usage: fastdiss-server [--config FILE] [--port N] [--metrics-port N]
                       [--model NAME=CHECKPOINT_DIR ...] [--set key=value ...] [--print-config]

Serves FastDiSS checkpoints over gRPC (fastdiss.v1.Generator, grpc.health.v1.Health, reflection)
with step-level dynamic batching, and Prometheus metrics over HTTP. SIGTERM or SIGINT: health
NOT_SERVING, new calls UNAVAILABLE, in-flight requests finish within server.drain_grace_seconds,
then exit 0. --port and --metrics-port are --set server.port / server.metrics_port; flags apply
after the file, in order. The YAML config takes these keys (a complete file with the defaults):

)" << defaults.Describe();
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  std::vector<std::string> overrides, model_flags;
  bool print_config = false;
  fastdiss::FlagReader flags("fastdiss-server", argc, argv);
  while (flags.Next()) {
    if (flags.Is("--help") || flags.Is("-h")) {
      PrintHelp();
      return 0;
    } else if (flags.Is("--print-config")) {
      print_config = flags.Switch();
    } else if (flags.Is("--config")) {
      config_path = flags.String();
    } else if (flags.Is("--port")) {
      overrides.push_back("server.port=" + flags.String());
    } else if (flags.Is("--metrics-port")) {
      overrides.push_back("server.metrics_port=" + flags.String());
    } else if (flags.Is("--model")) {
      model_flags.push_back(flags.String());
    } else if (flags.Is("--set")) {
      overrides.push_back(flags.String());
    } else {
      flags.Unknown();
    }
  }
  auto config = fastdiss::ServerConfig::Load(config_path, overrides, model_flags);
  if (!config.ok()) {
    std::cerr << "fastdiss-server: " << config.status().message() << "\n";
    return 2;
  }
  if (print_config) {
    std::cout << config->Describe();
    return 0;
  }

  // Block the signals in every thread (all are started after this and inherit the mask); main
  // waits for them with sigtimedwait, so no signal handler runs at all.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  fastdiss::RuntimeOptions runtime;
  runtime.intra_op_threads = config->runtime.threads;
  runtime.blas_threads = config->runtime.blas_threads;
  std::cerr << "fastdiss-server: runtime " << fastdiss::ConfigureRuntime(runtime) << std::endl;

  auto server = fastdiss::ModelServer::Start(*config, &std::cerr);
  if (!server.ok()) {
    std::cerr << "fastdiss-server: " << server.status().message() << std::endl;
    return 1;
  }
  // SIGHUP, or every server.model_poll_seconds, looks for new model versions; SIGTERM or SIGINT
  // stops.
  const double poll = config->server.model_poll_seconds;
  int signal = 0;
  for (;;) {
    if (poll > 0) {
      const timespec period{static_cast<time_t>(poll),
                            static_cast<long>((poll - static_cast<time_t>(poll)) * 1e9)};
      signal = sigtimedwait(&signals, nullptr, &period);
      if (signal < 0) {  // the poll period passed (or an interruption)
        (*server)->ReloadModels();
        continue;
      }
    } else if (sigwait(&signals, &signal) != 0) {
      continue;
    }
    if (signal != SIGHUP) break;
    std::cerr << "fastdiss-server: SIGHUP received, looking for new model versions" << std::endl;
    (*server)->ReloadModels();
  }
  std::cerr << "fastdiss-server: " << (signal == SIGTERM ? "SIGTERM" : "SIGINT") << " received"
            << std::endl;
  (*server)->Shutdown(absl::Seconds(config->server.drain_grace_seconds));
  return 0;
}
