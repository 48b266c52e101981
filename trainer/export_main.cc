// fastdiss-export --checkpoint DIR --output DIR [--float16] [--source-units UNITS]
// [--source-lowercase true|false]: a serving copy
// of a training checkpoint: the same model, tokenizer and metadata, without the trainer's resume
// state, with the weights in half precision when asked (the loader upcasts them to float32). This
// is how the bundled models were made from fastdiss-train runs. --source-units declares how the
// model's source text is cut (model.source_units) and --source-lowercase whether capitals are
// lowercased first (model.source_lowercase), for a checkpoint trained before those keys existed,
// which loads as "text" and false: g2p's spelled words need "characters" and true.
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include "base/command_line.h"
#include "model/checkpoint.h"

namespace {

constexpr char kUsage[] =
    R"(Usage: fastdiss-export --checkpoint DIR --output DIR [--float16] [--source-units text|characters]
                       [--source-lowercase true|false]
)";

struct ExportFlags {
  std::string input, output;
  bool half = false;
  std::string source_units, source_lowercase;  // empty: keep the checkpoint's
};

// Reads the flags into *out; returns an exit status when the program is to end here.
std::optional<int> ParseFlags(int argc, char** argv, ExportFlags* out) {
  fastdiss::FlagReader flags("fastdiss-export", argc, argv);
  while (flags.Next()) {
    if (flags.Is("--help") || flags.Is("-h")) {
      std::cout << kUsage;
      return 0;
    } else if (flags.Is("--checkpoint")) {
      out->input = flags.String();
    } else if (flags.Is("--output")) {
      out->output = flags.String();
    } else if (flags.Is("--float16")) {
      out->half = flags.Switch();
    } else if (flags.Is("--source-units")) {
      out->source_units = flags.String();
    } else if (flags.Is("--source-lowercase")) {
      out->source_lowercase = flags.String();
    } else {
      flags.Unknown();
    }
  }
  if (out->input.empty() || out->output.empty()) {
    std::cerr << "fastdiss-export: --checkpoint and --output are required (see --help)\n";
    return 2;
  }
  return std::nullopt;
}

// The loaded model, under the source rule the flags set (the same weights: the source rule does
// not change the network).
absl::StatusOr<fastdiss::FastDissModel> WithSourceRule(const fastdiss::LoadedCheckpoint& loaded,
                                                       const ExportFlags& flags) {
  fastdiss::ModelConfig config = loaded.model->config();
  if (!flags.source_units.empty()) config.source_units = flags.source_units;
  if (!flags.source_lowercase.empty()) config.source_lowercase = flags.source_lowercase == "true";
  if (config.source_units == loaded.model->config().source_units &&
      config.source_lowercase == loaded.model->config().source_lowercase) {
    return loaded.model;
  }
  FASTDISS_RETURN_IF_ERROR(config.Validate());
  fastdiss::FastDissModel model(config);
  torch::NoGradGuard no_grad;
  auto weights = loaded.model->named_parameters();
  for (auto& item : model->named_parameters()) item.value().copy_(weights[item.key()]);
  model->eval();
  return model;
}

absl::Status Export(const fastdiss::LoadedCheckpoint& loaded, fastdiss::FastDissModel& model,
                    const ExportFlags& flags) {
  std::error_code error;
  const auto parent = std::filesystem::path(flags.output).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, error);
  fastdiss::ConfigTree metadata = loaded.metadata;
  FASTDISS_RETURN_IF_ERROR(metadata.Put("export.source", flags.input));
  FASTDISS_RETURN_IF_ERROR(metadata.Put("export.precision", flags.half ? "float16" : "float32"));
  fastdiss::SaveCheckpointOptions options;
  options.precision =
      flags.half ? fastdiss::WeightPrecision::kFloat16 : fastdiss::WeightPrecision::kFloat32;
  return fastdiss::SaveCheckpoint(flags.output, model, loaded.tokenizer, metadata, options);
}

}  // namespace

int main(int argc, char** argv) {
  ExportFlags flags;
  if (std::optional<int> exit_status = ParseFlags(argc, argv, &flags)) return *exit_status;
  auto loaded = fastdiss::LoadCheckpoint(flags.input);
  if (!loaded.ok()) {
    std::cerr << "fastdiss-export: " << loaded.status() << "\n";
    return 1;
  }
  if (!flags.source_lowercase.empty() && flags.source_lowercase != "true" &&
      flags.source_lowercase != "false") {
    std::cerr << "fastdiss-export: --source-lowercase must be true or false, got '"
              << flags.source_lowercase << "'\n";
    return 2;
  }
  auto model = WithSourceRule(*loaded, flags);
  if (!model.ok()) {
    std::cerr << "fastdiss-export: " << model.status() << "\n";
    return 2;
  }
  if (auto saved = Export(*loaded, *model, flags); !saved.ok()) {
    std::cerr << "fastdiss-export: " << saved << "\n";
    return 1;
  }
  std::cerr << "fastdiss-export: wrote " << flags.output << (flags.half ? " (float16 weights)" : "")
            << "\n";
  return 0;
}
