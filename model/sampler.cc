#include "model/sampler.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "model/counter_noise.h"

namespace fastdiss {
namespace {

// Runs a LibTorch call and turns its exceptions into a Status: the model boundary.
template <typename F>
absl::Status Guarded(const char* what, F&& body) {
  try {
    body();
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return absl::InternalError(std::string(what) + " failed: " + e.what());
  }
}

// [lengths.size(), max_length] bool: true before each row's length.
torch::Tensor LengthMask(const std::vector<int64_t>& lengths, int64_t max_length,
                         torch::Device device) {
  auto lens = torch::tensor(lengths, torch::kLong);
  return (torch::arange(max_length).unsqueeze(0) < lens.unsqueeze(1)).to(device);
}

torch::Tensor Indices(const std::vector<int64_t>& values, torch::Device device) {
  return torch::tensor(values, torch::kLong).to(device);
}

}  // namespace

// The persistent row buffers of sampler.h: slot s holds one candidate row. Running rows fill
// slots [0, size()); owners_[s] names the state and row in slot s.
class RowSlots : public std::enable_shared_from_this<RowSlots> {
 public:
  RowSlots(const ModelConfig& config, torch::Device device) : config_(config), device_(device) {}

  int size() const { return static_cast<int>(owners_.size()); }

  // Gives state `rows` slots at the end, growing the buffers when full.
  void Acquire(DecodeState* state, int rows) {
    Reserve(size() + rows);
    for (int r = 0; r < rows; ++r) {
      state->slots_.push_back(size());
      owners_.emplace_back(state, r);
    }
    state->slots_owner_ = shared_from_this();
  }

  // Frees the states' slots; the last running rows move into the holes, in one copy per buffer
  // however many states leave.
  void Release(const std::vector<DecodeState*>& states) {
    c10::InferenceMode guard;  // the buffers are inference tensors; a destructor may call this
    const int n = size();
    std::vector<bool> freed(n, false);
    int kept = n;
    for (const DecodeState* state : states) {
      for (int slot : state->slots_) freed[slot] = true;
      kept -= static_cast<int>(state->slots_.size());
    }
    std::vector<int64_t> from, to;
    for (int hole = 0, tail = kept; hole < kept; ++hole) {
      if (!freed[hole]) continue;
      while (freed[tail]) ++tail;
      from.push_back(tail);
      to.push_back(hole);
      owners_[hole] = owners_[tail];
      owners_[hole].first->slots_[owners_[hole].second] = hole;
      ++tail;
    }
    if (!from.empty()) {
      const auto src = Indices(from, device_), dst = Indices(to, device_);
      for (torch::Tensor* buffer : Buffers())
        buffer->index_copy_(0, dst, buffer->index_select(0, src));
    }
    owners_.resize(kept);
    for (DecodeState* state : states) {
      state->slots_.clear();
      state->slots_owner_.reset();
    }
  }

  torch::Tensor z, z0_hat;         // [capacity, max_target_tokens, D]
  std::vector<KeysValues> memory;  // per decoder block, [capacity, heads, max_source_tokens, hd]

 private:
  std::vector<torch::Tensor*> Buffers() {
    std::vector<torch::Tensor*> buffers = {&z, &z0_hat};
    for (KeysValues& kv : memory) {
      buffers.push_back(&kv.keys);
      buffers.push_back(&kv.values);
    }
    return buffers;
  }

  // Zero-filled growth: rows beyond a row's length are read as padding, and must be finite.
  void Reserve(int rows) {
    const int64_t capacity = z.defined() ? z.size(0) : 0;
    if (rows <= capacity) return;
    const int64_t grown = std::max<int64_t>({rows, 2 * capacity, 16});
    const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(device_);
    const int64_t heads = config_.num_heads, head_dim = config_.d_model / config_.num_heads;
    if (!z.defined()) {
      z = torch::zeros({0, config_.max_target_tokens, config_.d_latent}, options);
      z0_hat = torch::zeros_like(z);
      memory.resize(config_.decoder_layers);
      for (KeysValues& kv : memory) {
        kv.keys = torch::zeros({0, heads, config_.max_source_tokens, head_dim}, options);
        kv.values = torch::zeros_like(kv.keys);
      }
    }
    for (torch::Tensor* buffer : Buffers()) {
      std::vector<int64_t> shape = buffer->sizes().vec();
      shape[0] = grown;
      auto larger = torch::zeros(shape, options);
      larger.narrow(0, 0, size()).copy_(buffer->narrow(0, 0, size()));
      *buffer = larger;
    }
  }

