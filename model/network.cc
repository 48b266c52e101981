#include "model/network.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <string>

#include "model/cpu_attention.h"
#include "model/dropout.h"
#include "model/gemm_rows.h"
#include "model/tokenizer.h"

namespace fastdiss {
namespace {

absl::Status Positive(const char* name, double value) {
  if (value > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(std::string("model.") + name + " must be positive, got " +
                                    std::to_string(value));
}

// The module's rate and train/eval mode, applied with fastdiss::Dropout (model/dropout.h); the
// torch::nn::Dropout modules stay as the holders of both.
torch::Tensor Drop(const torch::nn::Dropout& dropout, const torch::Tensor& x) {
  return Dropout(x, dropout->options.p(), dropout->is_training());
}

// x [..., K] times weight [N, K]^T plus bias in one addmm. LibTorch 1.13's linear runs a 3-D input
// as a matmul (its GEMM zero-fills the output first) and then a separate bias add. Weights in a
// narrower type than x (FastDissModelImpl::SetLinearPrecision) take the product in theirs: x is
// rounded to it on the way in and the result widened back, so activations keep x's type.
torch::Tensor Affine(const torch::Tensor& x, const torch::Tensor& weight,
                     const torch::Tensor& bias) {
  std::vector<int64_t> sizes = x.sizes().vec();
  auto flat = x.reshape({-1, sizes.back()});
  sizes.back() = weight.size(0);
  if (weight.scalar_type() == x.scalar_type()) {
    return torch::addmm(bias, flat, weight.t()).view(sizes);
  }
  if (!x.is_cpu()) {
    return torch::addmm(bias, flat.to(weight.scalar_type()), weight.t())
        .to(x.scalar_type())
        .view(sizes);
  }
  // On the CPU the rows are padded (model/gemm_rows.h): few shapes for oneDNN to compile. Each
  // row's product is its own, so the zero rows change no other.
  const int64_t rows = flat.size(0), padded = PaddedGemmRows(rows);
  auto input = torch::empty({padded, flat.size(1)}, flat.options().dtype(weight.scalar_type()));
  input.narrow(0, 0, rows).copy_(flat);
  if (padded > rows) input.narrow(0, rows, padded - rows).zero_();
  return torch::addmm(bias, input, weight.t()).narrow(0, 0, rows).to(x.scalar_type()).view(sizes);
}

torch::Tensor Affine(const torch::nn::Linear& layer, const torch::Tensor& x) {
  return Affine(x, layer->weight, layer->bias);
}

}  // namespace

absl::Status ModelConfig::Validate() const {
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
  if (absl::Status units = CheckSourceUnits(source_units); !units.ok()) {
    return absl::InvalidArgumentError("model." + std::string(units.message()));
  }
  if (d_model % num_heads != 0) {
    return absl::InvalidArgumentError("model.d_model (" + std::to_string(d_model) +
                                      ") must be divisible by model.num_heads (" +
                                      std::to_string(num_heads) + ")");
  }
  if (d_model % 2 != 0) {
    return absl::InvalidArgumentError("model.d_model must be even, got " + std::to_string(d_model));
  }
  if (dropout < 0 || dropout >= 1) {
    return absl::InvalidArgumentError("model.dropout must be in [0, 1), got " +
                                      std::to_string(dropout));
  }
  if (num_timesteps < 2 || num_timesteps > 100000) {
    return absl::InvalidArgumentError("model.num_timesteps must be in [2, 100000], got " +
                                      std::to_string(num_timesteps));
  }
  if (pad_id < 0 || pad_id >= vocab_size) {
    return absl::InvalidArgumentError("model.pad_id must be a token id in [0, vocab_size), got " +
                                      std::to_string(pad_id));
  }
  return absl::OkStatus();
}

ConfigFields ModelConfig::Fields() {
  return {
      {"model.vocab_size", "Vocabulary size (set by the tokenizer the trainer builds).",
       &vocab_size},
      {"model.d_latent", "Width D of the diffusion latent (the embedding).", &d_latent},
      {"model.d_model", "Transformer width.", &d_model},
      {"model.num_heads", "Attention heads; must divide d_model.", &num_heads},
      {"model.ffn_dim", "Feed-forward inner width.", &ffn_dim},
      {"model.encoder_layers", "Source encoder blocks.", &encoder_layers},
      {"model.decoder_layers", "Denoiser blocks.", &decoder_layers},
      {"model.dropout", "Dropout probability in training.", &dropout},
      {"model.max_source_tokens", "Longest source in tokens; longer training pairs are skipped.",
       &max_source_tokens},
      {"model.max_target_tokens", "Longest target in tokens.", &max_target_tokens},
      {"model.length_offset",
       "C: the length predictor's classes are len_tgt - len_src + C in [0, 2C].", &length_offset},
      {"model.num_timesteps", "T, diffusion steps of the training process.", &num_timesteps},
      {"model.noise_factor", "F, scale of the forward noise.", &noise_factor},
      {"model.pad_id", "Padding token id (the tokenizer's).", &pad_id},
      {"model.source_units",
       "How source text is cut before tokenizing: text (as given) or characters (whitespace "
       "dropped, "
       "every character a unit: \"hello\" and \"h e l l o\" read alike).",
       &source_units},
      {"model.source_lowercase",
       "Lowercase ASCII capitals of the source first, for data without capitals (\"Hello\" reads "
       "as \"hello\").",
       &source_lowercase},
      {"model.learned_logit_scale",
       "Learn a scale on the rounding logits (off: a perfect estimate's logit is only "
       "sqrt(d_latent), a cross-entropy floor with large vocabularies).",
       &learned_logit_scale},
  };
}

torch::Tensor SinusoidalEmbedding(const torch::Tensor& values, int64_t dim) {
  const int64_t half = dim / 2;
  auto frequencies = torch::exp(torch::arange(half, values.options().dtype(torch::kFloat32)) *
                                (-std::log(10000.0) / std::max<int64_t>(half - 1, 1)));
  auto angles = values.to(torch::kFloat32).unsqueeze(-1) * frequencies;
  return torch::cat({torch::sin(angles), torch::cos(angles)}, -1);
}

torch::Tensor AttentionBias(const torch::Tensor& key_mask) {
  auto bias = torch::zeros(key_mask.sizes(), key_mask.options().dtype(torch::kFloat32));
  bias.masked_fill_(key_mask.logical_not(), -std::numeric_limits<float>::infinity());
  return bias.view({key_mask.size(0), 1, 1, key_mask.size(1)});
}

AttentionImpl::AttentionImpl(int d_model, int num_heads, double dropout) : num_heads_(num_heads) {
  q_ = register_module("q", torch::nn::Linear(d_model, d_model));
  k_ = register_module("k", torch::nn::Linear(d_model, d_model));
  v_ = register_module("v", torch::nn::Linear(d_model, d_model));
  out_ = register_module("out", torch::nn::Linear(d_model, d_model));
  dropout_ = register_module("dropout", torch::nn::Dropout(dropout));
}

const AttentionImpl::Fused& AttentionImpl::FusedWeights() {
  const torch::Tensor sources[] = {q_->weight, q_->bias,   k_->weight,
                                   k_->bias,   v_->weight, v_->bias};
  const bool cacheable = !is_training() && !torch::GradMode::is_enabled();
  if (cacheable && !fused_from_.empty()) {
    bool same = true;
    for (size_t i = 0; i < fused_from_.size() && same; ++i) {
      same = fused_from_[i] ==
             std::make_pair<const void*, int64_t>(sources[i].data_ptr(), sources[i]._version());
    }
    if (same) return fused_;
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(q_->weight.size(0) / num_heads_));
  // Scaled in float32, then stored in the weights' own type: one rounding, not two.
  const auto scaled = [&](const torch::Tensor& w) {
    return (w.to(torch::kFloat32) * scale).to(w.scalar_type());
  };
  fused_.q_weight = scaled(q_->weight);
  fused_.q_bias = scaled(q_->bias);
  fused_.kv_weight = torch::cat({k_->weight, v_->weight});
  fused_.kv_bias = torch::cat({k_->bias, v_->bias});
  fused_.qkv_weight = torch::cat({fused_.q_weight, fused_.kv_weight});
  fused_.qkv_bias = torch::cat({fused_.q_bias, fused_.kv_bias});
  fused_from_.clear();
  if (cacheable) {
    for (const auto& t : sources) fused_from_.emplace_back(t.data_ptr(), t._version());
  }
  return fused_;
}

torch::Tensor AttentionImpl::SplitHeads(const torch::Tensor& x) const {
  const int64_t head_dim = x.size(2) / num_heads_;
  return x.view({x.size(0), x.size(1), num_heads_, head_dim}).transpose(1, 2);
}

bool AttentionImpl::UsesCpuKernel(const torch::Tensor& x) const {
  return !is_training() && !torch::GradMode::is_enabled() && x.is_cpu() &&
         x.scalar_type() == torch::kFloat32;
}

torch::Tensor AttentionImpl::Attend(const torch::Tensor& q, const torch::Tensor& k,
                                    const torch::Tensor& v, const torch::Tensor& bias) {
  const int64_t B = q.size(0), Lq = q.size(2);
  if (UsesCpuKernel(q)) return Affine(out_, CpuAttention(q, k, v, bias));
  auto scores = torch::matmul(q, k.transpose(-2, -1));  // [B, heads, Lq, Lk], q already scaled
  scores.add_(bias);
  auto weights = Drop(dropout_, torch::softmax(scores, -1));
  auto context = torch::matmul(weights, v).transpose(1, 2).reshape({B, Lq, -1});
  return Affine(out_, context);
}

torch::Tensor AttentionImpl::SelfAttend(const torch::Tensor& x, const TokenLayout& layout) {
  const Fused& f = FusedWeights();
  auto qkv = Affine(x, f.qkv_weight, f.qkv_bias);
  if (layout.packed()) {
    TORCH_CHECK(UsesCpuKernel(x), "packed rows need CPU float32 inference");
    const int64_t N = x.size(0), H = x.size(1);
    auto heads = [&](int part) {
      return qkv.narrow(1, part * H, H).view({N, num_heads_, H / num_heads_});
    };
    return Affine(
        out_, CpuAttentionPacked(heads(0), heads(1), heads(2), torch::Tensor(), layout.offsets));
  }
  auto parts = qkv.chunk(3, -1);
  return Attend(SplitHeads(parts[0]), SplitHeads(parts[1]), SplitHeads(parts[2]), layout.bias);
}

KeysValues AttentionImpl::Project(const torch::Tensor& memory) {
  const Fused& f = FusedWeights();
  auto kv = Affine(memory, f.kv_weight, f.kv_bias).chunk(2, -1);
  return {SplitHeads(kv[0]), SplitHeads(kv[1])};
}

torch::Tensor AttentionImpl::CrossAttend(const torch::Tensor& query, const TokenLayout& layout,
                                         const KeysValues& memory,
                                         const torch::Tensor& memory_bias) {
  const Fused& f = FusedWeights();
  auto q = Affine(query, f.q_weight, f.q_bias);
  if (layout.packed()) {
    TORCH_CHECK(UsesCpuKernel(query), "packed rows need CPU float32 inference");
    const int64_t N = q.size(0), H = q.size(1);
    return Affine(out_, CpuAttentionPacked(q.view({N, num_heads_, H / num_heads_}), memory.keys,
                                           memory.values, memory_bias, layout.offsets));
  }
  return Attend(SplitHeads(q), memory.keys, memory.values, memory_bias);
}

TransformerBlockImpl::TransformerBlockImpl(const ModelConfig& c, bool cross_attention) {
  self_norm_ =
      register_module("self_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.d_model})));
  self_attention_ = register_module("self_attention", Attention(c.d_model, c.num_heads, c.dropout));
  if (cross_attention) {
    cross_norm_ = register_module("cross_norm",
                                  torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.d_model})));
    cross_attention_ =
        register_module("cross_attention", Attention(c.d_model, c.num_heads, c.dropout));
  }
  ffn_norm_ =
      register_module("ffn_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.d_model})));
  ffn_in_ = register_module("ffn_in", torch::nn::Linear(c.d_model, c.ffn_dim));
  ffn_out_ = register_module("ffn_out", torch::nn::Linear(c.ffn_dim, c.d_model));
  dropout_ = register_module("dropout", torch::nn::Dropout(c.dropout));
}

KeysValues TransformerBlockImpl::ProjectMemory(const torch::Tensor& encoded) {
  return cross_attention_->Project(encoded);
}

torch::Tensor TransformerBlockImpl::forward(torch::Tensor x, const TokenLayout& layout,
                                            const KeysValues& memory,
                                            const torch::Tensor& memory_bias) {
  x = x + Drop(dropout_, self_attention_->SelfAttend(self_norm_(x), layout));
  if (cross_attention_) {
    x = x +
        Drop(dropout_, cross_attention_->CrossAttend(cross_norm_(x), layout, memory, memory_bias));
  }
  x = x +
      Drop(dropout_, Affine(ffn_out_, Drop(dropout_, torch::gelu(Affine(ffn_in_, ffn_norm_(x))))));
  return x;
}

FastDissModelImpl::FastDissModelImpl(const ModelConfig& config) : config_(config) {
  const int D = config.d_latent, H = config.d_model;
  auto norm = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({H})); };
  embedding_ = register_module("embedding", torch::nn::Embedding(config.vocab_size, D));
  torch::nn::init::normal_(embedding_->weight, 0.0, 1.0);
  source_in_ = register_module("source_in", torch::nn::Linear(D, H));
  encoder_ = register_module("encoder", torch::nn::ModuleList());
  for (int i = 0; i < config.encoder_layers; ++i)
    encoder_->push_back(TransformerBlock(config, false));
  encoder_norm_ = register_module("encoder_norm", norm());
  length_head_ = register_module("length_head", torch::nn::Linear(H, config.length_classes()));
  latent_in_ = register_module("latent_in", torch::nn::Linear(D, H));
  merge_hidden_ = register_module("merge_hidden", torch::nn::Linear(2 * H, H));
  merge_out_ = register_module("merge_out", torch::nn::Linear(H, H));
  time_hidden_ = register_module("time_hidden", torch::nn::Linear(H, 4 * H));
  time_out_ = register_module("time_out", torch::nn::Linear(4 * H, H));
  input_norm_ = register_module("input_norm", norm());
  decoder_ = register_module("decoder", torch::nn::ModuleList());
  for (int i = 0; i < config.decoder_layers; ++i)
    decoder_->push_back(TransformerBlock(config, true));
  decoder_norm_ = register_module("decoder_norm", norm());
  latent_out_ = register_module("latent_out", torch::nn::Linear(H, D));
  dropout_ = register_module("dropout", torch::nn::Dropout(config.dropout));
  const int64_t max_len = std::max(config.max_source_tokens, config.max_target_tokens);
  positions_ = register_buffer("positions", SinusoidalEmbedding(torch::arange(max_len), H));
  if (config.learned_logit_scale) {
    log_logit_scale_ = register_parameter("log_logit_scale", torch::zeros({}));  // scale 1
  }
}

