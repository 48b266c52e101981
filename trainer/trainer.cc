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
  {
    std::string device_name = config_.train.device;
    if (device_name == "cuda" && comm_ != nullptr && comm_->launched()) {
      device_name = "cuda:" + std::to_string(comm_->local_rank());
    }
    FASTDISS_ASSIGN_OR_RETURN(device_, ResolveDevice(device_name));
    *log_ << "device: " << device_.str() << "\n";
  }
  torch::manual_seed(static_cast<uint64_t>(config_.train.seed));

  std::string trainer_state;
  if (!resume.empty()) {
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
    trainer_state = std::move(loaded.trainer_state);
    *log_ << "resuming from " << resume << "\n";
  } else if (!config_.train.init_from.empty()) {
    // Every rank reads the same files; only the weights and the tokenizer are taken.
    const std::string& from = config_.train.init_from;
    FASTDISS_ASSIGN_OR_RETURN(LoadedCheckpoint loaded, LoadCheckpoint(from));
    ModelConfig wanted = config_.model;
    wanted.vocab_size = loaded.config.vocab_size;
    wanted.pad_id = loaded.config.pad_id;
    ModelConfig found = loaded.config;
    found.source_units = wanted.source_units;
    found.source_lowercase = wanted.source_lowercase;
    found.dropout = wanted.dropout;
    if (!SameModelConfig(wanted, found)) {
      return absl::FailedPreconditionError("train.init_from '" + from +
                                           "' has another model shape than this run's model.*");
    }
    FASTDISS_RETURN_IF_ERROR(wanted.Validate());
    model_ = FastDissModel(wanted);
    {
      torch::NoGradGuard no_grad;
      auto source = loaded.model->named_parameters();
      for (auto& item : model_->named_parameters()) item.value().copy_(source[item.key()]);
    }
    tokenizer_ = std::move(loaded.tokenizer);
    *log_ << "starting from the weights of " << from << " (fresh optimizer, step 0)\n";
  } else {
    // Rank 0 trains it (or reads data.tokenizer); the others get its bytes (no shared filesystem
    // needed).
    std::string tokenizer_bytes;
    if (is_chief() && !config_.data.tokenizer.empty()) {
      *log_ << "tokenizer: " << config_.data.tokenizer << "\n";
      std::ifstream in(config_.data.tokenizer, std::ios::binary);
      if (!in)
        return absl::NotFoundError("data.tokenizer '" + config_.data.tokenizer +
                                   "' cannot be read");
      tokenizer_bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } else if (is_chief()) {
      SentencePieceTrainOptions spm;
      spm.input_files = config_.data.train_source;
      spm.input_files.insert(spm.input_files.end(), config_.data.train_target.begin(),
                             config_.data.train_target.end());
      spm.model_prefix = (fs::path(out) / "tokenizer").string();
      spm.vocab_size = static_cast<int>(config_.data.vocab_size);
      spm.model_type = config_.data.tokenizer_type;
      spm.input_sentence_size = static_cast<int>(config_.data.tokenizer_sentences);
      *log_ << "training the tokenizer (spm_train, vocab " << spm.vocab_size << ")\n";
      FASTDISS_RETURN_IF_ERROR(TrainSentencePiece(spm));
      std::ifstream in(spm.model_prefix + ".model", std::ios::binary);
      tokenizer_bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    if (comm_ != nullptr)
      FASTDISS_RETURN_IF_ERROR(comm_->BroadcastBytes(&tokenizer_bytes, "tokenizer"));
    FASTDISS_ASSIGN_OR_RETURN(tokenizer_, Tokenizer::FromSerializedProto(tokenizer_bytes));
    if (tokenizer_.pad_id() < 0)
      return absl::InternalError("the trained tokenizer has no pad piece");
    ModelConfig model_config = config_.model;
    model_config.vocab_size = tokenizer_.vocab_size();
    model_config.pad_id = tokenizer_.pad_id();
    FASTDISS_RETURN_IF_ERROR(model_config.Validate());
    model_ = FastDissModel(model_config);
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
  FASTDISS_ASSIGN_OR_RETURN(ParallelText dev,
                            ReadParallelText(config_.data.dev_source, config_.data.dev_target));
  size_t dev_count = dev.source.size();
  if (config_.eval.dev_sentences > 0)
    dev_count = std::min<size_t>(dev_count, config_.eval.dev_sentences);
  dev.source.resize(dev_count);
  dev.target.resize(dev_count);
  dev_examples_ = Tokenize(dev, tokenizer_, config_.model.source_rule(),
                           config_.model.max_source_tokens, config_.model.max_target_tokens)
                      .examples;
  dev_source_ = std::move(dev.source);
  dev_target_ = std::move(dev.target);

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

double Trainer::LearningRate(int64_t step) const {
  const double warmup = static_cast<double>(std::max<int64_t>(1, config_.train.warmup_steps));
  const double s = static_cast<double>(std::max<int64_t>(1, step));
  return config_.train.lr * std::min(s / warmup, std::sqrt(warmup / s));
}

absl::StatusOr<TrainSummary> Trainer::Run() {
  TrainSummary summary;
  const auto run_start = std::chrono::steady_clock::now();
  auto window_start = run_start;
  int64_t window_tokens = 0, window_steps = 0;
  double window_loss = 0, window_mse = 0, window_ce = 0, window_length = 0, window_shift = 0;
  torch::Tensor window_t_tokens, window_t_error;  // on the device, summed over the window
  const int64_t first_step = step_;
  const torch::Device device = device_;
  model_->train();
  bool stop = false, stop_requested = false;
  while (step_ < config_.train.max_steps && !stop) {
    if (batch_index_ >= static_cast<int64_t>(epoch_batches_.size())) {
      ++epoch_;
      batch_index_ = 0;
      epoch_batches_ =
          MakeEpochBatches(train_.examples, config_.train.max_tokens, config_.train.seed, epoch_);
    }
    // The global batch, and this rank's share of it.
    const std::vector<int>& global = epoch_batches_[batch_index_];
    std::vector<int> mine;
    std::vector<int64_t> rows;
    int64_t global_length = 0, global_tokens = 0;
    for (size_t p = 0; p < global.size(); ++p) {
      const int64_t length = static_cast<int64_t>(train_.examples[global[p]].target.size());
      global_length = std::max(global_length, length);
      global_tokens += length;
      if (static_cast<int>(p % world_size()) == rank()) {
        mine.push_back(global[p]);
        rows.push_back(static_cast<int64_t>(p));
      }
    }
    ++batch_index_;
    ++step_;
    for (auto& group : optimizer_->param_groups()) {
      static_cast<torch::optim::AdamOptions&>(group.options()).lr(LearningRate(step_));
    }
    LossParts loss;
    int64_t source_tokens = 0;
    try {
      // The RECORD_USER_SCOPE spans name a step's phases in `fastdiss-train --profile` traces
      // (scripts/profile-summary.py); they cost nothing when no profiler runs.
      RECORD_USER_SCOPE("fastdiss::step");
      optimizer_->zero_grad();
      if (!mine.empty()) {
        Batch batch;
        LossNoise noise;
        {
          RECORD_USER_SCOPE("fastdiss::batch");
          batch = Collate(train_.examples, mine, config_.model.pad_id, device);
          // Drawn for the whole batch from (seed, step), so no rank count changes a number.
          noise =
              LossNoise::Draw(static_cast<int64_t>(global.size()), global_length,
                              config_.model.d_latent, config_.objective, schedule_->num_timesteps(),
                              at::make_generator<at::CPUGeneratorImpl>(
                                  static_cast<uint64_t>(config_.train.seed) * 1000003u +
                                  static_cast<uint64_t>(step_)))
                  .Rows(torch::tensor(rows, torch::kLong), batch.target.size(1));
        }
        const LossScale scale{static_cast<double>(std::max<int64_t>(1, global_tokens)),
                              static_cast<double>(global.size())};
        {
          RECORD_USER_SCOPE("fastdiss::forward");
          loss = ComputeLoss(model_, *schedule_, config_.objective, batch, noise, scale);
        }
        {
          RECORD_USER_SCOPE("fastdiss::backward");
          loss.total.backward();
        }
        source_tokens = batch.source_mask.sum().item<int64_t>();
      }
      const double elapsed_minutes =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count() /
          60.0;
      const bool out_of_time =
          config_.train.max_minutes > 0 && elapsed_minutes >= config_.train.max_minutes;
      std::vector<torch::Tensor> grads;
      for (auto& p : model_->parameters()) {
        if (!p.mutable_grad().defined()) p.mutable_grad() = torch::zeros_like(p);
        grads.push_back(p.mutable_grad());
      }
      // This rank's shares of the numbers the log shows, summed with the gradients in one message.
      auto numbers = torch::tensor({loss.total.defined() ? loss.total.item<double>() : 0.0,
                                    loss.mse, loss.rounding, loss.length, loss.mans_shift,
                                    static_cast<double>(loss.target_tokens),
                                    static_cast<double>(source_tokens), out_of_time ? 1.0 : 0.0,
                                    stop_requested_.load(std::memory_order_relaxed) ? 1.0 : 0.0},
                                   torch::kFloat32)
                         .to(device);
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
      source_tokens = static_cast<int64_t>(std::llround(numbers[6].item<double>()));
      loss.total = numbers[0];
      if (numbers[8].item<double>() > 0) {  // any rank asked: all stop after this step
        stop = stop_requested = true;
        *log_ << "stop requested at step " << step_ << "; saving last/ without a dev evaluation\n";
      } else if (numbers[7].item<double>() > 0) {
        stop = true;
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
    const double total = loss.total.item<double>();
    if (!std::isfinite(total)) {
      return absl::InternalError("loss became " + std::to_string(total) + " at step " +
                                 std::to_string(step_) +
                                 "; lower train.lr or raise train.warmup_steps");
    }
    const int64_t tokens = source_tokens + loss.target_tokens;
    trained_tokens_ += tokens;
    window_tokens += tokens;
    ++window_steps;
    window_loss += total;
    window_mse += loss.mse;
    window_ce += loss.rounding;
    window_length += loss.length;
    window_shift += loss.mans_shift;
    if (loss.timestep_tokens.defined()) {
      window_t_tokens =
          window_t_tokens.defined() ? window_t_tokens + loss.timestep_tokens : loss.timestep_tokens;
      window_t_error = window_t_error.defined() ? window_t_error + loss.timestep_squared_error
                                                : loss.timestep_squared_error;
    }
    summary.last_loss = total;

    if (step_ % config_.train.log_every == 0 || step_ == config_.train.max_steps) {
      const auto now = std::chrono::steady_clock::now();
      const double seconds = std::chrono::duration<double>(now - window_start).count();
      const double tokens_per_second = seconds > 0 ? window_tokens / seconds : 0;
      const double run_seconds = std::chrono::duration<double>(now - run_start).count();
      double eta = (config_.train.max_steps - step_) * run_seconds /
                   std::max<int64_t>(1, step_ - first_step);
      // A run capped by train.max_minutes ends when its time is up, if that comes first.
      if (config_.train.max_minutes > 0)
        eta = std::min(eta, std::max(0.0, config_.train.max_minutes * 60 - run_seconds));
      const double n = static_cast<double>(window_steps);
      *log_ << "step " << step_ << "/" << config_.train.max_steps << " epoch " << epoch_ << " loss "
            << Format("%.4f", window_loss / n) << " (mse " << Format("%.4f", window_mse / n)
            << " ce " << Format("%.4f", window_ce / n) << " len "
            << Format("%.3f", window_length / n) << ") lr " << Format("%.2e", LearningRate(step_))
            << " " << Format("%.0f", tokens_per_second) << " tok/s ETA " << Duration(eta) << "\n"
            << std::flush;
      Json json = {{"event", "train"},
                   {"step", step_},
                   {"epoch", epoch_},
                   {"loss", window_loss / n},
                   {"mse", window_mse / n},
                   {"rounding_ce", window_ce / n},
                   {"length_ce", window_length / n},
                   {"mans_shift", window_shift / n},
                   {"lr", LearningRate(step_)},
                   {"tokens_per_second", tokens_per_second},
                   {"elapsed_seconds", run_seconds}};
      // Timesteps the trained pass visited, by tenths of [0, T): share of tokens, and their MSE.
      if (window_t_tokens.defined()) {
        const auto counts = window_t_tokens.to(torch::kCPU, torch::kDouble);
        const auto errors = window_t_error.to(torch::kCPU, torch::kDouble);
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
      summary.tokens_per_second = tokens_per_second;
      window_start = now;
      window_tokens = window_steps = 0;
      window_loss = window_mse = window_ce = window_length = window_shift = 0;
      window_t_tokens = window_t_error = torch::Tensor();
    }
    // Only rank 0 evaluates and writes; the others wait for it at the next all-reduce.
    // A stop request skips the evaluation: last/ is saved below, at once.
    if (step_ % config_.eval.every == 0 && is_chief() && !stop_requested) {
      FASTDISS_RETURN_IF_ERROR(EvaluateAndCheckpoint(total));
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

absl::Status Trainer::EvaluateAndCheckpoint(double loss) {
  // Left out of `fastdiss-train --profile` traces: they are about the training step, and a dev
  // evaluation records millions of operator events.
  at::RecordFunctionGuard no_profiling(false);
  model_->eval();
  Sampler sampler(model_, *schedule_, device_);
  DecodeOptions options;
  options.length_beam = static_cast<int>(config_.eval.length_beam);
  options.noise_beam = static_cast<int>(config_.eval.noise_beam);
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
