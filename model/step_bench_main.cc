// fastdiss-step-bench: latency of one batched denoising step against rows per batch, for the
// thread and allocator settings of model/runtime.h. Builds a randomly initialised model of the
// given size (or loads --checkpoint), so it runs anywhere LibTorch runs, CUDA included.
// Beside each step it prints the GFLOP/s the step achieves, the time and rate of the same step's
// GEMMs alone (the arithmetic bound at those shapes), and the time to admit (encode) as many
// new requests at once.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/command_line.h"
#include "model/checkpoint.h"
#include "model/runtime.h"
#include "model/sampler.h"

namespace {

constexpr char kUsage[] =
    R"(Usage: fastdiss-step-bench [--checkpoint DIR] [--rows 1,2,4,...] [--length 12] [--source-length 12]
                           [--threads N] [--blas-threads N] [--default-malloc] [--device cpu|cuda|cuda:N]
                           [--iterations N] [--d-model 128 --ffn 512 --layers 3 --d-latent 64 --vocab 4000]
                           [--clamp] [--precision float32|bfloat16]

Prints the latency of one batched denoising step for each row count, on a random model of the
given size or on --checkpoint. --iterations 0 picks a count per row count. --clamp times the
step with clamping (every row's estimate rounded and embedded again). --precision bfloat16 stores
the linear layers in bfloat16 and runs their products in it, as a server's models.NAME.precision
does; the GEMM column is then bfloat16 too.
)";

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

// Seconds from `start` until the device has finished the work queued since.
double SecondsSince(std::chrono::steady_clock::time_point start, torch::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Seconds for the step's GEMMs alone, each an addmm with its bias as in the network (fresh outputs,
// one weight per product),
// the best of `repeats` runs: what the step would cost if nothing else took time.
double GemmSeconds(const std::vector<Gemm>& gemms, int repeats, torch::Device device,
                   torch::ScalarType dtype) {
  std::vector<torch::Tensor> inputs, weights, biases;
  const auto options = torch::TensorOptions().device(device).dtype(dtype);
  for (const Gemm& g : gemms) {
    inputs.push_back(torch::randn({g.m, g.k}, options));
    weights.push_back(torch::randn({g.n, g.k}, options));
    biases.push_back(torch::randn({g.n}, options));
  }
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < repeats + 1; ++r) {  // the first run warms up
    if (device.is_cuda()) torch::cuda::synchronize();
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < gemms.size(); ++i) torch::addmm(biases[i], inputs[i], weights[i].t());
    if (r > 0) best = std::min(best, SecondsSince(start, device));
  }
  return best;
}

struct BenchFlags {
  std::string checkpoint, device_name = "cpu";
  std::vector<int64_t> rows = {1, 2, 4, 8, 16, 32, 64, 128};
  int length = 12, source_length = 12, iterations = 0;
  bool clamp = false;
  fastdiss::LinearPrecision precision = fastdiss::LinearPrecision::kFloat32;  // linear layers
  fastdiss::RuntimeOptions runtime;
  fastdiss::ModelConfig config;  // of the random model, when no --checkpoint
};