void FastDissModelImpl::SetLinearPrecision(LinearPrecision precision) {
  const torch::ScalarType dtype =
      precision == LinearPrecision::kBFloat16 ? torch::kBFloat16 : torch::kFloat32;
  for (const auto& module : modules(/*include_self=*/false)) {
    if (auto* linear = module->as<torch::nn::Linear>()) linear->to(dtype);
  }
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
  auto x = Drop(dropout_, Affine(source_in_, Embed(source)) + Positions(source.size(1)));
  const TokenLayout layout{AttentionBias(source_mask), {}};
  for (const auto& block : *encoder_) {
    x = block->as<TransformerBlock>()->forward(x, layout, KeysValues(), torch::Tensor());
  }
  return encoder_norm_(x);
}

torch::Tensor FastDissModelImpl::PredictLength(const torch::Tensor& encoded,
                                               const torch::Tensor& source_mask) {
  auto mask = source_mask.unsqueeze(-1).to(encoded.dtype());
  auto pooled = (encoded * mask).sum(1) / mask.sum(1).clamp_min(1.0);
  return Affine(length_head_, pooled);
}

torch::Tensor FastDissModelImpl::Denoise(const torch::Tensor& z_t, const torch::Tensor& t,
                                         const torch::Tensor& self_cond,
                                         const torch::Tensor& target_mask,
                                         const torch::Tensor& encoded,
                                         const torch::Tensor& source_mask) {
  return DenoiseWithMemory(z_t, t, self_cond, target_mask, CrossKeysValues(encoded), source_mask);
}

