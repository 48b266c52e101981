// fastdiss-step-bench: latency of one batched denoising step against rows per batch, for the
// thread and allocator settings of model/runtime.h. Builds a randomly initialised model of the
// given size (or loads --checkpoint), so it runs anywhere LibTorch runs, CUDA included.
//
//   fastdiss-step-bench [--checkpoint DIR] [--rows 1,2,4,...] [--length 12] [--source-length 12]
//                       [--threads N] [--blas-threads N] [--default-malloc] [--device cpu|cuda|cuda:N]
//                       [--iterations N] [--d-model 128 --ffn 512 --layers 3 --d-latent 64 --vocab 4000]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "model/command_line.h"
#include "model/runtime.h"
#include "model/sampler.h"

namespace {

constexpr char kUsage[] =
    "Usage: fastdiss-step-bench [--checkpoint DIR] [--rows 1,2,4,...] [--length 12] [--source-length 12]\n"
    "                           [--threads N] [--blas-threads N] [--default-malloc] [--device cpu|cuda|cuda:N]\n"
    "                           [--iterations N] [--d-model 128 --ffn 512 --layers 3 --d-latent 64 --vocab 4000]\n\n"
    "Prints the latency of one batched denoising step for each row count, on a random model of the\n"
    "given size or on --checkpoint. --iterations 0 picks a count per row count.\n";

constexpr int64_t kMaxInt = std::numeric_limits<int>::max();

}  // namespace

int main(int argc, char** argv) {
  std::string checkpoint, device_name = "cpu";
  std::vector<int64_t> rows = {1, 2, 4, 8, 16, 32, 64, 128};
  int length = 12, source_length = 12, iterations = 0, threads = 0, blas_threads = 0;
  bool tune_allocator = true;
  fastdiss::ModelConfig config;
  config.vocab_size = 4000;
  config.d_latent = 64;
  config.d_model = 128;
  config.ffn_dim = 512;
  config.encoder_layers = config.decoder_layers = 3;
  config.dropout = 0;
  fastdiss::FlagReader flags("fastdiss-step-bench", argc, argv);
  while (flags.Next()) {
    if (flags.Is("--help") || flags.Is("-h")) {
      std::cout << kUsage;
      return 0;
    }
    if (flags.Is("--checkpoint")) checkpoint = flags.String();
    else if (flags.Is("--rows")) rows = flags.IntList(1, kMaxInt);
    else if (flags.Is("--length")) length = static_cast<int>(flags.Int(1, kMaxInt));
    else if (flags.Is("--source-length")) source_length = static_cast<int>(flags.Int(1, kMaxInt));
    else if (flags.Is("--iterations")) iterations = static_cast<int>(flags.Int(0, 1'000'000));
    else if (flags.Is("--threads")) threads = static_cast<int>(flags.Int(0, kMaxInt));
    else if (flags.Is("--blas-threads")) blas_threads = static_cast<int>(flags.Int(0, kMaxInt));
    else if (flags.Is("--default-malloc")) tune_allocator = !flags.Switch();
    else if (flags.Is("--device")) device_name = flags.String();
    else if (flags.Is("--d-model")) config.d_model = static_cast<int>(flags.Int(1, kMaxInt));
    else if (flags.Is("--ffn")) config.ffn_dim = static_cast<int>(flags.Int(1, kMaxInt));
    else if (flags.Is("--layers")) config.encoder_layers = config.decoder_layers = static_cast<int>(flags.Int(1, kMaxInt));
    else if (flags.Is("--d-latent")) config.d_latent = static_cast<int>(flags.Int(1, kMaxInt));
    else if (flags.Is("--vocab")) config.vocab_size = static_cast<int>(flags.Int(1, kMaxInt));
    else flags.Unknown();
  }
  fastdiss::RuntimeOptions runtime;
  runtime.intra_op_threads = threads;
  runtime.blas_threads = blas_threads;
  runtime.tune_allocator = tune_allocator;
  const std::string settings = fastdiss::ConfigureRuntime(runtime);
  auto resolved = fastdiss::ResolveDevice(device_name);
  if (!resolved.ok()) {
    std::cerr << "fastdiss-step-bench: --device: " << resolved.status() << "\n";
    return 2;
  }
  const torch::Device device = *resolved;

  fastdiss::FastDissModel model{nullptr};
  if (!checkpoint.empty()) {
    auto loaded = fastdiss::LoadCheckpoint(checkpoint, device);
    if (!loaded.ok()) {
      std::cerr << "fastdiss-step-bench: " << loaded.status() << "\n";
      return 1;
    }
    model = loaded->model;
  } else {
    if (auto status = config.Validate(); !status.ok()) {
      std::cerr << "fastdiss-step-bench: " << status << "\n";
      return 2;
    }
    model = fastdiss::FastDissModel(config);
    model->to(device);
    model->eval();
  }
  const fastdiss::ModelConfig& c = model->config();
  if (length > c.max_target_tokens || source_length > c.max_source_tokens) {
    std::cerr << "fastdiss-step-bench: --length/--source-length exceed the model's limits\n";
    return 2;
  }
  auto schedule = fastdiss::NoiseSchedule::Create({c.num_timesteps, c.noise_factor});
  fastdiss::Sampler sampler(model, *schedule, device);
  std::printf("# %s device=%s d_model=%d layers=%d+%d target_len=%d source_len=%d\n", settings.c_str(),
              device.str().c_str(), c.d_model, c.encoder_layers, c.decoder_layers, length, source_length);
  std::printf("%6s %12s %12s %14s\n", "rows", "ms/step", "rows/s", "tokens/s");
  for (int r : rows) {
    // Each row its own request, each at its own step count, as the server batches them.
    std::vector<std::unique_ptr<fastdiss::DecodeState>> owned;
    std::vector<fastdiss::DecodeState*> states;
    const int budget = iterations > 0 ? iterations : std::max(5, 200 / r);
    for (int i = 0; i < r; ++i) {
      fastdiss::DecodeOptions options;
      options.steps = budget + 3 + i % 7;
      options.seed = i;
      options.target_length = length;
      auto state = sampler.NewState(std::vector<int>(source_length, 5 + i % 50), options);
      if (!state.ok()) {
        std::cerr << state.status() << "\n";
        return 1;
      }
      states.push_back(state->get());
      owned.push_back(std::move(state).value());
    }
    if (!sampler.Start(states).ok() || !sampler.Step(states).ok() || !sampler.Step(states).ok()) return 1;
    if (device.is_cuda()) torch::cuda::synchronize();
    const auto start = std::chrono::steady_clock::now();
    for (int k = 0; k < budget; ++k) {
      if (auto status = sampler.Step(states); !status.ok()) {
        std::cerr << status << "\n";
        return 1;
      }
    }
    if (device.is_cuda()) torch::cuda::synchronize();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double per_step = seconds / budget;
    std::printf("%6d %12.3f %12.1f %14.1f\n", r, per_step * 1e3, r / per_step, r * length / per_step);
    std::fflush(stdout);
  }
  return 0;
}
