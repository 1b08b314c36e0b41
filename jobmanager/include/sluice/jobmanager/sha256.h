#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sluice::cluster {

/// Incremental SHA-256 (OpenSSL), the content hash of job binaries.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);
  /// The digest as 64 lower-case hex digits; ends the computation.
  std::string HexDigest();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// The SHA-256 of a file's contents.
absl::StatusOr<std::string> Sha256OfFile(const std::string& path);

/// True for 64 lower-case hex digits (a hash that is safe to use as a file name).
bool IsSha256Hex(std::string_view s);

}  // namespace sluice::cluster
