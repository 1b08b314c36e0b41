#include "sluice/jobmanager/credentials.h"

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

/// The content of the file at `path` (`what` names the flag in errors).
absl::StatusOr<std::string> ReadWhole(const std::string& path, const char* what) {
  std::ifstream in(path);
  if (!in) {
    return absl::FailedPreconditionError(absl::StrCat("cannot read the ", what, " '", path, "'"));
  }
  std::stringstream content;
  content << in.rdbuf();
  if (absl::StripAsciiWhitespace(content.str()).empty()) {
    return absl::FailedPreconditionError(absl::StrCat("the ", what, " '", path, "' is empty"));
  }
  return content.str();
}

std::string FlagOrEnvironment(const std::string& flag, const char* variable) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv(variable);
  return env == nullptr ? std::string() : env;
}

}  // namespace

absl::StatusOr<Credentials> Credentials::Load(const CredentialFiles& files) {
  Credentials c;
  if (!files.token.empty()) {
    auto token = ReadWhole(files.token, "auth token file");
    if (!token.ok()) return token.status();
    c.token_ = std::string(absl::StripAsciiWhitespace(*token));
  }
  if (files.tls_cert.empty() != files.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key go together: a certificate needs its private key");
  }
  const std::pair<const std::string*, std::string*> pems[] = {
      {&files.tls_cert, &c.cert_}, {&files.tls_key, &c.key_}, {&files.tls_ca, &c.ca_}};
  const char* names[] = {"TLS certificate (--tls-cert)", "TLS private key (--tls-key)",
                         "TLS CA certificate (--tls-ca)"};
  for (int i = 0; i < 3; ++i) {
    if (pems[i].first->empty()) continue;
    auto pem = ReadWhole(*pems[i].first, names[i]);
    if (!pem.ok()) return pem.status();
    *pems[i].second = *std::move(pem);
  }
  return c;
}

absl::StatusOr<Credentials> Credentials::LoadWithEnvironment(CredentialFiles flags) {
  flags.token = FlagOrEnvironment(flags.token, "SLUICE_AUTH_TOKEN_FILE");
  flags.tls_cert = FlagOrEnvironment(flags.tls_cert, "SLUICE_TLS_CERT");
  flags.tls_key = FlagOrEnvironment(flags.tls_key, "SLUICE_TLS_KEY");
  flags.tls_ca = FlagOrEnvironment(flags.tls_ca, "SLUICE_TLS_CA");
  return Load(flags);
}

grpc::Status Credentials::Check(const grpc::ServerContext& ctx, const char* what) const {
  if (token_.empty()) return grpc::Status::OK;
  const auto& metadata = ctx.client_metadata();
  auto it = metadata.find(kMetadataKey);
  std::string_view presented;
  if (it != metadata.end()) presented = std::string_view(it->second.data(), it->second.size());
  const absl::Status checked = CheckPresented(it != metadata.end() ? &presented : nullptr, what);
  if (checked.ok()) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(checked.message()));
}

absl::Status Credentials::CheckPresented(const std::string_view* presented,
                                         const char* what) const {
  if (token_.empty()) return absl::OkStatus();
  if (presented != nullptr && presented->size() == token_.size() &&
      CRYPTO_memcmp(presented->data(), token_.data(), token_.size()) == 0) {
    return absl::OkStatus();
  }
  return absl::UnauthenticatedError(absl::StrCat(
      what, " refused: ",
      presented == nullptr ? "the call carries no auth token" : "the call's auth token is wrong",
      " (this cluster's is in its --auth-token-file)"));
}

std::shared_ptr<grpc::Channel> Credentials::Channel(const std::string& address) const {
  std::shared_ptr<grpc::ChannelCredentials> transport = grpc::InsecureChannelCredentials();
  if (!ca_.empty()) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = ca_;
    options.pem_private_key = key_;
    options.pem_cert_chain = cert_;
    transport = grpc::SslCredentials(options);
  }
  if (token_.empty()) return grpc::CreateChannel(address, transport);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<AddTokenFactory>(token_));
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      address, transport, grpc::ChannelArguments(), std::move(factories));
}

std::shared_ptr<grpc::ServerCredentials> Credentials::ServerCredentials() const {
  if (cert_.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      ca_.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                  : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = ca_;
  options.pem_key_cert_pairs.push_back({key_, cert_});
  return grpc::SslServerCredentials(options);
}

}  // namespace sluice::cluster
