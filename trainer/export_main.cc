// fastdiss-export --checkpoint DIR --output DIR [--float16]: a serving copy of a training
// checkpoint: the same model, tokenizer and metadata, without the trainer's resume state, with the
// weights in half precision when asked (the loader upcasts them to float32). This is how the
// bundled models/de-en was made from a fastdiss-train run.
#include <filesystem>
#include <iostream>
#include <string>

#include "model/checkpoint.h"
#include "model/command_line.h"

int main(int argc, char** argv) {
  std::string input, output;
  bool half = false;
  fastdiss::FlagReader flags("fastdiss-export", argc, argv);
  while (flags.Next()) {
    if (flags.Is("--help") || flags.Is("-h")) {
      std::cout << "Usage: fastdiss-export --checkpoint DIR --output DIR [--float16]\n";
      return 0;
    } else if (flags.Is("--checkpoint")) {
      input = flags.String();
    } else if (flags.Is("--output")) {
      output = flags.String();
    } else if (flags.Is("--float16")) {
      half = flags.Switch();
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
  std::error_code error;
  const auto parent = std::filesystem::path(output).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, error);
  fastdiss::ConfigTree metadata = loaded->metadata;
  if (auto s = metadata.Put("export.source", input); !s.ok()) return 1;
  if (auto s = metadata.Put("export.precision", half ? "float16" : "float32"); !s.ok()) return 1;
  fastdiss::SaveCheckpointOptions options;
  options.precision = half ? fastdiss::WeightPrecision::kFloat16 : fastdiss::WeightPrecision::kFloat32;
  auto saved = fastdiss::SaveCheckpoint(output, loaded->model, loaded->tokenizer, metadata, options);
  if (!saved.ok()) {
    std::cerr << "fastdiss-export: " << saved << "\n";
    return 1;
  }
  std::cerr << "fastdiss-export: wrote " << output << (half ? " (float16 weights)" : "") << "\n";
  return 0;
}
