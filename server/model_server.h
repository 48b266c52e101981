// ModelServer: fastdiss-server assembled from its config: the gRPC server (Generator service,
// grpc.health.v1 health, server reflection), the Prometheus endpoint, and one ServedModel per
// configured model.
//
// Start brings the gRPC port up first, with health NOT_SERVING, logs the bound ports, then loads
// and warms every model and only then reports SERVING; it blocks until then. Shutdown is the
// SIGTERM path: NOT_SERVING at once, new calls UNAVAILABLE, in-flight requests get `grace` to
// finish, whatever is left is cancelled, then everything stops. The destructor shuts down with
// no grace if Shutdown was not called. Not thread-safe itself (main calls it); the servers it
// owns run their own threads.
#ifndef FASTDISS_SERVER_MODEL_SERVER_H_
#define FASTDISS_SERVER_MODEL_SERVER_H_

#include <memory>
#include <ostream>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/server_config.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace fastdiss {

class GeneratorService;
class MetricsHttpServer;
class ServedModel;
class ServerMetrics;

class ModelServer {
 public:
  // `log` receives one line per event (ports, models loaded, ready, draining); must outlive the server.
  static absl::StatusOr<std::unique_ptr<ModelServer>> Start(const ServerConfig& config, std::ostream* log);
  ~ModelServer();
  ModelServer(const ModelServer&) = delete;
  ModelServer& operator=(const ModelServer&) = delete;

  int grpc_port() const { return grpc_port_; }
  int metrics_port() const;  // -1 when metrics are off

  // Returns true when every in-flight request finished within `grace`.
  bool Shutdown(absl::Duration grace);

 private:
  explicit ModelServer(std::ostream* log);  // out of line: the members' types are incomplete here
  absl::Status LoadModels(const ServerConfig& config);

  std::ostream* const log_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<GeneratorService> service_;
  std::vector<std::unique_ptr<ServedModel>> models_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<MetricsHttpServer> metrics_server_;
  int grpc_port_ = 0;
  bool shut_down_ = false;
};

}  // namespace fastdiss

#endif  // FASTDISS_SERVER_MODEL_SERVER_H_
