// fastdiss-eval --checkpoint DIR --source FILE --reference FILE [--steps 1,2,5,10,20] [--json]:
// BLEU (sacreBLEU-compatible), phoneme and word error rates and sentences/s per K, and the
// approximation gap of docs/method.md section 7.
#include <torch/torch.h>

#include <cstdint>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "base/command_line.h"
#include "base/json.h"
#include "model/runtime.h"
#include "trainer/evaluate.h"

namespace {

constexpr char kUsage[] =
    R"(Usage: fastdiss-eval --checkpoint DIR --source FILE --reference FILE [options]
  --steps LIST         denoising step counts K (default 1,2,5,10,20)
  --json               print one JSON object instead of a table
  --length-beam N      length candidates (default 1)
  --noise-beam N       noise candidates per length (default 1)
  --ddim               DDIM updates instead of the DDPM posterior
  --no-clamp           no clamping (the default, as the server's, moves every update toward the
                       rounded estimate's embedding); --clamp says the default
  --early-exit-steps N stop a sentence once its rounding has not changed for N steps (default 0: off)
  --seed S             seed of sentence i is S + i (default 1)
  --max-rows N         rows per decoding batch (default 256)
  --limit N            evaluate the first N lines only (default all)
  --gap-steps LIST     K values for the approximation gap (default 5; 'none' skips it)
  --gap-sentences N    pairs used for the gap (default 200)
  --threads N          LibTorch threads (default: all cores)
  --device NAME        cpu, cuda or cuda:N (default cpu)
  --precision NAME     float32 (default) or bfloat16: the linear layers' weights and products, as a
                       server's models.NAME.precision (activations stay float32)
  --hypotheses PREFIX  write PREFIX.kK.txt with the decoded lines per K
)";

constexpr int64_t kMaxInt = std::numeric_limits<int>::max();

struct EvalFlags {
  fastdiss::CheckpointEvalOptions options;
  std::string device_name = "cpu";
  int threads = 0;
  bool json = false;
};

// Reads the flags into *flags; returns an exit status when the program is to end here.
std::optional<int> ParseFlags(int argc, char** argv, EvalFlags* out) {
  fastdiss::CheckpointEvalOptions& options = out->options;
  options.decode.seed = 1;
  options.decode.clamp = true;
  fastdiss::FlagReader flags("fastdiss-eval", argc, argv);
  while (flags.Next()) {
    if (flags.Is("--help") || flags.Is("-h")) {
      std::cout << kUsage;
      return 0;
    } else if (flags.Is("--checkpoint")) {
      options.checkpoint = flags.String();
    } else if (flags.Is("--source")) {
      options.source_path = flags.String();
    } else if (flags.Is("--reference")) {
      options.reference_path = flags.String();
    } else if (flags.Is("--device")) {
      out->device_name = flags.String();
    } else if (flags.Is("--precision")) {
      auto precision = fastdiss::ParseLinearPrecision(flags.String());
      if (!precision.ok()) {
        std::cerr << "fastdiss-eval: --precision: " << precision.status().message() << "\n";
        return 2;
      }
      options.linear_precision = *precision;
    } else if (flags.Is("--hypotheses")) {
      options.hypotheses_prefix = flags.String();
    } else if (flags.Is("--json")) {
      out->json = flags.Switch();
    } else if (flags.Is("--ddim")) {
      options.decode.rule =
          flags.Switch() ? fastdiss::UpdateRule::kDdim : fastdiss::UpdateRule::kDdpm;
    } else if (flags.Is("--clamp")) {
      options.decode.clamp = flags.Switch();
    } else if (flags.Is("--no-clamp")) {
      options.decode.clamp = !flags.Switch();
    } else if (flags.Is("--early-exit-steps")) {
      options.decode.early_exit_steps = static_cast<int>(flags.Int(0, kMaxInt));
    } else if (flags.Is("--steps")) {
      options.steps = flags.IntList(1, kMaxInt);
    } else if (flags.Is("--gap-steps")) {
      options.gap_steps = flags.IntList(1, kMaxInt, /*allow_none=*/true);
    } else if (flags.Is("--length-beam")) {
      options.decode.length_beam = static_cast<int>(flags.Int(1, fastdiss::kMaxBeam));
    } else if (flags.Is("--noise-beam")) {
      options.decode.noise_beam = static_cast<int>(flags.Int(1, fastdiss::kMaxBeam));
    } else if (flags.Is("--seed")) {
      options.decode.seed = static_cast<uint64_t>(flags.Int(0));
    } else if (flags.Is("--max-rows")) {
      options.max_rows = static_cast<int>(flags.Int(1, kMaxInt));
    } else if (flags.Is("--limit")) {
      options.limit = flags.Int(0);
    } else if (flags.Is("--gap-sentences")) {
      options.gap_sentences = flags.Int(0);
    } else if (flags.Is("--threads")) {
      out->threads = static_cast<int>(flags.Int(0, kMaxInt));
    } else {
      flags.Unknown();
    }
  }
  if (options.checkpoint.empty() || options.source_path.empty() || options.reference_path.empty()) {
    std::cerr
        << "fastdiss-eval: --checkpoint, --source and --reference are required (see --help)\n";
    return 2;
  }
  return std::nullopt;
}

void PrintJson(const fastdiss::CheckpointEvalOptions& options,
               const fastdiss::CheckpointEvaluation& evaluation, const std::string& runtime) {
  fastdiss::Json json;
  json["checkpoint"] = options.checkpoint;
  json["sentences"] = evaluation.sentences;
  json["signature"] = evaluation.results.front().bleu.signature;
  json["runtime"] = runtime;
  json["device"] = options.device.str();
  json["precision"] = std::string(fastdiss::LinearPrecisionName(options.linear_precision));
  json["sampler"] = {{"rule", options.decode.rule == fastdiss::UpdateRule::kDdim ? "ddim" : "ddpm"},
                     {"clamp", options.decode.clamp}};
  json["results"] = fastdiss::Json::array();
  for (const auto& r : evaluation.results) {
    json["results"].push_back({{"steps", r.steps},
                               {"bleu", r.bleu.score},
                               {"per", r.phoneme_error_rate},
                               {"wer", r.word_error_rate},
                               {"sentences_per_second", r.sentences_per_second},
                               {"mean_steps_run", r.mean_steps_run},
                               {"seconds", r.seconds}});
  }
  json["gap"] = fastdiss::Json::array();
  for (const auto& g : evaluation.gaps) {
    json["gap"].push_back({{"steps", g.steps},
                           {"error_inference", g.error_inference},
                           {"error_same", g.error_same},
                           {"gap", g.gap()}});
  }
  std::cout << fastdiss::JsonText(json) << "\n";
}

void PrintTable(const fastdiss::CheckpointEvaluation& evaluation,
                const fastdiss::DecodeOptions& decode) {
  std::printf("%zu sentences, %s updates, clamping %s, %s\n", evaluation.sentences,
              decode.rule == fastdiss::UpdateRule::kDdim ? "DDIM" : "DDPM",
              decode.clamp ? "on" : "off", evaluation.results.front().bleu.signature.c_str());
  std::printf("%6s %8s %8s %8s %12s %10s\n", "steps", "BLEU", "PER", "WER", "sent/s", "steps run");
  for (const auto& r : evaluation.results) {
    std::printf("%6d %8.2f %8.4f %8.4f %12.1f %10.2f\n", r.steps, r.bleu.score,
                r.phoneme_error_rate, r.word_error_rate, r.sentences_per_second, r.mean_steps_run);
  }
  for (const auto& g : evaluation.gaps) {
    std::printf(
        "approximation gap K=%d: error with inference self-conditioning %.4f, with same-level "
        "%.4f, gap %.4f\n",
        g.steps, g.error_inference, g.error_same, g.gap());
  }
}

}  // namespace

int main(int argc, char** argv) {
  EvalFlags flags;
  if (std::optional<int> exit_status = ParseFlags(argc, argv, &flags)) return *exit_status;
  fastdiss::RuntimeOptions runtime;
  runtime.intra_op_threads = flags.threads;
  const std::string runtime_description = fastdiss::ConfigureRuntime(runtime);
  auto device = fastdiss::ResolveDevice(flags.device_name);
  if (!device.ok()) {
    std::cerr << "fastdiss-eval: --device: " << device.status() << "\n";
    return 2;
  }
  flags.options.device = *device;
  auto evaluation = fastdiss::EvaluateCheckpoint(flags.options);
  if (!evaluation.ok()) {
    std::cerr << "fastdiss-eval: " << evaluation.status() << "\n";
    return 1;
  }
  for (const std::string& warning : evaluation->warnings) {
    std::cerr << "fastdiss-eval: " << warning << "\n";
  }
  if (flags.json) {
    PrintJson(flags.options, *evaluation, runtime_description);
  } else {
    PrintTable(*evaluation, flags.options.decode);
  }
  return 0;
}
