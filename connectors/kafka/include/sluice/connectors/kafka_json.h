#pragma once

// JSON message values into a type of your own, with nlohmann::json (header only): declare
// how your type reads from JSON next to it, e.g.
//
//   struct Event { std::string sensor; double value; int64_t time_ms; };
//   NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Event, sensor, value, time_ms)
//   SLUICE_SERIALIZABLE(Event, sensor, value, time_ms)
//
//   p.Source(KafkaSource<Event>(options, KafkaJsonFormat<Event>()));

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "sluice/connectors/kafka.h"

namespace sluice {

/// Each message value is one JSON document read into a T (through nlohmann's from_json for
/// T). Malformed JSON, a missing field or a field of another type is a deserialization
/// error naming what was wrong.
/// `type_name` names T in error messages.
template <typename T>
KafkaFormat<T> KafkaJsonFormat(const std::string& type_name = "") {
  return {type_name.empty() ? "JSON" : absl::StrCat("JSON ", type_name),
          [](const KafkaRecord& r) -> absl::StatusOr<T> {
            nlohmann::json doc =
                nlohmann::json::parse(r.value, nullptr, /*allow_exceptions=*/false);
            if (doc.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
            try {
              return doc.get<T>();
            } catch (const nlohmann::json::exception& e) {
              return absl::InvalidArgumentError(absl::StrCat("JSON does not fit: ", e.what()));
            }
          }};
}

}  // namespace sluice
