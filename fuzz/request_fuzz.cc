// Fuzzes the request path from the bytes gRPC hands the Generate methods to a decoded, validated
// request: ParseGenerateRequest (protobuf bytes, UTF-8 of every string) and
// GeneratorService::Prepare (model lookup, step counts, beams, text limits, tokenizing) against
// the bundled g2p and de-en models. Nothing is scheduled: the denoiser is not what is fuzzed.
// Every request Prepare accepts must carry source ids within the model's vocabulary and limits.
// FASTDISS_FUZZ_WRITE_SEEDS=DIR writes a few valid and invalid requests into DIR and exits.
#include <grpcpp/support/byte_buffer.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "server/generator_service.h"
#include "server/metrics.h"
#include "server/raw_request.h"
#include "server/served_model.h"

namespace {

fastdiss::GeneratorService* service = nullptr;

void WriteSeeds(const std::string& dir) {
  int n = 0;
  auto write = [&](const fastdiss::v1::GenerateRequest& r) {
    std::ofstream out(dir + "/request-" + std::to_string(n++), std::ios::binary);
    out << r.SerializeAsString();
  };
  fastdiss::v1::GenerateRequest r;
  r.set_model("g2p");
  r.set_text("pneumonia");
  r.set_steps(5);
  r.set_seed(1);
  write(r);
  r.set_length_beam(2);
  r.set_noise_beam(2);
  r.set_early_exit_steps(2);
  write(r);
  r.Clear();
  r.set_model("de-en");
  r.set_text("Ein Mann f\xc3\xa4hrt Fahrrad.");
  r.set_min_steps(2);
  r.set_max_steps(10);
  r.set_target_length(6);
  write(r);
  r.set_text("");
  write(r);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* seeds = std::getenv("FASTDISS_FUZZ_WRITE_SEEDS")) {
    WriteSeeds(seeds);
    std::exit(0);
  }
  auto* metrics = new fastdiss::ServerMetrics({"g2p", "de-en"});
  fastdiss::GeneratorServiceOptions options;
  options.default_model = "g2p";
  service = new fastdiss::GeneratorService(options, metrics);
  for (const char* name : {"g2p", "de-en"}) {
    fastdiss::ModelSpec spec;
    spec.checkpoint = std::string("models/") + name;
    auto model = fastdiss::ServedModel::Load(name, spec, fastdiss::EngineOptions(), {});
    if (!model.ok()) {
      std::cerr << "request_fuzz: " << spec.checkpoint << ": " << model.status().message()
                << " (run from the repository root)\n";
      std::exit(1);
    }
    service->AddModel(std::move(*model));
  }
  service->SetReady();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  grpc::Slice slice(data, size);
  grpc::ByteBuffer bytes(&slice, 1);
  fastdiss::v1::GenerateRequest request;
  if (!fastdiss::ParseGenerateRequest(bytes, &request).ok()) return 0;
  auto prepared = service->Prepare(request, absl::Now() + absl::Seconds(60));
  if (!prepared.ok()) return 0;
  const fastdiss::ServedModelInfo& info = prepared->model->info();
  const fastdiss::GenerateTask& task = *prepared->task;
  if (task.source_ids.empty() || static_cast<int>(task.source_ids.size()) > info.max_source_tokens)
    std::abort();
  for (int id : task.source_ids) {
    if (id < 0 || id >= prepared->model->tokenizer().vocab_size()) std::abort();
  }
  if (task.options.steps < 1 || task.options.steps > info.max_steps) std::abort();
  return 0;
}
