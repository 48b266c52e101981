#include "server/generator_service.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

#include "absl/random/random.h"
#include "absl/time/clock.h"
#include "base/utf8.h"
#include "server/raw_request.h"

namespace fastdiss {
namespace {

using fastdiss::v1::GenerateEvent;
using fastdiss::v1::GenerateRequest;
using fastdiss::v1::GenerateResponse;

// The one conversion to a gRPC status (absl and gRPC share the code numbers).
grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

uint64_t RandomSeed() {
  thread_local absl::BitGen gen;
  return absl::Uniform<uint64_t>(gen);
}

void FillResponse(const ServedModel& model, const GenerateTask& task,
                  const GenerateOutcome& outcome, absl::Time arrival, GenerateResponse* response) {
  response->set_text(model.tokenizer().Decode(outcome.result.tokens));
  response->mutable_token_ids()->Assign(outcome.result.tokens.begin(), outcome.result.tokens.end());
  response->set_score(outcome.result.score);
  response->set_steps(outcome.result.steps);
  response->set_planned_steps(task.planned_steps);
  response->set_seed(task.options.seed);
  response->set_model(model.info().name);
  response->set_model_version(model.info().version);
  fastdiss::v1::Timing* timing = response->mutable_timing();
  timing->set_queue_seconds(absl::ToDoubleSeconds(outcome.queue_time));
  timing->set_compute_seconds(absl::ToDoubleSeconds(outcome.compute_time));
  timing->set_total_seconds(absl::ToDoubleSeconds(absl::Now() - arrival));
}

// Shared by both call kinds: the model, engine handle and accounting of one call.
class CallState {
 public:
  CallState(GeneratorService* service, absl::Time arrival) : service_(service), arrival_(arrival) {}

  void Bind(std::shared_ptr<ServedModel> model) { model_ = std::move(model); }
  ServedModel* model() const { return model_.get(); }
  absl::Time arrival() const { return arrival_; }
  std::string ModelLabel() const {
    return model_ != nullptr ? model_->info().name : ServerMetrics::kUnknownModel;
  }

  absl::Status Schedule(std::unique_ptr<GenerateTask>* task) {
    return model_->engine().Schedule(task, &id_);
  }
  // Safe to call at any time after Bind, also after the task was answered (then a no-op).
  void Cancel() {
    if (model_ != nullptr && id_ != 0) model_->engine().Cancel(id_);
  }
  void Record(const absl::Status& status) {
    service_->metrics()->RecordRequest(ModelLabel(), status.code(), absl::Now() - arrival_);
  }
  // A request answered: its queue time, the steps early exit saved it and those load adaptation
  // gave up.
  void RecordAnswer(const GenerateTask& task, const GenerateOutcome& outcome) {
    service_->metrics()->RecordQueueTime(ModelLabel(), outcome.queue_time);
    if (outcome.result.steps < task.planned_steps) {
      service_->metrics()->RecordStepsSaved(ModelLabel(),
                                            task.planned_steps - outcome.result.steps);
    }
    if (task.planned_steps < task.options.steps) {
      service_->metrics()->RecordAdaptiveStepsGivenUp(ModelLabel(),
                                                      task.options.steps - task.planned_steps);
    }
  }

 private:
  GeneratorService* const service_;
  const absl::Time arrival_;
  std::shared_ptr<ServedModel> model_;  // the version this call runs on, alive until the call ends
  uint64_t id_ = 0;                     // 0 names no task
};

class GenerateReactor final : public grpc::ServerUnaryReactor {
 public:
  GenerateReactor(GeneratorService* service, absl::Time arrival) : call_(service, arrival) {}

