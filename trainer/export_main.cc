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
#include <string>

#include "base/command_line.h"
#include "model/checkpoint.h"

int main(int argc, char** argv) {
  std::string input, output;
  bool half = false;
  std::string source_units, source_lowercase;
  fastdiss::FlagReader flags("fastdiss-export", argc, argv);
  while (flags.Next()) {
    if (flags.Is("--help") || flags.Is("-h")) {
      std::cout
          << R"(Usage: fastdiss-export --checkpoint DIR --output DIR [--float16] [--source-units text|characters]
                       [--source-lowercase true|false]
)";
      return 0;
    } else if (flags.Is("--checkpoint")) {
      input = flags.String();
    } else if (flags.Is("--output")) {
      output = flags.String();
    } else if (flags.Is("--float16")) {
      half = flags.Switch();
    } else if (flags.Is("--source-units")) {
      source_units = flags.String();
    } else if (flags.Is("--source-lowercase")) {
      source_lowercase = flags.String();
    } else {
      flags.Unknown();
    }
  }
  if (input.empty() || output.empty()) {
    std::cerr << "fastdiss-export: --checkpoint and --output are required (see --help)\n";
    return 2;
  }
  auto loaded = fastdiss::LoadCheckpoint(input);
  if (!loaded.ok()) {
    std::cerr << "fastdiss-export: " << loaded.status() << "\n";
    return 1;
  }
  if (!source_lowercase.empty() && source_lowercase != "true" && source_lowercase != "false") {
    std::cerr << "fastdiss-export: --source-lowercase must be true or false, got '"
              << source_lowercase << "'\n";
    return 2;
  }
  fastdiss::FastDissModel model = loaded->model;
  fastdiss::ModelConfig config = model->config();
  if (!source_units.empty()) config.source_units = source_units;
  if (!source_lowercase.empty()) config.source_lowercase = source_lowercase == "true";
  if (config.source_units != model->config().source_units ||
      config.source_lowercase != model->config().source_lowercase) {
    if (auto valid = config.Validate(); !valid.ok()) {
      std::cerr << "fastdiss-export: " << valid << "\n";
      return 2;
    }
    // The same weights under the new config (the source rule does not change the network).
    model = fastdiss::FastDissModel(config);
    torch::NoGradGuard no_grad;
    auto weights = loaded->model->named_parameters();
    for (auto& item : model->named_parameters()) item.value().copy_(weights[item.key()]);
    model->eval();
  }
  std::error_code error;
  const auto parent = std::filesystem::path(output).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, error);
  fastdiss::ConfigTree metadata = loaded->metadata;
  if (auto s = metadata.Put("export.source", input); !s.ok()) return 1;
  if (auto s = metadata.Put("export.precision", half ? "float16" : "float32"); !s.ok()) return 1;
  fastdiss::SaveCheckpointOptions options;
  options.precision =
      half ? fastdiss::WeightPrecision::kFloat16 : fastdiss::WeightPrecision::kFloat32;
  auto saved = fastdiss::SaveCheckpoint(output, model, loaded->tokenizer, metadata, options);
  if (!saved.ok()) {
    std::cerr << "fastdiss-export: " << saved << "\n";
    return 1;
  }
  std::cerr << "fastdiss-export: wrote " << output << (half ? " (float16 weights)" : "") << "\n";
  return 0;
}
