#include "server/tls.h"

#include <fstream>
#include <sstream>

namespace fastdiss {
namespace {

// The contents of a PEM file; `what` names the key or flag it came from in errors.
absl::StatusOr<std::string> ReadPem(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(what + ": cannot read '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(what + ": '" + path +
                                      "' is not a PEM file (no -----BEGIN line)");
  }
  return text.str();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsFiles& files) {
  if (files.cert.empty() && files.key.empty() && files.client_ca.empty())
    return grpc::InsecureServerCredentials();
  if (files.cert.empty() || files.key.empty()) {
    return absl::InvalidArgumentError(
        "tls.cert and tls.key go together: set both for TLS, or neither");
  }
  absl::StatusOr<std::string> cert = ReadPem(files.cert, "tls.cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(files.key, "tls.key");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions options(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  options.pem_key_cert_pairs.push_back({*key, *cert});
  if (!files.client_ca.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(files.client_ca, "tls.client_ca");
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
    options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

std::string DescribeServerTls(const ServerTlsFiles& files) {
  if (files.cert.empty()) return "plaintext";
  return files.client_ca.empty() ? "TLS" : "mutual TLS, client certificates required";
}

const char kClientTlsUsage[] =
    R"(TLS: --tls (verify the server against the system's CA roots), --tls-ca FILE (against this PEM CA),
--tls-cert FILE --tls-key FILE (present a client certificate, for a server with tls.client_ca),
--tls-server-name NAME (the name the server's certificate must carry; default: the target's host).
)";

bool ReadClientTlsFlag(FlagReader& flags, ClientTlsOptions* options) {
  if (flags.Is("--tls")) {
    flags.Switch();
  } else if (flags.Is("--tls-ca")) {
    options->ca = flags.String();
  } else if (flags.Is("--tls-cert")) {
    options->cert = flags.String();
  } else if (flags.Is("--tls-key")) {
    options->key = flags.String();
  } else if (flags.Is("--tls-server-name")) {
    options->server_name = flags.String();
  } else {
    return false;
  }
  options->enabled = true;  // any --tls* flag
  return true;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& target,
                                                           const ClientTlsOptions& options) {
  if (!options.enabled) return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  if (options.cert.empty() != options.key.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key go together: give both for a client certificate");
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.ca.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(options.ca, "--tls-ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
  }
  if (!options.cert.empty()) {
    absl::StatusOr<std::string> cert = ReadPem(options.cert, "--tls-cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem(options.key, "--tls-key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *cert;
    ssl.pem_private_key = *key;
  }
  grpc::ChannelArguments arguments;
  if (!options.server_name.empty()) arguments.SetSslTargetNameOverride(options.server_name);
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(ssl), arguments);
}

}  // namespace fastdiss
