#include "server/served_model.h"

#include <torch/torch.h>

#include <algorithm>
#include <utility>

#include "absl/synchronization/notification.h"
#include "base/checkpoint_files.h"
#include "model/checkpoint.h"
#include "model/runtime.h"
#include "server/model_versions.h"

namespace fastdiss {
namespace {

// "step-N": the training step the checkpoint's metadata records.
std::string CheckpointStep(const ConfigTree& metadata) {
  if (const ConfigValue* value = metadata.Find("checkpoint.step");
      value != nullptr && !value->is_list) {
    return "step-" + value->scalar;
  }
  return "step-0";
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServedModel>> ServedModel::Load(const std::string& name,
                                                               const ModelSpec& spec,
                                                               EngineOptions options,
                                                               Engine::Hooks hooks) {
  absl::StatusOr<c10::Device> device = ResolveDevice(spec.device);
  if (!device.ok()) return device.status();
  absl::StatusOr<std::string> digest = ManifestDigest(spec.checkpoint);
  if (!digest.ok())
    return absl::Status(digest.status().code(),
                        "model '" + name + "': " + std::string(digest.status().message()));
  absl::StatusOr<LoadedCheckpoint> loaded = LoadCheckpoint(spec.checkpoint, *device);
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(),
                        "model '" + name + "': " + std::string(loaded.status().message()));
  }
  absl::StatusOr<NoiseSchedule> schedule =
      NoiseSchedule::Create({loaded->config.num_timesteps, loaded->config.noise_factor});
  if (!schedule.ok()) return schedule.status();

  std::unique_ptr<ServedModel> model(new ServedModel());
  ServedModelInfo& info = model->info_;
  info.name = name;
  info.version = CheckpointStep(loaded->metadata) + "-" + *digest;
  info.checkpoint_dir = spec.checkpoint;
  info.manifest_digest = *digest;
  info.device = device->str();
  info.num_timesteps = loaded->config.num_timesteps;
  options.max_steps = std::min(options.max_steps, info.num_timesteps);
  info.max_steps = options.max_steps;
  info.max_source_tokens = loaded->config.max_source_tokens;
  info.max_target_tokens = loaded->config.max_target_tokens;
  info.max_beam = kMaxBeam;
  info.max_rows = options.max_rows_per_batch;
  info.source_units = loaded->config.source_units;
  info.source_lowercase = loaded->config.source_lowercase;
  info.default_clamp = spec.clamp.value_or(true);
  info.precision = spec.precision;
  loaded->model->SetLinearPrecision(spec.precision);
  model->tokenizer_ = std::move(loaded->tokenizer);
  absl::StatusOr<std::unique_ptr<Engine>> engine =
      Engine::Create(options, Sampler(loaded->model, *schedule, *device), std::move(hooks));
  if (!engine.ok()) return engine.status();
  model->engine_ = std::move(engine).value();
  return model;
}

absl::Status ServedModel::WarmUp(const std::vector<int64_t>& steps) {
  std::vector<int> source = EncodeSource("This is a warm-up request.");
  if (source.empty()) source = {tokenizer_.unk_id()};
  source.resize(std::min<size_t>(source.size(), std::max(1, info_.max_source_tokens)));
  for (int64_t k : steps) {
    absl::Notification done;
    absl::Status result;
    auto task = std::make_unique<GenerateTask>();
    task->source_ids = source;
    task->options.steps = static_cast<int>(std::min<int64_t>(k, info_.max_steps));
    task->options.clamp = info_.default_clamp;  // warm the path its requests take
    task->on_done = [&](absl::StatusOr<GenerateOutcome> outcome) {
      result = outcome.status();
      done.Notify();
    };
    if (absl::Status s = engine_->Schedule(&task); !s.ok()) return s;
    done.WaitForNotification();
    if (!result.ok()) {
      return absl::Status(result.code(), "model '" + info_.name +
                                             "' warm-up at K=" + std::to_string(k) + ": " +
                                             std::string(result.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace fastdiss
