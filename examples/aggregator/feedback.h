#pragma once

// The feedback events of the aggregator (Streamroot's, from the seeds): one JSON object per
// Kafka message, written by video players every few seconds while a stream plays.
//
//   {"ts": 1767225600123,          event time, ms since the epoch (integer > 0)
//    "stream_id": "stream-17",     the stream watched (non-empty string)
//    "user_id": "user-40213",      the viewer (non-empty string)
//    "isp": "Orange",              the viewer's ISP (non-empty string)
//    "platform": "android",        the player's platform (non-empty string)
//    "bytes_p2p": 1843200,         bytes received from peers since the last event (integer >= 0)
//    "bytes_cdn": 524288,          bytes received from the CDN since the last event (>= 0)
//    "rebuffer_ms": 0}             time spent rebuffering since the last event (>= 0)
//
// Other fields are ignored. An event that breaks these rules is malformed: the job sends it to
// its dead-letter output with the reason ParseFeedback gives.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "sluice/sluice.h"

namespace aggregator {

struct Feedback {
  int64_t ts = 0;
  std::string stream_id;
  std::string user_id;
  std::string isp;
  std::string platform;
  int64_t bytes_p2p = 0;
  int64_t bytes_cdn = 0;
  int64_t rebuffer_ms = 0;
};
SLUICE_SERIALIZABLE(Feedback, ts, stream_id, user_id, isp, platform, bytes_p2p, bytes_cdn,
                    rebuffer_ms)

/// Reads one event, or says what is wrong with it ("missing field 'isp'", ...).
absl::StatusOr<Feedback> ParseFeedback(std::string_view json);
/// The event as JSON, as ParseFeedback reads it.
std::string ToJson(const Feedback& e);

/// What the windows are keyed by (--dimension).
enum class Dimension { kStreamId, kIsp, kPlatform };

/// "stream_id", "isp" or "platform"; an error naming the choices otherwise.
absl::StatusOr<Dimension> ParseDimension(std::string_view name);
/// The dimension's name: the tag key of the points written.
const char* DimensionName(Dimension d);
/// The event's value of the dimension.
const std::string& DimensionOf(const Feedback& e, Dimension d);

}  // namespace aggregator
