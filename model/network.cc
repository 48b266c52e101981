#include "model/network.h"

#include <torch/torch.h>

#include <cmath>
#include <string>

#include "model/dropout.h"
#include "model/tokenizer.h"

namespace fastdiss {
namespace {

Status Positive(const char* name, double value) {
  if (value > 0) return OkStatus();
  return InvalidArgumentError(std::string("model.") + name + " must be positive, got " +
                              std::to_string(value));
}

// The module's rate and train/eval mode, applied with fastdiss::Dropout (model/dropout.h); the
// torch::nn::Dropout modules stay as the holders of both.
torch::Tensor Drop(const torch::nn::Dropout& dropout, const torch::Tensor& x) {
  return Dropout(x, dropout->options.p(), dropout->is_training());
}

}  // namespace

Status ModelConfig::Validate() const {
  FASTDISS_RETURN_IF_ERROR(Positive("vocab_size", vocab_size));
  FASTDISS_RETURN_IF_ERROR(Positive("d_latent", d_latent));
  FASTDISS_RETURN_IF_ERROR(Positive("d_model", d_model));
  FASTDISS_RETURN_IF_ERROR(Positive("num_heads", num_heads));
  FASTDISS_RETURN_IF_ERROR(Positive("ffn_dim", ffn_dim));
  FASTDISS_RETURN_IF_ERROR(Positive("encoder_layers", encoder_layers));
  FASTDISS_RETURN_IF_ERROR(Positive("decoder_layers", decoder_layers));
  FASTDISS_RETURN_IF_ERROR(Positive("max_source_tokens", max_source_tokens));
  FASTDISS_RETURN_IF_ERROR(Positive("max_target_tokens", max_target_tokens));
  FASTDISS_RETURN_IF_ERROR(Positive("length_offset", length_offset));
  FASTDISS_RETURN_IF_ERROR(Positive("noise_factor", noise_factor));
  if (Status units = CheckSourceUnits(source_units); !units.ok()) {
    return InvalidArgumentError("model." + units.message());
  }
  if (d_model % num_heads != 0) {
    return InvalidArgumentError("model.d_model (" + std::to_string(d_model) +
                                ") must be divisible by model.num_heads (" +
                                std::to_string(num_heads) + ")");
  }
  if (d_model % 2 != 0) {
    return InvalidArgumentError("model.d_model must be even, got " + std::to_string(d_model));
  }
  if (dropout < 0 || dropout >= 1) {
    return InvalidArgumentError("model.dropout must be in [0, 1), got " + std::to_string(dropout));
  }
  if (num_timesteps < 2 || num_timesteps > 100000) {
    return InvalidArgumentError("model.num_timesteps must be in [2, 100000], got " +
                                std::to_string(num_timesteps));
  }
  if (pad_id < 0 || pad_id >= vocab_size) {
    return InvalidArgumentError("model.pad_id must be a token id in [0, vocab_size), got " +
                                std::to_string(pad_id));
  }
  return OkStatus();
}

ConfigFields ModelConfig::Fields() {
  return {
      {"model.vocab_size", "Vocabulary size (set by the tokenizer the trainer builds).", &vocab_size},
      {"model.d_latent", "Width D of the diffusion latent (the embedding).", &d_latent},
      {"model.d_model", "Transformer width.", &d_model},
      {"model.num_heads", "Attention heads; must divide d_model.", &num_heads},
      {"model.ffn_dim", "Feed-forward inner width.", &ffn_dim},
      {"model.encoder_layers", "Source encoder blocks.", &encoder_layers},
      {"model.decoder_layers", "Denoiser blocks.", &decoder_layers},
      {"model.dropout", "Dropout probability in training.", &dropout},
      {"model.max_source_tokens", "Longest source in tokens; longer training pairs are skipped.", &max_source_tokens},
      {"model.max_target_tokens", "Longest target in tokens.", &max_target_tokens},
      {"model.length_offset", "C: the length predictor's classes are len_tgt - len_src + C in [0, 2C].", &length_offset},
      {"model.num_timesteps", "T, diffusion steps of the training process.", &num_timesteps},
      {"model.noise_factor", "F, scale of the forward noise.", &noise_factor},
      {"model.pad_id", "Padding token id (the tokenizer's).", &pad_id},
      {"model.source_units",
       "How source text is cut before tokenizing: text (as given) or characters (whitespace dropped, "
       "every character a unit: \"hello\" and \"h e l l o\" read alike).",
       &source_units},
      {"model.source_lowercase",
       "Lowercase ASCII capitals of the source first, for data without capitals (\"Hello\" reads as \"hello\").",
       &source_lowercase},
  };
}

torch::Tensor SinusoidalEmbedding(const torch::Tensor& values, int64_t dim) {
  const int64_t half = dim / 2;
  auto frequencies = torch::exp(torch::arange(half, values.options().dtype(torch::kFloat32)) *
                                (-std::log(10000.0) / std::max<int64_t>(half - 1, 1)));
  auto angles = values.to(torch::kFloat32).unsqueeze(-1) * frequencies;
  return torch::cat({torch::sin(angles), torch::cos(angles)}, -1);
}

AttentionImpl::AttentionImpl(int d_model, int num_heads, double dropout) : num_heads_(num_heads) {
  q_ = register_module("q", torch::nn::Linear(d_model, d_model));
  k_ = register_module("k", torch::nn::Linear(d_model, d_model));
  v_ = register_module("v", torch::nn::Linear(d_model, d_model));
  out_ = register_module("out", torch::nn::Linear(d_model, d_model));
  dropout_ = register_module("dropout", torch::nn::Dropout(dropout));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& query, const torch::Tensor& memory,
                                     const torch::Tensor& key_mask) {
  const int64_t B = query.size(0), Lq = query.size(1), Lk = memory.size(1);
  const int64_t H = query.size(2), head_dim = H / num_heads_;
  auto split = [&](const torch::Tensor& x, int64_t length) {
    return x.view({B, length, num_heads_, head_dim}).transpose(1, 2);  // [B, heads, len, hd]
  };
  auto q = split(q_(query), Lq) * (1.0 / std::sqrt(static_cast<double>(head_dim)));
  auto k = split(k_(memory), Lk);
  auto v = split(v_(memory), Lk);
  auto scores = torch::matmul(q, k.transpose(-2, -1));  // [B, heads, Lq, Lk]
  scores = scores.masked_fill(key_mask.logical_not().view({B, 1, 1, Lk}),
                              -std::numeric_limits<float>::infinity());
  auto weights = Drop(dropout_, torch::softmax(scores, -1));
  auto context = torch::matmul(weights, v).transpose(1, 2).reshape({B, Lq, H});
  return out_(context);
}

TransformerBlockImpl::TransformerBlockImpl(const ModelConfig& c, bool cross_attention) {
  self_norm_ = register_module("self_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.d_model})));
  self_attention_ = register_module("self_attention", Attention(c.d_model, c.num_heads, c.dropout));
  if (cross_attention) {
    cross_norm_ = register_module("cross_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.d_model})));
    cross_attention_ = register_module("cross_attention", Attention(c.d_model, c.num_heads, c.dropout));
  }
  ffn_norm_ = register_module("ffn_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.d_model})));
  ffn_in_ = register_module("ffn_in", torch::nn::Linear(c.d_model, c.ffn_dim));
  ffn_out_ = register_module("ffn_out", torch::nn::Linear(c.ffn_dim, c.d_model));
  dropout_ = register_module("dropout", torch::nn::Dropout(c.dropout));
}

torch::Tensor TransformerBlockImpl::forward(torch::Tensor x, const torch::Tensor& mask,
                                            const torch::Tensor& memory,
                                            const torch::Tensor& memory_mask) {
  auto h = self_norm_(x);
  x = x + Drop(dropout_, self_attention_(h, h, mask));
  if (cross_attention_) {
    x = x + Drop(dropout_, cross_attention_(cross_norm_(x), memory, memory_mask));
  }
  x = x + Drop(dropout_, ffn_out_(Drop(dropout_, torch::gelu(ffn_in_(ffn_norm_(x))))));
  return x;
}

FastDissModelImpl::FastDissModelImpl(const ModelConfig& config) : config_(config) {
  const int D = config.d_latent, H = config.d_model;
  auto norm = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({H})); };
  embedding_ = register_module("embedding", torch::nn::Embedding(config.vocab_size, D));
  torch::nn::init::normal_(embedding_->weight, 0.0, 1.0);
  source_in_ = register_module("source_in", torch::nn::Linear(D, H));
  encoder_ = register_module("encoder", torch::nn::ModuleList());
  for (int i = 0; i < config.encoder_layers; ++i) encoder_->push_back(TransformerBlock(config, false));
  encoder_norm_ = register_module("encoder_norm", norm());
  length_head_ = register_module("length_head", torch::nn::Linear(H, config.length_classes()));
  latent_in_ = register_module("latent_in", torch::nn::Linear(D, H));
  merge_hidden_ = register_module("merge_hidden", torch::nn::Linear(2 * H, H));
  merge_out_ = register_module("merge_out", torch::nn::Linear(H, H));
  time_hidden_ = register_module("time_hidden", torch::nn::Linear(H, 4 * H));
  time_out_ = register_module("time_out", torch::nn::Linear(4 * H, H));
  input_norm_ = register_module("input_norm", norm());
  decoder_ = register_module("decoder", torch::nn::ModuleList());
  for (int i = 0; i < config.decoder_layers; ++i) decoder_->push_back(TransformerBlock(config, true));
  decoder_norm_ = register_module("decoder_norm", norm());
  latent_out_ = register_module("latent_out", torch::nn::Linear(H, D));
  dropout_ = register_module("dropout", torch::nn::Dropout(config.dropout));
  const int64_t max_len = std::max(config.max_source_tokens, config.max_target_tokens);
  positions_ = register_buffer("positions", SinusoidalEmbedding(torch::arange(max_len), H));
}

torch::Tensor FastDissModelImpl::NormalizedEmbedding() {
  return torch::nn::functional::normalize(
      embedding_->weight, torch::nn::functional::NormalizeFuncOptions().dim(-1).eps(1e-6));
}

torch::Tensor FastDissModelImpl::Positions(int64_t length) const {
  return positions_.narrow(0, 0, length).unsqueeze(0);
}

torch::Tensor FastDissModelImpl::Embed(const torch::Tensor& tokens) {
  return torch::nn::functional::embedding(tokens, NormalizedEmbedding()) *
         std::sqrt(static_cast<double>(config_.d_latent));
}

torch::Tensor FastDissModelImpl::Encode(const torch::Tensor& source,
                                        const torch::Tensor& source_mask) {
  auto x = Drop(dropout_, source_in_(Embed(source)) + Positions(source.size(1)));
  for (const auto& block : *encoder_) {
    x = block->as<TransformerBlock>()->forward(x, source_mask, torch::Tensor(), torch::Tensor());
  }
  return encoder_norm_(x);
}

torch::Tensor FastDissModelImpl::PredictLength(const torch::Tensor& encoded,
                                               const torch::Tensor& source_mask) {
  auto mask = source_mask.unsqueeze(-1).to(encoded.dtype());
  auto pooled = (encoded * mask).sum(1) / mask.sum(1).clamp_min(1.0);
  return length_head_(pooled);
}

torch::Tensor FastDissModelImpl::Denoise(const torch::Tensor& z_t, const torch::Tensor& t,
                                         const torch::Tensor& self_cond,
                                         const torch::Tensor& target_mask,
                                         const torch::Tensor& encoded,
                                         const torch::Tensor& source_mask) {
  auto merged = torch::cat({latent_in_(z_t), latent_in_(self_cond)}, -1);
  auto h = merge_out_(torch::silu(merge_hidden_(merged)));
  auto time_steps = t.to(torch::kFloat32) * (1000.0 / config_.num_timesteps);
  auto time = time_out_(torch::silu(time_hidden_(SinusoidalEmbedding(time_steps, config_.d_model))));
  auto x = Drop(dropout_, input_norm_(h + time + Positions(z_t.size(1))));
  for (const auto& block : *decoder_) {
    x = block->as<TransformerBlock>()->forward(x, target_mask, encoded, source_mask);
  }
  return latent_out_(decoder_norm_(x));
}

torch::Tensor FastDissModelImpl::Logits(const torch::Tensor& z0_hat) {
  return torch::matmul(z0_hat, NormalizedEmbedding().t());
}

}  // namespace fastdiss