std::vector<KeysValues> FastDissModelImpl::CrossKeysValues(const torch::Tensor& encoded) {
  std::vector<KeysValues> memory;
  for (const auto& block : *decoder_)
    memory.push_back(block->as<TransformerBlock>()->ProjectMemory(encoded));
  return memory;
}

torch::Tensor FastDissModelImpl::DenoiserInput(const torch::Tensor& z_t,
                                               const torch::Tensor& self_cond) {
  auto merged = torch::cat({Affine(latent_in_, z_t), Affine(latent_in_, self_cond)}, -1);
  return Affine(merge_out_, torch::silu(Affine(merge_hidden_, merged)));
}

torch::Tensor FastDissModelImpl::TimeEmbedding(const torch::Tensor& t) {
  auto time_steps = t.to(torch::kFloat32) * (1000.0 / config_.num_timesteps);
  return Affine(time_out_, torch::silu(Affine(time_hidden_,
                                              SinusoidalEmbedding(time_steps, config_.d_model))));
}

torch::Tensor FastDissModelImpl::DenoiserBlocks(torch::Tensor x, const TokenLayout& layout,
                                                const std::vector<KeysValues>& memory,
                                                const torch::Tensor& source_mask) {
  TORCH_CHECK(memory.size() == decoder_->size(), "denoiser: ", memory.size(), " keys/values for ",
              decoder_->size(), " decoder blocks");
  const auto memory_bias = AttentionBias(source_mask);
  for (size_t i = 0; i < decoder_->size(); ++i) {
    x = decoder_[i]->as<TransformerBlock>()->forward(x, layout, memory[i], memory_bias);
  }
  return Affine(latent_out_, decoder_norm_(x));
}

