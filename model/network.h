// The FastDiSS network of docs/method.md section 1: a Transformer encoder over the source, run
// once per request, and a non-causal denoiser that maps a noisy latent z_t (a timestep per
// token) plus the self-conditioning estimate to the clean latent z0 (x0-parameterisation).
// Rounding is tied to the embedding table; a length predictor reads the mean-pooled encoder
// output.
//
// A module is not thread-safe: one thread owns it (the trainer's loop or the server's engine).
// Shapes: B batch rows, S source length, L target length, D = d_latent, H = d_model.
// Masks are bool, true on real tokens and false on padding.
#ifndef FASTDISS_MODEL_NETWORK_H_
#define FASTDISS_MODEL_NETWORK_H_

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <utility>
#include <vector>

#include "base/config_fields.h"
#include "base/status.h"
#include "model/precision.h"
#include "model/tokenizer.h"

namespace fastdiss {

struct ModelConfig {
  int vocab_size = 0;
  int d_latent = 128;  // D: the diffusion space
  int d_model = 256;   // H: Transformer width
  int num_heads = 4;
  int ffn_dim = 1024;
  int encoder_layers = 4;
  int decoder_layers = 4;
  double dropout = 0.1;
  int max_source_tokens = 64;
  int max_target_tokens = 64;
  int length_offset = 128;    // C: length classes are len_tgt - len_src + C in [0, 2C]
  int num_timesteps = 2000;   // T
  double noise_factor = 4.0;  // F
  int pad_id = 0;
  // How source text is cut into units before tokenizing (tokenizer.h, PrepareSource): "text"
  // as given, or "characters" for models trained on spaced characters (g2p). Checkpoints
  // written before this field existed load as "text".
  std::string source_units = "text";
  // ASCII capitals lowercased before that, for data without capitals (g2p): "Hello" = "hello".
  bool source_lowercase = false;
  // A learned scale s on the rounding logits s * z0_hat . E^T. Without it a perfect estimate
  // sqrt(D) E[y] reaches a logit of only sqrt(D) = 8 at D = 64: with a 4,000-piece vocabulary
  // that leaves a cross-entropy floor near 1.8 nats (docs/results.md). Checkpoints written
  // before this field existed load without it.
  bool learned_logit_scale = false;
  SourceRule source_rule() const { return {source_units, source_lowercase}; }

  absl::Status Validate() const;
  int length_classes() const { return 2 * length_offset + 1; }
  // The "model.*" keys, bound to this struct: the trainer's config and the checkpoint's model.yaml.
  ConfigFields Fields();
};

// Keys and values of one attention layer, split into heads: [B, heads, Lk, head_dim] each. The
// denoiser's cross-attention reads the same encoder output at every step, so a sampler computes
// these once per request (FastDissModelImpl::CrossKeysValues) and keeps them.
struct KeysValues {
  torch::Tensor keys, values;
};

// Additive attention mask from a bool key mask [B, Lk]: 0 on real keys, -inf on padding, shaped
// [B, 1, 1, Lk] to add to every head's scores. Built once per forward and shared by the layers.
torch::Tensor AttentionBias(const torch::Tensor& key_mask);

// How a forward's tokens are laid out. Padded: x is [B, L, H] and `bias` (AttentionBias of the
// mask) hides the padding. Packed (CPU inference, model/cpu_attention.h): x is [N, H], rows of
// different lengths back to back, row r at [offsets[r], offsets[r + 1]), and no padding is
// computed at all.
struct TokenLayout {
  torch::Tensor bias;
  std::vector<int64_t> offsets;
  bool packed() const { return !offsets.empty(); }
};

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int d_model, int num_heads, double dropout);
  // Self-attention: queries, keys and values from x in one fused projection.
  torch::Tensor SelfAttend(const torch::Tensor& x, const TokenLayout& layout);
  // Keys and values of memory [B, Lk, H] in one fused projection.
  KeysValues Project(const torch::Tensor& memory);
  // Queries from query (laid out as `layout` says) against projected keys and values, one padded
  // run per row, with their AttentionBias.
  torch::Tensor CrossAttend(const torch::Tensor& query, const TokenLayout& layout,
                            const KeysValues& memory, const torch::Tensor& memory_bias);

 private:
  // The fused projections, 1/sqrt(head_dim) folded into the queries: rebuilt from q, k and v on
  // every call while gradients flow, cached in inference until a weight changes (an optimiser
  // step or a load bumps its version).
  struct Fused {
    torch::Tensor qkv_weight, qkv_bias, q_weight, q_bias, kv_weight, kv_bias;
  };
  const Fused& FusedWeights();
  torch::Tensor SplitHeads(const torch::Tensor& x) const;  // [B, L, H] -> [B, heads, L, hd]
  torch::Tensor Attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                       const torch::Tensor& bias);
  bool UsesCpuKernel(const torch::Tensor& x) const;

  int num_heads_;
  torch::nn::Linear q_{nullptr}, k_{nullptr}, v_{nullptr}, out_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
  Fused fused_;
  std::vector<std::pair<const void*, int64_t>> fused_from_;  // (data, version) of the sources
};
TORCH_MODULE(Attention);

