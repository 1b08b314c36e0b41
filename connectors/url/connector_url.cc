#include "sluice/connectors/internal/connector_url.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace sluice::internal {

std::string PercentDecoded(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    int byte = 0;
    if (text[i] == '%' && i + 2 < text.size() &&
        absl::SimpleHexAtoi(std::string(text.substr(i + 1, 2)), &byte)) {
      out.push_back(static_cast<char>(byte));
      i += 2;
    } else {
      out.push_back(text[i] == '+' ? ' ' : text[i]);
    }
  }
  return out;
}

absl::Status BadConnectorUrl(const ConnectorUrlForm& form, const std::string& url,
                             const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(form.kind, " '", url, "': ", why));
}

absl::StatusOr<ConnectorUrl> SplitConnectorUrl(const std::string& url,
                                               const ConnectorUrlForm& form) {
  ConnectorUrl out;
  const size_t scheme_end = url.find("://");
  if (scheme_end != std::string::npos) out.scheme = url.substr(0, scheme_end);
  bool known = false;
  for (const std::string& scheme : form.schemes) known = known || scheme == out.scheme;
  if (scheme_end == std::string::npos || !known) {
    return BadConnectorUrl(form, url, form.expected);
  }
  const std::string rest = url.substr(scheme_end + 3);
  const size_t query_at = rest.find('?');
  const std::string location = rest.substr(0, query_at);
  const size_t slash = location.find('/');
  if (slash == std::string::npos || slash == 0) {
    return BadConnectorUrl(form, url, form.expected_location);
  }
  out.authority = location.substr(0, slash);
  out.path = PercentDecoded(std::string_view(location).substr(slash + 1));
  if (query_at != std::string::npos) {
    for (absl::string_view pair :
         absl::StrSplit(rest.substr(query_at + 1), '&', absl::SkipEmpty())) {
      const size_t eq = pair.find('=');
      const std::string key(pair.substr(0, eq));
      const std::string value(eq == absl::string_view::npos ? "" : pair.substr(eq + 1));
      out.parameters.emplace_back(PercentDecoded(key), PercentDecoded(value));
    }
  }
  return out;
}

}  // namespace sluice::internal
