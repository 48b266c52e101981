// fastdiss-eval --checkpoint DIR --source FILE --reference FILE [--steps 1,2,5,10,20] [--json]:
// BLEU (sacreBLEU-compatible), phoneme and word error rates and sentences/s per K, and the
// approximation gap of docs/method.md section 7.
#include <torch/torch.h>

#include <cstdint>
#include <fstream>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "base/command_line.h"
#include "base/json.h"
#include "model/checkpoint.h"
#include "model/runtime.h"
#include "trainer/data.h"
#include "trainer/evaluate.h"

namespace {

constexpr char kUsage[] =
    "Usage: fastdiss-eval --checkpoint DIR --source FILE --reference FILE [options]\n"
    "  --steps LIST         denoising step counts K (default 1,2,5,10,20)\n"
    "  --json               print one JSON object instead of a table\n"
    "  --length-beam N      length candidates (default 1)\n"
    "  --noise-beam N       noise candidates per length (default 1)\n"
    "  --ddim               DDIM updates instead of the DDPM posterior\n"
    "  --early-exit-steps N stop a sentence once its rounding has not changed for N steps (default "
    "0: off)\n"
    "  --seed S             seed of sentence i is S + i (default 1)\n"
    "  --max-rows N         rows per decoding batch (default 256)\n"
    "  --limit N            evaluate the first N lines only (default all)\n"
    "  --gap-steps LIST     K values for the approximation gap (default 5; 'none' skips it)\n"
    "  --gap-sentences N    pairs used for the gap (default 200)\n"
    "  --threads N          LibTorch threads (default: all cores)\n"
    "  --device NAME        cpu, cuda or cuda:N (default cpu)\n"
    "  --hypotheses PREFIX  write PREFIX.kK.txt with the decoded lines per K\n";

constexpr int64_t kMaxInt = std::numeric_limits<int>::max();

}  // namespace

