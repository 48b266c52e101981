// fastdiss-client: calls a fastdiss-server. Generates for each TEXT argument (or each stdin line
// when none is given), lists the models, or checks health. Exit status 0 when every call
// succeeded, 1 when one failed (each failure is reported on stderr with its gRPC code), 2 on bad
// flags.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/command_line.h"
#include "base/json.h"
#include "fastdiss/v1/generator.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/tls.h"

namespace {

using fastdiss::v1::GenerateEvent;
using fastdiss::v1::GenerateRequest;
using fastdiss::v1::GenerateResponse;

constexpr int64_t kMaxInt = std::numeric_limits<int>::max();

constexpr char kUsage[] =
    R"(Usage: fastdiss-client --target HOST:PORT [--model M] [--steps K | --step-range MIN,MAX] [--seed S]
                       [--length-beam N]
                       [--noise-beam N] [--target-length N] [--early-exit-steps N] [--deadline-seconds X]
                       [--clamp | --no-clamp] [--stream] [--json]
                       [--] [TEXT ...]
       fastdiss-client --target HOST:PORT --list-models
       fastdiss-client --target HOST:PORT --health [SERVICE]
       (each with [--tls] [--tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--tls-server-name NAME])

Generates a target text for each TEXT, or for each line of stdin when no TEXT is given, and
prints it (one line per input). --stream prints every denoising step's text as it arrives
('[step i/K] text'), then the result. --json prints one JSON object per answer with the
token ids, score, seed, steps run, model version and the server's timing. --early-exit-steps N
stops once the answer has not changed for N steps (0: every step; unset: the server's default).
--step-range lets the server choose K in MIN..MAX by its load (the answer's planned_steps).
--clamp and --no-clamp switch clamping on or off (unset: the server's default, on unless configured).
Defaults: --steps 5, a random seed, beams 1, --deadline-seconds 60, plaintext.
)";

std::string CodeName(const grpc::Status& status) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()));
}

std::string ResponseJson(const std::string& source, const GenerateResponse& r) {
  fastdiss::Json json;
  json["source"] = source;
  json["text"] = r.text();
  json["token_ids"] = std::vector<int>(r.token_ids().begin(), r.token_ids().end());
  json["score"] = r.score();
  json["steps"] = r.steps();
  json["planned_steps"] = r.planned_steps();
  json["seed"] = r.seed();
  json["model"] = r.model();
  json["model_version"] = r.model_version();
  json["queue_seconds"] = r.timing().queue_seconds();
  json["compute_seconds"] = r.timing().compute_seconds();
  json["total_seconds"] = r.timing().total_seconds();
  return fastdiss::JsonText(json);
}

struct ClientFlags {
  std::string target, health_service;
  GenerateRequest base;  // every Generate call's fields but the text
  double deadline_seconds = 60;
  bool stream = false, json = false, list_models = false, health = false;
  std::vector<std::string> texts;
  fastdiss::ClientTlsOptions tls;

  std::chrono::system_clock::time_point Deadline() const {
    return absl::ToChronoTime(absl::Now() + absl::Seconds(deadline_seconds));
  }
};

// Reads the flags into *out; returns an exit status when the program is to end here.
std::optional<int> ParseFlags(int argc, char** argv, ClientFlags* out) {
  GenerateRequest& base = out->base;
  base.set_steps(5);
  fastdiss::FlagReader flags("fastdiss-client", argc, argv);
  while (flags.Next()) {
    if (flags.Is("--help") || flags.Is("-h")) {
      std::cout << kUsage << "\n" << fastdiss::kClientTlsUsage;
      return 0;
    } else if (fastdiss::ReadClientTlsFlag(flags, &out->tls)) {
    } else if (flags.Is("--target")) {
      out->target = flags.String();
    } else if (flags.Is("--model")) {
      base.set_model(flags.String());
    } else if (flags.Is("--steps")) {
      base.set_steps(static_cast<int>(flags.Int(1, kMaxInt)));
    } else if (flags.Is("--step-range")) {
      std::vector<int64_t> range = flags.IntList(1, kMaxInt);
      if (range.size() != 2) {
        std::cerr << "fastdiss-client: --step-range takes MIN,MAX\n";
        return 2;
      }
      base.set_steps(0);
      base.set_min_steps(static_cast<int>(range[0]));
      base.set_max_steps(static_cast<int>(range[1]));
    } else if (flags.Is("--seed")) {
      base.set_seed(flags.Uint64());
    } else if (flags.Is("--length-beam")) {
      base.set_length_beam(static_cast<int>(flags.Int(1, kMaxInt)));
    } else if (flags.Is("--noise-beam")) {
      base.set_noise_beam(static_cast<int>(flags.Int(1, kMaxInt)));
    } else if (flags.Is("--target-length")) {
      base.set_target_length(static_cast<int>(flags.Int(1, kMaxInt)));
    } else if (flags.Is("--clamp")) {
      base.set_clamp(flags.Switch());
    } else if (flags.Is("--no-clamp")) {
      base.set_clamp(!flags.Switch());
    } else if (flags.Is("--early-exit-steps")) {
      base.set_early_exit_steps(static_cast<int>(flags.Int(0, kMaxInt)));
    } else if (flags.Is("--deadline-seconds")) {
      out->deadline_seconds = flags.Double(0);
    } else if (flags.Is("--stream")) {
      out->stream = flags.Switch();
    } else if (flags.Is("--json")) {
      out->json = flags.Switch();
    } else if (flags.Is("--list-models")) {
      out->list_models = flags.Switch();
    } else if (flags.Is("--health")) {
      out->health = true;
      out->health_service = flags.OptionalString().value_or("");
    } else if (flags.IsPositional()) {
      out->texts.push_back(flags.arg());
    } else {
      flags.Unknown();
    }
  }
  if (out->target.empty()) {
    std::cerr << "fastdiss-client: --target HOST:PORT is required (see --help)\n";
    return 2;
  }
  return std::nullopt;
}