  void Begin(GeneratorService* service, const absl::Status& alive, absl::Time deadline,
             const grpc::ByteBuffer& bytes, grpc::ByteBuffer* response) {
    if (!alive.ok()) return FinishWith(alive);
    GenerateRequest request;
    if (absl::Status parsed = ParseGenerateRequest(bytes, &request); !parsed.ok())
      return FinishWith(parsed);
    std::shared_ptr<ServedModel> resolved;
    absl::StatusOr<PreparedRequest> prepared = service->Prepare(request, deadline, &resolved);
    call_.Bind(std::move(resolved));
    if (!prepared.ok()) return FinishWith(prepared.status());
    GenerateTask* task = prepared->task.get();
    // The engine calls this exactly once; after Finish the reactor may be gone, so nothing follows
    // it.
    task->on_done = [this, task, response](absl::StatusOr<GenerateOutcome> outcome) {
      absl::Status status = outcome.status();
      if (outcome.ok()) {
        GenerateResponse answer;
        FillResponse(*call_.model(), *task, *outcome, call_.arrival(), &answer);
        call_.RecordAnswer(*task, *outcome);
        status = SerializeToByteBuffer(answer, response);
      }
      FinishWith(status);
    };
    if (absl::Status scheduled = call_.Schedule(&prepared->task); !scheduled.ok())
      FinishWith(scheduled);
  }

  void OnCancel() override { call_.Cancel(); }
  void OnDone() override { delete this; }

 private:
  void FinishWith(const absl::Status& status) {
    call_.Record(status);
    Finish(ToGrpcStatus(status));
  }

  CallState call_;
};

class StreamReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  StreamReactor(GeneratorService* service, absl::Time arrival) : call_(service, arrival) {}

  void Begin(GeneratorService* service, const absl::Status& alive, absl::Time deadline,
             const grpc::ByteBuffer& bytes) {
    if (!alive.ok()) return PushFinal(alive, std::nullopt);
    GenerateRequest request;
    if (absl::Status parsed = ParseGenerateRequest(bytes, &request); !parsed.ok()) {
      return PushFinal(parsed, std::nullopt);
    }
    std::shared_ptr<ServedModel> resolved;
    absl::StatusOr<PreparedRequest> prepared = service->Prepare(request, deadline, &resolved);
    call_.Bind(std::move(resolved));
    if (!prepared.ok()) return PushFinal(prepared.status(), std::nullopt);
    GenerateTask* task = prepared->task.get();
    task->on_step = [this, task](const DecodeResult& current) {
      GenerateEvent event;
      fastdiss::v1::StepUpdate* update = event.mutable_step();
      update->set_step(current.steps);
      update->set_steps(task->planned_steps);
      update->set_text(call_.model()->tokenizer().Decode(current.tokens));
      PushStep(std::move(event));
    };
    task->on_done = [this, task](absl::StatusOr<GenerateOutcome> outcome) {
      if (!outcome.ok()) return PushFinal(outcome.status(), std::nullopt);
      GenerateEvent event;
      FillResponse(*call_.model(), *task, *outcome, call_.arrival(), event.mutable_result());
      call_.RecordAnswer(*task, *outcome);
      PushFinal(absl::OkStatus(), std::move(event));
    };
    if (absl::Status scheduled = call_.Schedule(&prepared->task); !scheduled.ok()) {
      PushFinal(scheduled, std::nullopt);
    }
  }

  void OnWriteDone(bool ok) override {
    if (!ok) call_.Cancel();  // the client is gone; the engine answers CANCELLED at its next step
    Action action;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      action = DecideLocked();
    }
    Perform(action);
  }
  void OnCancel() override { call_.Cancel(); }
  void OnDone() override { delete this; }

 private:
  enum class Next { kNothing, kStep, kFinalEvent, kFinishOnly };
  struct Action {
    Next next = Next::kNothing;
    grpc::Status status;
  };

  void PushStep(GenerateEvent event) {
    Action action;
    {
      absl::MutexLock lock(&mu_);
      if (final_status_.has_value()) return;
      pending_step_ = std::move(event);  // replaces one the reader has not taken yet
      action = DecideLocked();
    }
    Perform(action);
  }