int main(int argc, char** argv) {
  std::string checkpoint, source_path, reference_path, hypotheses_prefix, device_name = "cpu";
  std::vector<int64_t> steps = {1, 2, 5, 10, 20}, gap_steps = {5};
  int64_t length_beam = 1, noise_beam = 1, seed = 1, max_rows = 256, limit = 0, gap_sentences = 200,
          threads = 0, early_exit_steps = 0;
  bool json = false, ddim = false;
  fastdiss::FlagReader flags("fastdiss-eval", argc, argv);
  while (flags.Next()) {
    if (flags.Is("--help") || flags.Is("-h")) {
      std::cout << kUsage;
      return 0;
    } else if (flags.Is("--checkpoint")) {
      checkpoint = flags.String();
    } else if (flags.Is("--source")) {
      source_path = flags.String();
    } else if (flags.Is("--reference")) {
      reference_path = flags.String();
    } else if (flags.Is("--device")) {
      device_name = flags.String();
    } else if (flags.Is("--hypotheses")) {
      hypotheses_prefix = flags.String();
    } else if (flags.Is("--json")) {
      json = flags.Switch();
    } else if (flags.Is("--ddim")) {
      ddim = flags.Switch();
    } else if (flags.Is("--early-exit-steps")) {
      early_exit_steps = flags.Int(0, kMaxInt);
    } else if (flags.Is("--steps")) {
      steps = flags.IntList(1, kMaxInt);
    } else if (flags.Is("--gap-steps")) {
      gap_steps = flags.IntList(1, kMaxInt, /*allow_none=*/true);
    } else if (flags.Is("--length-beam")) {
      length_beam = flags.Int(1, kMaxInt);
    } else if (flags.Is("--noise-beam")) {
      noise_beam = flags.Int(1, kMaxInt);
    } else if (flags.Is("--seed")) {
      seed = flags.Int(0);
    } else if (flags.Is("--max-rows")) {
      max_rows = flags.Int(1, kMaxInt);
    } else if (flags.Is("--limit")) {
      limit = flags.Int(0);
    } else if (flags.Is("--gap-sentences")) {
      gap_sentences = flags.Int(0);
    } else if (flags.Is("--threads")) {
      threads = flags.Int(0, kMaxInt);
    } else {
      flags.Unknown();
    }
  }
  if (checkpoint.empty() || source_path.empty() || reference_path.empty()) {
    std::cerr
        << "fastdiss-eval: --checkpoint, --source and --reference are required (see --help)\n";
    return 2;
  }
  fastdiss::RuntimeOptions runtime;
  runtime.intra_op_threads = static_cast<int>(threads);
  const std::string runtime_description = fastdiss::ConfigureRuntime(runtime);
  auto device = fastdiss::ResolveDevice(device_name);
  if (!device.ok()) {
    std::cerr << "fastdiss-eval: --device: " << device.status() << "\n";
    return 2;
  }
  auto loaded = fastdiss::LoadCheckpoint(checkpoint, *device);
  if (!loaded.ok()) {
    std::cerr << "fastdiss-eval: " << loaded.status() << "\n";
    return 1;
  }
  auto text = fastdiss::ReadParallelText(source_path, reference_path);
  if (!text.ok()) {
    std::cerr << "fastdiss-eval: " << text.status() << "\n";
    return 1;
  }
  if (limit > 0 && static_cast<size_t>(limit) < text->source.size()) {
    text->source.resize(limit);
    text->target.resize(limit);
  }
  auto schedule =
      fastdiss::NoiseSchedule::Create({loaded->config.num_timesteps, loaded->config.noise_factor});
  if (!schedule.ok()) {
    std::cerr << "fastdiss-eval: " << schedule.status() << "\n";
    return 1;
  }
  fastdiss::Sampler sampler(loaded->model, *schedule, *device);
  fastdiss::DecodeOptions options;
  options.length_beam = static_cast<int>(length_beam);
  options.noise_beam = static_cast<int>(noise_beam);
  options.seed = static_cast<uint64_t>(seed);
  options.rule = ddim ? fastdiss::UpdateRule::kDdim : fastdiss::UpdateRule::kDdpm;
  options.early_exit_steps = static_cast<int>(early_exit_steps);
  auto results = fastdiss::EvaluateSteps(sampler, loaded->tokenizer, text->source, text->target,
                                         steps, options, static_cast<int>(max_rows));
  if (!results.ok()) {
    std::cerr << "fastdiss-eval: " << results.status() << "\n";
    return 1;
  }
  std::vector<fastdiss::GapEvaluation> gaps;
  if (!gap_steps.empty()) {
    fastdiss::ParallelText gap_text = *text;
    if (gap_text.source.size() > static_cast<size_t>(gap_sentences)) {
      gap_text.source.resize(gap_sentences);
      gap_text.target.resize(gap_sentences);
    }
    auto examples =
        fastdiss::Tokenize(gap_text, loaded->tokenizer, loaded->config.source_rule(),
                           loaded->config.max_source_tokens, loaded->config.max_target_tokens)
            .examples;
    if (examples.empty()) {
      std::cerr << "fastdiss-eval: no pair fits the model's length limits; skipping the "
                   "approximation gap\n";
      gap_steps.clear();
    }
    for (int64_t k : gap_steps) {
      auto gap =
          fastdiss::ApproximationGap(loaded->model, *schedule, examples, static_cast<int>(k),
                                     static_cast<int>(max_rows), static_cast<uint64_t>(seed));
      if (!gap.ok()) {
        std::cerr << "fastdiss-eval: " << gap.status() << "\n";
        return 1;
      }
      gaps.push_back(*gap);
    }
  }
  for (const auto& r : *results) {
    if (hypotheses_prefix.empty()) break;
    std::ofstream out(hypotheses_prefix + ".k" + std::to_string(r.steps) + ".txt");
    for (const auto& line : r.hypotheses) out << line << "\n";
  }
  if (json) {
    fastdiss::Json json;
    json["checkpoint"] = checkpoint;
    json["sentences"] = text->source.size();
    json["signature"] = results->front().bleu.signature;
    json["runtime"] = runtime_description;
    json["device"] = device->str();
    json["results"] = fastdiss::Json::array();
    for (const auto& r : *results) {
      json["results"].push_back({{"steps", r.steps},
                                 {"bleu", r.bleu.score},
                                 {"per", r.phoneme_error_rate},
                                 {"wer", r.word_error_rate},
                                 {"sentences_per_second", r.sentences_per_second},
                                 {"mean_steps_run", r.mean_steps_run},
                                 {"seconds", r.seconds}});
    }
    json["gap"] = fastdiss::Json::array();
    for (const auto& g : gaps) {
      json["gap"].push_back({{"steps", g.steps},
                             {"error_inference", g.error_inference},
                             {"error_same", g.error_same},
                             {"gap", g.gap()}});
    }
    std::cout << fastdiss::JsonText(json) << "\n";
    return 0;
  }
  std::printf("%zu sentences, %s\n", text->source.size(), results->front().bleu.signature.c_str());
  std::printf("%6s %8s %8s %8s %12s %10s\n", "steps", "BLEU", "PER", "WER", "sent/s", "steps run");
  for (const auto& r : *results) {
    std::printf("%6d %8.2f %8.4f %8.4f %12.1f %10.2f\n", r.steps, r.bleu.score,
                r.phoneme_error_rate, r.word_error_rate, r.sentences_per_second, r.mean_steps_run);
  }
  for (const auto& g : gaps) {
    std::printf(
        "approximation gap K=%d: error with inference self-conditioning %.4f, with same-level "
        "%.4f, gap %.4f\n",
        g.steps, g.error_inference, g.error_same, g.gap());
  }
  return 0;
}