// Pre-LayerNorm Transformer block: self-attention, optional cross-attention, feed-forward.
class TransformerBlockImpl : public torch::nn::Module {
 public:
  TransformerBlockImpl(const ModelConfig& config, bool cross_attention);
  // layout: how x's tokens are laid out. memory: the cross-attention's keys and values (Project
  // of the encoder output) and memory_bias their AttentionBias; ignored without cross-attention.
  torch::Tensor forward(torch::Tensor x, const TokenLayout& layout, const KeysValues& memory,
                        const torch::Tensor& memory_bias);
  // This block's cross-attention keys and values of the encoder output [B, S, H].
  KeysValues ProjectMemory(const torch::Tensor& encoded);

 private:
  torch::nn::LayerNorm self_norm_{nullptr}, cross_norm_{nullptr}, ffn_norm_{nullptr};
  Attention self_attention_{nullptr}, cross_attention_{nullptr};
  torch::nn::Linear ffn_in_{nullptr}, ffn_out_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
};
TORCH_MODULE(TransformerBlock);

class FastDissModelImpl : public torch::nn::Module {
 public:
  explicit FastDissModelImpl(const ModelConfig& config);

  const ModelConfig& config() const { return config_; }

  // Clean latent of tokens: sqrt(D) * E[y] with unit-norm rows of E (unit variance per dimension,
  // and no collapse of the embedding under the MSE loss). tokens [B, L] -> [B, L, D].
  torch::Tensor Embed(const torch::Tensor& tokens);

  // Source tokens [B, S] and mask -> encoder states [B, S, H].
  torch::Tensor Encode(const torch::Tensor& source, const torch::Tensor& source_mask);

  // Length-class logits [B, 2C+1] from the mean of the real encoder states.
  torch::Tensor PredictLength(const torch::Tensor& encoded, const torch::Tensor& source_mask);

  // z_t [B, L, D], timesteps t (int64, [B, L] one per token, or [B] one per row), the
  // self-conditioning [B, L, D] (zeros for none), target mask [B, L], encoder states and mask ->
  // z0 estimate [B, L, D].
  torch::Tensor Denoise(const torch::Tensor& z_t, const torch::Tensor& t,
                        const torch::Tensor& self_cond, const torch::Tensor& target_mask,
                        const torch::Tensor& encoded, const torch::Tensor& source_mask);

  // The decoder blocks' cross-attention keys and values of encoder states [B, S, H], one per
  // block: what Denoise recomputes on every call, for a sampler to compute once per request.
  std::vector<KeysValues> CrossKeysValues(const torch::Tensor& encoded);

