#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_context.h"

namespace sluice::cluster {

/// The files a process's credentials come from (flags; empty: not given).
struct CredentialFiles {
  std::string token;     // --auth-token-file: the cluster's shared secret
  std::string tls_cert;  // --tls-cert: this process's certificate (PEM)
  std::string tls_key;   // --tls-key: its private key (PEM)
  std::string tls_ca;    // --tls-ca: the CA that signed the cluster's certificates (PEM)
};

/// How a process of the cluster proves itself and checks others, for every gRPC call:
/// - a shared token (`--auth-token-file`): calls carry it in their `authorization` metadata;
///   servers refuse a call that changes anything (submits, uploads, deploys, cancels,
///   registers, sends data or checkpoint commands) without it, before doing any of it;
/// - TLS (`--tls-cert`, `--tls-key`, `--tls-ca`): servers with a certificate and key speak
///   TLS; with a CA too they require clients to present a certificate that CA signed
///   (mutual TLS). Clients with a CA speak TLS and accept only servers that CA signed,
///   presenting their own certificate when they have one.
/// Without any, the cluster is open and its connections plaintext.
class Credentials {
 public:
  Credentials() = default;
  /// Reads the files; an unreadable or empty one, or a certificate without its key (or the
  /// other way round), is an error naming it.
  static absl::StatusOr<Credentials> Load(const CredentialFiles& files);
  /// For the CLI: the flags given, else $SLUICE_AUTH_TOKEN_FILE, $SLUICE_TLS_CERT,
  /// $SLUICE_TLS_KEY, $SLUICE_TLS_CA.
  static absl::StatusOr<Credentials> LoadWithEnvironment(CredentialFiles flags);

  bool has_token() const { return !token_.empty(); }
  bool tls() const { return !ca_.empty() || !cert_.empty(); }

  /// Server side: OK when no token is set or the call carries it; otherwise UNAUTHENTICATED
  /// naming `what` was refused.
  grpc::Status Check(const grpc::ServerContext& ctx, const char* what) const;
  /// The same for a token presented some other way (REST: `Authorization: Bearer TOKEN`);
  /// null: none presented.
  absl::Status CheckPresented(const std::string_view* presented, const char* what) const;
  /// A channel to `address` whose calls carry the token, over TLS when there is a CA.
  std::shared_ptr<grpc::Channel> Channel(const std::string& address) const;
  /// What a server listens with: TLS with a certificate and key (requiring client
  /// certificates when there is a CA too), else plaintext.
  std::shared_ptr<grpc::ServerCredentials> ServerCredentials() const;

 private:
  std::string token_;
  std::string cert_, key_, ca_;  // PEM
};

}  // namespace sluice::cluster
