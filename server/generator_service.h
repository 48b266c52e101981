// GeneratorService: the fastdiss.v1.Generator gRPC service, a thin callback-API adapter over the
// hosted models' engines. Each call is validated, turned into a GenerateTask whose completion
// finishes the call's reactor, and scheduled; no handler ever waits. The call's deadline (or the
// configured default) becomes the task's deadline, and a cancelled call cancels its task.
// Streaming calls get one event per step; a reader slower than the engine sees the latest step
// (intermediate ones are dropped, never queued without bound) and always the final result.
//
// Models are added while the gRPC server already answers health checks (calls before they are all
// in get UNAVAILABLE); StartDraining turns new calls away with UNAVAILABLE. A model's version can
// be replaced while it serves: new calls go to the new one, and each call holds the version it
// started on until it ends, so in-flight work finishes there. Thread-safe. The service must
// outlive the grpc::Server it is registered with.
#ifndef FASTDISS_SERVER_GENERATOR_SERVICE_H_
#define FASTDISS_SERVER_GENERATOR_SERVICE_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fastdiss/v1/generator.grpc.pb.h"
#include "server/metrics.h"
#include "server/served_model.h"

namespace fastdiss {

struct GeneratorServiceOptions {
  std::string default_model;  // empty: the only model, when there is exactly one
  absl::Duration default_deadline = absl::Seconds(60);
  int64_t max_text_bytes = 65536;
  int default_early_exit_steps = 0;  // for requests that leave early_exit_steps unset
};

// What a valid request becomes before it is scheduled (exposed for tests of the validation).
struct PreparedRequest {
  std::shared_ptr<ServedModel> model;
  std::unique_ptr<GenerateTask> task;
};

// A model version's place in its model's life, for ListModels.
struct VersionState {
  std::string version;  // empty while a load has not read it yet
  std::string path;     // the checkpoint directory
  std::string state;    // "LOADING", "AVAILABLE", "RETIRING" (finishing its calls), "FAILED"
  std::string error;    // why a FAILED load was refused
};

// Generate and GenerateStream take raw bytes (server/raw_request.h); ListModels is typed.
using GeneratorServiceBase = fastdiss::v1::Generator::WithRawCallbackMethod_Generate<
    fastdiss::v1::Generator::WithRawCallbackMethod_GenerateStream<
        fastdiss::v1::Generator::CallbackService>>;

class GeneratorService final : public GeneratorServiceBase {
 public:
  GeneratorService(GeneratorServiceOptions options, ServerMetrics* metrics);

  // Call SetReady once all are added.
  void AddModel(std::shared_ptr<ServedModel> model);
  // Makes `model` the version new calls of its name get; the one it replaces (returned) keeps
  // its calls and shows as RETIRING while any other holder keeps it alive.
  std::shared_ptr<ServedModel> ReplaceModel(std::shared_ptr<ServedModel> model);
  // A load of a new version of `name` begins (`path`), or failed (`error`); both clear on
  // ReplaceModel. ListModels shows them.
  void SetLoading(const std::string& name, const std::string& path);
  void SetLoadFailed(const std::string& name, const std::string& path, const std::string& error);
  // The version of `name` new calls get (null when there is no such model).
  std::shared_ptr<ServedModel> Current(const std::string& name) const;
  // Every version of every model still alive: the current ones and those finishing their calls.
  std::vector<std::shared_ptr<ServedModel>> LiveVersions() const;
  void SetReady();
  // New calls are answered UNAVAILABLE from now on; calls already taken run to the end.
  void StartDraining();
  // Sets the waiting/running gauges from the engines (called at each scrape).
  void UpdateLoadMetrics();

  // Validates `request` and builds its task (callbacks left empty). `resolved` (optional) receives
  // the model the request was found to name, also when a later check fails (for metrics labels).
  absl::StatusOr<PreparedRequest> Prepare(const fastdiss::v1::GenerateRequest& request,
                                          absl::Time deadline,
                                          std::shared_ptr<ServedModel>* resolved = nullptr);

  // A GenerateRequest in, a GenerateResponse out, as bytes.
  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  // A GenerateRequest in, GenerateEvents out, as bytes.
  grpc::ServerWriteReactor<grpc::ByteBuffer>* GenerateStream(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const fastdiss::v1::ListModelsRequest* request,
                                       fastdiss::v1::ListModelsResponse* response) override;

  ServerMetrics* metrics() const { return metrics_; }

 private:
  struct Hosted {
    std::shared_ptr<ServedModel> current;
    std::vector<std::weak_ptr<ServedModel>> retiring;
    std::optional<VersionState> pending;  // a load under way or refused
  };
  // The model a request names (or the default), NOT_FOUND / INVALID_ARGUMENT / UNAVAILABLE.
  absl::StatusOr<std::shared_ptr<ServedModel>> FindModel(const std::string& name);
  std::vector<VersionState> VersionsLocked(const Hosted& hosted) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time Deadline(const grpc::CallbackServerContext& context) const;
  // gRPC starts the handler even for a call that ended before its request arrived (a deadline of
  // a few ms, a client that cancelled at once); its bytes are then a null buffer. Such a call is
  // answered and counted as what ended it (DEADLINE_EXCEEDED, CANCELLED), not as a bad request.
  absl::Status Alive(const grpc::CallbackServerContext& context, absl::Time deadline,
                     const grpc::ByteBuffer& bytes) const;
  // "a, b": the hosted models' names, for error messages.
  std::string ModelNamesLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const GeneratorServiceOptions options_;
  ServerMetrics* const metrics_;

  mutable absl::Mutex mu_;
  std::map<std::string, Hosted> models_ ABSL_GUARDED_BY(mu_);
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace fastdiss

#endif  // FASTDISS_SERVER_GENERATOR_SERVICE_H_
