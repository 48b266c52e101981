// Fuzzes the checkpoint loader: the MANIFEST, model.yaml, metadata.yaml, tokenizer.model and
// weights.pt of a checkpoint directory. The first input byte picks the file (mod 5); the rest
// replaces it in a small valid checkpoint made at start. For every file but the MANIFEST, the
// directory gets a MANIFEST that matches the new bytes, so the damage reaches the file's own
// parser (LibTorch's reader for weights.pt) instead of stopping at the hash check. LoadCheckpoint
// must answer with an absl::Status, never crash. FASTDISS_FUZZ_WRITE_SEEDS=DIR writes the valid
// checkpoint's files as seed inputs into DIR and exits.
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "base/checkpoint_files.h"
#include "model/checkpoint.h"
#include "tests/test_models.h"

namespace {

const char* const kFiles[] = {"MANIFEST", "model.yaml", "metadata.yaml", "tokenizer.model",
                              "weights.pt"};
std::map<std::string, std::string>* base_files = nullptr;
std::string* work_dir = nullptr;

void Check(const absl::Status& status, const char* what) {
  if (!status.ok()) {
    std::cerr << "checkpoint_fuzz: " << what << ": " << status.message() << "\n";
    std::exit(1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // tmpfs: the checkpoint writer's fsyncs cost nothing there.
  const std::string root = "/dev/shm/fastdiss-checkpoint-fuzz-" + std::to_string(getpid());
  if (mkdir(root.c_str(), 0700) != 0)
    Check(fastdiss::InternalError("cannot create " + root), "setup");
  auto tokenizer = fastdiss::Tokenizer::Load("models/g2p/tokenizer.model");
  Check(tokenizer.status(), "models/g2p/tokenizer.model (run from the repository root)");
  fastdiss::FastDissModel model = fastdiss::testing::TinyModel(tokenizer->vocab_size());
  fastdiss::ConfigTree metadata;
  Check(metadata.Put("step", 1), "metadata");
  Check(fastdiss::SaveCheckpoint(root + "/base", model, *tokenizer, metadata), "save");
  auto files = fastdiss::ReadCheckpointDir(root + "/base");
  Check(files.status(), "read");
  base_files = new std::map<std::string, std::string>(std::move(*files));
  std::ifstream manifest(root + "/base/MANIFEST", std::ios::binary);
  (*base_files)["MANIFEST"].assign(std::istreambuf_iterator<char>(manifest),
                                   std::istreambuf_iterator<char>());
  work_dir = new std::string(root + "/work");
  if (const char* seeds = std::getenv("FASTDISS_FUZZ_WRITE_SEEDS")) {
    for (int i = 0; i < 5; ++i) {
      std::ofstream out(std::string(seeds) + "/" + kFiles[i], std::ios::binary);
      out << static_cast<char>(i) << base_files->at(kFiles[i]);
    }
    Check(fastdiss::RemoveCheckpointDir(root + "/base"), "cleanup");
    rmdir(root.c_str());
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string which = kFiles[data[0] % 5];
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& [name, content] : *base_files) {
    if (name != "MANIFEST") files.emplace_back(name, name == which ? bytes : content);
  }
  Check(fastdiss::WriteCheckpointDir(*work_dir, files), "write");
  if (which == "MANIFEST") {
    std::ofstream out(*work_dir + "/MANIFEST", std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  auto loaded = fastdiss::LoadCheckpoint(*work_dir);
  if (loaded.ok() && loaded->config.vocab_size != loaded->tokenizer.vocab_size()) std::abort();
  return 0;
}
