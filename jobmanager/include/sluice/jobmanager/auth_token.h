#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "grpcpp/server_context.h"

namespace sluice::cluster {

/// The cluster's shared secret (`--auth-token-file`): every process of the cluster and every
/// client that may change something holds it. Calls carry it in their `authorization`
/// metadata; servers refuse a call that changes anything (submits, uploads, deploys, cancels,
/// registers, sends data or checkpoint commands) without it, before doing any of it. Without
/// a token the cluster is open. TLS (not built yet) would keep it from being read on the wire.
class AuthToken {
 public:
  /// No token: calls carry none and every call is accepted.
  AuthToken() = default;
  /// The token in the file at `path` (surrounding whitespace dropped); an unreadable or empty
  /// file is an error naming it.
  static absl::StatusOr<AuthToken> FromFile(const std::string& path);
  /// The token of a daemon's `--auth-token-file` (empty: no token).
  static absl::StatusOr<AuthToken> FromFlag(const std::string& path);
  /// `--auth-token-file` if given, else `$SLUICE_AUTH_TOKEN_FILE` if set, else no token.
  static absl::StatusOr<AuthToken> FromFlagOrEnvironment(const std::string& flag);

  bool enabled() const { return !token_.empty(); }
  /// Server side: OK when no token is set or the call carries it; otherwise UNAUTHENTICATED
  /// naming `what` was refused.
  grpc::Status Check(const grpc::ServerContext& ctx, const char* what) const;
  /// A channel to `address` whose every call carries the token (if any).
  std::shared_ptr<grpc::Channel> Channel(const std::string& address) const;

 private:
  explicit AuthToken(std::string token) : token_(std::move(token)) {}
  std::string token_;
};

}  // namespace sluice::cluster
