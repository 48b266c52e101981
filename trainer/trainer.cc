#include "trainer/trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iterator>
#include <regex>
#include <sstream>

#include "base/checkpoint_files.h"
#include "base/json.h"
#include "model/checkpoint.h"
#include "model/runtime.h"
#include "trainer/evaluate.h"
#include "trainer/objective.h"

namespace fastdiss {
namespace fs = std::filesystem;
namespace {

std::string Format(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), format, value);
  return buffer;
}

std::string Duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds);
  std::ostringstream out;
  if (s >= 3600) out << s / 3600 << "h";
  out << std::setw(s >= 3600 ? 2 : 1) << std::setfill('0') << (s % 3600) / 60 << "m" << std::setw(2)
      << std::setfill('0') << s % 60 << "s";
  return out.str();
}

bool SameModelConfig(ModelConfig a, ModelConfig b) {
  ConfigTree x, y;
  return WriteFields(a.Fields(), &x).ok() && WriteFields(b.Fields(), &y).ok() &&
         x.ToYaml() == y.ToYaml();
}

template <typename T>
T ReadScalar(torch::serialize::InputArchive& archive, const char* key) {
  torch::Tensor value;
  archive.read(key, value);
  return value.item<T>();
}

}  // namespace

Trainer::Trainer(TrainConfig config, std::ostream* log, Communicator* comm)
    : config_(std::move(config)),
      log_(comm == nullptr || comm->rank() == 0 ? log : &null_log_),
      comm_(comm) {}

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(TrainConfig config, std::ostream* log,
                                                         Communicator* comm) {
  FASTDISS_RETURN_IF_ERROR(config.Validate());
  std::unique_ptr<Trainer> trainer(new Trainer(std::move(config), log, comm));
  FASTDISS_RETURN_IF_ERROR(trainer->Initialize());
  return trainer;
}

absl::Status Trainer::Initialize() {
  FASTDISS_ASSIGN_OR_RETURN(const std::string resume, ChooseResume());
  FASTDISS_RETURN_IF_ERROR(ChooseDevice());
  torch::manual_seed(static_cast<uint64_t>(config_.train.seed));
  std::string trainer_state;
  if (!resume.empty()) {
    FASTDISS_RETURN_IF_ERROR(ResumeModel(resume, &trainer_state));
  } else if (!config_.train.init_from.empty()) {
    FASTDISS_RETURN_IF_ERROR(InitModelFrom(config_.train.init_from));
  } else {
    FASTDISS_RETURN_IF_ERROR(CreateModel());
  }
  model_->to(device_);
  // A fresh model: the same seed gives the same weights everywhere, but rank 0's are made the
  // truth (on the device, as NCCL needs).
  if (resume.empty() && comm_ != nullptr)
    FASTDISS_RETURN_IF_ERROR(comm_->Broadcast(model_->parameters()));
  config_.model = model_->config();
  model_->train();
  FASTDISS_ASSIGN_OR_RETURN(
      NoiseSchedule schedule,
      NoiseSchedule::Create({config_.model.num_timesteps, config_.model.noise_factor}));
  schedule_ = std::make_unique<NoiseSchedule>(std::move(schedule));
  optimizer_ = std::make_unique<torch::optim::Adam>(model_->parameters(),
                                                    torch::optim::AdamOptions(config_.train.lr)
                                                        .betas({0.9, 0.98})
                                                        .eps(1e-9)
                                                        .weight_decay(config_.train.weight_decay));
  FASTDISS_RETURN_IF_ERROR(ReadTrainData());
  FASTDISS_RETURN_IF_ERROR(ReadDevData());
  if (!trainer_state.empty()) FASTDISS_RETURN_IF_ERROR(RestoreState(trainer_state));
  epoch_batches_ =
      MakeEpochBatches(train_.examples, config_.train.max_tokens, config_.train.seed, epoch_);
  int64_t params = 0;
  for (const auto& p : model_->parameters()) params += p.numel();
  *log_ << "model: " << params << " parameters, vocab " << config_.model.vocab_size << "; "
        << train_.examples.size() << " training pairs in " << epoch_batches_.size()
        << " batches per epoch; objective scp=" << (config_.objective.scp ? "on" : "off")
        << " mans=" << (config_.objective.mans ? "on" : "off") << "\n";
  return absl::OkStatus();
}