int CheckHealth(const std::shared_ptr<grpc::Channel>& channel, const ClientFlags& flags) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(flags.Deadline());
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(flags.health_service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    std::cerr << "fastdiss-client: health: " << CodeName(status) << ": " << status.error_message()
              << "\n";
    return 1;
  }
  std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()) << "\n";
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

int ListModels(fastdiss::v1::Generator::Stub& stub, const ClientFlags& flags) {
  grpc::ClientContext context;
  context.set_deadline(flags.Deadline());
  fastdiss::v1::ListModelsResponse response;
  grpc::Status status = stub.ListModels(&context, fastdiss::v1::ListModelsRequest(), &response);
  if (!status.ok()) {
    std::cerr << "fastdiss-client: ListModels: " << CodeName(status) << ": "
              << status.error_message() << "\n";
    return 1;
  }
  for (const auto& m : response.models()) {
    std::cout << m.name() << "\tversion " << m.version() << "\tsteps 1.." << m.max_steps()
              << "\tsource<=" << m.max_source_tokens()
              << " tokens\ttarget<=" << m.max_target_tokens() << " tokens\tbeam<=" << m.max_beam()
              << "\tT=" << m.num_timesteps() << "\t" << m.device() << "\tsource units "
              << m.source_units() << (m.source_lowercase() ? ", lowercased" : "")
              << (m.clamp() ? "\tclamped" : "\tunclamped") << "\t" << m.precision() << "\n";
    for (const auto& v : m.versions()) {
      std::cout << "  " << v.state() << "\t" << (v.version().empty() ? "-" : v.version()) << "\t"
                << v.path() << (v.error().empty() ? "" : "\t" + v.error()) << "\n";
    }
  }
  return 0;
}

// One Generate call for `text`; with --stream, prints each step's text as it arrives.
grpc::Status Generate(fastdiss::v1::Generator::Stub& stub, const ClientFlags& flags,
                      const std::string& text, GenerateResponse* response) {
  GenerateRequest request = flags.base;
  request.set_text(text);
  grpc::ClientContext context;
  context.set_deadline(flags.Deadline());
  if (!flags.stream) return stub.Generate(&context, request, response);
  auto reader = stub.GenerateStream(&context, request);
  GenerateEvent event;
  while (reader->Read(&event)) {
    if (event.has_step()) {
      std::cout << "[step " << event.step().step() << "/" << event.step().steps() << "] "
                << event.step().text() << "\n"
                << std::flush;
    } else if (event.has_result()) {
      *response = event.result();
    }
  }
  return reader->Finish();
}

// Generates for each TEXT argument, or each stdin line when none is given.
int GenerateAll(fastdiss::v1::Generator::Stub& stub, const ClientFlags& flags) {
  const bool from_stdin = flags.texts.empty();
  int failures = 0;
  std::string line;
  for (size_t n = 0;; ++n) {
    std::string text;
    if (from_stdin) {
      if (!std::getline(std::cin, line)) break;
      text = line;
    } else {
      if (n >= flags.texts.size()) break;
      text = flags.texts[n];
    }
    GenerateResponse response;
    const grpc::Status status = Generate(stub, flags, text, &response);
    if (!status.ok()) {
      ++failures;
      std::cerr << "fastdiss-client: input " << n + 1 << ": " << CodeName(status) << ": "
                << status.error_message() << "\n";
      if (!flags.json) std::cout << "\n";  // keeps output lines aligned with input lines
      continue;
    }
    std::cout << (flags.json ? ResponseJson(text, response) : response.text()) << "\n"
              << std::flush;
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  ClientFlags flags;
  if (std::optional<int> exit_status = ParseFlags(argc, argv, &flags)) return *exit_status;
  auto channel = fastdiss::MakeChannel(flags.target, flags.tls);
  if (!channel.ok()) {
    std::cerr << "fastdiss-client: " << channel.status().message() << "\n";
    return 2;
  }
  if (flags.health) return CheckHealth(*channel, flags);
  auto stub = fastdiss::v1::Generator::NewStub(*channel);
  if (flags.list_models) return ListModels(*stub, flags);
  return GenerateAll(*stub, flags);
}
