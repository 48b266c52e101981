// fastdiss-server [--config FILE] [--port N] [--metrics-port N] [--model NAME=DIR ...] [--set k=v
// ...]: parses flags and config, starts a ModelServer, and on SIGTERM or SIGINT drains it and exits
// 0.
#include <pthread.h>
#include <signal.h>

#include <iostream>
#include <optional>
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

struct ServerFlags {
  std::string config_path;
  std::vector<std::string> overrides, model_flags;  // --set (and --port ...), --model
  bool print_config = false;
};

// Reads the flags into *out; returns an exit status when the program is to end here.
std::optional<int> ParseFlags(int argc, char** argv, ServerFlags* out) {
  fastdiss::FlagReader flags("fastdiss-server", argc, argv);
  while (flags.Next()) {
    if (flags.Is("--help") || flags.Is("-h")) {
      PrintHelp();
      return 0;
    } else if (flags.Is("--print-config")) {
      out->print_config = flags.Switch();
    } else if (flags.Is("--config")) {
      out->config_path = flags.String();
    } else if (flags.Is("--port")) {
      out->overrides.push_back("server.port=" + flags.String());
    } else if (flags.Is("--metrics-port")) {
      out->overrides.push_back("server.metrics_port=" + flags.String());
    } else if (flags.Is("--model")) {
      out->model_flags.push_back(flags.String());
    } else if (flags.Is("--set")) {
      out->overrides.push_back(flags.String());
    } else {
      flags.Unknown();
    }
  }
  return std::nullopt;
}

// Blocks SIGTERM, SIGINT and SIGHUP in every thread (all are started after this and inherit the
// mask); main waits for them with sigtimedwait, so no signal handler runs at all.
sigset_t BlockServerSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// Serves until SIGTERM or SIGINT; SIGHUP, or every server.model_poll_seconds, looks for new
// model versions. Returns the signal that stopped it.
int ServeUntilStopped(fastdiss::ModelServer& server, double poll_seconds, const sigset_t& signals) {
  int signal = 0;
  for (;;) {
    if (poll_seconds > 0) {
      const timespec period{
          static_cast<time_t>(poll_seconds),
          static_cast<long>((poll_seconds - static_cast<time_t>(poll_seconds)) * 1e9)};
      signal = sigtimedwait(&signals, nullptr, &period);
      if (signal < 0) {  // the poll period passed (or an interruption)
        server.ReloadModels();
        continue;
      }
    } else if (sigwait(&signals, &signal) != 0) {
      continue;
    }
    if (signal != SIGHUP) return signal;
    std::cerr << "fastdiss-server: SIGHUP received, looking for new model versions" << std::endl;
    server.ReloadModels();
  }
}

}  // namespace

int main(int argc, char** argv) {
  fastdiss::ReexecWithBlasThreadTimeout(argv);
  ServerFlags flags;
  if (std::optional<int> exit_status = ParseFlags(argc, argv, &flags)) return *exit_status;
  auto config = fastdiss::ServerConfig::Load(flags.config_path, flags.overrides, flags.model_flags);
  if (!config.ok()) {
    std::cerr << "fastdiss-server: " << config.status().message() << "\n";
    return 2;
  }
  if (flags.print_config) {
    std::cout << config->Describe();
    return 0;
  }
  const sigset_t signals = BlockServerSignals();
  fastdiss::RuntimeOptions runtime;
  runtime.intra_op_threads = config->runtime.threads;
  runtime.blas_threads = config->runtime.blas_threads;
  std::cerr << "fastdiss-server: runtime " << fastdiss::ConfigureRuntime(runtime) << std::endl;
  auto server = fastdiss::ModelServer::Start(*config, &std::cerr);
  if (!server.ok()) {
    std::cerr << "fastdiss-server: " << server.status().message() << std::endl;
    return 1;
  }
  const int signal = ServeUntilStopped(**server, config->server.model_poll_seconds, signals);
  std::cerr << "fastdiss-server: " << (signal == SIGTERM ? "SIGTERM" : "SIGINT") << " received"
            << std::endl;
  (*server)->Shutdown(absl::Seconds(config->server.drain_grace_seconds));
  return 0;
}