absl::StatusOr<std::string> Trainer::ChooseResume() {
  const std::string out = config_.train.output_dir;
  std::error_code error;
  fs::create_directories(out, error);
  if (error)
    return absl::InvalidArgumentError("cannot create train.output_dir '" + out +
                                      "': " + error.message());
  // Rank 0 decides what to resume from, so that every rank loads the same checkpoint.
  std::string resume = config_.train.resume;
  if (resume == "auto")
    resume = fs::exists(fs::path(out) / "last") ? (fs::path(out) / "last").string() : "";
  if (comm_ != nullptr) FASTDISS_RETURN_IF_ERROR(comm_->BroadcastBytes(&resume, "resume"));
  if (comm_ != nullptr && comm_->launched()) {
    *log_ << "data-parallel over " << world_size() << " process" << (world_size() > 1 ? "es" : "")
          << " (torch.distributed, " << CommBackendName(comm_->backend()) << ")\n";
  }
  return resume;
}

absl::Status Trainer::ChooseDevice() {
  std::string device_name = config_.train.device;
  if (device_name == "cuda" && comm_ != nullptr && comm_->launched()) {
    device_name = "cuda:" + std::to_string(comm_->local_rank());
  }
  FASTDISS_ASSIGN_OR_RETURN(device_, ResolveDevice(device_name));
  *log_ << "device: " << device_.str() << "\n";
  return absl::OkStatus();
}

absl::Status Trainer::ResumeModel(const std::string& resume, std::string* trainer_state) {
  FASTDISS_ASSIGN_OR_RETURN(LoadedCheckpoint loaded, LoadCheckpoint(resume));
  if (loaded.trainer_state.empty()) {
    return absl::FailedPreconditionError("checkpoint '" + resume +
                                         "' has no trainer state to resume from");
  }
  ModelConfig expected = config_.model;
  expected.vocab_size = loaded.config.vocab_size;
  expected.pad_id = loaded.config.pad_id;
  if (!SameModelConfig(expected, loaded.config)) {
    return absl::FailedPreconditionError(
        "checkpoint '" + resume +
        "' was trained with another model config than this run's model.*");
  }
  tokenizer_ = std::move(loaded.tokenizer);
  model_ = loaded.model;
  *trainer_state = std::move(loaded.trainer_state);
  *log_ << "resuming from " << resume << "\n";
  return absl::OkStatus();
}

absl::Status Trainer::InitModelFrom(const std::string& from) {
  // Every rank reads the same files; only the weights and the tokenizer are taken.
  FASTDISS_ASSIGN_OR_RETURN(LoadedCheckpoint loaded, LoadCheckpoint(from));
  ModelConfig wanted = config_.model;
  wanted.vocab_size = loaded.config.vocab_size;
  wanted.pad_id = loaded.config.pad_id;
  ModelConfig found = loaded.config;
  found.source_units = wanted.source_units;
  found.source_lowercase = wanted.source_lowercase;
  found.dropout = wanted.dropout;
  if (found.learned_logit_scale && !wanted.learned_logit_scale) {
    *log_ << "train.init_from: its learned logit scale is dropped (model.learned_logit_scale is "
             "off)\n";
  }
  found.learned_logit_scale = wanted.learned_logit_scale;  // a new scale starts at 1
  if (!SameModelConfig(wanted, found)) {
    return absl::FailedPreconditionError("train.init_from '" + from +
                                         "' has another model shape than this run's model.*");
  }
  FASTDISS_RETURN_IF_ERROR(wanted.Validate());
  model_ = FastDissModel(wanted);
  {
    torch::NoGradGuard no_grad;
    auto source = loaded.model->named_parameters();
    for (auto& item : model_->named_parameters()) {
      // Same shape checked above: only a logit scale the source lacks keeps its initial value.
      if (const torch::Tensor* from_source = source.find(item.key())) {
        item.value().copy_(*from_source);
      }
    }
  }
  tokenizer_ = std::move(loaded.tokenizer);
  *log_ << "starting from the weights of " << from << " (fresh optimizer, step 0)\n";
  return absl::OkStatus();
}