  // Denoise with the cross-attention keys and values given (rows may be views into larger
  // buffers, padded beyond source_mask).
  torch::Tensor DenoiseWithMemory(const torch::Tensor& z_t, const torch::Tensor& t,
                                  const torch::Tensor& self_cond, const torch::Tensor& target_mask,
                                  const std::vector<KeysValues>& memory,
                                  const torch::Tensor& source_mask);

  // Rows of different lengths packed back to back, for DenoisePacked: row r's tokens are
  // [offsets[r], offsets[r + 1]); row and position give each token's row and its position in
  // it ([N] int64 on the model's device).
  struct PackedRows {
    std::vector<int64_t> offsets;
    torch::Tensor row, position;
  };
  // Whether DenoisePacked runs here: CPU float32 inference (it needs model/cpu_attention.h).
  bool CanDenoisePacked() const;
  // DenoiseWithMemory over packed rows: z_t and self_cond [N, D], one timestep per row t [n],
  // memory and source_mask [n, S] per row -> z0 estimate [N, D]. No padded token is computed.
  torch::Tensor DenoisePacked(const torch::Tensor& z_t, const torch::Tensor& t,
                              const torch::Tensor& self_cond, const PackedRows& rows,
                              const std::vector<KeysValues>& memory,
                              const torch::Tensor& source_mask);

  // Tied rounding: z0 estimate [B, L, D] -> token logits [B, L, V] (times the learned scale
  // when the model has one).
  torch::Tensor Logits(const torch::Tensor& z0_hat);

  // Stores every linear layer's weights and biases in `precision`, for inference. With bfloat16
  // their products run in it (oneDNN's bfloat16 GEMM on CPUs with AVX512-BF16, tensor cores on
  // CUDA), while the activations between them, the layer norms, attention, the embedding and the
  // rounding stay float32. float32 undoes nothing: load the checkpoint again for full weights.
  void SetLinearPrecision(LinearPrecision precision);

 private:
  torch::Tensor NormalizedEmbedding();
  torch::Tensor Positions(int64_t length) const;
  // The denoiser's input before positions: z_t and the self-conditioning merged, plus the
  // timestep embedding (t per token [..., L], or per row [n], then broadcast over L).
  torch::Tensor DenoiserInput(const torch::Tensor& z_t, const torch::Tensor& self_cond);
  torch::Tensor TimeEmbedding(const torch::Tensor& t);
  // The decoder blocks and output projection over x, laid out as `layout` says.
  torch::Tensor DenoiserBlocks(torch::Tensor x, const TokenLayout& layout,
                               const std::vector<KeysValues>& memory,
                               const torch::Tensor& source_mask);

  ModelConfig config_;
  torch::nn::Embedding embedding_{nullptr};
  torch::Tensor log_logit_scale_;  // a scalar when config_.learned_logit_scale, else undefined
  torch::nn::Linear source_in_{nullptr};
  torch::nn::ModuleList encoder_{nullptr};
  torch::nn::LayerNorm encoder_norm_{nullptr};
  torch::nn::Linear length_head_{nullptr};
  torch::nn::Linear latent_in_{nullptr};  // W_in, shared by z_t and the self-conditioning input
  torch::nn::Linear merge_hidden_{nullptr}, merge_out_{nullptr};
  torch::nn::Linear time_hidden_{nullptr}, time_out_{nullptr};
  torch::nn::LayerNorm input_norm_{nullptr};
  torch::nn::ModuleList decoder_{nullptr};
  torch::nn::LayerNorm decoder_norm_{nullptr};
  torch::nn::Linear latent_out_{nullptr};  // W_out
  torch::nn::Dropout dropout_{nullptr};
  torch::Tensor positions_;  // buffer [max(S, L), H], sinusoidal
};
TORCH_MODULE(FastDissModel);

// Sinusoidal embedding of (possibly fractional) positions: values [...] -> [..., dim].
torch::Tensor SinusoidalEmbedding(const torch::Tensor& values, int64_t dim);

}  // namespace fastdiss

#endif  // FASTDISS_MODEL_NETWORK_H_