  void PushFinal(const absl::Status& status, std::optional<GenerateEvent> result) {
    call_.Record(status);
    Action action;
    {
      absl::MutexLock lock(&mu_);
      final_status_ = status;
      final_event_ = std::move(result);
      action = DecideLocked();
    }
    Perform(action);
  }

  // Picks the next write if none is in flight, and marks it started. The gRPC call itself is
  // made by Perform, outside the lock; `writing_` keeps a second one from starting before
  // OnWriteDone. The state change and the decision happen in one critical section: once a Finish
  // is decided, OnDone may delete this reactor, so nothing may touch it after Perform.
  Action DecideLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Action action;
    if (writing_ || finished_) return action;
    if (pending_step_.has_value() && !(final_status_.has_value() && !final_status_->ok())) {
      current_ = std::move(*pending_step_);
      pending_step_.reset();
      action.next = Next::kStep;
    } else if (final_status_.has_value()) {
      action.status = ToGrpcStatus(*final_status_);
      pending_step_.reset();
      if (final_event_.has_value()) {
        current_ = std::move(*final_event_);
        action.next = Next::kFinalEvent;
      } else {
        action.next = Next::kFinishOnly;
      }
      finished_ = true;
    }
    if (action.next != Next::kNothing) writing_ = true;
    return action;
  }

  void Perform(const Action& action) {
    if (action.next == Next::kStep || action.next == Next::kFinalEvent) {
      if (absl::Status serialized = SerializeToByteBuffer(current_, &current_bytes_);
          !serialized.ok()) {
        // A step that cannot be sent is skipped (the engine still owns the task and will call
        // back); the final event comes after the task is done, so the call can end here.
        if (action.next == Next::kStep) return OnWriteDone(true);
        return Finish(ToGrpcStatus(serialized));
      }
    }
    switch (action.next) {
      case Next::kNothing:
        break;
      case Next::kStep:
        StartWrite(&current_bytes_);
        break;
      case Next::kFinalEvent:
        StartWriteAndFinish(&current_bytes_, grpc::WriteOptions(), action.status);
        break;
      case Next::kFinishOnly:
        Finish(action.status);
        break;
    }
  }

  CallState call_;
  absl::Mutex mu_;
  std::optional<GenerateEvent> pending_step_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> final_status_ ABSL_GUARDED_BY(mu_);
  std::optional<GenerateEvent> final_event_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  GenerateEvent current_;  // the event being written; only touched by the writer of the moment
  grpc::ByteBuffer current_bytes_;  // current_, serialized
};

absl::Status InvalidRequest(std::string message) {
  return absl::InvalidArgumentError(std::move(message));
}

int BeamOrOne(int beam) { return beam == 0 ? 1 : beam; }  // an unset beam is 1

