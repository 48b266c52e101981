// TLS for the gRPC port: the server's credentials from its `tls.*` keys, and the client side
// (fastdiss-client, fastdiss-loadgen, tests) from --tls* flags. Certificates and keys are PEM
// files, read when the program starts; a missing, unreadable or non-PEM file is an error that
// names the key or flag and the path, before anything listens or connects.
//
// Server: `tls.cert` + `tls.key` turn TLS on; `tls.client_ca` also requires every client to
// present a certificate signed by that CA (mutual TLS), and refuses the connection otherwise.
// Client: --tls (the system's CA roots), or --tls-ca FILE (trust that CA), optional
// --tls-cert/--tls-key (a client certificate, for mutual TLS) and --tls-server-name (the name
// the server's certificate must carry, when it differs from the target's host).
#ifndef FASTDISS_SERVER_TLS_H_
#define FASTDISS_SERVER_TLS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "base/command_line.h"

namespace fastdiss {

struct ServerTlsFiles {
  std::string cert;       // PEM certificate chain; empty: plaintext
  std::string key;        // PEM private key of `cert`
  std::string client_ca;  // PEM CA certificates; non-empty: client certificates required
};

// Insecure credentials when `files.cert` is empty, else TLS (and mTLS with a client CA).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsFiles& files);

// "plaintext", "TLS" or "mutual TLS, client certificates required", for the server's log.
std::string DescribeServerTls(const ServerTlsFiles& files);

struct ClientTlsOptions {
  bool enabled = false;     // set by any --tls* flag
  std::string ca;           // PEM CA file; empty: the system roots
  std::string cert;         // PEM client certificate chain (mutual TLS)
  std::string key;          // its PEM private key
  std::string server_name;  // expected name in the server certificate; empty: the target's host
};

// Reads the current flag into `options` when it is one of the --tls* flags; false otherwise.
bool ReadClientTlsFlag(FlagReader& flags, ClientTlsOptions* options);

// The usage text of the --tls* flags, for --help.
extern const char kClientTlsUsage[];

// A channel to `target`, plaintext or TLS per `options`.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& target,
                                                           const ClientTlsOptions& options);

}  // namespace fastdiss

#endif  // FASTDISS_SERVER_TLS_H_
