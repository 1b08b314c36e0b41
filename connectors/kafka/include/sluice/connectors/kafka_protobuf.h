#pragma once

// Protobuf message values: each value is one serialized message M (any generated message
// type; records of type M flow through the job as protobuf wire bytes).
//
//   p.Source(KafkaSource<mypb::Reading>(options, KafkaProtobufFormat<mypb::Reading>()));

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "sluice/connectors/kafka.h"

namespace sluice {

/// Parses each message value as a protobuf message M; bytes that are not a valid M (or
/// that lack a proto2 required field) are a deserialization error.
template <typename M>
KafkaFormat<M> KafkaProtobufFormat() {
  return {absl::StrCat("protobuf ", M::descriptor()->full_name()),
          [](const KafkaRecord& r) -> absl::StatusOr<M> {
            M message;
            if (!message.ParseFromString(r.value)) {
              return absl::InvalidArgumentError(
                  absl::StrCat("not a valid ", M::descriptor()->full_name(), " message: ",
                               message.InitializationErrorString().empty()
                                   ? "malformed wire data"
                                   : "missing " + message.InitializationErrorString()));
            }
            return message;
          }};
}

}  // namespace sluice
