// ModelServer: fastdiss-server assembled from its config: the gRPC server (Generator service,
// grpc.health.v1 health, server reflection), the Prometheus endpoint, and one ServedModel per
// configured model.
//
// Start brings the gRPC port up first, with health NOT_SERVING, logs the bound ports, then loads
// and warms every model and only then reports SERVING; it blocks until then. ReloadModels looks
// for a new version of each model (server/model_versions.h) and loads and warms it while the old
// one serves; new calls then go to the new one, calls in flight finish on the old one, and a
// version that fails to load is refused while the old one keeps serving. Shutdown is the
// SIGTERM path: NOT_SERVING at once, new calls UNAVAILABLE, in-flight requests get `grace` to
// finish, whatever is left is cancelled, then everything stops. The destructor shuts down with
// no grace if Shutdown was not called. Not thread-safe itself (main calls it); the servers it
// owns run their own threads.
#ifndef FASTDISS_SERVER_MODEL_SERVER_H_
#define FASTDISS_SERVER_MODEL_SERVER_H_

#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/engine_options.h"
#include "server/server_config.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace fastdiss {

class GeneratorService;
class MemoryTrimmer;
class MetricsHttpServer;
class ServedModel;
class ServerMetrics;

class ModelServer {
 public:
  // `log` receives one line per event (ports, models loaded, ready, draining); must outlive the
  // server.
  static absl::StatusOr<std::unique_ptr<ModelServer>> Start(const ServerConfig& config,
                                                            std::ostream* log);
  ~ModelServer();
  ModelServer(const ModelServer&) = delete;
  ModelServer& operator=(const ModelServer&) = delete;

  int grpc_port() const { return grpc_port_; }
  int metrics_port() const;  // -1 when metrics are off

  // Loads each model's new version, if it has one (SIGHUP, or every server.model_poll_seconds).
  // Blocks while loading; a version already refused is not tried again.
  void ReloadModels();

  // Returns true when every in-flight request finished within `grace`.
  bool Shutdown(absl::Duration grace);

 private:
  class Reaper;
  ModelServer(const ServerConfig& config,
              std::ostream* log);  // out of line: member types are incomplete here
  absl::Status LoadModels();
  // Loads and warms the checkpoint directory `dir` as a version of model `name`.
  absl::StatusOr<std::shared_ptr<ServedModel>> LoadVersion(const std::string& name,
                                                           const std::string& dir);

  const ServerConfig config_;
  EngineOptions engine_options_;
  std::ostream* const log_;
  std::unique_ptr<Reaper> reaper_;  // before the holders of models: destroyed after them
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<GeneratorService> service_;
  std::map<std::string, std::string>
      refused_;  // by model: "dir digest" of the last version refused
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<MetricsHttpServer> metrics_server_;
  std::unique_ptr<MemoryTrimmer> trimmer_;  // after metrics_: stopped before the metrics it writes
  int grpc_port_ = 0;
  bool shut_down_ = false;
};

}  // namespace fastdiss

#endif  // FASTDISS_SERVER_MODEL_SERVER_H_
