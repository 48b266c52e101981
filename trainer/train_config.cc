#include "trainer/train_config.h"

#include <algorithm>

#include "base/device_name.h"

namespace fastdiss {
namespace {

absl::Status Require(bool ok, const std::string& message) {
  return ok ? absl::OkStatus() : absl::InvalidArgumentError(message);
}

template <typename T>
std::string Str(T value) {
  if constexpr (std::is_floating_point_v<T>) {
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%g", value);
    return buffer;
  } else {
    return std::to_string(value);
  }
}

}  // namespace

ConfigFields TrainConfig::Fields() {
  ConfigFields fields = {
      {"data.train_source", "Training source files (one sentence per line), in order.",
       &data.train_source},
      {"data.train_target", "Training target files, line-aligned with data.train_source.",
       &data.train_target},
      {"data.dev_source", "Dev source file for periodic BLEU.", &data.dev_source},
      {"data.dev_target", "Dev reference file.", &data.dev_target},
      {"data.vocab_size", "SentencePiece vocabulary size (shared by source and target).",
       &data.vocab_size},
      {"data.tokenizer_type", "SentencePiece model type: unigram or bpe.", &data.tokenizer_type},
      {"data.tokenizer_sentences", "Lines spm_train samples from the training text; 0 = all.",
       &data.tokenizer_sentences},
      {"data.tokenizer",
       "An existing SentencePiece .model to use (the data.vocab_size, tokenizer_type and "
       "tokenizer_sentences keys are then unused); empty = train one with spm_train.",
       &data.tokenizer},
  };
  for (ConfigField& field : model.Fields()) {
    if (field.key != "model.vocab_size" && field.key != "model.pad_id") fields.push_back(field);
  }
  ConfigFields rest = {
      {"objective.self_cond_prob",
       "Probability of a self-conditioning input in training (else zeros).",
       &objective.self_cond_prob},
      {"objective.scp", "Self-Conditioning Perturbation: take the estimate from a noisier t' > t.",
       &objective.scp},
      {"objective.scp_steps",
       "SCP: K drawn from this set per sequence; t' = min(T-1, t + round(T/K)).",
       &objective.scp_steps},
      {"objective.scp_offset", "SCP: when > 0, a fixed t' = t + offset instead of the K set.",
       &objective.scp_offset},
      {"objective.scp_fresh_noise", "SCP: noise z_t' with fresh noise (false: reuse z_t's noise).",
       &objective.scp_fresh_noise},
      {"objective.mans",
       "Model-Aware Noise Scaling: more noise on tokens the model already predicts well.",
       &objective.mans},
      {"objective.mans_d_lo",
       "MANS: per-dimension squared error at or below which a token gets the most extra noise.",
       &objective.mans_d_lo},
      {"objective.mans_d_hi", "MANS: error at or above which a token gets no extra noise.",
       &objective.mans_d_hi},
      {"objective.mans_scale", "MANS: s, the most extra noise as a share of T-1.",
       &objective.mans_scale},
      {"objective.mans_shift",
       "MANS: absolute (t + c s (T-1), the method's rule) or proportional (t + c s t: a confident "
       "token "
       "stays near its t, so low timesteps still train).",
       &objective.mans_shift},
      {"objective.label_smoothing", "Label smoothing of the rounding cross-entropy.",
       &objective.label_smoothing},
      {"objective.length_loss_weight", "Weight of the length-prediction cross-entropy.",
       &objective.length_loss_weight},
      {"train.max_steps", "Optimizer steps to run in total.", &train.max_steps},
      {"train.max_minutes", "When > 0, stop after this many minutes of this run (saving last/).",
       &train.max_minutes},
      {"train.max_tokens", "Tokens per batch (padded source + target).", &train.max_tokens},
      {"train.lr", "Peak learning rate of Adam.", &train.lr},
      {"train.warmup_steps", "Linear warm-up steps, then inverse square-root decay.",
       &train.warmup_steps},
      {"train.clip_norm", "Gradient norm clipping; 0 turns it off.", &train.clip_norm},
      {"train.weight_decay", "Adam weight decay.", &train.weight_decay},
      {"train.seed", "Seed of all training randomness (data order, noise, dropout).", &train.seed},
      {"train.output_dir", "Where last/, best/ and step-N/ checkpoints and metrics.jsonl go.",
       &train.output_dir},
      {"train.resume",
       "Checkpoint to resume from exactly; 'auto' resumes output_dir/last when present.",
       &train.resume},
      {"train.init_from",
       "Checkpoint (an export will do) whose weights and tokenizer start this run, with a fresh "
       "optimizer at step 0; its model must match model.* (source_units, source_lowercase and "
       "learned_logit_scale may be set anew). Ignored when resuming.",
       &train.init_from},
      {"train.log_every", "Steps between progress lines and metrics.jsonl records.",
       &train.log_every},
      {"train.threads", "LibTorch threads; 0 = every core this process may use.", &train.threads},
      {"train.device",
       "Where to train: cpu, cuda (under torchrun each rank takes cuda:LOCAL_RANK) or cuda:N. "
       "Ranks talk over Gloo on cpu and NCCL on cuda.",
       &train.device},
      {"eval.every", "Steps between dev evaluations and checkpoints.", &eval.every},
      {"eval.steps", "Denoising step counts K at which dev BLEU is measured.", &eval.steps},
      {"eval.select_steps",
       "best/ is the checkpoint with the best dev BLEU at this K (must be in eval.steps).",
       &eval.select_steps},
      {"eval.dev_sentences", "Dev sentences decoded per evaluation (the first N); 0 = all.",
       &eval.dev_sentences},
      {"eval.max_rows", "Rows per decoding batch in evaluation.", &eval.max_rows},
      {"eval.keep_last", "Periodic step-N/ checkpoints kept (besides last/ and best/).",
       &eval.keep_last},
      {"eval.length_beam", "Length candidates per sentence in evaluation.", &eval.length_beam},
      {"eval.noise_beam", "Noise candidates per length in evaluation.", &eval.noise_beam},
      {"eval.clamp",
       "Clamping in evaluation: every update moves toward the rounded estimate's embedding "
       "(the server's default).",
       &eval.clamp},
  };
  fields.insert(fields.end(), rest.begin(), rest.end());
  return fields;
}

absl::Status TrainConfig::Validate() const {
  FASTDISS_RETURN_IF_ERROR(
      Require(!data.train_source.empty(), "data.train_source must name at least one file"));
  FASTDISS_RETURN_IF_ERROR(
      Require(data.train_source.size() == data.train_target.size(),
              "data.train_source and data.train_target must list the same number of files, got " +
                  Str(data.train_source.size()) + " and " + Str(data.train_target.size())));
  FASTDISS_RETURN_IF_ERROR(Require(!data.dev_source.empty() && !data.dev_target.empty(),
                                   "data.dev_source and data.dev_target must be set"));
  FASTDISS_RETURN_IF_ERROR(Require(
      data.vocab_size >= 16, "data.vocab_size must be at least 16, got " + Str(data.vocab_size)));
  FASTDISS_RETURN_IF_ERROR(
      Require(data.tokenizer_type == "unigram" || data.tokenizer_type == "bpe",
              "data.tokenizer_type must be unigram or bpe, got '" + data.tokenizer_type + "'"));
  FASTDISS_RETURN_IF_ERROR(
      Require(data.tokenizer_sentences >= 0, "data.tokenizer_sentences must be >= 0"));
  ModelConfig m = model;
  m.vocab_size = static_cast<int>(data.vocab_size);
  FASTDISS_RETURN_IF_ERROR(m.Validate());
  const auto& o = objective;
  FASTDISS_RETURN_IF_ERROR(
      Require(o.self_cond_prob >= 0 && o.self_cond_prob <= 1,
              "objective.self_cond_prob must be in [0, 1], got " + Str(o.self_cond_prob)));
  FASTDISS_RETURN_IF_ERROR(Require(!o.scp_steps.empty(), "objective.scp_steps must not be empty"));
  for (int64_t k : o.scp_steps) {
    FASTDISS_RETURN_IF_ERROR(
        Require(k >= 1 && k <= model.num_timesteps,
                "objective.scp_steps values must be in [1, model.num_timesteps], got " + Str(k)));
  }
  FASTDISS_RETURN_IF_ERROR(Require(
      o.scp_offset >= 0 && o.scp_offset < model.num_timesteps,
      "objective.scp_offset must be in [0, model.num_timesteps), got " + Str(o.scp_offset)));
  FASTDISS_RETURN_IF_ERROR(
      Require(o.mans_d_lo >= 0 && o.mans_d_lo < o.mans_d_hi,
              "objective.mans_d_lo must be >= 0 and below objective.mans_d_hi, got " +
                  Str(o.mans_d_lo) + " and " + Str(o.mans_d_hi)));
  FASTDISS_RETURN_IF_ERROR(
      Require(o.mans_scale >= 0 && o.mans_scale <= 1,
              "objective.mans_scale must be in [0, 1], got " + Str(o.mans_scale)));
  FASTDISS_RETURN_IF_ERROR(
      Require(o.mans_shift == "absolute" || o.mans_shift == "proportional",
              "objective.mans_shift must be absolute or proportional, got '" + o.mans_shift + "'"));
  FASTDISS_RETURN_IF_ERROR(
      Require(o.label_smoothing >= 0 && o.label_smoothing < 1,
              "objective.label_smoothing must be in [0, 1), got " + Str(o.label_smoothing)));
  FASTDISS_RETURN_IF_ERROR(
      Require(o.length_loss_weight >= 0, "objective.length_loss_weight must be >= 0"));
  FASTDISS_RETURN_IF_ERROR(Require(
      train.max_steps >= 1, "train.max_steps must be positive, got " + Str(train.max_steps)));
  FASTDISS_RETURN_IF_ERROR(Require(train.max_minutes >= 0, "train.max_minutes must be >= 0"));
  FASTDISS_RETURN_IF_ERROR(
      Require(train.max_tokens >= 2 * (model.max_source_tokens + model.max_target_tokens),
              "train.max_tokens must hold at least two of the longest pairs (" +
                  Str(2 * (model.max_source_tokens + model.max_target_tokens)) + "), got " +
                  Str(train.max_tokens)));
  FASTDISS_RETURN_IF_ERROR(
      Require(train.lr > 0, "train.lr must be positive, got " + Str(train.lr)));
  FASTDISS_RETURN_IF_ERROR(Require(train.warmup_steps >= 0, "train.warmup_steps must be >= 0"));
  FASTDISS_RETURN_IF_ERROR(Require(train.clip_norm >= 0, "train.clip_norm must be >= 0"));
  FASTDISS_RETURN_IF_ERROR(Require(train.weight_decay >= 0, "train.weight_decay must be >= 0"));
  FASTDISS_RETURN_IF_ERROR(Require(!train.output_dir.empty(), "train.output_dir must be set"));
  FASTDISS_RETURN_IF_ERROR(Require(train.log_every >= 1, "train.log_every must be positive"));
  FASTDISS_RETURN_IF_ERROR(Require(train.threads >= 0, "train.threads must be >= 0"));
  FASTDISS_RETURN_IF_ERROR(
      Require(IsDeviceName(train.device),
              "train.device must be cpu, cuda or cuda:N, got '" + train.device + "'"));
  FASTDISS_RETURN_IF_ERROR(Require(eval.every >= 1, "eval.every must be positive"));
  FASTDISS_RETURN_IF_ERROR(Require(!eval.steps.empty(), "eval.steps must not be empty"));
  for (int64_t k : eval.steps) {
    FASTDISS_RETURN_IF_ERROR(
        Require(k >= 1 && k <= model.num_timesteps,
                "eval.steps values must be in [1, model.num_timesteps], got " + Str(k)));
  }
  FASTDISS_RETURN_IF_ERROR(Require(
      std::find(eval.steps.begin(), eval.steps.end(), eval.select_steps) != eval.steps.end(),
      "eval.select_steps (" + Str(eval.select_steps) + ") must be one of eval.steps"));
  FASTDISS_RETURN_IF_ERROR(Require(eval.dev_sentences >= 0, "eval.dev_sentences must be >= 0"));
  FASTDISS_RETURN_IF_ERROR(Require(eval.max_rows >= 1, "eval.max_rows must be positive"));
  FASTDISS_RETURN_IF_ERROR(Require(eval.keep_last >= 0, "eval.keep_last must be >= 0"));
  FASTDISS_RETURN_IF_ERROR(Require(eval.length_beam >= 1 && eval.length_beam <= 16,
                                   "eval.length_beam must be in [1, 16]"));
  FASTDISS_RETURN_IF_ERROR(
      Require(eval.noise_beam >= 1 && eval.noise_beam <= 16, "eval.noise_beam must be in [1, 16]"));
  return absl::OkStatus();
}

absl::StatusOr<TrainConfig> TrainConfig::Load(const std::string& path,
                                              const std::vector<std::string>& overrides) {
  ConfigTree tree;
  if (!path.empty()) {
    FASTDISS_ASSIGN_OR_RETURN(tree, ConfigTree::LoadFile(path));
  }
  for (const std::string& assignment : overrides) FASTDISS_RETURN_IF_ERROR(tree.Set(assignment));
  TrainConfig config;
  FASTDISS_RETURN_IF_ERROR(ReadFields(tree, config.Fields()));
  FASTDISS_RETURN_IF_ERROR(tree.CheckAllConsumed());
  FASTDISS_RETURN_IF_ERROR(config.Validate());
  return config;
}

}  // namespace fastdiss
