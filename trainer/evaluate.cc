#include "trainer/evaluate.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <chrono>
#include <fstream>

#include "model/checkpoint.h"
#include "trainer/objective.h"

namespace fastdiss {

absl::StatusOr<std::vector<StepsEvaluation>> EvaluateSteps(
    Sampler& sampler, const Tokenizer& tokenizer, const std::vector<std::string>& sources,
    const std::vector<std::string>& references, const std::vector<int64_t>& steps,
    const DecodeOptions& base, int max_rows) {
  if (sources.size() != references.size()) {
    return absl::InvalidArgumentError("sources and references differ in count");
  }
  const int max_source = sampler.model()->config().max_source_tokens;
  std::vector<std::vector<int>> encoded;
  encoded.reserve(sources.size());
  for (const std::string& source : sources) {
    std::vector<int> ids =
        tokenizer.Encode(PrepareSource(source, sampler.model()->config().source_rule()));
    // Evaluation decodes every sentence: an over-long source is cut (and said so by the caller's
    // counts), an empty one decodes from the unknown token, so the corpus score covers all lines.
    if (static_cast<int>(ids.size()) > max_source) ids.resize(max_source);
    if (ids.empty()) ids.push_back(tokenizer.unk_id() >= 0 ? tokenizer.unk_id() : 0);
    encoded.push_back(std::move(ids));
  }
  std::vector<StepsEvaluation> results;
  for (int64_t k : steps) {
    DecodeOptions options = base;
    options.steps = static_cast<int>(k);
    const auto start = std::chrono::steady_clock::now();
    FASTDISS_ASSIGN_OR_RETURN(auto decoded, sampler.DecodeAll(encoded, options, max_rows));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    StepsEvaluation eval;
    eval.steps = static_cast<int>(k);
    eval.seconds = seconds;
    eval.sentences_per_second = seconds > 0 ? sources.size() / seconds : 0;
    double steps_run = 0;
    for (const DecodeResult& result : decoded) {
      eval.hypotheses.push_back(tokenizer.Decode(result.tokens));
      steps_run += result.steps;
    }
    eval.mean_steps_run = decoded.empty() ? 0 : steps_run / static_cast<double>(decoded.size());
    FASTDISS_ASSIGN_OR_RETURN(eval.bleu, CorpusBleu(eval.hypotheses, references));
    FASTDISS_ASSIGN_OR_RETURN(eval.phoneme_error_rate,
                              PhonemeErrorRate(eval.hypotheses, references));
    FASTDISS_ASSIGN_OR_RETURN(eval.word_error_rate, WordErrorRate(eval.hypotheses, references));
    results.push_back(std::move(eval));
  }
  return results;
}

absl::StatusOr<GapEvaluation> ApproximationGap(FastDissModel& model, const NoiseSchedule& schedule,
                                               const std::vector<Example>& examples, int steps,
                                               int max_rows, uint64_t seed) {
  if (steps < 2) return absl::InvalidArgumentError("the approximation gap needs at least 2 steps");
  if (examples.empty()) return absl::InvalidArgumentError("the approximation gap needs examples");
  FASTDISS_ASSIGN_OR_RETURN(std::vector<int> kept, schedule.Respace(steps));
  GapEvaluation result;
  result.steps = steps;
  try {
    c10::InferenceMode guard;
    at::Generator generator = at::detail::createCPUGenerator(seed);
    const auto device = model->parameters().front().device();
    double sum_inference = 0, sum_same = 0, tokens = 0;
    for (size_t begin = 0; begin < examples.size(); begin += max_rows) {
      std::vector<int> indices;
      for (size_t i = begin; i < std::min(examples.size(), begin + max_rows); ++i)
        indices.push_back(i);
      Batch batch = Collate(examples, indices, model->config().pad_id, device);
      auto encoded = model->Encode(batch.source, batch.source_mask);
      auto z0 = model->Embed(batch.target);
      auto mask_f = batch.target_mask.to(torch::kFloat32);
      auto zeros = torch::zeros_like(z0);
      auto randn = [&] {
        return torch::randn(z0.sizes(), generator, torch::TensorOptions().dtype(torch::kFloat32))
            .to(device);
      };
      auto steps_of = [&](int t) {
        return torch::full(batch.target.sizes(), t, torch::kLong).to(device);
      };
      auto error = [&](const torch::Tensor& estimate) {
        return ((estimate - z0).pow(2).mean(-1) * mask_f).sum().item<double>();
      };
      for (size_t k = 0; k + 1 < kept.size(); ++k) {
        // z_cur ~ q(z_t | z0), and z_prev, the noisier step that hands over its estimate, is z_cur
        // noised further (q(z_s | z_t), s > t): it carries no information z_cur lacks, as in
        // sampling.
        const int cur = kept[k + 1], prev = kept[k];
        auto t_cur = steps_of(cur), t_prev = steps_of(prev);
        auto z_cur = schedule.AddNoise(z0, t_cur, randn());
        const double ratio = schedule.alpha_bar(prev) / schedule.alpha_bar(cur);
        auto z_prev =
            std::sqrt(ratio) * z_cur + schedule.noise_factor() * std::sqrt(1.0 - ratio) * randn();
        auto sc_prev =
            model->Denoise(z_prev, t_prev, zeros, batch.target_mask, encoded, batch.source_mask);
        auto sc_same =
            model->Denoise(z_cur, t_cur, zeros, batch.target_mask, encoded, batch.source_mask);
        sum_inference += error(
            model->Denoise(z_cur, t_cur, sc_prev, batch.target_mask, encoded, batch.source_mask));
        sum_same += error(
            model->Denoise(z_cur, t_cur, sc_same, batch.target_mask, encoded, batch.source_mask));
        tokens += mask_f.sum().item<double>();
      }
    }
    result.error_inference = sum_inference / tokens;
    result.error_same = sum_same / tokens;
  } catch (const std::exception& e) {
    return absl::InternalError(std::string("approximation gap failed: ") + e.what());
  }
  return result;
}

}  // namespace fastdiss