// Every check of a request's fields against the model's and the server's limits: the one place
// a request is validated (the engine and the sampler only assert their invariants). The source's
// token count is checked after encoding, in Prepare.
absl::Status CheckRequest(const GenerateRequest& request, const ServedModelInfo& info,
                          int64_t max_text_bytes, int early_exit_steps) {
  const std::string& text = request.text();
  if (text.empty()) return InvalidRequest("text is empty");
  if (static_cast<int64_t>(text.size()) > max_text_bytes) {
    return InvalidRequest("text is " + std::to_string(text.size()) + " bytes; the limit is " +
                          std::to_string(max_text_bytes));
  }
  // ParseGenerateRequest has refused a string field that is not UTF-8 already; the tokenizer
  // relies on it, so the check stays for Prepare's direct callers (tests).
  if (!IsValidUtf8(text)) return InvalidRequest("text is not valid UTF-8");
  const std::string max_steps = std::to_string(info.max_steps);
  if (request.has_min_steps() || request.has_max_steps()) {
    if (!request.has_min_steps() || !request.has_max_steps()) {
      return InvalidRequest("a step range needs both min_steps and max_steps");
    }
    if (request.steps() != 0) {
      return InvalidRequest("give either steps or min_steps..max_steps, not both (steps = " +
                            std::to_string(request.steps()) + ")");
    }
    if (request.min_steps() < 1 || request.min_steps() > request.max_steps() ||
        request.max_steps() > info.max_steps) {
      return InvalidRequest("the step range must have 1 <= min_steps <= max_steps <= " + max_steps +
                            " for model '" + info.name + "', got " +
                            std::to_string(request.min_steps()) + ".." +
                            std::to_string(request.max_steps()));
    }
  } else if (request.steps() < 1 || request.steps() > info.max_steps) {
    return InvalidRequest("steps must be in [1, " + max_steps + "] for model '" + info.name +
                          "', got " + std::to_string(request.steps()) +
                          " (or give min_steps and max_steps)");
  }
  const int length_beam = BeamOrOne(request.length_beam());
  const int noise_beam = BeamOrOne(request.noise_beam());
  if (length_beam < 1 || length_beam > info.max_beam) {
    return InvalidRequest("length_beam must be in [1, " + std::to_string(info.max_beam) +
                          "], got " + std::to_string(request.length_beam()));
  }
  if (noise_beam < 1 || noise_beam > info.max_beam) {
    return InvalidRequest("noise_beam must be in [1, " + std::to_string(info.max_beam) + "], got " +
                          std::to_string(request.noise_beam()));
  }
  if (int64_t{length_beam} * noise_beam > info.max_rows) {
    return InvalidRequest(
        "length_beam x noise_beam = " + std::to_string(int64_t{length_beam} * noise_beam) +
        " rows, more than this server's engine.max_rows_per_batch (" +
        std::to_string(info.max_rows) + ")");
  }
  if (request.has_target_length() &&
      (request.target_length() < 1 || request.target_length() > info.max_target_tokens)) {
    return InvalidRequest("target_length must be in [1, " + std::to_string(info.max_target_tokens) +
                          "], got " + std::to_string(request.target_length()));
  }
  if (early_exit_steps < 0 || early_exit_steps > info.max_steps) {
    return InvalidRequest("early_exit_steps must be in [0, " + std::to_string(info.max_steps) +
                          "] (0: off), got " + std::to_string(early_exit_steps));
  }
  return absl::OkStatus();
}

}  // namespace

GeneratorService::GeneratorService(GeneratorServiceOptions options, ServerMetrics* metrics)
    : options_(std::move(options)), metrics_(metrics) {}

void GeneratorService::AddModel(std::shared_ptr<ServedModel> model) {
  absl::MutexLock lock(&mu_);
  const std::string name = model->info().name;
  models_[name].current = std::move(model);
}

std::shared_ptr<ServedModel> GeneratorService::ReplaceModel(std::shared_ptr<ServedModel> model) {
  absl::MutexLock lock(&mu_);
  Hosted& hosted = models_[model->info().name];
  std::shared_ptr<ServedModel> old = std::move(hosted.current);
  hosted.current = std::move(model);
  hosted.pending.reset();
  // Versions nobody holds any more are gone; the one replaced now retires.
  hosted.retiring.erase(
      std::remove_if(hosted.retiring.begin(), hosted.retiring.end(),
                     [](const std::weak_ptr<ServedModel>& w) { return w.expired(); }),
      hosted.retiring.end());
  if (old != nullptr) hosted.retiring.push_back(old);
  return old;
}

void GeneratorService::SetLoading(const std::string& name, const std::string& path) {
  absl::MutexLock lock(&mu_);
  models_[name].pending = VersionState{"", path, "LOADING", ""};
}

void GeneratorService::SetLoadFailed(const std::string& name, const std::string& path,
                                     const std::string& error) {
  absl::MutexLock lock(&mu_);
  models_[name].pending = VersionState{"", path, "FAILED", error};
}

std::shared_ptr<ServedModel> GeneratorService::Current(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  return it != models_.end() ? it->second.current : nullptr;
}

