// fastdiss-train --config FILE [--set key=value ...] [--profile TRACE [--profile-operators]]:
// parses flags and config, then runs Trainer.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
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

}  // namespace

int main(int argc, char** argv) {
  std::string config_path, profile_path;
  std::vector<std::string> overrides;
  bool print_config = false, profile_operators = false;
  fastdiss::FlagReader flags("fastdiss-train", argc, argv);
  while (flags.Next()) {
    if (flags.Is("--help") || flags.Is("-h")) {
      PrintHelp();
      return 0;
    } else if (flags.Is("--print-config")) {
      print_config = flags.Switch();
    } else if (flags.Is("--config")) {
      config_path = flags.String();
    } else if (flags.Is("--set")) {
      overrides.push_back(flags.String());
    } else if (flags.Is("--profile")) {
      profile_path = flags.String();
    } else if (flags.Is("--profile-operators")) {
      profile_operators = flags.Switch();
    } else {
      flags.Unknown();
    }
  }
  if (profile_operators && profile_path.empty()) {
    std::cerr << "fastdiss-train: --profile-operators needs --profile TRACE\n";
    return 2;
  }
  if (config_path.empty()) {
    std::cerr << "fastdiss-train: --config FILE is required (see --help)\n";
    return 2;
  }
  auto config = fastdiss::TrainConfig::Load(config_path, overrides);
  if (!config.ok()) {
    std::cerr << "fastdiss-train: " << config.status() << "\n";
    return 2;
  }
  if (print_config) {
    std::cout << fastdiss::DescribeFields(config->Fields());
    return 0;
  }
  fastdiss::RuntimeOptions runtime;
  runtime.intra_op_threads = static_cast<int>(config->train.threads);
  std::cerr << "runtime: " << fastdiss::ConfigureRuntime(runtime) << "\n";
  // torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) makes this one
  // rank of a data-parallel run, over NCCL when training on CUDA, else Gloo; without it, a single
  // process.
  auto env = fastdiss::DistributedEnvFromEnvironment();
  if (!env.ok()) {
    std::cerr << "fastdiss-train: " << env.status() << "\n";
    return 2;
  }
  const auto backend =
      config->train.device == "cpu" ? fastdiss::CommBackend::kGloo : fastdiss::CommBackend::kNccl;
  auto comm = fastdiss::Communicator::Connect(*env, backend, std::chrono::minutes(30));
  if (!comm.ok()) {
    std::cerr << "fastdiss-train: " << comm.status() << "\n";
    return 1;
  }
  auto trainer = fastdiss::Trainer::Create(std::move(config).value(), &std::cerr, comm->get());
  if (!trainer.ok()) {
    std::cerr << "fastdiss-train: " << trainer.status() << "\n";
    return 1;
  }
  std::unique_ptr<fastdiss::TraceRecorder> profile;
  if (!profile_path.empty()) {
    auto recorder = fastdiss::TraceRecorder::Start(profile_operators);
    if (!recorder.ok()) {
      std::cerr << "fastdiss-train: " << recorder.status() << "\n";
      return 1;
    }
    profile = std::move(recorder).value();
  }
  running_trainer.store(trainer->get());
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  auto summary = (*trainer)->Run();
  running_trainer.store(nullptr);
  if (profile != nullptr) {
    const absl::Status written = profile->WriteChromeTrace(profile_path);
    if (!written.ok()) {
      std::cerr << "fastdiss-train: " << written << "\n";
      return 1;
    }
    std::cerr << "profile: " << profile->span_count() << " spans written to " << profile_path
              << "\n";
  }
  if (!summary.ok()) {
    std::cerr << "fastdiss-train: " << summary.status() << "\n";
    return 1;
  }
  std::cerr << (summary->stopped ? "stopped" : "done") << " at step " << summary->step
            << ", best dev BLEU " << summary->best_bleu << "\n";
  return 0;
}