torch::Tensor FastDissModelImpl::DenoiseWithMemory(const torch::Tensor& z_t, const torch::Tensor& t,
                                                   const torch::Tensor& self_cond,
                                                   const torch::Tensor& target_mask,
                                                   const std::vector<KeysValues>& memory,
                                                   const torch::Tensor& source_mask) {
  // One timestep per row (sampling) embeds B timesteps instead of B * L identical ones.
  auto time = TimeEmbedding(t);
  if (t.dim() == 1) time = time.unsqueeze(1);
  auto x =
      Drop(dropout_, input_norm_(DenoiserInput(z_t, self_cond) + time + Positions(z_t.size(1))));
  return DenoiserBlocks(x, TokenLayout{AttentionBias(target_mask), {}}, memory, source_mask);
}

bool FastDissModelImpl::CanDenoisePacked() const {
  return !is_training() && positions_.is_cpu() && positions_.scalar_type() == torch::kFloat32;
}

torch::Tensor FastDissModelImpl::DenoisePacked(const torch::Tensor& z_t, const torch::Tensor& t,
                                               const torch::Tensor& self_cond,
                                               const PackedRows& rows,
                                               const std::vector<KeysValues>& memory,
                                               const torch::Tensor& source_mask) {
  TORCH_CHECK(CanDenoisePacked(), "DenoisePacked needs CPU float32 inference");
  auto time = TimeEmbedding(t).index_select(0, rows.row);
  auto x =
      input_norm_(DenoiserInput(z_t, self_cond) + time + positions_.index_select(0, rows.position));
  return DenoiserBlocks(x, TokenLayout{torch::Tensor(), rows.offsets}, memory, source_mask);
}

torch::Tensor FastDissModelImpl::Logits(const torch::Tensor& z0_hat) {
  auto logits = torch::matmul(z0_hat, NormalizedEmbedding().t());
  return log_logit_scale_.defined() ? logits * log_logit_scale_.exp() : logits;
}

}  // namespace fastdiss
