#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sluice::internal {

/// A connector URL taken apart (the one parser of kafka://, influx:// and influxs:// URLs):
/// `SCHEME://AUTHORITY/PATH?KEY=VALUE&...`.
struct ConnectorUrl {
  std::string scheme;     // as written, without "://"
  std::string authority;  // HOST:PORT[,HOST:PORT...]
  std::string path;       // after the first '/', percent-decoded
  std::vector<std::pair<std::string, std::string>> parameters;  // percent-decoded, in order
};

/// What a connector's URLs look like, for the errors.
struct ConnectorUrlForm {
  std::string kind;                  // "Kafka URL"
  std::vector<std::string> schemes;  // {"kafka"}
  std::string expected;              // said when the scheme is not one of them
  std::string expected_location;     // said when AUTHORITY/PATH is missing
};

/// Splits `url`; INVALID_ARGUMENT naming the URL and what is expected otherwise.
absl::StatusOr<ConnectorUrl> SplitConnectorUrl(const std::string& url,
                                               const ConnectorUrlForm& form);

/// INVALID_ARGUMENT: "`kind` 'url': why".
absl::Status BadConnectorUrl(const ConnectorUrlForm& form, const std::string& url,
                             const std::string& why);

/// `%XX` as the byte and `+` as a space (form encoding).
std::string PercentDecoded(std::string_view text);

}  // namespace sluice::internal