absl::Status Trainer::CreateModel() {
  // Rank 0 trains the tokenizer (or reads data.tokenizer); the others get its bytes (no shared
  // filesystem needed).
  std::string tokenizer_bytes;
  if (is_chief()) {
    FASTDISS_ASSIGN_OR_RETURN(tokenizer_bytes, ReadOrTrainTokenizer());
  }
  if (comm_ != nullptr)
    FASTDISS_RETURN_IF_ERROR(comm_->BroadcastBytes(&tokenizer_bytes, "tokenizer"));
  FASTDISS_ASSIGN_OR_RETURN(tokenizer_, Tokenizer::FromSerializedProto(tokenizer_bytes));
  if (tokenizer_.pad_id() < 0) return absl::InternalError("the trained tokenizer has no pad piece");
  ModelConfig model_config = config_.model;
  model_config.vocab_size = tokenizer_.vocab_size();
  model_config.pad_id = tokenizer_.pad_id();
  FASTDISS_RETURN_IF_ERROR(model_config.Validate());
  model_ = FastDissModel(model_config);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Trainer::ReadOrTrainTokenizer() {
  std::string model_path = config_.data.tokenizer;
  if (!model_path.empty()) {
    *log_ << "tokenizer: " << model_path << "\n";
  } else {
    SentencePieceTrainOptions spm;
    spm.input_files = config_.data.train_source;
    spm.input_files.insert(spm.input_files.end(), config_.data.train_target.begin(),
                           config_.data.train_target.end());
    spm.model_prefix = (fs::path(config_.train.output_dir) / "tokenizer").string();
    spm.vocab_size = static_cast<int>(config_.data.vocab_size);
    spm.model_type = config_.data.tokenizer_type;
    spm.input_sentence_size = static_cast<int>(config_.data.tokenizer_sentences);
    *log_ << "training the tokenizer (spm_train, vocab " << spm.vocab_size << ")\n";
    FASTDISS_RETURN_IF_ERROR(TrainSentencePiece(spm));
    model_path = spm.model_prefix + ".model";
  }
  std::ifstream in(model_path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        (config_.data.tokenizer.empty() ? "the trained tokenizer '" : "data.tokenizer '") +
        model_path + "' cannot be read");
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

absl::Status Trainer::ReadTrainData() {
  for (size_t i = 0; i < config_.data.train_source.size(); ++i) {
    FASTDISS_ASSIGN_OR_RETURN(ParallelText text, ReadParallelText(config_.data.train_source[i],
                                                                  config_.data.train_target[i]));
    TokenizedData part = Tokenize(text, tokenizer_, config_.model.source_rule(),
                                  config_.model.max_source_tokens, config_.model.max_target_tokens);
    *log_ << "train data " << config_.data.train_source[i] << ": " << part.examples.size()
          << " pairs (skipped " << part.skipped_too_long << " too long, " << part.skipped_empty
          << " empty)\n";
    train_.skipped_too_long += part.skipped_too_long;
    train_.skipped_empty += part.skipped_empty;
    std::move(part.examples.begin(), part.examples.end(), std::back_inserter(train_.examples));
  }
  if (train_.examples.empty()) return absl::InvalidArgumentError("no usable training pairs");
  return absl::OkStatus();
}

absl::Status Trainer::ReadDevData() {
  FASTDISS_ASSIGN_OR_RETURN(ParallelText dev,
                            ReadParallelText(config_.data.dev_source, config_.data.dev_target));
  if (config_.eval.dev_sentences > 0)
    dev.KeepFirst(static_cast<size_t>(config_.eval.dev_sentences));
  dev_examples_ = Tokenize(dev, tokenizer_, config_.model.source_rule(),
                           config_.model.max_source_tokens, config_.model.max_target_tokens)
                      .examples;
  dev_source_ = std::move(dev.source);
  dev_target_ = std::move(dev.target);
  return absl::OkStatus();
}

double Trainer::LearningRate(int64_t step) const {
  const double warmup = static_cast<double>(std::max<int64_t>(1, config_.train.warmup_steps));
  const double s = static_cast<double>(std::max<int64_t>(1, step));
  return config_.train.lr * std::min(s / warmup, std::sqrt(warmup / s));
}

// The global batch of one step, and this rank's share of it.
struct Trainer::StepBatch {
  int64_t global_rows = 0;
  int64_t global_length = 0;  // the longest target
  int64_t global_tokens = 0;  // target tokens
  std::vector<int> mine;      // this rank's examples
  std::vector<int64_t> rows;  // their rows in the global batch
};

// One step's numbers, summed over the ranks.
struct Trainer::StepTotals {
  LossParts loss;
  double total = 0;  // loss.total, on the host
  int64_t source_tokens = 0;
  bool stop_requested = false;  // on any rank
  bool out_of_time = false;     // train.max_minutes reached, on any rank
};

// The sums behind one progress line: the steps since the last one.
struct Trainer::ProgressWindow {
  Clock::time_point start;
  int64_t tokens = 0, steps = 0;
  double loss = 0, mse = 0, ce = 0, length = 0, shift = 0;
  torch::Tensor t_tokens, t_error;  // on the device, by timestep bin

  void Add(const StepTotals& step) {
    tokens += step.source_tokens + step.loss.target_tokens;
    ++steps;
    loss += step.total;
    mse += step.loss.mse;
    ce += step.loss.rounding;
    length += step.loss.length;
    shift += step.loss.mans_shift;
    if (step.loss.timestep_tokens.defined()) {
      t_tokens =
          t_tokens.defined() ? t_tokens + step.loss.timestep_tokens : step.loss.timestep_tokens;
      t_error = t_error.defined() ? t_error + step.loss.timestep_squared_error
                                  : step.loss.timestep_squared_error;
    }
  }
};

absl::StatusOr<TrainSummary> Trainer::Run() {
  TrainSummary summary;
  const Clock::time_point run_start = Clock::now();
  const int64_t first_step = step_;
  ProgressWindow window{run_start};
  model_->train();
  bool stop = false, stop_requested = false;
  while (step_ < config_.train.max_steps && !stop) {
    const StepBatch batch = NextBatch();
    ++step_;
    FASTDISS_ASSIGN_OR_RETURN(const StepTotals totals, TrainStep(batch, run_start));
    stop_requested = totals.stop_requested;  // any rank asked: all stop after this step
    stop = totals.stop_requested || totals.out_of_time;
    trained_tokens_ += totals.source_tokens + totals.loss.target_tokens;
    window.Add(totals);
    summary.last_loss = totals.total;
    if (step_ % config_.train.log_every == 0 || step_ == config_.train.max_steps) {
      summary.tokens_per_second = ReportProgress(run_start, first_step, &window);
    }
    // Only rank 0 evaluates and writes; the others wait for it at the next all-reduce.
    // A stop request skips the evaluation: last/ is saved below, at once.
    if (step_ % config_.eval.every == 0 && is_chief() && !stop_requested) {
      FASTDISS_RETURN_IF_ERROR(EvaluateAndCheckpoint(totals.total));
    }
  }
  if (stop_requested) {
    if (is_chief())
      FASTDISS_RETURN_IF_ERROR(SaveTo((fs::path(config_.train.output_dir) / "last").string(), {}));
    summary.stopped = true;
  } else if ((step_ % config_.eval.every != 0 || step_ == first_step) && is_chief()) {
    FASTDISS_RETURN_IF_ERROR(EvaluateAndCheckpoint(summary.last_loss));
  }
  summary.step = step_;
  summary.best_bleu = best_bleu_;
  return summary;
}

Trainer::StepBatch Trainer::NextBatch() {
  if (batch_index_ >= static_cast<int64_t>(epoch_batches_.size())) {
    ++epoch_;
    batch_index_ = 0;
    epoch_batches_ =
        MakeEpochBatches(train_.examples, config_.train.max_tokens, config_.train.seed, epoch_);
  }
  const std::vector<int>& global = epoch_batches_[batch_index_++];
  StepBatch batch;
  batch.global_rows = static_cast<int64_t>(global.size());
  for (size_t p = 0; p < global.size(); ++p) {
    const int64_t length = static_cast<int64_t>(train_.examples[global[p]].target.size());
    batch.global_length = std::max(batch.global_length, length);
    batch.global_tokens += length;
    if (static_cast<int>(p % world_size()) == rank()) {
      batch.mine.push_back(global[p]);
      batch.rows.push_back(static_cast<int64_t>(p));
    }
  }
  return batch;
}

absl::StatusOr<Trainer::StepTotals> Trainer::TrainStep(const StepBatch& batch,
                                                       Clock::time_point run_start) {
  for (auto& group : optimizer_->param_groups()) {
    static_cast<torch::optim::AdamOptions&>(group.options()).lr(LearningRate(step_));
  }
  StepTotals totals;
  try {
    // The RECORD_USER_SCOPE spans name a step's phases in `fastdiss-train --profile` traces
    // (scripts/profile-summary.py); they cost nothing when no profiler runs.
    RECORD_USER_SCOPE("fastdiss::step");
    optimizer_->zero_grad();
    if (!batch.mine.empty()) ForwardBackward(batch, &totals);
    const double elapsed_minutes =
        std::chrono::duration<double>(Clock::now() - run_start).count() / 60.0;
    totals.out_of_time =
        config_.train.max_minutes > 0 && elapsed_minutes >= config_.train.max_minutes;
    FASTDISS_RETURN_IF_ERROR(SumOverRanks(&totals));
    if (totals.stop_requested) {
      *log_ << "stop requested at step " << step_ << "; saving last/ without a dev evaluation\n";
    } else if (totals.out_of_time) {
      *log_ << "train.max_minutes (" << config_.train.max_minutes << ") reached at step " << step_
            << "\n";
    }
    {
      RECORD_USER_SCOPE("fastdiss::optimizer");
      if (config_.train.clip_norm > 0) {
        torch::nn::utils::clip_grad_norm_(model_->parameters(), config_.train.clip_norm);
      }
      optimizer_->step();
    }
  } catch (const std::exception& e) {
    return absl::InternalError("training step " + std::to_string(step_) + " failed: " + e.what());
  }
  totals.total = totals.loss.total.item<double>();
  if (!std::isfinite(totals.total)) {
    return absl::InternalError("loss became " + std::to_string(totals.total) + " at step " +
                               std::to_string(step_) +
                               "; lower train.lr or raise train.warmup_steps");
  }
  return totals;
}

void Trainer::ForwardBackward(const StepBatch& step, StepTotals* totals) {
  Batch batch;
  LossNoise noise;
  {
    RECORD_USER_SCOPE("fastdiss::batch");
    batch = Collate(train_.examples, step.mine, config_.model.pad_id, device_);
    // Drawn for the whole batch from (seed, step), so no rank count changes a number.
    noise = LossNoise::Draw(step.global_rows, step.global_length, config_.model.d_latent,
                            config_.objective, schedule_->num_timesteps(),
                            at::make_generator<at::CPUGeneratorImpl>(
                                static_cast<uint64_t>(config_.train.seed) * 1000003u +
                                static_cast<uint64_t>(step_)))
                .Rows(torch::tensor(step.rows, torch::kLong), batch.target.size(1));
  }
  const LossScale scale{static_cast<double>(std::max<int64_t>(1, step.global_tokens)),
                        static_cast<double>(step.global_rows)};
  {
    RECORD_USER_SCOPE("fastdiss::forward");
    totals->loss = ComputeLoss(model_, *schedule_, config_.objective, batch, noise, scale);
  }
  {
    RECORD_USER_SCOPE("fastdiss::backward");
    totals->loss.total.backward();
  }
  totals->source_tokens = batch.source_mask.sum().item<int64_t>();
}

absl::Status Trainer::SumOverRanks(StepTotals* totals) {
  std::vector<torch::Tensor> grads;
  for (auto& p : model_->parameters()) {
    if (!p.mutable_grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.mutable_grad());
  }
  // This rank's shares of the numbers the log shows, summed with the gradients in one message.
  LossParts& loss = totals->loss;
  auto numbers =
      torch::tensor(
          {loss.total.defined() ? loss.total.item<double>() : 0.0, loss.mse, loss.rounding,
           loss.length, loss.mans_shift, static_cast<double>(loss.target_tokens),
           static_cast<double>(totals->source_tokens), totals->out_of_time ? 1.0 : 0.0,
           stop_requested_.load(std::memory_order_relaxed) ? 1.0 : 0.0},
          torch::kFloat32)
          .to(device_);
  grads.push_back(numbers);
  if (comm_ != nullptr) {
    RECORD_USER_SCOPE("fastdiss::all_reduce");
    FASTDISS_RETURN_IF_ERROR(comm_->AllReduceSum(grads));
  }
  numbers = numbers.to(torch::kCPU);
  loss.mse = numbers[1].item<double>();
  loss.rounding = numbers[2].item<double>();
  loss.length = numbers[3].item<double>();
  loss.mans_shift = numbers[4].item<double>();
  loss.target_tokens = static_cast<int64_t>(std::llround(numbers[5].item<double>()));
  totals->source_tokens = static_cast<int64_t>(std::llround(numbers[6].item<double>()));
  loss.total = numbers[0];
  totals->out_of_time = numbers[7].item<double>() > 0;
  totals->stop_requested = numbers[8].item<double>() > 0;
  return absl::OkStatus();
}

double Trainer::ReportProgress(Clock::time_point run_start, int64_t first_step,
                               ProgressWindow* window) {
  const ProgressWindow& w = *window;
  const auto now = Clock::now();
  const double seconds = std::chrono::duration<double>(now - w.start).count();
  const double tokens_per_second = seconds > 0 ? w.tokens / seconds : 0;
  const double run_seconds = std::chrono::duration<double>(now - run_start).count();
  double eta =
      (config_.train.max_steps - step_) * run_seconds / std::max<int64_t>(1, step_ - first_step);
  // A run capped by train.max_minutes ends when its time is up, if that comes first.
  if (config_.train.max_minutes > 0)
    eta = std::min(eta, std::max(0.0, config_.train.max_minutes * 60 - run_seconds));
  const double n = static_cast<double>(w.steps);
  *log_ << "step " << step_ << "/" << config_.train.max_steps << " epoch " << epoch_ << " loss "
        << Format("%.4f", w.loss / n) << " (mse " << Format("%.4f", w.mse / n) << " ce "
        << Format("%.4f", w.ce / n) << " len " << Format("%.3f", w.length / n) << ") lr "
        << Format("%.2e", LearningRate(step_)) << " " << Format("%.0f", tokens_per_second)
        << " tok/s ETA " << Duration(eta) << "\n"
        << std::flush;
  Json json = {{"event", "train"},
               {"step", step_},
               {"epoch", epoch_},
               {"loss", w.loss / n},
               {"mse", w.mse / n},
               {"rounding_ce", w.ce / n},
               {"length_ce", w.length / n},
               {"mans_shift", w.shift / n},
               {"lr", LearningRate(step_)},
               {"tokens_per_second", tokens_per_second},
               {"elapsed_seconds", run_seconds}};
  // Timesteps the trained pass visited, by tenths of [0, T): share of tokens, and their MSE.
  if (w.t_tokens.defined()) {
    const auto counts = w.t_tokens.to(torch::kCPU, torch::kDouble);
    const auto errors = w.t_error.to(torch::kCPU, torch::kDouble);
    const double all = std::max(1.0, counts.sum().item<double>());
    json["t_share"] = Json::array();
    json["t_mse"] = Json::array();
    for (int64_t b = 0; b < kTimestepBins; ++b) {
      const double c = counts[b].item<double>();
      json["t_share"].push_back(c / all);
      json["t_mse"].push_back(c > 0 ? Json(errors[b].item<double>() / c) : Json(nullptr));
    }
  }
  AppendMetrics(JsonText(json));
  *window = ProgressWindow{now};
  return tokens_per_second;
}

absl::Status Trainer::EvaluateAndCheckpoint(double loss) {
  // Left out of `fastdiss-train --profile` traces: they are about the training step, and a dev
  // evaluation records millions of operator events.
  at::RecordFunctionGuard no_profiling(false);
  model_->eval();
  Sampler sampler(model_, *schedule_, device_);
  DecodeOptions options;
  options.length_beam = static_cast<int>(config_.eval.length_beam);
  options.noise_beam = static_cast<int>(config_.eval.noise_beam);
  options.clamp = config_.eval.clamp;
  options.seed = static_cast<uint64_t>(config_.train.seed);
  auto evaluation = EvaluateSteps(sampler, tokenizer_, dev_source_, dev_target_, config_.eval.steps,
                                  options, static_cast<int>(config_.eval.max_rows));
  model_->train();
  if (!evaluation.ok()) return evaluation.status();
  std::vector<std::pair<int64_t, double>> bleu;
  double selected = -1;
  Json json = {{"event", "eval"}, {"step", step_}, {"loss", loss}, {"results", Json::array()}};
  *log_ << "eval step " << step_ << " dev BLEU:";
  for (const StepsEvaluation& e : *evaluation) {
    bleu.push_back({e.steps, e.bleu.score});
    if (e.steps == config_.eval.select_steps) selected = e.bleu.score;
    *log_ << " K=" << e.steps << " " << Format("%.2f", e.bleu.score);
    json["results"].push_back({{"steps", e.steps},
                               {"bleu", e.bleu.score},
                               {"per", e.phoneme_error_rate},
                               {"wer", e.word_error_rate},
                               {"sentences_per_second", e.sentences_per_second}});
  }
  json["signature"] = evaluation->front().bleu.signature;
  *log_ << " (" << dev_source_.size() << " sentences)\n" << std::flush;
  AppendMetrics(JsonText(json));

  const fs::path out(config_.train.output_dir);
  const bool is_best = selected > best_bleu_;
  if (is_best) best_bleu_ = selected;
  // The state saved below is what resuming needs, best_bleu_ included.
  FASTDISS_RETURN_IF_ERROR(SaveTo((out / "last").string(), bleu));
  if (is_best) FASTDISS_RETURN_IF_ERROR(SaveTo((out / "best").string(), bleu));
  if (config_.eval.keep_last > 0) {
    FASTDISS_RETURN_IF_ERROR(SaveTo((out / ("step-" + std::to_string(step_))).string(), bleu));
    // Keep the newest keep_last step-N/ up to this step; those beyond it are from an abandoned
    // continuation (this run resumed from an earlier checkpoint) and go too.
    std::vector<std::pair<int64_t, fs::path>> periodic;
    const std::regex pattern("step-([0-9]{1,18})");
    std::error_code error;
    for (fs::directory_iterator it(out, error), end; !error && it != end; it.increment(error)) {
      std::smatch match;
      const std::string name = it->path().filename().string();
      if (it->is_directory() && std::regex_match(name, match, pattern)) {
        periodic.push_back({std::stoll(match[1]), it->path()});
      }
    }
    std::sort(periodic.begin(), periodic.end());
    std::vector<fs::path> remove;
    size_t kept = 0;
    for (auto it = periodic.rbegin(); it != periodic.rend(); ++it) {
      if (it->first > step_ || kept >= static_cast<size_t>(config_.eval.keep_last)) {
        remove.push_back(it->second);
      } else {
        ++kept;
      }
    }
    for (const fs::path& path : remove) {
      if (absl::Status removed = RemoveCheckpointDir(path.string()); !removed.ok())
        *log_ << "warning: " << removed << "\n";
    }
  }
  return absl::OkStatus();
}

absl::Status Trainer::SaveTo(const std::string& dir,
                             const std::vector<std::pair<int64_t, double>>& bleu) {
  ConfigTree metadata;
  FASTDISS_RETURN_IF_ERROR(WriteFields(config_.Fields(), &metadata));
  FASTDISS_RETURN_IF_ERROR(metadata.Put("checkpoint.step", step_));
  FASTDISS_RETURN_IF_ERROR(metadata.Put("checkpoint.code_version", CodeVersion()));
  FASTDISS_RETURN_IF_ERROR(
      metadata.Put("checkpoint.dev_sentences", static_cast<int64_t>(dev_source_.size())));
  for (const auto& [steps, score] : bleu) {
    FASTDISS_RETURN_IF_ERROR(metadata.Put("checkpoint.dev_bleu_k" + std::to_string(steps), score));
  }
  FASTDISS_RETURN_IF_ERROR(metadata.Put("checkpoint.best_dev_bleu", best_bleu_));
  SaveCheckpointOptions options;
  try {
    options.trainer_state = SerializeState();
  } catch (const std::exception& e) {
    return absl::InternalError(std::string("serializing the trainer state failed: ") + e.what());
  }
  return SaveCheckpoint(dir, model_, tokenizer_, metadata, options);
}

std::string Trainer::SerializeState() const {
  torch::serialize::OutputArchive archive;
  archive.write("step", torch::tensor(step_));
  archive.write("epoch", torch::tensor(epoch_));
  archive.write("batch_index", torch::tensor(batch_index_));
  archive.write("trained_tokens", torch::tensor(trained_tokens_));
  archive.write("best_bleu", torch::tensor(best_bleu_, torch::kFloat64));
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  archive.write("rng_state", generator.get_state());
  if (device_.is_cuda()) {
    at::Generator cuda = at::globalContext().defaultGenerator(device_);
    archive.write("cuda_rng_state", cuda.get_state());
  }
  torch::serialize::OutputArchive optimizer;
  optimizer_->save(optimizer);
  archive.write("optimizer", optimizer);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

absl::Status Trainer::RestoreState(const std::string& bytes) {
  try {
    torch::serialize::InputArchive archive;
    std::istringstream in(bytes);
    archive.load_from(in, device_);  // the optimizer state onto the model's device
    step_ = ReadScalar<int64_t>(archive, "step");
    epoch_ = ReadScalar<int64_t>(archive, "epoch");
    batch_index_ = ReadScalar<int64_t>(archive, "batch_index");
    trained_tokens_ = ReadScalar<int64_t>(archive, "trained_tokens");
    best_bleu_ = ReadScalar<double>(archive, "best_bleu");
    torch::Tensor rng;
    archive.read("rng_state", rng);
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    generator.set_state(rng.to(torch::kCPU));
    torch::Tensor cuda_rng;
    if (device_.is_cuda() && archive.try_read("cuda_rng_state", cuda_rng)) {
      at::Generator cuda = at::globalContext().defaultGenerator(device_);
      cuda.set_state(cuda_rng.to(torch::kCPU));
    }
    torch::serialize::InputArchive optimizer;
    archive.read("optimizer", optimizer);
    optimizer_->load(optimizer);
  } catch (const std::exception& e) {
    return absl::DataLossError(std::string("the checkpoint's trainer state is unreadable: ") +
                               e.what());
  }
  return absl::OkStatus();
}

void Trainer::AppendMetrics(const std::string& json_line) {
  if (!is_chief()) return;
  std::ofstream out(fs::path(config_.train.output_dir) / "metrics.jsonl", std::ios::app);
  out << json_line << "\n";
}

}  // namespace fastdiss
