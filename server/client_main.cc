// fastdiss-client: calls a fastdiss-server. Generates for each TEXT argument (or each stdin line
// when none is given), lists the models, or checks health. Exit status 0 when every call
// succeeded, 1 when one failed (each failure is reported on stderr with its gRPC code), 2 on bad
// flags.
#include <grpcpp/grpcpp.h>

#include <iostream>
#include <limits>
#include <memory>
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
    "Usage: fastdiss-client --target HOST:PORT [--model M] [--steps K | --step-range MIN,MAX] "
    "[--seed S]\n"
    "                       [--length-beam N]\n"
    "                       [--noise-beam N] [--target-length N] [--early-exit-steps N] "
    "[--deadline-seconds X]\n"
    "                       [--stream] [--json]\n"
    "                       [--] [TEXT ...]\n"
    "       fastdiss-client --target HOST:PORT --list-models\n"
    "       fastdiss-client --target HOST:PORT --health [SERVICE]\n"
    "       (each with [--tls] [--tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--tls-server-name "
    "NAME])\n\n"
    "Generates a target text for each TEXT, or for each line of stdin when no TEXT is given, and\n"
    "prints it (one line per input). --stream prints every denoising step's text as it arrives\n"
    "('[step i/K] text'), then the result. --json prints one JSON object per answer with the\n"
    "token ids, score, seed, steps run, model version and the server's timing. --early-exit-steps "
    "N\n"
    "stops once the answer has not changed for N steps (0: every step; unset: the server's "
    "default).\n"
    "--step-range lets the server choose K in MIN..MAX by its load (the answer's planned_steps).\n"
    "Defaults: --steps 5, a\n"
    "random seed, beams 1, --deadline-seconds 60, plaintext.\n";

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

}  // namespace

int main(int argc, char** argv) {
  std::string target, health_service;
  GenerateRequest base;
  base.set_steps(5);
  double deadline_seconds = 60;
  bool stream = false, json = false, list_models = false, health = false;
  std::vector<std::string> texts;
  fastdiss::ClientTlsOptions tls;
  fastdiss::FlagReader flags("fastdiss-client", argc, argv);
  while (flags.Next()) {
    if (flags.Is("--help") || flags.Is("-h")) {
      std::cout << kUsage << "\n" << fastdiss::kClientTlsUsage;
      return 0;
    } else if (fastdiss::ReadClientTlsFlag(flags, &tls)) {
    } else if (flags.Is("--target")) {
      target = flags.String();
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
    } else if (flags.Is("--early-exit-steps")) {
      base.set_early_exit_steps(static_cast<int>(flags.Int(0, kMaxInt)));
    } else if (flags.Is("--deadline-seconds")) {
      deadline_seconds = flags.Double(0);
    } else if (flags.Is("--stream")) {
      stream = flags.Switch();
    } else if (flags.Is("--json")) {
      json = flags.Switch();
    } else if (flags.Is("--list-models")) {
      list_models = flags.Switch();
    } else if (flags.Is("--health")) {
      health = true;
      health_service = flags.OptionalString().value_or("");
    } else if (flags.IsPositional()) {
      texts.push_back(flags.arg());
    } else {
      flags.Unknown();
    }
  }
  if (target.empty()) {
    std::cerr << "fastdiss-client: --target HOST:PORT is required (see --help)\n";
    return 2;
  }
  auto made = fastdiss::MakeChannel(target, tls);
  if (!made.ok()) {
    std::cerr << "fastdiss-client: " << made.status().message() << "\n";
    return 2;
  }
  std::shared_ptr<grpc::Channel> channel = std::move(made).value();
  auto deadline = [&] { return absl::ToChronoTime(absl::Now() + absl::Seconds(deadline_seconds)); };

  if (health) {
    auto stub = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(deadline());
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(health_service);
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = stub->Check(&context, request, &response);
    if (!status.ok()) {
      std::cerr << "fastdiss-client: health: " << CodeName(status) << ": " << status.error_message()
                << "\n";
      return 1;
    }
    std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status())
              << "\n";
    return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
  }

  auto stub = fastdiss::v1::Generator::NewStub(channel);
  if (list_models) {
    grpc::ClientContext context;
    context.set_deadline(deadline());
    fastdiss::v1::ListModelsResponse response;
    grpc::Status status = stub->ListModels(&context, fastdiss::v1::ListModelsRequest(), &response);
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
                << m.source_units() << (m.source_lowercase() ? ", lowercased" : "") << "\n";
      for (const auto& v : m.versions()) {
        std::cout << "  " << v.state() << "\t" << (v.version().empty() ? "-" : v.version()) << "\t"
                  << v.path() << (v.error().empty() ? "" : "\t" + v.error()) << "\n";
      }
    }
    return 0;
  }

  const bool from_stdin = texts.empty();
  int failures = 0;
  std::string line;
  for (size_t n = 0;; ++n) {
    std::string text;
    if (from_stdin) {
      if (!std::getline(std::cin, line)) break;
      text = line;
    } else {
      if (n >= texts.size()) break;
      text = texts[n];
    }
    GenerateRequest request = base;
    request.set_text(text);
    grpc::ClientContext context;
    context.set_deadline(deadline());
    GenerateResponse response;
    grpc::Status status;
    if (stream) {
      auto reader = stub->GenerateStream(&context, request);
      GenerateEvent event;
      while (reader->Read(&event)) {
        if (event.has_step()) {
          std::cout << "[step " << event.step().step() << "/" << event.step().steps() << "] "
                    << event.step().text() << "\n"
                    << std::flush;
        } else if (event.has_result()) {
          response = event.result();
        }
      }
      status = reader->Finish();
    } else {
      status = stub->Generate(&context, request, &response);
    }
    if (!status.ok()) {
      ++failures;
      std::cerr << "fastdiss-client: input " << n + 1 << ": " << CodeName(status) << ": "
                << status.error_message() << "\n";
      if (!json) std::cout << "\n";  // keeps output lines aligned with input lines
      continue;
    }
    std::cout << (json ? ResponseJson(text, response) : response.text()) << "\n" << std::flush;
  }
  return failures == 0 ? 0 : 1;
}