  ModelConfig config_;
  torch::Device device_;
  std::vector<std::pair<DecodeState*, int>> owners_;
};

DecodeState::~DecodeState() {
  if (!slots_owner_) return;
  const std::shared_ptr<RowSlots> owner = slots_owner_;  // outlives the Release that resets it
  try {
    owner->Release({this});
  } catch (const std::exception&) {
    // Only a device failure gets here; the sampler's next call reports it.
  }
}

int64_t DecodeState::target_tokens() const {
  int64_t total = 0;
  for (int length : lengths_) total += length;
  return total;
}

Sampler::Sampler(FastDissModel model, NoiseSchedule schedule, torch::Device device)
    : model_(std::move(model)),
      schedule_(std::move(schedule)),
      device_(device),
      slots_(std::make_shared<RowSlots>(model_->config(), device)) {}

absl::Status Sampler::CheckReady() const {
  if (model_->is_training()) {
    return absl::FailedPreconditionError("the sampler needs the model in eval mode");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<DecodeState>> Sampler::NewState(std::vector<int> source_ids,
                                                               const DecodeOptions& options) const {
  // The callers validate their input (the server in CheckRequest, the tools at their flags);
  // this only guards the tensor code against a caller's bug.
  const ModelConfig& config = model_->config();
  const auto outside = [](const char* what, int64_t value, int64_t lo, int64_t hi) {
    return value < lo || value > hi
               ? absl::InvalidArgumentError("Sampler::NewState: " + std::string(what) + " " +
                                            std::to_string(value) + " is outside " +
                                            std::to_string(lo) + ".." + std::to_string(hi))
               : absl::OkStatus();
  };
  FASTDISS_RETURN_IF_ERROR(outside("source tokens", static_cast<int64_t>(source_ids.size()), 1,
                                   config.max_source_tokens));
  for (int id : source_ids) {
    FASTDISS_RETURN_IF_ERROR(outside("token id", id, 0, config.vocab_size - 1));
  }
  FASTDISS_RETURN_IF_ERROR(outside("length_beam", options.length_beam, 1, kMaxBeam));
  FASTDISS_RETURN_IF_ERROR(outside("noise_beam", options.noise_beam, 1, kMaxBeam));
  FASTDISS_RETURN_IF_ERROR(
      outside("target_length", options.target_length, 0, config.max_target_tokens));
  FASTDISS_RETURN_IF_ERROR(
      outside("early_exit_steps", options.early_exit_steps, 0, schedule_.num_timesteps()));
  std::unique_ptr<DecodeState> state(new DecodeState());
  FASTDISS_ASSIGN_OR_RETURN(state->schedule_, schedule_.Respace(options.steps));
  state->source_.assign(source_ids.begin(), source_ids.end());
  state->options_ = options;
  return state;
}

absl::Status Sampler::Start(const std::vector<DecodeState*>& states) {
  FASTDISS_RETURN_IF_ERROR(CheckReady());
  if (states.empty()) return absl::OkStatus();
  for (const DecodeState* state : states) {
    if (state->started_) return absl::FailedPreconditionError("Start: state already started");
  }
  return Guarded("encoder", [&] {
    c10::InferenceMode guard;
    const ModelConfig& config = model_->config();
    const int64_t B = static_cast<int64_t>(states.size());
    int64_t max_source = 0;
    for (const DecodeState* s : states)
      max_source = std::max<int64_t>(max_source, s->source_.size());
    std::vector<int64_t> source_ids(B * max_source, config.pad_id), source_lengths;
    for (int64_t b = 0; b < B; ++b) {
      std::copy(states[b]->source_.begin(), states[b]->source_.end(),
                source_ids.begin() + b * max_source);
      source_lengths.push_back(static_cast<int64_t>(states[b]->source_.size()));
    }
    auto source = torch::tensor(source_ids, torch::kLong).view({B, max_source}).to(device_);
    auto source_mask = LengthMask(source_lengths, max_source, device_);
    auto encoded = model_->Encode(source, source_mask);
    auto predicted = model_->PredictLength(encoded, source_mask).argmax(-1).to(torch::kCPU);
    const auto predicted_class = predicted.accessor<int64_t, 1>();
    std::vector<int64_t> row_request, slots;
    std::vector<NoiseKey> keys;
    int64_t max_length = 0;
    for (int64_t b = 0; b < B; ++b) {
      DecodeState& s = *states[b];
      const int source_length = static_cast<int>(s.source_.size());
      const int center =
          s.options_.target_length > 0
              ? s.options_.target_length
              : source_length + static_cast<int>(predicted_class[b]) - config.length_offset;
      // Offsets 0, -1, +1, -2, +2, ... around the center, each length once, within [1, max].
      std::vector<int> lengths;
      for (int k = 0; static_cast<int>(lengths.size()) < s.options_.length_beam; ++k) {
        const int offset = (k % 2 == 0) ? k / 2 : -(k + 1) / 2;
        const int length = std::clamp(center + offset, 1, config.max_target_tokens);
        if (std::find(lengths.begin(), lengths.end(), length) == lengths.end())
          lengths.push_back(length);
        if (k > 4 * config.max_target_tokens) break;  // fewer distinct lengths than the beam
      }
      for (int length : lengths) {
        for (int n = 0; n < s.options_.noise_beam; ++n) s.lengths_.push_back(length);
        max_length = std::max<int64_t>(max_length, length);
      }
      slots_->Acquire(&s, s.rows());
      for (int r = 0; r < s.rows(); ++r) {
        row_request.push_back(b);
        slots.push_back(s.slots_[r]);
        keys.push_back({s.options_.seed, NoiseStream(0, r)});
      }
      s.started_ = true;
    }
    // Every new row's cross-attention keys and values, its starting noise and a zero estimate.
    const auto slot_index = Indices(slots, device_), request = Indices(row_request, device_);
    const std::vector<KeysValues> memory = model_->CrossKeysValues(encoded);
    for (size_t i = 0; i < memory.size(); ++i) {
      slots_->memory[i]
          .keys.narrow(2, 0, max_source)
          .index_copy_(0, slot_index, memory[i].keys.index_select(0, request));
      slots_->memory[i]
          .values.narrow(2, 0, max_source)
          .index_copy_(0, slot_index, memory[i].values.index_select(0, request));
    }
    auto noise =
        CounterNormal(keys, {max_length, config.d_latent}, device_).mul_(schedule_.noise_factor());
    slots_->z.narrow(1, 0, max_length).index_copy_(0, slot_index, noise);
    slots_->z0_hat.narrow(1, 0, max_length).index_fill_(0, slot_index, 0.0);
  });
}

namespace {

// The rounding of some rows' estimates: each rounded row's tokens and their log-probabilities,
// row after row in flat CPU tensors; start[r] is where row r begins.
struct Rounding {
  torch::Tensor tokens;     // [M] int64
  torch::Tensor log_probs;  // [M] float
  std::vector<int64_t> start;

  const int64_t* Tokens(size_t row) const { return tokens.data_ptr<int64_t>() + start[row]; }
  // Mean token log-probability within the row's length, summed in token order.
  double Score(size_t row, int length) const {
    const float* p = log_probs.data_ptr<float>() + start[row];
    double sum = 0;
    for (int j = 0; j < length; ++j) sum += p[j];
    return sum / length;
  }
};

// Rounds estimates [M, D], rows back to back: row r's at [offsets[r], offsets[r + 1]).
Rounding Round(FastDissModel& model, const torch::Tensor& z0_hat,
               const std::vector<int64_t>& offsets) {
  auto best = torch::log_softmax(model->Logits(z0_hat), -1).max(-1);
  return {std::get<1>(best).to(torch::kCPU).contiguous(),
          std::get<0>(best).to(torch::kCPU).contiguous(),
          std::vector<int64_t>(offsets.begin(), offsets.end() - 1)};
}

// The best of a state's rows, which are rows first_row.. of rounding.
DecodeResult Best(const DecodeState& state, const std::vector<int>& lengths,
                  const Rounding& rounding, size_t first_row) {
  size_t best_row = 0;
  double best_score = -std::numeric_limits<double>::infinity();
  for (size_t r = 0; r < lengths.size(); ++r) {
    const double score = rounding.Score(first_row + r, lengths[r]);
    if (score > best_score) {  // strict: the first of equal scores wins, whatever the batch
      best_score = score;
      best_row = r;
    }
  }
  const int64_t* tokens = rounding.Tokens(first_row + best_row);
  DecodeResult result;
  result.tokens.assign(tokens, tokens + lengths[best_row]);
  result.score = static_cast<float>(best_score);
  result.steps = state.steps_done();
  return result;
}

// A step's batch: rows 0..n-1 and the tokens computed for them, back to back, row r's at
// [offsets[r], offsets[r + 1]): each row's own tokens when packed, every row cut to the longest
// when padded.
struct StepBatch {
  std::vector<int64_t> offsets = {0};
  std::vector<int64_t> token_row, token_position;  // per token

  int64_t rows() const { return static_cast<int64_t>(offsets.size()) - 1; }

  // The estimates [N, D] of the given rows, in that order, and their offsets.
  std::pair<torch::Tensor, std::vector<int64_t>> Select(const torch::Tensor& z0_hat,
                                                        const std::vector<int64_t>& rows,
                                                        torch::Device device) const {
    bool all = static_cast<int64_t>(rows.size()) == this->rows();  // and in batch order
    for (size_t i = 0; all && i < rows.size(); ++i) all = rows[i] == static_cast<int64_t>(i);
    if (all) return {z0_hat, offsets};
    std::vector<int64_t> tokens, selected = {0};
    for (int64_t r : rows) {
      for (int64_t i = offsets[r]; i < offsets[r + 1]; ++i) tokens.push_back(i);
      selected.push_back(static_cast<int64_t>(tokens.size()));
    }
    return {z0_hat.index_select(0, Indices(tokens, device)), selected};
  }
};

}  // namespace

// One step's layout: which batch row each state's rows are, and what each row needs. When the
// states are all the running rows (the server's case) batch row i is slot i, read and written in
// place; otherwise the states' slots are gathered.
struct Sampler::StepPlan {
  const std::vector<DecodeState*>& states;
  int64_t n = 0;  // rows
  bool in_place = false;
  std::vector<int64_t> first_row;  // per state: its first batch row when gathered
  std::vector<int64_t> slot_of_row, timesteps, target_lengths, source_lengths;  // per batch row
  int64_t max_length = 0, max_source = 0;
  StepBatch batch;                // the tokens computed
  torch::Tensor flat;             // per token: its place in the flattened slot buffers
  torch::Tensor z, z0_hat;        // per token [N, D]: the input and the estimate
  torch::Tensor target;           // per token [N, D]: what the update moves toward (Clamp)
  std::vector<size_t> finishing;  // states that end with this step

  // The batch row of state k's row r.
  int64_t BatchRow(size_t k, int r) const {
    return in_place ? states[k]->slots_[r] : first_row[k] + r;
  }
  // The rounding of the given batch rows, in one output projection.
  Rounding Round(FastDissModel& model, const std::vector<int64_t>& rows,
                 torch::Device device) const {
    auto [estimates, offsets] = batch.Select(z0_hat, rows, device);
    return fastdiss::Round(model, estimates, offsets);
  }
};

absl::Status Sampler::Step(const std::vector<DecodeState*>& states) {
  FASTDISS_RETURN_IF_ERROR(CheckStep(states));
  if (states.empty()) return absl::OkStatus();
  return Guarded("denoiser step", [&] {
    c10::InferenceMode guard;
    StepPlan plan{states};
    LayOut(&plan);
    Denoise(&plan);
    UpdateEarlyExit(plan);
    Clamp(&plan);
    Advance(&plan);
    Finish(plan);
  });
}

absl::Status Sampler::CheckStep(const std::vector<DecodeState*>& states) const {
  FASTDISS_RETURN_IF_ERROR(CheckReady());
  for (const DecodeState* state : states) {
    if (!state->started_ || state->finished() || state->slots_owner_ != slots_) {
      return absl::FailedPreconditionError("Step: every state must be started here and unfinished");
    }
  }
  std::vector<const DecodeState*> distinct(states.begin(), states.end());
  std::sort(distinct.begin(), distinct.end());
  if (std::adjacent_find(distinct.begin(), distinct.end()) != distinct.end()) {
    return absl::InvalidArgumentError("Step: a state is listed twice");
  }
  return absl::OkStatus();
}

void Sampler::LayOut(StepPlan* plan) const {
  const std::vector<DecodeState*>& states = plan->states;
  plan->first_row.resize(states.size());
  for (size_t k = 0; k < states.size(); ++k) {
    plan->first_row[k] = plan->n;
    plan->n += states[k]->rows();
  }
  const int64_t n = plan->n;
  plan->in_place = n == slots_->size();
  plan->slot_of_row.resize(n);
  plan->timesteps.resize(n);
  plan->target_lengths.resize(n);
  plan->source_lengths.resize(n);
  for (size_t k = 0; k < states.size(); ++k) {
    const DecodeState& s = *states[k];
    for (int r = 0; r < s.rows(); ++r) {
      const int64_t i = plan->BatchRow(k, r);
      plan->slot_of_row[i] = s.slots_[r];
      plan->timesteps[i] = s.schedule_[s.step_];
      plan->target_lengths[i] = s.lengths_[r];
      plan->source_lengths[i] = static_cast<int64_t>(s.source_.size());
      plan->max_length = std::max<int64_t>(plan->max_length, s.lengths_[r]);
    }
    plan->max_source = std::max<int64_t>(plan->max_source, s.source_.size());
  }
}

void Sampler::Denoise(StepPlan* plan) {
  const int64_t n = plan->n, max_length = plan->max_length, max_source = plan->max_source;
  // The cross-attention keys and values: rows [n] of the slot buffers, read in place when the
  // batch is every running row.
  const torch::Tensor index =
      plan->in_place ? torch::Tensor() : Indices(plan->slot_of_row, device_);
  auto take = [&](const torch::Tensor& buffer) {
    auto cut = buffer.narrow(2, 0, max_source);
    return plan->in_place ? cut.narrow(0, 0, n) : cut.index_select(0, index);
  };
  std::vector<KeysValues> memory;
  for (const KeysValues& kv : slots_->memory) memory.push_back({take(kv.keys), take(kv.values)});
  const auto source_mask = LengthMask(plan->source_lengths, max_source, device_);
  // The batch's tokens, read from and written back to the buffers by one flat index. Packed
  // (CPU): only each row's own tokens. Padded (other devices): every row cut to the longest.
  const bool packed = model_->CanDenoisePacked();
  const int64_t D = slots_->z.size(2), buffer_length = slots_->z.size(1);
  StepBatch& batch = plan->batch;
  std::vector<int64_t> buffer_token;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t p = 0; p < (packed ? plan->target_lengths[i] : max_length); ++p) {
      batch.token_row.push_back(i);
      batch.token_position.push_back(p);
      buffer_token.push_back(plan->slot_of_row[i] * buffer_length + p);
    }
    batch.offsets.push_back(static_cast<int64_t>(buffer_token.size()));
  }
  plan->flat = Indices(buffer_token, device_);
  const auto t = Indices(plan->timesteps, device_);
  plan->z = slots_->z.view({-1, D}).index_select(0, plan->flat);
  const auto self_cond = slots_->z0_hat.view({-1, D}).index_select(0, plan->flat);
  if (packed) {
    const FastDissModelImpl::PackedRows rows{batch.offsets, Indices(batch.token_row, device_),
                                             Indices(batch.token_position, device_)};
    plan->z0_hat = model_->DenoisePacked(plan->z, t, self_cond, rows, memory, source_mask);
  } else {
    plan->z0_hat = model_
                       ->DenoiseWithMemory(plan->z.view({n, max_length, D}), t,
                                           self_cond.view({n, max_length, D}),
                                           LengthMask(plan->target_lengths, max_length, device_),
                                           memory, source_mask)
                       .reshape({-1, D});
  }
}

void Sampler::UpdateEarlyExit(const StepPlan& plan) {
  // The rounding of the rows whose states ask for it, in one output projection.
  const std::vector<DecodeState*>& states = plan.states;
  std::vector<int64_t> exit_rows;
  for (size_t k = 0; k < states.size(); ++k) {
    if (states[k]->options_.early_exit_steps == 0) continue;
    for (int r = 0; r < states[k]->rows(); ++r) exit_rows.push_back(plan.BatchRow(k, r));
  }
  if (exit_rows.empty()) return;
  const Rounding rounded = plan.Round(model_, exit_rows, device_);
  for (size_t k = 0, row = 0; k < states.size(); ++k) {
    DecodeState& s = *states[k];
    if (s.options_.early_exit_steps == 0) continue;
    std::vector<int64_t> rounding;
    for (int r = 0; r < s.rows(); ++r, ++row) {
      rounding.insert(rounding.end(), rounded.Tokens(row), rounded.Tokens(row) + s.lengths_[r]);
    }
    s.unchanged_steps_ = rounding == s.rounded_ ? s.unchanged_steps_ + 1 : 0;
    s.rounded_ = std::move(rounding);
    s.exited_early_ = s.unchanged_steps_ >= s.options_.early_exit_steps;
  }
}

void Sampler::Clamp(StepPlan* plan) {
  // The tokens of the requests that clamp are rounded and embedded again, in one output
  // projection. When every request clamps (the server's default) that is the whole batch, read
  // and written without a gather. A finishing row is clamped too: its update is unused.
  plan->target = plan->z0_hat;
  const std::vector<DecodeState*>& states = plan->states;
  const auto clamps = [](const DecodeState* s) { return s->options_.clamp; };
  if (std::none_of(states.begin(), states.end(), clamps)) return;
  const bool all = std::all_of(states.begin(), states.end(), clamps);
  torch::Tensor index;  // the clamped tokens, when not all are
  if (!all) {
    std::vector<int64_t> tokens;
    for (size_t k = 0; k < states.size(); ++k) {
      if (!clamps(states[k])) continue;
      for (int r = 0; r < states[k]->rows(); ++r) {
        const int64_t row = plan->BatchRow(k, r);
        for (int64_t j = plan->batch.offsets[row]; j < plan->batch.offsets[row + 1]; ++j) {
          tokens.push_back(j);
        }
      }
    }
    index = Indices(tokens, device_);
  }
  const auto estimates = all ? plan->z0_hat : plan->z0_hat.index_select(0, index);
  // max's index, not argmax: the same token, and measured 2x faster on the CPU. In chunks of
  // tokens, so that the [tokens, V] logits stay small enough for the allocator to reuse (a
  // large batch's whole logits, 144 MB at 9,000 tokens x 4,000 pieces, were mapped afresh at
  // every step).
  constexpr int64_t kChunk = 512;
  std::vector<torch::Tensor> nearest;
  for (int64_t from = 0; from < estimates.size(0); from += kChunk) {
    const int64_t count = std::min(kChunk, estimates.size(0) - from);
    nearest.push_back(std::get<1>(model_->Logits(estimates.narrow(0, from, count)).max(-1)));
  }
  const auto clamped = model_->Embed(nearest.size() == 1 ? nearest[0] : torch::cat(nearest));
  plan->target = all ? clamped : plan->z0_hat.index_copy(0, index, clamped);
}

void Sampler::Advance(StepPlan* plan) const {
  // The update of every row that goes on, its noise drawn for all rows in one call.
  const std::vector<DecodeState*>& states = plan->states;
  const int64_t n = plan->n, max_length = plan->max_length, D = slots_->z.size(2);
  std::vector<StepCoefficients> row_step(
      n, StepCoefficients{1.0, 0.0, 0.0});  // finishing rows: z = z0_hat
  std::vector<NoiseKey> keys(n);
  bool any_noise = false;
  for (size_t k = 0; k < states.size(); ++k) {
    DecodeState& s = *states[k];
    const int from = s.schedule_[s.step_];
    ++s.step_;
    if (s.finished()) {
      plan->finishing.push_back(k);
      continue;
    }
    const StepCoefficients c = schedule_.Step(from, s.schedule_[s.step_], s.options_.rule);
    for (int r = 0; r < s.rows(); ++r) {
      const int64_t i = plan->BatchRow(k, r);
      row_step[i] = c;
      keys[i] = {s.options_.seed, NoiseStream(s.step_, r)};
    }
    any_noise = any_noise || c.noise_std > 0;
  }
  const StepBatch& batch = plan->batch;
  const int64_t N = static_cast<int64_t>(batch.token_row.size());
  std::vector<float> coefficients(3 * N);  // per token: mean_z0, mean_zt, noise_std
  std::vector<int64_t> noise_token(N);     // per token: its place in the [n, max_length] noise
  for (int64_t j = 0; j < N; ++j) {
    const StepCoefficients& c = row_step[batch.token_row[j]];
    coefficients[3 * j] = static_cast<float>(c.mean_z0);
    coefficients[3 * j + 1] = static_cast<float>(c.mean_zt);
    coefficients[3 * j + 2] = static_cast<float>(c.noise_std);
    noise_token[j] = batch.token_row[j] * max_length + batch.token_position[j];
  }
  const auto per_token = torch::tensor(coefficients, torch::kFloat32).view({N, 3}).to(device_);
  auto next = plan->target * per_token.narrow(1, 0, 1) + plan->z * per_token.narrow(1, 1, 1);
  if (any_noise) {
    auto noise = CounterNormal(keys, {max_length, D}, device_).reshape({-1, D});
    next.add_(noise.index_select(0, Indices(noise_token, device_)).mul_(per_token.narrow(1, 2, 1)));
  }
  slots_->z.view({-1, D}).index_copy_(0, plan->flat, next);
  slots_->z0_hat.view({-1, D}).index_copy_(0, plan->flat, plan->z0_hat);
}

void Sampler::Finish(const StepPlan& plan) {
  // The requests that finished: their rows rounded in one call, their slots freed.
  if (plan.finishing.empty()) return;
  std::vector<int64_t> rows;
  std::vector<DecodeState*> leaving;
  for (size_t k : plan.finishing) {
    for (int r = 0; r < plan.states[k]->rows(); ++r) rows.push_back(plan.BatchRow(k, r));
    leaving.push_back(plan.states[k]);
  }
  const Rounding rounding = plan.Round(model_, rows, device_);
  for (size_t f = 0, row = 0; f < leaving.size(); ++f) {
    leaving[f]->final_ = Best(*leaving[f], leaving[f]->lengths_, rounding, row);
    row += leaving[f]->rows();
  }
  // Only now: freeing slots moves other rows, and BatchRow reads their slots.
  slots_->Release(leaving);
}

absl::StatusOr<DecodeResult> Sampler::Result(const DecodeState& state) {
  if (state.steps_done() == 0) return absl::FailedPreconditionError("Result: no step taken yet");
  if (state.finished()) return state.final_;
  if (state.slots_owner_ != slots_)
    return absl::FailedPreconditionError("Result: the state runs in another sampler");
  DecodeResult result;
  absl::Status status = Guarded("rounding", [&] {
    c10::InferenceMode guard;
    const int64_t max_length = *std::max_element(state.lengths_.begin(), state.lengths_.end());
    std::vector<int64_t> slots(state.slots_.begin(), state.slots_.end()), offsets;
    for (int r = 0; r <= state.rows(); ++r) offsets.push_back(r * max_length);
    auto z0_hat = slots_->z0_hat.narrow(1, 0, max_length).index_select(0, Indices(slots, device_));
    result = Best(state, state.lengths_,
                  Round(model_, z0_hat.reshape({-1, z0_hat.size(2)}), offsets), 0);
  });
  if (!status.ok()) return status;
  return result;
}

absl::StatusOr<std::vector<DecodeResult>> Sampler::DecodeAll(
    const std::vector<std::vector<int>>& sources, const DecodeOptions& options, int max_rows) {
  const int rows_per_request = options.length_beam * options.noise_beam;
  const size_t per_batch = std::max(1, max_rows / std::max(1, rows_per_request));
  // Batches of similar source lengths pad less (measured: 256-row batches of dev sentences in
  // input order ran at half the speed of length-sorted ones). Request i keeps seed + i.
  std::vector<size_t> order(sources.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return sources[a].size() < sources[b].size(); });
  std::vector<DecodeResult> results(sources.size());
  for (size_t begin = 0; begin < order.size(); begin += per_batch) {
    std::vector<std::unique_ptr<DecodeState>> owned;
    std::vector<DecodeState*> batch;
    const size_t end = std::min(order.size(), begin + per_batch);
    for (size_t j = begin; j < end; ++j) {
      DecodeOptions request = options;
      request.seed = options.seed + order[j];
      FASTDISS_ASSIGN_OR_RETURN(auto state, NewState(sources[order[j]], request));
      batch.push_back(state.get());
      owned.push_back(std::move(state));
    }
    FASTDISS_RETURN_IF_ERROR(Start(batch));
    for (std::vector<DecodeState*> running = batch; !running.empty();) {
      FASTDISS_RETURN_IF_ERROR(Step(running));
      running.erase(std::remove_if(running.begin(), running.end(),
                                   [](DecodeState* s) { return s->finished(); }),
                    running.end());
    }
    for (size_t j = begin; j < end; ++j) {
      FASTDISS_ASSIGN_OR_RETURN(results[order[j]], Result(*batch[j - begin]));
    }
  }
  return results;
}

}  // namespace fastdiss
