#include "feedback.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace aggregator {

namespace {

using nlohmann::json;

absl::Status Missing(const char* field) {
  return absl::InvalidArgumentError(absl::StrCat("missing field '", field, "'"));
}

absl::Status ReadText(const json& doc, const char* field, std::string* out) {
  auto it = doc.find(field);
  if (it == doc.end()) return Missing(field);
  if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("'", field, "' is not a non-empty string"));
  }
  *out = it->get<std::string>();
  return absl::OkStatus();
}

/// An integer of at least `min` (a JSON number without fraction).
absl::Status ReadInteger(const json& doc, const char* field, int64_t min, int64_t* out) {
  auto it = doc.find(field);
  if (it == doc.end()) return Missing(field);
  if (!it->is_number_integer() || it->get<int64_t>() < min) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", field, "' is not an integer >= ", min, ": ", it->dump()));
  }
  *out = it->get<int64_t>();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Feedback> ParseFeedback(std::string_view text) {
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  if (!doc.is_object()) return absl::InvalidArgumentError("not a JSON object");
  Feedback e;
  for (absl::Status s :
       {ReadInteger(doc, "ts", 1, &e.ts), ReadText(doc, "stream_id", &e.stream_id),
        ReadText(doc, "user_id", &e.user_id), ReadText(doc, "isp", &e.isp),
        ReadText(doc, "platform", &e.platform), ReadInteger(doc, "bytes_p2p", 0, &e.bytes_p2p),
        ReadInteger(doc, "bytes_cdn", 0, &e.bytes_cdn),
        ReadInteger(doc, "rebuffer_ms", 0, &e.rebuffer_ms)}) {
    if (!s.ok()) return s;
  }
  return e;
}

std::string ToJson(const Feedback& e) {
  return json{{"ts", e.ts},
              {"stream_id", e.stream_id},
              {"user_id", e.user_id},
              {"isp", e.isp},
              {"platform", e.platform},
              {"bytes_p2p", e.bytes_p2p},
              {"bytes_cdn", e.bytes_cdn},
              {"rebuffer_ms", e.rebuffer_ms}}
      .dump();
}

absl::StatusOr<Dimension> ParseDimension(std::string_view name) {
  if (name == "stream_id") return Dimension::kStreamId;
  if (name == "isp") return Dimension::kIsp;
  if (name == "platform") return Dimension::kPlatform;
  return absl::InvalidArgumentError(
      absl::StrCat("--dimension: '", std::string(name), "' is not stream_id, isp or platform"));
}

const char* DimensionName(Dimension d) {
  switch (d) {
    case Dimension::kStreamId:
      return "stream_id";
    case Dimension::kIsp:
      return "isp";
    case Dimension::kPlatform:
      return "platform";
  }
  return "";
}

const std::string& DimensionOf(const Feedback& e, Dimension d) {
  switch (d) {
    case Dimension::kStreamId:
      return e.stream_id;
    case Dimension::kIsp:
      return e.isp;
    case Dimension::kPlatform:
      return e.platform;
  }
  return e.stream_id;
}

}  // namespace aggregator
