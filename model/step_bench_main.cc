// fastdiss-step-bench: latency of one batched denoising step against rows per batch, for the
// thread and allocator settings of model/runtime.h. Builds a randomly initialised model of the
// given size (or loads --checkpoint), so it runs anywhere LibTorch runs, CUDA included.
// Beside each step it prints the GFLOP/s the step achieves, the time and rate of the same step's
// GEMMs alone (the arithmetic bound at those shapes), and the time to admit (encode) as many
// new requests at once.
//
//   fastdiss-step-bench [--checkpoint DIR] [--rows 1,2,4,...] [--length 12] [--source-length 12]
//                       [--threads N] [--blas-threads N] [--default-malloc] [--device
//                       cpu|cuda|cuda:N]
//                       [--iterations N] [--d-model 128 --ffn 512 --layers 3 --d-latent 64 --vocab
//                       4000]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "base/command_line.h"
#include "model/checkpoint.h"
#include "model/runtime.h"
#include "model/sampler.h"

namespace {

constexpr char kUsage[] =
    "Usage: fastdiss-step-bench [--checkpoint DIR] [--rows 1,2,4,...] [--length 12] "
    "[--source-length 12]\n"
    "                           [--threads N] [--blas-threads N] [--default-malloc] [--device "
    "cpu|cuda|cuda:N]\n"
    "                           [--iterations N] [--d-model 128 --ffn 512 --layers 3 --d-latent 64 "
    "--vocab 4000]\n\n"
    "Prints the latency of one batched denoising step for each row count, on a random model of "
    "the\n"
    "given size or on --checkpoint. --iterations 0 picks a count per row count.\n";

constexpr int64_t kMaxInt = std::numeric_limits<int>::max();

// The matrix products of one denoising step over `rows` rows of `length` target and `source`
// source tokens, as (M, K, N): M rows times a [K, N] weight. Attention's per-head products are
// counted in StepFlops, not here: they are not GEMMs of these shapes.
struct Gemm {
  int64_t m, k, n;
};

std::vector<Gemm> StepGemms(const fastdiss::ModelConfig& c, int64_t rows, int64_t length) {
  const int64_t T = rows * length, H = c.d_model, D = c.d_latent, F = c.ffn_dim;
  std::vector<Gemm> gemms = {{T, D, H}, {T, D, H},        {T, 2 * H, H},
                             {T, H, H}, {rows, H, 4 * H}, {rows, 4 * H, H}};
  for (int i = 0; i < c.decoder_layers; ++i) {
    gemms.insert(gemms.end(),
                 {{T, H, 3 * H}, {T, H, H}, {T, H, H}, {T, H, H}, {T, H, F}, {T, F, H}});
  }
  gemms.push_back({T, H, D});
  return gemms;
}

// Floating-point operations of one step: its GEMMs plus attention (scores and weighted values
// over target and source keys).
double StepFlops(const fastdiss::ModelConfig& c, int64_t rows, int64_t length, int64_t source) {
  double flops = 0;
  for (const Gemm& g : StepGemms(c, rows, length)) flops += 2.0 * g.m * g.k * g.n;
  return flops + c.decoder_layers * 2.0 * 2.0 * rows * length * (length + source) * c.d_model;
}

// Seconds for the step's GEMMs alone, each an addmm with its bias as in the network (fresh outputs,
// one weight per product),
// the best of `repeats` runs: what the step would cost if nothing else took time.
double GemmSeconds(const std::vector<Gemm>& gemms, int repeats, torch::Device device) {
  std::vector<torch::Tensor> inputs, weights, biases;
  for (const Gemm& g : gemms) {
    inputs.push_back(torch::randn({g.m, g.k}, torch::TensorOptions().device(device)));
    weights.push_back(torch::randn({g.n, g.k}, torch::TensorOptions().device(device)));
    biases.push_back(torch::randn({g.n}, torch::TensorOptions().device(device)));
  }
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < repeats + 1; ++r) {  // the first run warms up
    if (device.is_cuda()) torch::cuda::synchronize();
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < gemms.size(); ++i) torch::addmm(biases[i], inputs[i], weights[i].t());
    if (device.is_cuda()) torch::cuda::synchronize();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (r > 0) best = std::min(best, seconds);
  }
  return best;
}

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
    if (flags.Is("--checkpoint"))
      checkpoint = flags.String();
    else if (flags.Is("--rows"))
      rows = flags.IntList(1, kMaxInt);
    else if (flags.Is("--length"))
      length = static_cast<int>(flags.Int(1, kMaxInt));
    else if (flags.Is("--source-length"))
      source_length = static_cast<int>(flags.Int(1, kMaxInt));
    else if (flags.Is("--iterations"))
      iterations = static_cast<int>(flags.Int(0, 1'000'000));
    else if (flags.Is("--threads"))
      threads = static_cast<int>(flags.Int(0, kMaxInt));
    else if (flags.Is("--blas-threads"))
      blas_threads = static_cast<int>(flags.Int(0, kMaxInt));
    else if (flags.Is("--default-malloc"))
      tune_allocator = !flags.Switch();
    else if (flags.Is("--device"))
      device_name = flags.String();
    else if (flags.Is("--d-model"))
      config.d_model = static_cast<int>(flags.Int(1, kMaxInt));
    else if (flags.Is("--ffn"))
      config.ffn_dim = static_cast<int>(flags.Int(1, kMaxInt));
    else if (flags.Is("--layers"))
      config.encoder_layers = config.decoder_layers = static_cast<int>(flags.Int(1, kMaxInt));
    else if (flags.Is("--d-latent"))
      config.d_latent = static_cast<int>(flags.Int(1, kMaxInt));
    else if (flags.Is("--vocab"))
      config.vocab_size = static_cast<int>(flags.Int(1, kMaxInt));
    else
      flags.Unknown();
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
  std::printf("# %s device=%s d_model=%d layers=%d+%d target_len=%d source_len=%d\n",
              settings.c_str(), device.str().c_str(), c.d_model, c.encoder_layers, c.decoder_layers,
              length, source_length);
  std::printf("%6s %12s %12s %14s %10s %10s %12s %10s\n", "rows", "ms/step", "rows/s", "tokens/s",
              "GFLOP/s", "gemm_ms", "gemm_GFLOP/s", "start_ms");
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
    if (!sampler.Start(states).ok() || !sampler.Step(states).ok() || !sampler.Step(states).ok())
      return 1;
    if (device.is_cuda()) torch::cuda::synchronize();
    const auto start = std::chrono::steady_clock::now();
    for (int k = 0; k < budget; ++k) {
      if (auto status = sampler.Step(states); !status.ok()) {
        std::cerr << status << "\n";
        return 1;
      }
    }
    if (device.is_cuda()) torch::cuda::synchronize();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double per_step = seconds / budget;
    // Admission: encoding r new requests together (Sampler::Start), the best of 5 tries.
    double start_seconds = std::numeric_limits<double>::infinity();
    for (int attempt = 0; attempt < 5; ++attempt) {
      std::vector<std::unique_ptr<fastdiss::DecodeState>> fresh;
      std::vector<fastdiss::DecodeState*> fresh_states;
      for (int i = 0; i < r; ++i) {
        fastdiss::DecodeOptions options;
        options.seed = 1000 + i;
        options.target_length = length;
        fresh.push_back(
            std::move(sampler.NewState(std::vector<int>(source_length, 7 + i % 50), options))
                .value());
        fresh_states.push_back(fresh.back().get());
      }
      const auto begin = std::chrono::steady_clock::now();
      if (!sampler.Start(fresh_states).ok()) return 1;
      if (device.is_cuda()) torch::cuda::synchronize();
      start_seconds =
          std::min(start_seconds,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
    }
    // Beside it, the same step's GEMMs alone: the arithmetic bound at these shapes.
    const std::vector<Gemm> gemms = StepGemms(c, r, length);
    double gemm_flops = 0;
    for (const Gemm& g : gemms) gemm_flops += 2.0 * g.m * g.k * g.n;
    const double gemm_seconds = GemmSeconds(gemms, std::max(5, budget), device);
    std::printf("%6d %12.3f %12.1f %14.1f %10.1f %10.3f %12.1f %10.3f\n", r, per_step * 1e3,
                r / per_step, r * length / per_step,
                StepFlops(c, r, length, source_length) / per_step * 1e-9, gemm_seconds * 1e3,
                gemm_flops / gemm_seconds * 1e-9, start_seconds * 1e3);
    std::fflush(stdout);
  }
  return 0;
}
