#include "sluice/jobmanager/auth_token.h"

#include <openssl/crypto.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/client_interceptor.h"

namespace sluice::cluster {

namespace {

constexpr char kMetadataKey[] = "authorization";

/// Adds the token to the initial metadata of each call.
class AddToken final : public grpc::experimental::Interceptor {
 public:
  explicit AddToken(const std::string* value) : value_(value) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({kMetadataKey, *value_});
    }
    methods->Proceed();
  }

 private:
  const std::string* value_;  // owned by the factory, which the channel keeps
};

class AddTokenFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit AddTokenFactory(std::string value) : value_(std::move(value)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new AddToken(&value_);
  }

 private:
  const std::string value_;
};

}  // namespace

absl::StatusOr<AuthToken> AuthToken::FromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read the auth token file '", path, "'"));
  }
  std::stringstream content;
  content << in.rdbuf();
  std::string token(absl::StripAsciiWhitespace(content.str()));
  if (token.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("the auth token file '", path, "' is empty"));
  }
  return AuthToken(std::move(token));
}

absl::StatusOr<AuthToken> AuthToken::FromFlag(const std::string& path) {
  if (path.empty()) return AuthToken();
  return FromFile(path);
}

absl::StatusOr<AuthToken> AuthToken::FromFlagOrEnvironment(const std::string& flag) {
  const char* env = std::getenv("SLUICE_AUTH_TOKEN_FILE");
  return FromFlag(flag.empty() && env != nullptr ? env : flag);
}

grpc::Status AuthToken::Check(const grpc::ServerContext& ctx, const char* what) const {
  if (token_.empty()) return grpc::Status::OK;
  const auto& metadata = ctx.client_metadata();
  auto it = metadata.find(kMetadataKey);
  if (it != metadata.end() && it->second.size() == token_.size() &&
      CRYPTO_memcmp(it->second.data(), token_.data(), token_.size()) == 0) {
    return grpc::Status::OK;
  }
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      absl::StrCat(what, " refused: ",
                                   it == metadata.end() ? "the call carries no auth token"
                                                        : "the call's auth token is wrong",
                                   " (this cluster's is in its --auth-token-file)"));
}

std::shared_ptr<grpc::Channel> AuthToken::Channel(const std::string& address) const {
  if (token_.empty()) return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<AddTokenFactory>(token_));
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      address, grpc::InsecureChannelCredentials(), grpc::ChannelArguments(), std::move(factories));
}

}  // namespace sluice::cluster
