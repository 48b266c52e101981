// fastdiss-train --config FILE [--set key=value ...] [--profile TRACE [--profile-operators]]:
// parses flags and config, then runs Trainer.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/command_line.h"
#include "model/runtime.h"
#include "trainer/distributed.h"
#include "trainer/trace_recorder.h"
#include "trainer/train_config.h"
#include "trainer/trainer.h"

namespace {

// SIGTERM or SIGINT: the trainer finishes its step, saves last/ and exits 0 (a second signal kills
// at once). The handler only sets the trainer's atomic flag.
std::atomic<fastdiss::Trainer*> running_trainer{nullptr};

void OnStopSignal(int signal) {
  if (fastdiss::Trainer* trainer = running_trainer.load()) trainer->RequestStop();
  ::signal(signal, SIG_DFL);
}

void PrintHelp() {
  fastdiss::TrainConfig defaults;
  std::cout << R"(Usage: fastdiss-train --config FILE [--set key=value ...] [--print-config]
                      [--profile TRACE [--profile-operators]]

Trains a FastDiSS checkpoint. The YAML config and --set overrides (applied in order)
take these keys; below is a complete config file with every default.
--print-config prints the effective config in the same form and exits.
--profile writes a Chrome trace of the training steps' phases (batch, encode, the denoiser
passes, backward, all-reduce, optimizer) to TRACE at the end; it costs a clock read per
phase. --profile-operators adds every LibTorch operator, which slows the run: keep it short
(train.max_steps). scripts/profile-summary.py TRACE prints the time per phase and operator.
SIGTERM or SIGINT ends the run after the current step with last/ saved (no dev evaluation);
train.resume: auto continues it exactly. A second signal stops it at once.

)" << fastdiss::DescribeFields(defaults.Fields());
}

struct TrainFlags {
  std::string config_path, profile_path;
  std::vector<std::string> overrides;
  bool print_config = false, profile_operators = false;
};

// Reads the flags into *out; returns an exit status when the program is to end here.
std::optional<int> ParseFlags(int argc, char** argv, TrainFlags* out) {
  fastdiss::FlagReader flags("fastdiss-train", argc, argv);
  while (flags.Next()) {
    if (flags.Is("--help") || flags.Is("-h")) {
      PrintHelp();
      return 0;
    } else if (flags.Is("--print-config")) {
      out->print_config = flags.Switch();
    } else if (flags.Is("--config")) {
      out->config_path = flags.String();
    } else if (flags.Is("--set")) {
      out->overrides.push_back(flags.String());
    } else if (flags.Is("--profile")) {
      out->profile_path = flags.String();
    } else if (flags.Is("--profile-operators")) {
      out->profile_operators = flags.Switch();
    } else {
      flags.Unknown();
    }
  }
  if (out->profile_operators && out->profile_path.empty()) {
    std::cerr << "fastdiss-train: --profile-operators needs --profile TRACE\n";
    return 2;
  }
  if (out->config_path.empty()) {
    std::cerr << "fastdiss-train: --config FILE is required (see --help)\n";
    return 2;
  }
  return std::nullopt;
}

// torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) makes this one
// rank of a data-parallel run, over NCCL when training on CUDA, else Gloo; without it, a single
// process. Returns an exit status on failure.
std::optional<int> ConnectRanks(const fastdiss::TrainConfig& config,
                                std::unique_ptr<fastdiss::Communicator>* comm) {
  auto env = fastdiss::DistributedEnvFromEnvironment();
  if (!env.ok()) {
    std::cerr << "fastdiss-train: " << env.status() << "\n";
    return 2;
  }
  const auto backend =
      config.train.device == "cpu" ? fastdiss::CommBackend::kGloo : fastdiss::CommBackend::kNccl;
  auto connected = fastdiss::Communicator::Connect(*env, backend, std::chrono::minutes(30));
  if (!connected.ok()) {
    std::cerr << "fastdiss-train: " << connected.status() << "\n";
    return 1;
  }
  *comm = std::move(connected).value();
  return std::nullopt;
}

// Runs the trainer with SIGTERM and SIGINT asking it to stop, under the profiler when asked.
absl::StatusOr<fastdiss::TrainSummary> RunTrainer(fastdiss::Trainer& trainer,
                                                  const TrainFlags& flags) {
  std::unique_ptr<fastdiss::TraceRecorder> profile;
  if (!flags.profile_path.empty()) {
    FASTDISS_ASSIGN_OR_RETURN(profile, fastdiss::TraceRecorder::Start(flags.profile_operators));
  }
  running_trainer.store(&trainer);
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  auto summary = trainer.Run();
  running_trainer.store(nullptr);
  if (profile != nullptr) {
    FASTDISS_RETURN_IF_ERROR(profile->WriteChromeTrace(flags.profile_path));
    std::cerr << "profile: " << profile->span_count() << " spans written to " << flags.profile_path
              << "\n";
  }
  return summary;
}

}  // namespace

int main(int argc, char** argv) {
  TrainFlags flags;
  if (std::optional<int> exit_status = ParseFlags(argc, argv, &flags)) return *exit_status;
  auto config = fastdiss::TrainConfig::Load(flags.config_path, flags.overrides);
  if (!config.ok()) {
    std::cerr << "fastdiss-train: " << config.status() << "\n";
    return 2;
  }
  if (flags.print_config) {
    std::cout << fastdiss::DescribeFields(config->Fields());
    return 0;
  }
  fastdiss::RuntimeOptions runtime;
  runtime.intra_op_threads = static_cast<int>(config->train.threads);
  std::cerr << "runtime: " << fastdiss::ConfigureRuntime(runtime) << "\n";
  std::unique_ptr<fastdiss::Communicator> comm;
  if (std::optional<int> exit_status = ConnectRanks(*config, &comm)) return *exit_status;
  auto trainer = fastdiss::Trainer::Create(std::move(config).value(), &std::cerr, comm.get());
  if (!trainer.ok()) {
    std::cerr << "fastdiss-train: " << trainer.status() << "\n";
    return 1;
  }
  auto summary = RunTrainer(**trainer, flags);
  if (!summary.ok()) {
    std::cerr << "fastdiss-train: " << summary.status() << "\n";
    return 1;
  }
  std::cerr << (summary->stopped ? "stopped" : "done") << " at step " << summary->step
            << ", best dev BLEU " << summary->best_bleu << "\n";
  return 0;
}
