#include "model/checkpoint.h"

#include <torch/torch.h>

#include <sstream>

#include "base/checkpoint_files.h"

namespace fastdiss {
namespace {

constexpr char kModelFile[] = "model.yaml";
constexpr char kWeightsFile[] = "weights.pt";
constexpr char kTokenizerFile[] = "tokenizer.model";
constexpr char kMetadataFile[] = "metadata.yaml";
constexpr char kTrainerStateFile[] = "trainer_state.pt";
constexpr int64_t kModelFormatVersion = 1;

absl::StatusOr<std::string> SerializeWeights(FastDissModel& model, WeightPrecision precision) {
  try {
    torch::serialize::OutputArchive archive;
    const auto dtype = precision == WeightPrecision::kFloat16 ? torch::kFloat16 : torch::kFloat32;
    for (const auto& item : model->named_parameters()) {
      archive.write(item.key(), item.value().detach().to(torch::kCPU, dtype).contiguous());
    }
    std::ostringstream out;
    archive.save_to(out);
    return out.str();
  } catch (const std::exception& e) {
    return absl::InternalError(std::string("serializing weights failed: ") + e.what());
  }
}

absl::Status LoadWeights(const std::string& bytes, const std::string& dir, FastDissModel& model) {
  torch::serialize::InputArchive archive;
  try {
    std::istringstream in(bytes);
    archive.load_from(in);
  } catch (const std::exception& e) {
    return absl::DataLossError("checkpoint '" + dir +
                               "': weights.pt is not a readable weights archive");
  }
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    torch::Tensor stored;
    bool found = false;
    try {
      found = archive.try_read(item.key(), stored);
    } catch (const std::exception& e) {
      found = false;
    }
    if (!found) {
      return absl::DataLossError("checkpoint '" + dir + "': weights.pt has no tensor '" +
                                 item.key() + "'");
    }
    if (stored.sizes() != item.value().sizes()) {
      std::ostringstream message;
      message << "checkpoint '" << dir << "': tensor '" << item.key() << "' has shape "
              << stored.sizes() << " but model.yaml implies " << item.value().sizes();
      return absl::DataLossError(message.str());
    }
    try {
      item.value().copy_(stored.to(torch::kFloat32));
    } catch (const std::exception& e) {
      return absl::DataLossError("checkpoint '" + dir + "': tensor '" + item.key() +
                                 "' is unreadable: " + e.what());
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string CodeVersion() { return FASTDISS_GIT_REVISION; }

absl::Status SaveCheckpoint(const std::string& dir, FastDissModel& model,
                            const Tokenizer& tokenizer, const ConfigTree& metadata,
                            const SaveCheckpointOptions& options) {
  ConfigTree model_yaml;
  FASTDISS_RETURN_IF_ERROR(model_yaml.Put("format_version", kModelFormatVersion));
  ModelConfig config = model->config();
  FASTDISS_RETURN_IF_ERROR(WriteFields(config.Fields(), &model_yaml));
  FASTDISS_RETURN_IF_ERROR(model_yaml.Put(
      "weights.dtype", options.precision == WeightPrecision::kFloat16 ? "float16" : "float32"));
  FASTDISS_ASSIGN_OR_RETURN(std::string weights, SerializeWeights(model, options.precision));
  std::vector<std::pair<std::string, std::string>> files = {
      {kModelFile, model_yaml.ToYaml()},
      {kWeightsFile, std::move(weights)},
      {kTokenizerFile, tokenizer.serialized()},
      {kMetadataFile, metadata.ToYaml()},
  };
  if (!options.trainer_state.empty()) files.push_back({kTrainerStateFile, options.trainer_state});
  return WriteCheckpointDir(dir, files);
}

absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& dir, c10::Device device) {
  FASTDISS_ASSIGN_OR_RETURN(auto files, ReadCheckpointDir(dir));
  for (const char* required : {kModelFile, kWeightsFile, kTokenizerFile, kMetadataFile}) {
    if (!files.count(required)) {
      return absl::DataLossError("checkpoint '" + dir + "' has no " + required);
    }
  }
  LoadedCheckpoint loaded;
  FASTDISS_ASSIGN_OR_RETURN(ConfigTree model_yaml,
                            ConfigTree::Parse(files[kModelFile], dir + "/" + kModelFile));
  int64_t version = 0;
  FASTDISS_RETURN_IF_ERROR(model_yaml.Get("format_version", &version));
  if (version != kModelFormatVersion) {
    return absl::FailedPreconditionError("checkpoint '" + dir + "' has model format version " +
                                         std::to_string(version) + "; this build reads version " +
                                         std::to_string(kModelFormatVersion));
  }
  std::string dtype;
  FASTDISS_RETURN_IF_ERROR(model_yaml.Get("weights.dtype", &dtype));
  FASTDISS_RETURN_IF_ERROR(ReadFields(model_yaml, loaded.config.Fields()));
  FASTDISS_RETURN_IF_ERROR(model_yaml.CheckAllConsumed());
  FASTDISS_RETURN_IF_ERROR(loaded.config.Validate());
  FASTDISS_ASSIGN_OR_RETURN(loaded.tokenizer,
                            Tokenizer::FromSerializedProto(files[kTokenizerFile]));
  if (loaded.tokenizer.vocab_size() != loaded.config.vocab_size) {
    return absl::DataLossError(
        "checkpoint '" + dir + "': tokenizer has " + std::to_string(loaded.tokenizer.vocab_size()) +
        " pieces but the model expects " + std::to_string(loaded.config.vocab_size));
  }
  FASTDISS_ASSIGN_OR_RETURN(loaded.metadata,
                            ConfigTree::Parse(files[kMetadataFile], dir + "/" + kMetadataFile));
  try {
    loaded.model = FastDissModel(loaded.config);
  } catch (const std::exception& e) {
    return absl::InternalError("building the model for '" + dir + "' failed: " + e.what());
  }
  FASTDISS_RETURN_IF_ERROR(LoadWeights(files[kWeightsFile], dir, loaded.model));
  try {
    loaded.model->to(device);
  } catch (const std::exception& e) {
    return absl::FailedPreconditionError("moving the model to " + device.str() +
                                         " failed: " + e.what());
  }
  loaded.model->eval();
  if (auto it = files.find(kTrainerStateFile); it != files.end()) loaded.trainer_state = it->second;
  return loaded;
}

}  // namespace fastdiss