std::vector<std::shared_ptr<ServedModel>> GeneratorService::LiveVersions() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<ServedModel>> live;
  for (const auto& [name, hosted] : models_) {
    if (hosted.current != nullptr) live.push_back(hosted.current);
    for (const std::weak_ptr<ServedModel>& weak : hosted.retiring) {
      if (std::shared_ptr<ServedModel> old = weak.lock()) live.push_back(std::move(old));
    }
  }
  return live;
}

std::vector<VersionState> GeneratorService::VersionsLocked(const Hosted& hosted) const {
  std::vector<VersionState> versions;
  auto describe = [](const ServedModel& model, const char* state) {
    return VersionState{model.info().version, model.info().checkpoint_dir, state, ""};
  };
  if (hosted.current != nullptr) versions.push_back(describe(*hosted.current, "AVAILABLE"));
  for (const std::weak_ptr<ServedModel>& weak : hosted.retiring) {
    if (std::shared_ptr<ServedModel> old = weak.lock())
      versions.push_back(describe(*old, "RETIRING"));
  }
  if (hosted.pending.has_value()) versions.push_back(*hosted.pending);
  return versions;
}

void GeneratorService::SetReady() {
  absl::MutexLock lock(&mu_);
  ready_ = true;
}

void GeneratorService::StartDraining() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
}

void GeneratorService::UpdateLoadMetrics() {
  absl::MutexLock lock(&mu_);
  for (const auto& [name, hosted] : models_) {
    int waiting = 0, running = 0;
    auto add = [&](ServedModel& model) {
      waiting += model.engine().waiting();
      running += model.engine().running();
    };
    if (hosted.current != nullptr) add(*hosted.current);
    for (const std::weak_ptr<ServedModel>& weak : hosted.retiring) {
      if (std::shared_ptr<ServedModel> old = weak.lock()) add(*old);
    }
    metrics_->SetLoad(name, waiting, running);
  }
}

std::string GeneratorService::ModelNamesLocked() const {
  std::string names;
  for (const auto& [name, model] : models_) names += (names.empty() ? "" : ", ") + name;
  return names;
}

absl::StatusOr<std::shared_ptr<ServedModel>> GeneratorService::FindModel(
    const std::string& requested) {
  absl::MutexLock lock(&mu_);
  if (draining_) return absl::UnavailableError("the server is shutting down");
  if (!ready_) return absl::UnavailableError("the server is still loading its models");
  std::string name = requested.empty() ? options_.default_model : requested;
  if (name.empty()) {
    if (models_.size() == 1 && models_.begin()->second.current != nullptr)
      return models_.begin()->second.current;
    return absl::InvalidArgumentError("the request names no model and this server has several: " +
                                      ModelNamesLocked());
  }
  auto it = models_.find(name);
  if (it == models_.end()) {
    return absl::NotFoundError("unknown model '" + name.substr(0, 200) +
                               "'; this server has: " + ModelNamesLocked());
  }
  if (it->second.current == nullptr)
    return absl::UnavailableError("model '" + name + "' is still loading");
  return it->second.current;
}