namespace fastdiss {
namespace {

absl::StatusOr<std::vector<GapEvaluation>> GapsOnCheckpoint(const CheckpointEvalOptions& options,
                                                            LoadedCheckpoint& loaded,
                                                            const NoiseSchedule& schedule,
                                                            ParallelText text,
                                                            std::vector<std::string>* warnings) {
  text.KeepFirst(static_cast<size_t>(options.gap_sentences));
  const std::vector<Example> examples =
      Tokenize(text, loaded.tokenizer, loaded.config.source_rule(), loaded.config.max_source_tokens,
               loaded.config.max_target_tokens)
          .examples;
  std::vector<GapEvaluation> gaps;
  if (examples.empty()) {
    warnings->push_back("no pair fits the model's length limits; skipping the approximation gap");
    return gaps;
  }
  for (int64_t k : options.gap_steps) {
    FASTDISS_ASSIGN_OR_RETURN(
        GapEvaluation gap, ApproximationGap(loaded.model, schedule, examples, static_cast<int>(k),
                                            options.max_rows, options.decode.seed));
    gaps.push_back(gap);
  }
  return gaps;
}

absl::Status WriteHypotheses(const std::string& prefix,
                             const std::vector<StepsEvaluation>& results) {
  for (const auto& r : results) {
    const std::string path = prefix + ".k" + std::to_string(r.steps) + ".txt";
    std::ofstream out(path);
    for (const auto& line : r.hypotheses) out << line << "\n";
    if (!out.flush()) return absl::PermissionDeniedError("cannot write " + path);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CheckpointEvaluation> EvaluateCheckpoint(const CheckpointEvalOptions& options) {
  FASTDISS_ASSIGN_OR_RETURN(LoadedCheckpoint loaded,
                            LoadCheckpoint(options.checkpoint, options.device));
  loaded.model->SetLinearPrecision(options.linear_precision);
  FASTDISS_ASSIGN_OR_RETURN(ParallelText text,
                            ReadParallelText(options.source_path, options.reference_path));
  if (options.limit > 0) text.KeepFirst(static_cast<size_t>(options.limit));
  FASTDISS_ASSIGN_OR_RETURN(
      NoiseSchedule schedule,
      NoiseSchedule::Create({loaded.config.num_timesteps, loaded.config.noise_factor}));
  Sampler sampler(loaded.model, schedule, options.device);
  CheckpointEvaluation evaluation;
  evaluation.sentences = text.source.size();
  FASTDISS_ASSIGN_OR_RETURN(evaluation.results,
                            EvaluateSteps(sampler, loaded.tokenizer, text.source, text.target,
                                          options.steps, options.decode, options.max_rows));
  if (!options.gap_steps.empty()) {
    FASTDISS_ASSIGN_OR_RETURN(
        evaluation.gaps,
        GapsOnCheckpoint(options, loaded, schedule, std::move(text), &evaluation.warnings));
  }
  if (!options.hypotheses_prefix.empty()) {
    FASTDISS_RETURN_IF_ERROR(WriteHypotheses(options.hypotheses_prefix, evaluation.results));
  }
  return evaluation;
}

}  // namespace fastdiss