// Reads the flags into *out; returns an exit status when the program is to end here.
std::optional<int> ParseFlags(int argc, char** argv, BenchFlags* out) {
  fastdiss::ModelConfig& config = out->config;
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
    } else if (flags.Is("--checkpoint")) {
      out->checkpoint = flags.String();
    } else if (flags.Is("--rows")) {
      out->rows = flags.IntList(1, kMaxInt);
    } else if (flags.Is("--length")) {
      out->length = static_cast<int>(flags.Int(1, kMaxInt));
    } else if (flags.Is("--source-length")) {
      out->source_length = static_cast<int>(flags.Int(1, kMaxInt));
    } else if (flags.Is("--iterations")) {
      out->iterations = static_cast<int>(flags.Int(0, 1'000'000));
    } else if (flags.Is("--threads")) {
      out->runtime.intra_op_threads = static_cast<int>(flags.Int(0, kMaxInt));
    } else if (flags.Is("--blas-threads")) {
      out->runtime.blas_threads = static_cast<int>(flags.Int(0, kMaxInt));
    } else if (flags.Is("--default-malloc")) {
      out->runtime.tune_allocator = !flags.Switch();
    } else if (flags.Is("--clamp")) {
      out->clamp = flags.Switch();
    } else if (flags.Is("--precision")) {
      auto precision = fastdiss::ParseLinearPrecision(flags.String());
      if (!precision.ok()) {
        std::cerr << "fastdiss-step-bench: --precision: " << precision.status().message() << "\n";
        return 2;
      }
      out->precision = *precision;
    } else if (flags.Is("--device")) {
      out->device_name = flags.String();
    } else if (flags.Is("--d-model")) {
      config.d_model = static_cast<int>(flags.Int(1, kMaxInt));
    } else if (flags.Is("--ffn")) {
      config.ffn_dim = static_cast<int>(flags.Int(1, kMaxInt));
    } else if (flags.Is("--layers")) {
      config.encoder_layers = config.decoder_layers = static_cast<int>(flags.Int(1, kMaxInt));
    } else if (flags.Is("--d-latent")) {
      config.d_latent = static_cast<int>(flags.Int(1, kMaxInt));
    } else if (flags.Is("--vocab")) {
      config.vocab_size = static_cast<int>(flags.Int(1, kMaxInt));
    } else {
      flags.Unknown();
    }
  }
  return std::nullopt;
}

// The --checkpoint's model, or a random one of the flags' size, at the flags' precision.
absl::StatusOr<fastdiss::FastDissModel> BenchModel(const BenchFlags& flags, torch::Device device) {
  fastdiss::FastDissModel model{nullptr};
  if (!flags.checkpoint.empty()) {
    FASTDISS_ASSIGN_OR_RETURN(fastdiss::LoadedCheckpoint loaded,
                              fastdiss::LoadCheckpoint(flags.checkpoint, device));
    model = loaded.model;
  } else {
    FASTDISS_RETURN_IF_ERROR(flags.config.Validate());
    model = fastdiss::FastDissModel(flags.config);
    model->to(device);
    model->eval();
  }
  model->SetLinearPrecision(flags.precision);
  return model;
}

// `rows` requests of the flags' lengths, one row each, with seeds from first_seed, source
// tokens from first_token and step counts from first_steps (0: the default), varying by row.
struct Requests {
  std::vector<std::unique_ptr<fastdiss::DecodeState>> owned;
  std::vector<fastdiss::DecodeState*> states;
};
absl::StatusOr<Requests> NewRequests(fastdiss::Sampler& sampler, const BenchFlags& flags, int rows,
                                     int first_seed, int first_token, int first_steps) {
  Requests requests;
  for (int i = 0; i < rows; ++i) {
    fastdiss::DecodeOptions options;
    if (first_steps > 0) options.steps = first_steps + i % 7;
    options.seed = first_seed + i;
    options.target_length = flags.length;
    options.clamp = flags.clamp;
    FASTDISS_ASSIGN_OR_RETURN(
        std::unique_ptr<fastdiss::DecodeState> state,
        sampler.NewState(std::vector<int>(flags.source_length, first_token + i % 50), options));
    requests.states.push_back(state.get());
    requests.owned.push_back(std::move(state));
  }
  return requests;
}

struct RowsMeasurement {
  double step_seconds = 0;   // one step over all the rows
  double start_seconds = 0;  // admitting (encoding) as many new requests at once, best of 5
  double gemm_seconds = 0;   // the step's GEMMs alone
  double gemm_flops = 0;
};

