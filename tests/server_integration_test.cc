// Integration tests of fastdiss-server: the real binary, started on port 0 with a tiny checkpoint
// the test makes, called through a real gRPC client (and its metrics over real HTTP).
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/subprocess.h"
#include "fastdiss/v1/generator.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "model/checkpoint.h"
#include "model/runtime.h"
#include "model/tokenizer.h"
#include "server/tls.h"
#include "tests/test_models.h"
#include "tests/test_util.h"

namespace fastdiss {
namespace {

using fastdiss::v1::GenerateEvent;
using fastdiss::v1::GenerateRequest;
using fastdiss::v1::GenerateResponse;
using grpc::health::v1::HealthCheckResponse;

// Long enough for every wait here on a loaded 2-core machine; tests never wait this long when they
// pass.
constexpr absl::Duration kPatience = absl::Seconds(120);

// A fastdiss-server child process whose stdout and stderr go to a log file.
class ServerProcess {
 public:
  static std::unique_ptr<ServerProcess> Start(const std::vector<std::string>& args,
                                              const std::string& log_path) {
    std::vector<std::string> argv = {FASTDISS_SERVER_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    auto server = std::unique_ptr<ServerProcess>(new ServerProcess());
    auto process = Subprocess::Start(argv, log_path);
    EXPECT_TRUE(process.ok()) << process.status();
    if (process.ok()) server->process_ = std::move(*process);
    return server;
  }

  std::string Log() const { return process_ ? process_->Log() : ""; }

  // Waits until the log matches `pattern`; returns its first group ("" on timeout or exit).
  std::string WaitForLog(const std::string& pattern, absl::Duration timeout = kPatience) {
    const std::regex re(pattern);
    const absl::Time give_up = absl::Now() + timeout;
    while (process_ && absl::Now() < give_up) {
      std::smatch match;
      const std::string log = Log();
      if (std::regex_search(log, match, re))
        return match.size() > 1 ? match[1].str() : match[0].str();
      if (process_->Exited()) return "";
      absl::SleepFor(absl::Milliseconds(5));
    }
    return "";
  }

  // Waits for the server's gRPC and metrics ports in its log; false if it never logged them.
  bool WaitForPorts() {
    const std::string grpc_port = WaitForLog("gRPC listening on [^:]+:([0-9]+)");
    const std::string metrics_port = WaitForLog("metrics on http://[^:]+:([0-9]+)/metrics");
    if (grpc_port.empty() || metrics_port.empty()) return false;
    grpc_port_ = std::stoi(grpc_port);
    metrics_port_ = std::stoi(metrics_port);
    return true;
  }
  bool WaitUntilReady() { return !WaitForLog("ready, health SERVING").empty(); }

  void Signal(int signal) { process_->Signal(signal); }
  int Wait(absl::Duration timeout = kPatience) {
    return process_ ? process_->Wait(absl::ToChronoMilliseconds(timeout)) : -1;
  }

  std::string target() const { return "127.0.0.1:" + std::to_string(grpc_port_); }
  int metrics_port() const { return metrics_port_; }

 private:
  ServerProcess() = default;

  std::unique_ptr<Subprocess> process_;
  int grpc_port_ = 0, metrics_port_ = 0;
};

// A client of one server.
class Client {
 public:
  explicit Client(const std::string& target)
      : Client(grpc::CreateChannel(target, grpc::InsecureChannelCredentials())) {}
  explicit Client(std::shared_ptr<grpc::Channel> channel)
      : channel_(std::move(channel)),
        stub_(fastdiss::v1::Generator::NewStub(channel_)),
        health_(grpc::health::v1::Health::NewStub(channel_)) {}

  // An infinite deadline sends the call without one.
  grpc::Status Generate(const GenerateRequest& request, GenerateResponse* response,
                        absl::Duration deadline = kPatience) {
    grpc::ClientContext context;
    if (deadline != absl::InfiniteDuration()) {
      context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    }
    return stub_->Generate(&context, request, response);
  }

  HealthCheckResponse::ServingStatus Health(const std::string& service = "") {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    grpc::Status status = health_->Check(&context, request, &response);
    return status.ok() ? response.status() : HealthCheckResponse::UNKNOWN;
  }