absl::StatusOr<PreparedRequest> GeneratorService::Prepare(const GenerateRequest& request,
                                                          absl::Time deadline,
                                                          std::shared_ptr<ServedModel>* resolved) {
  absl::StatusOr<std::shared_ptr<ServedModel>> model = FindModel(request.model());
  if (!model.ok()) return model.status();
  if (resolved != nullptr) *resolved = *model;
  const ServedModelInfo& info = (*model)->info();
  const int early_exit_steps = request.has_early_exit_steps() ? request.early_exit_steps()
                                                              : options_.default_early_exit_steps;
  FASTDISS_RETURN_IF_ERROR(CheckRequest(request, info, options_.max_text_bytes, early_exit_steps));
  std::vector<int> ids = (*model)->EncodeSource(request.text());
  if (ids.empty()) return InvalidRequest("text has no tokens (only whitespace?)");
  if (static_cast<int>(ids.size()) > info.max_source_tokens) {
    return InvalidRequest("text is " + std::to_string(ids.size()) + " tokens; model '" + info.name +
                          "' takes at most " + std::to_string(info.max_source_tokens));
  }

  PreparedRequest prepared;
  prepared.model = *model;
  prepared.task = std::make_unique<GenerateTask>();
  GenerateTask& task = *prepared.task;
  task.source_ids = std::move(ids);
  task.options.steps = request.has_max_steps() ? request.max_steps() : request.steps();
  task.min_steps = request.has_min_steps() ? request.min_steps() : 0;
  task.options.length_beam = BeamOrOne(request.length_beam());
  task.options.noise_beam = BeamOrOne(request.noise_beam());
  task.options.seed = request.has_seed() ? request.seed() : RandomSeed();
  task.options.target_length = request.has_target_length() ? request.target_length() : 0;
  task.options.early_exit_steps = early_exit_steps;
  task.options.clamp = request.has_clamp() ? request.clamp() : info.default_clamp;
  task.deadline = deadline;
  return prepared;
}

absl::Time GeneratorService::Deadline(const grpc::CallbackServerContext& context) const {
  // The client's deadline when it set one, longer than the default or not; the default otherwise.
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return absl::Now() + options_.default_deadline;
  }
  return absl::FromChrono(deadline);
}

absl::Status GeneratorService::Alive(const grpc::CallbackServerContext& context,
                                     absl::Time deadline, const grpc::ByteBuffer& bytes) const {
  if (absl::Now() >= deadline)
    return absl::DeadlineExceededError("the deadline passed before the request arrived");
  // A request that never arrived is a null buffer (a request of zero bytes is a valid, empty one).
  if (!bytes.Valid() || context.IsCancelled()) {
    return absl::CancelledError("the call ended before its request arrived");
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* GeneratorService::Generate(grpc::CallbackServerContext* context,
                                                     const grpc::ByteBuffer* request,
                                                     grpc::ByteBuffer* response) {
  auto* reactor = new GenerateReactor(this, absl::Now());
  const absl::Time deadline = Deadline(*context);
  reactor->Begin(this, Alive(*context, deadline, *request), deadline, *request, response);
  return reactor;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* GeneratorService::GenerateStream(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  auto* reactor = new StreamReactor(this, absl::Now());
  const absl::Time deadline = Deadline(*context);
  reactor->Begin(this, Alive(*context, deadline, *request), deadline, *request);
  return reactor;
}

grpc::ServerUnaryReactor* GeneratorService::ListModels(
    grpc::CallbackServerContext* context, const fastdiss::v1::ListModelsRequest* /*request*/,
    fastdiss::v1::ListModelsResponse* response) {
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, hosted] : models_) {
      if (hosted.current == nullptr) continue;
      const ServedModelInfo& info = hosted.current->info();
      fastdiss::v1::ModelInfo* out = response->add_models();
      out->set_name(info.name);
      out->set_version(info.version);
      out->set_max_steps(info.max_steps);
      out->set_max_source_tokens(info.max_source_tokens);
      out->set_max_target_tokens(info.max_target_tokens);
      out->set_max_beam(info.max_beam);
      out->set_num_timesteps(info.num_timesteps);
      out->set_device(info.device);
      out->set_source_units(info.source_units);
      out->set_source_lowercase(info.source_lowercase);
      out->set_clamp(info.default_clamp);
      out->set_precision(std::string(LinearPrecisionName(info.precision)));
      for (const VersionState& v : VersionsLocked(hosted)) {
        fastdiss::v1::ModelVersionStatus* version = out->add_versions();
        version->set_version(v.version);
        version->set_path(v.path);
        version->set_state(v.state);
        version->set_error(v.error);
      }
    }
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace fastdiss