absl::StatusOr<RowsMeasurement> MeasureRows(fastdiss::Sampler& sampler, const BenchFlags& flags,
                                            int rows, torch::Device device) {
  RowsMeasurement m;
  // Each row its own request, each at its own step count, as the server batches them.
  const int budget = flags.iterations > 0 ? flags.iterations : std::max(5, 200 / rows);
  FASTDISS_ASSIGN_OR_RETURN(Requests running, NewRequests(sampler, flags, rows, 0, 5, budget + 3));
  FASTDISS_RETURN_IF_ERROR(sampler.Start(running.states));
  for (int warm = 0; warm < 2; ++warm) FASTDISS_RETURN_IF_ERROR(sampler.Step(running.states));
  if (device.is_cuda()) torch::cuda::synchronize();
  const auto start = std::chrono::steady_clock::now();
  for (int k = 0; k < budget; ++k) FASTDISS_RETURN_IF_ERROR(sampler.Step(running.states));
  m.step_seconds = SecondsSince(start, device) / budget;

  m.start_seconds = std::numeric_limits<double>::infinity();
  for (int attempt = 0; attempt < 5; ++attempt) {
    FASTDISS_ASSIGN_OR_RETURN(Requests fresh, NewRequests(sampler, flags, rows, 1000, 7, 0));
    const auto begin = std::chrono::steady_clock::now();
    FASTDISS_RETURN_IF_ERROR(sampler.Start(fresh.states));
    m.start_seconds = std::min(m.start_seconds, SecondsSince(begin, device));
  }
  // Beside it, the same step's GEMMs alone: the arithmetic bound at these shapes.
  const std::vector<Gemm> gemms = StepGemms(sampler.model()->config(), rows, flags.length);
  for (const Gemm& g : gemms) m.gemm_flops += 2.0 * g.m * g.k * g.n;
  m.gemm_seconds = GemmSeconds(
      gemms, std::max(5, budget), device,
      flags.precision == fastdiss::LinearPrecision::kBFloat16 ? torch::kBFloat16 : torch::kFloat32);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  fastdiss::ReexecWithBlasThreadTimeout(argv);
  BenchFlags flags;
  if (std::optional<int> exit_status = ParseFlags(argc, argv, &flags)) return *exit_status;
  const std::string settings = fastdiss::ConfigureRuntime(flags.runtime);
  auto device = fastdiss::ResolveDevice(flags.device_name);
  if (!device.ok()) {
    std::cerr << "fastdiss-step-bench: --device: " << device.status() << "\n";
    return 2;
  }
  auto model = BenchModel(flags, *device);
  if (!model.ok()) {
    std::cerr << "fastdiss-step-bench: " << model.status() << "\n";
    return flags.checkpoint.empty() ? 2 : 1;
  }
  const fastdiss::ModelConfig& c = (*model)->config();
  if (flags.length > c.max_target_tokens || flags.source_length > c.max_source_tokens) {
    std::cerr << "fastdiss-step-bench: --length/--source-length exceed the model's limits\n";
    return 2;
  }
  auto schedule = fastdiss::NoiseSchedule::Create({c.num_timesteps, c.noise_factor});
  fastdiss::Sampler sampler(*model, *schedule, *device);
  std::printf("# %s device=%s precision=%s d_model=%d layers=%d+%d target_len=%d source_len=%d\n",
              settings.c_str(), device->str().c_str(),
              std::string(fastdiss::LinearPrecisionName(flags.precision)).c_str(), c.d_model,
              c.encoder_layers, c.decoder_layers, flags.length, flags.source_length);
  std::printf("%6s %12s %12s %14s %10s %10s %12s %10s\n", "rows", "ms/step", "rows/s", "tokens/s",
              "GFLOP/s", "gemm_ms", "gemm_GFLOP/s", "start_ms");
  for (int r : flags.rows) {
    auto m = MeasureRows(sampler, flags, r, *device);
    if (!m.ok()) {
      std::cerr << "fastdiss-step-bench: " << m.status() << "\n";
      return 1;
    }
    const double per_step = m->step_seconds;
    std::printf("%6d %12.3f %12.1f %14.1f %10.1f %10.3f %12.1f %10.3f\n", r, per_step * 1e3,
                r / per_step, r * flags.length / per_step,
                StepFlops(c, r, flags.length, flags.source_length) / per_step * 1e-9,
                m->gemm_seconds * 1e3, m->gemm_flops / m->gemm_seconds * 1e-9,
                m->start_seconds * 1e3);
    std::fflush(stdout);
  }
  return 0;
}