  fastdiss::v1::Generator::Stub* stub() { return stub_.get(); }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<fastdiss::v1::Generator::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

GenerateRequest Request(const std::string& text, int steps, uint64_t seed) {
  GenerateRequest request;
  request.set_text(text);
  request.set_steps(steps);
  request.set_seed(seed);
  return request;
}

// A request that keeps the tiny model busy for a while (about 2 s here): 200 steps over 8 x 8 rows.
GenerateRequest SlowRequest(uint64_t seed = 1) {
  GenerateRequest request = Request("a slow request", 200, seed);
  request.set_length_beam(8);
  request.set_noise_beam(8);
  return request;
}

std::string Text(int i) {
  static const std::vector<std::string> words = {"the", "cat", "sat", "on",
                                                 "a",   "mat", "dog", "ran"};
  std::string text;
  for (int w = 0; w < 1 + i % 6; ++w) text += (w ? " " : "") + words[(i * 3 + w) % words.size()];
  return text;
}

std::string HttpGet(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(std::chrono::seconds(30));
  auto result = client.Get(path.c_str());
  return result && result->status == 200 ? result->body : "";
}

// The value of one sample line ("name{labels} value") of a metrics text, or -1 when absent.
double Sample(const std::string& metrics, const std::string& series) {
  const size_t at = metrics.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(metrics.substr(at + series.size() + 2));
}

// Polls the server's metrics until `done(metrics)` holds.
bool WaitForMetrics(int port, const std::function<bool(const std::string&)>& done) {
  const absl::Time give_up = absl::Now() + kPatience;
  while (absl::Now() < give_up) {
    if (done(HttpGet(port, "/metrics"))) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    auto tokenizer = Tokenizer::FromSerializedProto(testing::TinySentencePieceModel(
        "abcdefghijklmnopqrstuvwxyz", {"the", "cat", "sat", "dog", "mat"}));
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    FastDissModel model = testing::TinyModel(tokenizer->vocab_size());
    ConfigTree metadata;
    ASSERT_TRUE(metadata.Put("checkpoint.step", int64_t{42}).ok());
    ASSERT_TRUE(SaveCheckpoint(dir_->File("tiny"), model, *tokenizer, metadata).ok());
    shared_ = Launch({}).release();
    ASSERT_NE(shared_, nullptr);
  }
  static void TearDownTestSuite() {
    delete shared_;
    delete dir_;
  }

  // Starts a server on the tiny checkpoint with extra "--set" overrides; waits until it is ready.
  // `checkpoint` replaces the tiny checkpoint's directory when given.
  static std::unique_ptr<ServerProcess> Launch(const std::vector<std::string>& sets,
                                               bool wait_ready = true,
                                               const std::string& checkpoint = "") {
    static int count = 0;
    std::vector<std::string> args = {
        "--model",        "tiny=" + (checkpoint.empty() ? dir_->File("tiny") : checkpoint),
        "--port",         "0",
        "--metrics-port", "0",
        "--set",          "server.host=127.0.0.1",
        "--set",          "runtime.threads=1"};
    for (const std::string& s : sets) {
      args.push_back("--set");
      args.push_back(s);
    }
    auto server =
        ServerProcess::Start(args, dir_->File("server-" + std::to_string(count++) + ".log"));
    EXPECT_TRUE(server->WaitForPorts()) << server->Log();
    if (wait_ready) EXPECT_TRUE(server->WaitUntilReady()) << server->Log();
    return server;
  }

  // Sends `requests` concurrently, one thread each; returns the answers in order.
  static std::vector<std::pair<grpc::Status, GenerateResponse>> Concurrently(
      Client& client, const std::vector<GenerateRequest>& requests) {
    std::vector<std::pair<grpc::Status, GenerateResponse>> answers(requests.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < requests.size(); ++i) {
      threads.emplace_back(
          [&, i] { answers[i].first = client.Generate(requests[i], &answers[i].second); });
    }
    for (auto& t : threads) t.join();
    return answers;
  }

  // 30 requests over K = 1, 2, 5, 10 and 20, with seeds from first_seed on.
  static std::vector<GenerateRequest> MixedRequests(uint64_t first_seed) {
    std::vector<GenerateRequest> requests;
    const std::vector<int> steps = {1, 2, 5, 10, 20};
    for (int i = 0; i < 30; ++i) requests.push_back(Request(Text(i), steps[i % 5], first_seed + i));
    return requests;
  }

  // Sends each request alone, then all of them at once, and expects every answer under load to
  // equal the one alone. Returns the token ids answered alone.
  static std::vector<std::vector<int>> AloneThenUnderLoad(
      Client& client, const std::vector<GenerateRequest>& requests) {
    std::vector<std::vector<int>> alone;
    for (const GenerateRequest& request : requests) {
      GenerateResponse response;
      const grpc::Status status = client.Generate(request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      alone.emplace_back(response.token_ids().begin(), response.token_ids().end());
    }
    auto loaded = Concurrently(client, requests);
    for (size_t i = 0; i < requests.size(); ++i) {
      EXPECT_TRUE(loaded[i].first.ok()) << i << ": " << loaded[i].first.error_message();
      const GenerateResponse& r = loaded[i].second;
      EXPECT_EQ(std::vector<int>(r.token_ids().begin(), r.token_ids().end()), alone[i])
          << "request " << i;
      EXPECT_EQ(r.steps(), requests[i].steps());
      EXPECT_EQ(r.seed(), requests[i].seed());
      EXPECT_EQ(r.model(), "tiny");
      EXPECT_GE(r.timing().total_seconds(), r.timing().compute_seconds());
    }
    return alone;
  }

  static testing::TempDir* dir_;
  static ServerProcess* shared_;
};

testing::TempDir* ServerTest::dir_ = nullptr;
ServerProcess* ServerTest::shared_ = nullptr;

TEST_F(ServerTest, ListModelsDescribesTheCheckpoint) {
  Client client(shared_->target());
  grpc::ClientContext context;
  fastdiss::v1::ListModelsResponse response;
  ASSERT_TRUE(client.stub()->ListModels(&context, {}, &response).ok());
  ASSERT_EQ(response.models_size(), 1);
  const auto& m = response.models(0);
  EXPECT_EQ(m.name(), "tiny");
  EXPECT_EQ(m.version().rfind("step-42-", 0), 0u) << m.version();
  EXPECT_EQ(m.max_steps(), 200);  // engine.max_steps 200, T = 200
  EXPECT_EQ(m.num_timesteps(), 200);
  EXPECT_EQ(m.max_source_tokens(), 24);
  EXPECT_EQ(m.device(), "cpu");
}

// Server reflection lists the services. Debian ships no generated reflection stubs, so this
// speaks the protocol through a generic call: ServerReflectionRequest{list_services: ""} is the
// two bytes 0x3a 0x00 (field 7, length 0); the answer names every service in plain text.
TEST_F(ServerTest, ReflectionListsTheServices) {
  auto channel = grpc::CreateChannel(shared_->target(), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue queue;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &queue);
  void* tag = nullptr;
  bool ok = false;
  auto await = [&](intptr_t expected) {
    EXPECT_TRUE(queue.Next(&tag, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(tag), expected);
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(await(1));
  grpc::Slice request_bytes(std::string("\x3a\x00", 2));
  grpc::ByteBuffer request(&request_bytes, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  ASSERT_TRUE(await(2));
  call->WritesDone(reinterpret_cast<void*>(3));
  ASSERT_TRUE(await(3));
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(4));
  ASSERT_TRUE(await(4));
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& slice : slices)
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  EXPECT_NE(bytes.find("fastdiss.v1.Generator"), std::string::npos);
  EXPECT_NE(bytes.find("grpc.health.v1.Health"), std::string::npos);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  await(5);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(ServerTest, SameTokensAloneAndUnderLoadUnderEveryPolicy) {
  const std::vector<GenerateRequest> requests = MixedRequests(1000);
  std::vector<std::vector<int>> reference;
  for (const std::string policy : {"step", "request", "none"}) {
    SCOPED_TRACE("policy " + policy);
    auto server = policy == "step" ? nullptr : Launch({"engine.policy=" + policy});
    Client client(server ? server->target() : shared_->target());
    const std::vector<std::vector<int>> alone = AloneThenUnderLoad(client, requests);
    if (reference.empty()) reference = alone;
    EXPECT_EQ(alone, reference) << "a policy changed the output";
  }
}

// The one model a test server hosts, as ListModels describes it (an empty one, and a failure,
// when the call fails or lists another number of models).
fastdiss::v1::ModelInfo OnlyModel(Client& client) {
  grpc::ClientContext context;
  fastdiss::v1::ListModelsResponse response;
  EXPECT_TRUE(client.stub()->ListModels(&context, {}, &response).ok());
  EXPECT_EQ(response.models_size(), 1);
  return response.models_size() == 1 ? response.models(0) : fastdiss::v1::ModelInfo();
}

// The same server on a CUDA GPU (scripts/gpu-check.sh runs this where LibTorch has one): the
// model reports its device, and every answer under concurrent load equals the answer alone.
TEST_F(ServerTest, OnCudaAnswersUnderLoadAsAlone) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU here";
  auto server = Launch({"models.tiny.device=cuda"});
  Client client(server->target());
  const std::string device = OnlyModel(client).device();
  EXPECT_EQ(device.rfind("cuda", 0), 0u) << device;
  for (const std::vector<int>& tokens : AloneThenUnderLoad(client, MixedRequests(2000))) {
    EXPECT_FALSE(tokens.empty());
  }
}

TEST_F(ServerTest, AnUnsetSeedIsRandomAndEchoedSoTheAnswerReproduces) {
  Client client(shared_->target());
  GenerateRequest request = Request("the cat sat", 5, 0);
  request.clear_seed();
  GenerateResponse first, second, again;
  ASSERT_TRUE(client.Generate(request, &first).ok());
  ASSERT_TRUE(client.Generate(request, &second).ok());
  EXPECT_NE(first.seed(), second.seed());
  request.set_seed(first.seed());
  ASSERT_TRUE(client.Generate(request, &again).ok());
  EXPECT_EQ(std::vector<int>(again.token_ids().begin(), again.token_ids().end()),
            std::vector<int>(first.token_ids().begin(), first.token_ids().end()));
}

TEST_F(ServerTest, StreamSendsIncreasingStepsThenTheSameResultAsGenerate) {
  Client client(shared_->target());
  const GenerateRequest request = Request("the dog ran on the mat", 20, 7);
  GenerateResponse unary;
  ASSERT_TRUE(client.Generate(request, &unary).ok());
  grpc::ClientContext context;
  auto reader = client.stub()->GenerateStream(&context, request);
  GenerateEvent event;
  int last_step = 0, results = 0;
  std::string last_text;
  GenerateResponse result;
  while (reader->Read(&event)) {
    if (event.has_step()) {
      EXPECT_EQ(results, 0) << "a step after the result";
      EXPECT_GT(event.step().step(), last_step);
      EXPECT_EQ(event.step().steps(), 20);
      last_step = event.step().step();
      last_text = event.step().text();
    } else {
      ASSERT_TRUE(event.has_result());
      result = event.result();
      ++results;
    }
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(results, 1);
  EXPECT_EQ(last_step, 20);  // intermediate steps may be coalesced, never the last
  EXPECT_EQ(last_text, result.text());
  EXPECT_EQ(std::vector<int>(result.token_ids().begin(), result.token_ids().end()),
            std::vector<int>(unary.token_ids().begin(), unary.token_ids().end()));
}

// Clients that stop reading their streams: the server keeps at most one step update waiting per
// stream (newer ones replace it), the engine finishes their requests without waiting for them, and
// other calls are answered meanwhile. A small receive window (1 KiB, no BDP growth) makes the
// server's writes stall after a few updates, as a slow reader's would.
TEST_F(ServerTest, StalledStreamReadersHoldOneUpdateEachAndStallNothingElse) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  auto stalled_channel =
      grpc::CreateCustomChannel(shared_->target(), grpc::InsecureChannelCredentials(), args);
  auto stub = fastdiss::v1::Generator::NewStub(stalled_channel);
  const std::string ok = "fastdiss_requests_total{code=\"OK\",model=\"tiny\"}";
  const double before = Sample(HttpGet(shared_->metrics_port(), "/metrics"), ok);
  constexpr int kStreams = 6;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<GenerateEvent>>> readers;
  for (int i = 0; i < kStreams; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    contexts.back()->set_deadline(absl::ToChronoTime(absl::Now() + kPatience));
    GenerateRequest request = Request("the cat sat on the mat", 200, 100 + i);
    readers.push_back(
        stub->GenerateStream(contexts.back().get(), request));  // started; nothing is read
  }
  // Another client is answered while the streams sit unread.
  Client other(shared_->target());
  GenerateResponse answer;
  EXPECT_TRUE(other.Generate(Request("the dog", 5, 3), &answer).ok());
  // Every stalled request finishes on the server (OK counted, no rows running) unread.
  EXPECT_TRUE(WaitForMetrics(shared_->metrics_port(), [&](const std::string& m) {
    return Sample(m, ok) >= before + kStreams + 1 &&
           Sample(m, "fastdiss_requests_running{model=\"tiny\"}") == 0;
  }));
  // Read now: updates skipped while the writes stalled, the last step and the result intact.
  for (int i = 0; i < kStreams; ++i) {
    GenerateEvent event;
    int updates = 0, last_step = 0;
    GenerateResponse result;
    while (readers[i]->Read(&event)) {
      if (event.has_step()) {
        ++updates;
        EXPECT_GT(event.step().step(), last_step);
        last_step = event.step().step();
      } else {
        result = event.result();
      }
    }
    ASSERT_TRUE(readers[i]->Finish().ok()) << i;
    EXPECT_EQ(last_step, 200) << i;
    EXPECT_LT(updates, 200) << i << ": no update was coalesced, so the writes never stalled";
    GenerateResponse alone;
    ASSERT_TRUE(other.Generate(Request("the cat sat on the mat", 200, 100 + i), &alone).ok());
    EXPECT_EQ(std::vector<int>(result.token_ids().begin(), result.token_ids().end()),
              std::vector<int>(alone.token_ids().begin(), alone.token_ids().end()))
        << i;
  }
}

TEST_F(ServerTest, ACancelledCallIsAnsweredCancelledAndFreesItsRows) {
  Client client(shared_->target());
  const std::string cancelled = "fastdiss_requests_total{code=\"CANCELLED\",model=\"tiny\"}";
  const double before = Sample(HttpGet(shared_->metrics_port(), "/metrics"), cancelled);
  grpc::ClientContext context;
  auto reader = client.stub()->GenerateStream(&context, SlowRequest());
  GenerateEvent event;
  ASSERT_TRUE(reader->Read(&event));  // running now
  context.TryCancel();
  while (reader->Read(&event)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(WaitForMetrics(shared_->metrics_port(), [&](const std::string& m) {
    return Sample(m, cancelled) == before + 1 &&
           Sample(m, "fastdiss_requests_running{model=\"tiny\"}") == 0;
  }));
}

// The server re-executes itself so that OpenBLAS's idle threads sleep soon instead of spinning on
// cores other work needs (model/runtime.h); a value the caller set is kept.
TEST_F(ServerTest, OpenBlasThreadTimeoutIsSetBeforeOpenBlasLoads) {
  const char* set = std::getenv("OPENBLAS_THREAD_TIMEOUT");
  const std::string want =
      std::string("blas_thread_timeout=") + (set != nullptr ? set : kBlasThreadTimeout);
  EXPECT_NE(shared_->Log().find(want), std::string::npos) << shared_->Log();
}

// Beams wider than the engine's batch are refused by the service's one validation, with the
// config key to change; a request that fits the same limit is answered.
TEST_F(ServerTest, BeamsWiderThanTheBatchAreRefusedWithTheLimit) {
  auto server = Launch({"engine.max_rows_per_batch=8"});
  Client client(server->target());
  GenerateRequest request = Request("the cat", 5, 1);
  request.set_length_beam(4);
  request.set_noise_beam(4);
  GenerateResponse response;
  grpc::Status status = client.Generate(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_NE(status.error_message().find("16 rows, more than this server's "
                                        "engine.max_rows_per_batch (8)"),
            std::string::npos)
      << status.error_message();
  request.set_noise_beam(2);
  status = client.Generate(request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(ServerTest, BadInputGetsTheRightCodeAndAClearMessage) {
  Client client(shared_->target());
  struct Case {
    std::string what;
    GenerateRequest request;
    grpc::StatusCode code;
    std::string message;
  };
  auto with = [](std::function<void(GenerateRequest*)> change) {
    GenerateRequest r = Request("the cat", 5, 1);
    change(&r);
    return r;
  };
  const std::vector<Case> cases = {
      {"unknown model", with([](auto* r) { r->set_model("nope"); }), grpc::StatusCode::NOT_FOUND,
       "unknown model 'nope'"},
      {"empty text", with([](auto* r) { r->set_text(""); }), grpc::StatusCode::INVALID_ARGUMENT,
       "empty"},
      // A string field that only a raw (or C++) client can send: the service parses the bytes
      // itself, so this is not gRPC's bare UNIMPLEMENTED for an unparsable request.
      {"invalid UTF-8", with([](auto* r) { r->set_text("the \xff\xfe cat"); }),
       grpc::StatusCode::INVALID_ARGUMENT, "text is not valid UTF-8"},
      {"whitespace only", with([](auto* r) { r->set_text("   "); }),
       grpc::StatusCode::INVALID_ARGUMENT, "no tokens"},
      {"too many tokens", with([](auto* r) { r->set_text(std::string(30, 'q')); }),
       grpc::StatusCode::INVALID_ARGUMENT, "at most 24"},
      {"too many bytes", with([](auto* r) { r->set_text(std::string(70000, 'q')); }),
       grpc::StatusCode::INVALID_ARGUMENT, "bytes"},
      {"steps 0", with([](auto* r) { r->set_steps(0); }), grpc::StatusCode::INVALID_ARGUMENT,
       "steps must be in [1, 200]"},
      {"steps too many", with([](auto* r) { r->set_steps(201); }),
       grpc::StatusCode::INVALID_ARGUMENT, "steps"},
      {"negative beam", with([](auto* r) { r->set_length_beam(-1); }),
       grpc::StatusCode::INVALID_ARGUMENT, "length_beam"},
      {"beam too wide", with([](auto* r) { r->set_noise_beam(17); }),
       grpc::StatusCode::INVALID_ARGUMENT, "noise_beam"},
      {"target length 0", with([](auto* r) { r->set_target_length(0); }),
       grpc::StatusCode::INVALID_ARGUMENT, "target_length"},
      {"target length too long", with([](auto* r) { r->set_target_length(25); }),
       grpc::StatusCode::INVALID_ARGUMENT, "target_length"},
      {"negative early exit", with([](auto* r) { r->set_early_exit_steps(-1); }),
       grpc::StatusCode::INVALID_ARGUMENT, "early_exit_steps must be in [0, 200]"},
      {"steps and a range", with([](auto* r) {
         r->set_min_steps(2);
         r->set_max_steps(4);
       }),
       grpc::StatusCode::INVALID_ARGUMENT, "give either steps or min_steps..max_steps"},
      {"half a range", with([](auto* r) {
         r->set_steps(0);
         r->set_max_steps(4);
       }),
       grpc::StatusCode::INVALID_ARGUMENT, "needs both min_steps and max_steps"},
      {"range upside down", with([](auto* r) {
         r->set_steps(0);
         r->set_min_steps(5);
         r->set_max_steps(4);
       }),
       grpc::StatusCode::INVALID_ARGUMENT, "1 <= min_steps <= max_steps <= 200"},
      {"range too long", with([](auto* r) {
         r->set_steps(0);
         r->set_min_steps(5);
         r->set_max_steps(201);
       }),
       grpc::StatusCode::INVALID_ARGUMENT, "got 5..201"},
      {"oversized message", with([](auto* r) { r->set_text(std::string(2 << 20, 'q')); }),
       grpc::StatusCode::RESOURCE_EXHAUSTED, ""},
  };
  for (const Case& c : cases) {
    GenerateResponse response;
    grpc::Status status = client.Generate(c.request, &response);
    EXPECT_EQ(status.error_code(), c.code) << c.what << ": " << status.error_message();
    EXPECT_NE(status.error_message().find(c.message), std::string::npos)
        << c.what << ": " << status.error_message();
  }
  // The server is unharmed.
  GenerateResponse response;
  EXPECT_TRUE(client.Generate(Request("the cat", 5, 1), &response).ok());
}

TEST_F(ServerTest, MetricsEndpointServesEveryFamily) {
  Client client(shared_->target());
  GenerateResponse response;
  ASSERT_TRUE(client.Generate(Request("the cat", 5, 1), &response).ok());
  const std::string metrics = HttpGet(shared_->metrics_port(), "/metrics");
  for (const std::string family :
       {"fastdiss_request_duration_seconds_bucket{model=\"tiny\",le=\"0.001\"}",
        "fastdiss_request_duration_seconds_count{model=\"tiny\"}",
        "fastdiss_queue_duration_seconds_sum{model=\"tiny\"}",
        "fastdiss_step_duration_seconds_count{model=\"tiny\"}",
        "fastdiss_admission_duration_seconds_count{model=\"tiny\"}",
        "fastdiss_batch_rows_count{model=\"tiny\"}", "fastdiss_requests_running{model=\"tiny\"}",
        "fastdiss_requests_waiting{model=\"tiny\"}",
        "fastdiss_denoising_steps_total{model=\"tiny\"}",
        "fastdiss_denoised_tokens_total{model=\"tiny\"}",
        "fastdiss_early_exit_steps_saved_total{model=\"tiny\"}",
        "fastdiss_requests_total{code=\"OK\",model=\"tiny\"}",
        "fastdiss_adaptive_steps_given_up_total{model=\"tiny\"}",
        "fastdiss_request_steps_total{model=\"tiny\"}",
        "fastdiss_late_request_steps_total{model=\"tiny\"}",
        "fastdiss_requests_total{code=\"NOT_FOUND\",model=\"unknown\"}"}) {
    EXPECT_GE(Sample(metrics, family), 0) << family << " missing from\n" << metrics.substr(0, 2000);
  }
  EXPECT_GE(Sample(metrics, "fastdiss_requests_total{code=\"OK\",model=\"tiny\"}"), 1);
  EXPECT_GE(Sample(metrics, "fastdiss_denoising_steps_total{model=\"tiny\"}"), 5);
  EXPECT_GE(Sample(metrics, "fastdiss_admission_duration_seconds_count{model=\"tiny\"}"), 1);
  EXPECT_NE(metrics.find("# TYPE fastdiss_step_duration_seconds histogram"), std::string::npos);
}

TEST_F(ServerTest, DeadlinesAnswerDeadlineExceeded) {
  auto server = Launch({"server.default_deadline_seconds=0.05"});
  Client client(server->target());
  GenerateResponse response;
  // No client deadline: the server's default bounds the request, checked at every step.
  EXPECT_EQ(client.Generate(SlowRequest(), &response, absl::InfiniteDuration()).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  // A client deadline longer than the default is the client's to set: the request runs on.
  EXPECT_TRUE(client.Generate(SlowRequest(), &response, kPatience).ok());
  // A client deadline shorter than the work.
  EXPECT_EQ(client.Generate(SlowRequest(), &response, absl::Milliseconds(20)).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(WaitForMetrics(server->metrics_port(), [](const std::string& m) {
    return Sample(m, "fastdiss_requests_total{code=\"DEADLINE_EXCEEDED\",model=\"tiny\"}") >= 1 &&
           Sample(m, "fastdiss_requests_running{model=\"tiny\"}") == 0;
  }));
  EXPECT_TRUE(client.Generate(Request("the cat", 1, 1), &response).ok());
}

TEST_F(ServerTest, AFullQueueAnswersResourceExhaustedAtOnce) {
  // Deadline-aware admission off: on a slow machine (a sanitizer build) it could refuse the
  // second request at once, predicting it to finish past its deadline, and nothing would wait.
  auto server =
      Launch({"engine.policy=none", "engine.max_queued_requests=1", "engine.deadline_aware=false"});
  Client client(server->target());
  const int port = server->metrics_port();
  GenerateResponse a_response, b_response;
  grpc::Status a_status, b_status;
  // EXPECT, not ASSERT: the threads below must be joined however the waits end.
  std::thread a([&] { a_status = client.Generate(SlowRequest(1), &a_response); });
  EXPECT_TRUE(WaitForMetrics(port, [](const std::string& m) {
    return Sample(m, "fastdiss_requests_running{model=\"tiny\"}") == 1;
  }));
  std::thread b([&] { b_status = client.Generate(SlowRequest(2), &b_response); });
  EXPECT_TRUE(WaitForMetrics(port, [](const std::string& m) {
    return Sample(m, "fastdiss_requests_waiting{model=\"tiny\"}") == 1;
  }));
  GenerateResponse response;
  const absl::Time start = absl::Now();
  grpc::Status full = client.Generate(Request("the cat", 1, 1), &response);
  EXPECT_EQ(full.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << full.error_message();
  EXPECT_NE(full.error_message().find("queue is full"), std::string::npos);
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));  // answered at once, not after the queue moved
  a.join();
  b.join();
  EXPECT_TRUE(a_status.ok()) << a_status.error_message();
  EXPECT_TRUE(b_status.ok()) << b_status.error_message();
}

TEST_F(ServerTest, HealthGoesNotServingServingNotServingAndSigtermAnswersEveryRequest) {
  // A long warm-up (40 requests of 200 steps) keeps the server loading while the test looks.
  std::string warmup = "server.warmup_steps=[200";
  for (int i = 1; i < 40; ++i) warmup += ", 200";
  // Deadline-aware admission off: on a slow machine (a sanitizer build) it refused one of the
  // requests below at once, predicting it past the default deadline; this test is about draining.
  auto server =
      Launch({warmup + "]", "server.drain_grace_seconds=100", "engine.deadline_aware=false"},
             /*wait_ready=*/false);
  Client client(server->target());
  EXPECT_EQ(client.Health(), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(client.Health("fastdiss.v1.Generator"), HealthCheckResponse::NOT_SERVING);
  GenerateResponse response;
  EXPECT_EQ(client.Generate(Request("the cat", 1, 1), &response).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  ASSERT_TRUE(server->WaitUntilReady()) << server->Log();
  EXPECT_EQ(client.Health(), HealthCheckResponse::SERVING);
  EXPECT_EQ(client.Health("fastdiss.v1.Generator"), HealthCheckResponse::SERVING);

  // Requests in flight, two of them slow; SIGTERM once the server has all of them.
  std::vector<GenerateRequest> requests = {SlowRequest(1), SlowRequest(2)};
  for (int i = 0; i < 10; ++i) requests.push_back(Request(Text(i), 1 + i, i));
  std::vector<std::pair<grpc::Status, GenerateResponse>> answers;
  std::thread load([&] { answers = Concurrently(client, requests); });
  ASSERT_TRUE(WaitForMetrics(server->metrics_port(), [&](const std::string& m) {
    return Sample(m, "fastdiss_requests_waiting{model=\"tiny\"}") +
               Sample(m, "fastdiss_requests_running{model=\"tiny\"}") +
               Sample(m, "fastdiss_requests_total{code=\"OK\",model=\"tiny\"}") >=
           static_cast<double>(requests.size());
  }));
  server->Signal(SIGTERM);
  ASSERT_FALSE(server->WaitForLog("draining").empty()) << server->Log();
  if (server->Log().find("stopped") == std::string::npos) {  // still draining the slow requests
    EXPECT_EQ(client.Health(), HealthCheckResponse::NOT_SERVING);
    GenerateResponse late;
    EXPECT_EQ(client.Generate(Request("the cat", 1, 1), &late).error_code(),
              grpc::StatusCode::UNAVAILABLE);
  }
  load.join();
  for (size_t i = 0; i < answers.size(); ++i) {
    EXPECT_TRUE(answers[i].first.ok())
        << "request " << i << ": " << answers[i].first.error_message();
  }
  EXPECT_EQ(server->Wait(), 0) << server->Log();
}

// A model trained on spaced small letters (g2p) reads a plain or capitalized word as its spaced
// letters: the server applies the checkpoint's model.source_units and source_lowercase before
// tokenizing, so "Hello" is not silently read as unknown pieces. A model with the defaults reads
// text as given.
TEST_F(ServerTest, CharacterModelsReadPlainAndSpacedWordsAlike) {
  auto tokenizer =
      Tokenizer::FromSerializedProto(testing::TinySentencePieceModel("abcdefghijklmnopqrstuvwxyz"));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  ModelConfig config = testing::TinyConfig(tokenizer->vocab_size());
  config.source_units = "characters";
  config.source_lowercase = true;
  torch::manual_seed(7);
  FastDissModel model(config);
  ASSERT_TRUE(SaveCheckpoint(dir_->File("spelled"), model, *tokenizer, ConfigTree()).ok());
  auto server =
      ServerProcess::Start({"--model", "spelled=" + dir_->File("spelled"), "--model",
                            "tiny=" + dir_->File("tiny"), "--port", "0", "--metrics-port", "0",
                            "--set", "server.host=127.0.0.1", "--set", "runtime.threads=1"},
                           dir_->File("spelled.log"));
  ASSERT_TRUE(server->WaitForPorts()) << server->Log();
  ASSERT_TRUE(server->WaitUntilReady()) << server->Log();
  Client client(server->target());

  grpc::ClientContext context;
  fastdiss::v1::ListModelsResponse models;
  ASSERT_TRUE(client.stub()->ListModels(&context, {}, &models).ok());
  std::map<std::string, std::string> units;
  std::map<std::string, bool> lowercase;
  for (const auto& m : models.models()) {
    units[m.name()] = m.source_units();
    lowercase[m.name()] = m.source_lowercase();
  }
  EXPECT_EQ(units["spelled"], "characters");
  EXPECT_EQ(units["tiny"], "text");
  EXPECT_TRUE(lowercase["spelled"]);
  EXPECT_FALSE(lowercase["tiny"]);

  std::vector<std::vector<int>> answers;
  for (const char* text : {"hello", "h e l l o", "hel lo", " h\te l l o ", "Hello", "H E L L O"}) {
    GenerateRequest request = Request(text, 5, 11);
    request.set_model("spelled");
    GenerateResponse response;
    const grpc::Status status = client.Generate(request, &response);
    ASSERT_TRUE(status.ok()) << text << ": " << status.error_message();
    answers.emplace_back(response.token_ids().begin(), response.token_ids().end());
  }
  for (size_t i = 1; i < answers.size(); ++i) EXPECT_EQ(answers[i], answers[0]) << "spelling " << i;

  // The source limit counts tokens after the cut: 30 letters exceed 24 and are refused, not cut.
  GenerateRequest too_long = Request(std::string(30, 'a'), 1, 1);
  too_long.set_model("spelled");
  GenerateResponse response;
  const grpc::Status refused = client.Generate(too_long, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(refused.error_message().find("takes at most 24"), std::string::npos)
      << refused.error_message();
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(), 0) << server->Log();
}

// Certificates made with openssl for the TLS tests: a CA, a server certificate for localhost and
// a client certificate signed by it, and a second CA with its own client certificate.
struct TestCertificates {
  std::string ca, server_cert, server_key, client_cert, client_key, other_ca, other_client_cert,
      other_client_key;
};

bool MakeCertificates(const testing::TempDir& dir, TestCertificates* certs) {
  const std::string d = dir.File("tls");
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string script =
      "set -e; mkdir -p " + d + "; cd " + d + "\n" + "openssl req -x509 " + key +
      " -keyout ca.key -out ca.crt -days 2 -subj /CN=fastdiss-test-ca\n" + "openssl req -x509 " +
      key + " -keyout other-ca.key -out other-ca.crt -days 2 -subj /CN=other-ca\n" +
      "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext\n" + "openssl req " +
      key + " -keyout server.key -out server.csr -subj /CN=localhost\n" +
      "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile "
      "server.ext "
      "-out server.crt\n" +
      "openssl req " + key +
      " -keyout client.key -out client.csr -subj /CN=fastdiss-test-client\n" +
      "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out "
      "client.crt\n" +
      "openssl req " + key +
      " -keyout other-client.key -out other-client.csr -subj /CN=other-client\n" +
      "openssl x509 -req -in other-client.csr -CA other-ca.crt -CAkey other-ca.key -CAcreateserial "
      "-days 2 "
      "-out other-client.crt\n";
  testing::WriteFile(dir.File("make-certs.sh"), script);
  if (std::system(
          ("bash " + dir.File("make-certs.sh") + " > " + dir.File("make-certs.log") + " 2>&1")
              .c_str()) != 0) {
    return false;
  }
  *certs = {d + "/ca.crt",           d + "/server.crt",      d + "/server.key",
            d + "/client.crt",       d + "/client.key",      d + "/other-ca.crt",
            d + "/other-client.crt", d + "/other-client.key"};
  return true;
}

// A client over TLS trusting `ca`, with a client certificate when `cert` is given.
Client TlsClient(const std::string& target, const std::string& ca, const std::string& cert = "",
                 const std::string& key = "") {
  ClientTlsOptions tls;
  tls.enabled = true;
  tls.ca = ca;
  tls.cert = cert;
  tls.key = key;
  tls.server_name = "localhost";
  auto channel = MakeChannel(target, tls);
  EXPECT_TRUE(channel.ok()) << channel.status();
  return Client(channel.ok() ? *channel
                             : grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
}

TEST_F(ServerTest, TlsAnswersTlsClientsAndRefusesPlaintextAndUntrustingOnes) {
  TestCertificates certs;
  ASSERT_TRUE(MakeCertificates(*dir_, &certs))
      << "openssl failed (scripts/install-deps.sh installs it): "
      << testing::ReadFile(dir_->File("make-certs.log"));
  auto server = Launch({"tls.cert=" + certs.server_cert, "tls.key=" + certs.server_key});
  EXPECT_NE(server->Log().find("(TLS;"), std::string::npos) << server->Log();
  GenerateResponse plain, secure;
  ASSERT_TRUE(Client(shared_->target()).Generate(Request("the cat", 5, 3), &plain).ok());
  Client tls = TlsClient(server->target(), certs.ca);
  const grpc::Status ok = tls.Generate(Request("the cat", 5, 3), &secure);
  ASSERT_TRUE(ok.ok()) << ok.error_message() << "\n" << server->Log();
  EXPECT_EQ(secure.text(), plain.text());
  EXPECT_EQ(tls.Health("fastdiss.v1.Generator"), HealthCheckResponse::SERVING);

  // Plaintext to the TLS port, and TLS trusting another CA: refused at the handshake, at once.
  GenerateResponse response;
  const grpc::Status plaintext =
      Client(server->target()).Generate(Request("the cat", 5, 3), &response);
  EXPECT_EQ(plaintext.error_code(), grpc::StatusCode::UNAVAILABLE) << plaintext.error_message();
  const grpc::Status untrusted =
      TlsClient(server->target(), certs.other_ca).Generate(Request("the cat", 5, 3), &response);
  EXPECT_EQ(untrusted.error_code(), grpc::StatusCode::UNAVAILABLE) << untrusted.error_message();
  // The metrics port stays plain HTTP.
  EXPECT_NE(HttpGet(server->metrics_port(), "/metrics").find("fastdiss_"), std::string::npos);
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(), 0) << server->Log();
}

TEST_F(ServerTest, MutualTlsRefusesClientsWithoutACertificateItsCaSigned) {
  TestCertificates certs;
  ASSERT_TRUE(MakeCertificates(*dir_, &certs)) << testing::ReadFile(dir_->File("make-certs.log"));
  auto server = Launch({"tls.cert=" + certs.server_cert, "tls.key=" + certs.server_key,
                        "tls.client_ca=" + certs.ca});
  EXPECT_NE(server->Log().find("mutual TLS"), std::string::npos) << server->Log();
  GenerateResponse response;
  const grpc::Status with_cert =
      TlsClient(server->target(), certs.ca, certs.client_cert, certs.client_key)
          .Generate(Request("the", 2, 1), &response);
  EXPECT_TRUE(with_cert.ok()) << with_cert.error_message() << "\n" << server->Log();
  const grpc::Status without =
      TlsClient(server->target(), certs.ca).Generate(Request("the", 2, 1), &response);
  EXPECT_EQ(without.error_code(), grpc::StatusCode::UNAVAILABLE) << without.error_message();
  const grpc::Status foreign =
      TlsClient(server->target(), certs.ca, certs.other_client_cert, certs.other_client_key)
          .Generate(Request("the", 2, 1), &response);
  EXPECT_EQ(foreign.error_code(), grpc::StatusCode::UNAVAILABLE) << foreign.error_message();
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(), 0) << server->Log();
}

// A model served with bfloat16 linear layers answers, and ListModels says so.
TEST_F(ServerTest, ABFloat16ModelAnswersAndListModelsSaysSo) {
  auto server = Launch({"models.tiny.precision=bfloat16"});
  Client client(server->target());
  EXPECT_EQ(OnlyModel(client).precision(), "bfloat16");
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    GenerateResponse response;
    const grpc::Status status =
        client.Generate(Request(Text(static_cast<int>(seed)), 5, seed), &response);
    ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << server->Log();
    EXPECT_EQ(response.steps(), 5);
    EXPECT_FALSE(response.token_ids().empty());
  }
  EXPECT_NE(server->Log().find("bfloat16"), std::string::npos) << server->Log();
}

// Clamping is on unless the request, the model's clamp or server.default_clamp says otherwise,
// and it changes the trajectory (the tiny model's score at K = 10).
TEST_F(ServerTest, ClampingFollowsTheRequestElseTheModelElseTheServersDefault) {
  auto server = Launch({"server.default_clamp=false"});
  auto per_model = Launch({"server.default_clamp=false", "models.tiny.clamp=true"});
  Client by_config(server->target());
  Client by_model(per_model->target());
  Client by_default(shared_->target());
  EXPECT_TRUE(OnlyModel(by_default).clamp());
  EXPECT_FALSE(OnlyModel(by_config).clamp());
  EXPECT_TRUE(OnlyModel(by_model).clamp());
  int differed = 0;
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    GenerateRequest unset = Request(Text(static_cast<int>(seed)), 10, seed);
    GenerateRequest on = unset, off = unset;
    on.set_clamp(true);
    off.set_clamp(false);
    GenerateResponse default_on, explicit_on, default_off, explicit_off;
    ASSERT_TRUE(by_default.Generate(unset, &default_on).ok());
    ASSERT_TRUE(by_default.Generate(on, &explicit_on).ok());
    ASSERT_TRUE(by_config.Generate(unset, &default_off).ok());
    ASSERT_TRUE(by_config.Generate(off, &explicit_off).ok());
    EXPECT_EQ(default_on.text(), explicit_on.text());
    EXPECT_EQ(default_on.score(), explicit_on.score());
    EXPECT_EQ(default_off.text(), explicit_off.text());
    EXPECT_EQ(default_off.score(), explicit_off.score());
    GenerateResponse model_on;
    ASSERT_TRUE(by_model.Generate(unset, &model_on).ok());
    EXPECT_EQ(model_on.text(), default_on.text());
    EXPECT_EQ(model_on.score(), default_on.score());
    differed += default_on.score() != default_off.score();
  }
  EXPECT_EQ(differed, 3) << "clamping did not change the trajectory";
}

// Early exit: the response says how many steps ran, the metric counts the ones saved, the
// server's default applies to requests that leave the field unset, and 0 turns it off (a bad
// value is among BadInputGetsTheRightCodeAndAClearMessage's cases).
TEST_F(ServerTest, EarlyExitAnswersWithTheStepsItRanAndCountsTheRest) {
  auto server = Launch({"server.default_early_exit_steps=2"});
  Client client(server->target());
  int saved = 0, exited = 0;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    GenerateResponse by_default, explicit_off, explicit_on;
    ASSERT_TRUE(client.Generate(Request(Text(static_cast<int>(seed)), 50, seed), &by_default).ok());
    GenerateRequest off = Request(Text(static_cast<int>(seed)), 50, seed);
    off.set_early_exit_steps(0);
    ASSERT_TRUE(client.Generate(off, &explicit_off).ok());
    GenerateRequest on = off;
    on.set_early_exit_steps(2);
    ASSERT_TRUE(client.Generate(on, &explicit_on).ok());
    EXPECT_EQ(explicit_off.steps(), 50);
    EXPECT_LE(by_default.steps(), 50);
    EXPECT_EQ(by_default.steps(), explicit_on.steps());
    EXPECT_EQ(by_default.text(), explicit_on.text());
    saved += 2 * (50 - by_default.steps());
    exited += by_default.steps() < 50;
  }
  EXPECT_GT(exited, 0) << "no request settled before step 50: the case tests nothing";
  const std::string series = "fastdiss_early_exit_steps_saved_total{model=\"tiny\"}";
  EXPECT_TRUE(WaitForMetrics(server->metrics_port(), [&](const std::string& m) {
    return Sample(m, series) == saved;
  })) << HttpGet(server->metrics_port(), "/metrics");
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(), 0) << server->Log();
}

// Load-adaptive steps: with room to spare a range runs its most steps; when the latency target
// cannot be met it runs its fewest, says so in planned_steps and the stream, and the metric counts
// the steps given up.
TEST_F(ServerTest, AStepRangeRunsAsManyStepsAsTheLatencyTargetAllows) {
  GenerateRequest range = Request(Text(3), 5, 3);
  range.set_steps(0);
  range.set_min_steps(2);
  range.set_max_steps(10);
  {
    Client client(shared_->target());
    GenerateResponse response;
    ASSERT_TRUE(client.Generate(range, &response).ok());
    EXPECT_EQ(response.planned_steps(), 10);
    EXPECT_EQ(response.steps(), 10);
  }
  auto server = Launch({"engine.adaptive_latency_target_seconds=0.000001"});
  Client client(server->target());
  GenerateResponse reduced, fixed;
  ASSERT_TRUE(client.Generate(range, &reduced).ok());
  EXPECT_EQ(reduced.planned_steps(), 2);
  EXPECT_EQ(reduced.steps(), 2);
  ASSERT_TRUE(client.Generate(Request(Text(3), 2, 3), &fixed).ok());
  EXPECT_EQ(reduced.text(), fixed.text());  // the same as asking for K = 2
  EXPECT_EQ(fixed.planned_steps(), 2);
  grpc::ClientContext context;
  auto reader = client.stub()->GenerateStream(&context, range);
  GenerateEvent event;
  std::vector<int> planned;
  while (reader->Read(&event)) {
    planned.push_back(event.has_step() ? event.step().steps() : event.result().planned_steps());
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(planned, std::vector<int>(planned.size(), 2));
  const std::string series = "fastdiss_adaptive_steps_given_up_total{model=\"tiny\"}";
  EXPECT_TRUE(WaitForMetrics(server->metrics_port(), [&](const std::string& m) {
    return Sample(m, series) == 16;
  })) << HttpGet(server->metrics_port(), "/metrics");
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(), 0) << server->Log();
}

// Writes a tiny checkpoint whose metadata says `step` (so its version is step-<step>-...) as
// version folder `number` of `base`, the way a publisher should: complete under a temporary
// name, then renamed.
void PublishVersion(const std::string& base, int number, int64_t step, bool broken = false) {
  auto tokenizer = Tokenizer::FromSerializedProto(testing::TinySentencePieceModel(
      "abcdefghijklmnopqrstuvwxyz", {"the", "cat", "sat", "dog", "mat"}));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  ConfigTree metadata;
  ASSERT_TRUE(metadata.Put("checkpoint.step", step).ok());
  const std::string staging = base + "/incoming-" + std::to_string(number);
  std::filesystem::create_directories(base);
  FastDissModel model = testing::TinyModel(tokenizer->vocab_size());
  ASSERT_TRUE(SaveCheckpoint(staging, model, *tokenizer, metadata).ok());
  if (broken)
    std::filesystem::resize_file(staging + "/weights.pt", 100);  // no longer what MANIFEST says
  std::filesystem::rename(staging, base + "/" + std::to_string(number));
}

// The versions ListModels reports for the tiny model, as "version STATE" strings.
std::vector<std::string> ListedVersions(Client& client) {
  grpc::ClientContext context;
  fastdiss::v1::ListModelsResponse response;
  std::vector<std::string> versions;
  if (!client.stub()->ListModels(&context, {}, &response).ok() || response.models_size() != 1)
    return versions;
  for (const auto& v : response.models(0).versions())
    versions.push_back(v.version() + " " + v.state());
  return versions;
}

// Live model updates: three new versions under steady load, the second one broken. Every call is
// answered OK; each client sees versions only move forward; the broken one is refused with the
// old version serving; ListModels says so.
TEST_F(ServerTest, NewModelVersionsReplaceTheOldUnderLoadWithoutAFailedCall) {
  const std::string base = dir_->File("versions");
  ASSERT_NO_FATAL_FAILURE(PublishVersion(base, 1, 1001));
  auto server = Launch({}, true, base);
  Client client(server->target());
  std::atomic<bool> stop{false};
  std::atomic<int> newest{0};  // the newest version step that has answered a call
  std::vector<std::vector<std::pair<grpc::StatusCode, std::string>>> seen(3);
  std::vector<std::thread> load;
  for (int t = 0; t < 3; ++t) {
    load.emplace_back([&, t] {
      for (uint64_t i = 0; !stop; ++i) {
        GenerateResponse response;
        grpc::Status status =
            client.Generate(Request(Text(static_cast<int>(i)), 10, 100 * t + i), &response);
        seen[t].emplace_back(status.error_code(),
                             status.ok() ? response.model_version() : status.error_message());
        if (status.ok() && response.model_version().size() >= 9) {
          const int step = std::stoi(response.model_version().substr(5, 4));
          for (int seen_step = newest;
               step > seen_step && !newest.compare_exchange_weak(seen_step, step);) {
          }
        }
      }
    });
  }
  struct JoinOnExit {  // also when an assertion ends the test early
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~JoinOnExit() {
      stop = true;
      for (auto& t : threads) {
        if (t.joinable()) t.join();
      }
    }
  } join_on_exit{stop, load};
  auto wait_for_versions = [&](const std::function<bool(const std::vector<std::string>&)>& done) {
    const absl::Time give_up = absl::Now() + kPatience;
    while (absl::Now() < give_up) {
      if (done(ListedVersions(client))) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  };
  auto available = [](const std::string& step) {
    return [step](const std::vector<std::string>& v) {
      return !v.empty() && v[0].rfind("step-" + step + "-", 0) == 0 &&
             v[0].find(" AVAILABLE") != std::string::npos;
    };
  };
  // Each version answers calls before the next is published, however slow the machine.
  auto wait_for_answer_from = [&](int step) {
    const absl::Time give_up = absl::Now() + kPatience;
    while (newest < step && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
    return newest >= step;
  };
  EXPECT_TRUE(wait_for_answer_from(1001));
  ASSERT_NO_FATAL_FAILURE(PublishVersion(base, 2, 1002));
  server->Signal(SIGHUP);
  EXPECT_TRUE(wait_for_versions(available("1002"))) << server->Log();
  EXPECT_TRUE(wait_for_answer_from(1002));
  ASSERT_NO_FATAL_FAILURE(PublishVersion(base, 3, 1003, /*broken=*/true));
  server->Signal(SIGHUP);
  EXPECT_TRUE(wait_for_versions([](const std::vector<std::string>& v) {
    return !v.empty() && v.back().find(" FAILED") != std::string::npos;
  })) << server->Log();
  EXPECT_TRUE(available("1002")(ListedVersions(client)));
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_NO_FATAL_FAILURE(PublishVersion(base, 4, 1004));
  server->Signal(SIGHUP);
  EXPECT_TRUE(wait_for_versions(available("1004"))) << server->Log();
  EXPECT_TRUE(wait_for_answer_from(1004));
  stop = true;
  for (auto& t : load) t.join();
  std::set<std::string> versions_seen;
  for (const auto& calls : seen) {
    int last = 0;
    for (const auto& [code, version] : calls) {
      ASSERT_EQ(code, grpc::StatusCode::OK) << version;
      const int step = std::stoi(version.substr(5, 4));  // "step-100N-..."
      EXPECT_GE(step, last) << "a call went back to an older version";
      EXPECT_NE(step, 1003) << "the broken version answered";
      last = step;
      versions_seen.insert(version.substr(0, 9));
    }
  }
  EXPECT_EQ(versions_seen, (std::set<std::string>{"step-1001", "step-1002", "step-1004"}));
  EXPECT_NE(server->Log().find("refused the new version"), std::string::npos) << server->Log();
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(), 0) << server->Log();
}

TEST_F(ServerTest, BadConfigOrCheckpointStopsTheServerWithAClearMessage) {
  auto unknown_key =
      ServerProcess::Start({"--model", "tiny=" + dir_->File("tiny"), "--set", "engine.max_rows=3"},
                           dir_->File("bad-key.log"));
  EXPECT_EQ(unknown_key->Wait(), 2);
  EXPECT_NE(unknown_key->Log().find("engine.max_rows"), std::string::npos) << unknown_key->Log();
  auto missing = ServerProcess::Start(
      {"--model", "tiny=" + dir_->File("missing"), "--port", "0", "--metrics-port", "-1"},
      dir_->File("missing.log"));
  EXPECT_EQ(missing->Wait(), 1);
  EXPECT_NE(missing->Log().find("model 'tiny'"), std::string::npos) << missing->Log();
  // TLS: a key without its certificate is bad config; an unreadable or non-PEM file stops the
  // start.
  auto half =
      ServerProcess::Start({"--model", "tiny=" + dir_->File("tiny"), "--set", "tls.key=/x.key"},
                           dir_->File("tls-half.log"));
  EXPECT_EQ(half->Wait(), 2);
  EXPECT_NE(half->Log().find("tls.cert and tls.key go together"), std::string::npos) << half->Log();
  testing::WriteFile(dir_->File("not-pem.crt"), "not a certificate");
  auto not_pem = ServerProcess::Start(
      {"--model", "tiny=" + dir_->File("tiny"), "--port", "0", "--metrics-port", "-1", "--set",
       "tls.cert=" + dir_->File("not-pem.crt"), "--set", "tls.key=" + dir_->File("no-such.key")},
      dir_->File("tls-bad.log"));
  EXPECT_EQ(not_pem->Wait(), 1);
  EXPECT_NE(not_pem->Log().find("tls.cert: '" + dir_->File("not-pem.crt") + "' is not a PEM file"),
            std::string::npos)
      << not_pem->Log();
}

}  // namespace
}  // namespace fastdiss
