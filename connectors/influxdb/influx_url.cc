// ParseInfluxUrl: the sink's options from one URL, for job flags such as
// --output=influx://localhost:8086/data?measurement=stats&batch_points=500.

#include <functional>
#include <map>
#include <stdexcept>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "sluice/connectors/influxdb.h"
#include "sluice/connectors/internal/connector_url.h"
#include "sluice/core/status_macros.h"

namespace sluice {
namespace {

const internal::ConnectorUrlForm kInfluxUrl{
    "InfluxDB URL",
    {"influx", "influxs"},
    "expected influx://HOST:PORT/DATABASE?measurement=NAME (or influxs:// for TLS)",
    "no HOST:PORT/DATABASE"};

}  // namespace

absl::StatusOr<InfluxSinkOptions> ParseInfluxUrl(const std::string& url, std::string* measurement) {
  auto bad = [&](const std::string& why) {
    return internal::BadConnectorUrl(kInfluxUrl, url, why);
  };
  SLUICE_ASSIGN_OR_RETURN(auto parts, internal::SplitConnectorUrl(url, kInfluxUrl));
  InfluxSinkOptions o;
  o.urls.push_back((parts.scheme == "influxs" ? "https://" : "http://") + parts.authority);
  o.database = parts.path;

  auto duration = [&](const std::string& v, absl::Duration* d) {
    return absl::ParseDuration(v, d);
  };
  auto size = [&](const std::string& v, size_t* n) {
    uint64_t x = 0;
    if (!absl::SimpleAtoi(v, &x)) return false;
    *n = x;
    return true;
  };
  const std::map<std::string, std::function<bool(const std::string&)>> setters = {
      {"url", [&](const std::string& v) { return o.urls.push_back(v), true; }},
      {"api_version", [&](const std::string& v) { return absl::SimpleAtoi(v, &o.api_version); }},
      {"retention_policy", [&](const std::string& v) { return o.retention_policy = v, true; }},
      {"consistency", [&](const std::string& v) { return o.consistency = v, true; }},
      {"user", [&](const std::string& v) { return o.user = v, true; }},
      {"password", [&](const std::string& v) { return o.password = v, true; }},
      {"org", [&](const std::string& v) { return o.org = v, true; }},
      {"bucket", [&](const std::string& v) { return o.bucket = v, true; }},
      {"token", [&](const std::string& v) { return o.token = v, true; }},
      {"precision",
       [&](const std::string& v) {
         static const std::map<std::string, InfluxPrecision> kUnits = {
             {"ns", InfluxPrecision::kNanoseconds},
             {"us", InfluxPrecision::kMicroseconds},
             {"ms", InfluxPrecision::kMilliseconds},
             {"s", InfluxPrecision::kSeconds}};
         auto it = kUnits.find(v);
         if (it == kUnits.end()) return false;
         o.precision = it->second;
         return true;
       }},
      {"batch_points", [&](const std::string& v) { return size(v, &o.batch_points); }},
      {"batch_bytes", [&](const std::string& v) { return size(v, &o.batch_bytes); }},
      {"flush_interval", [&](const std::string& v) { return duration(v, &o.flush_interval); }},
      {"flush_jitter", [&](const std::string& v) { return absl::SimpleAtod(v, &o.flush_jitter); }},
      {"max_buffered_points",
       [&](const std::string& v) { return size(v, &o.max_buffered_points); }},
      {"connect_timeout", [&](const std::string& v) { return duration(v, &o.connect_timeout); }},
      {"request_timeout", [&](const std::string& v) { return duration(v, &o.request_timeout); }},
      {"retry_initial", [&](const std::string& v) { return duration(v, &o.retry_initial); }},
      {"retry_max", [&](const std::string& v) { return duration(v, &o.retry_max); }},
      {"max_retry_time", [&](const std::string& v) { return duration(v, &o.max_retry_time); }},
      {"gzip", [&](const std::string& v) { return absl::SimpleAtob(v, &o.gzip); }},
      {"ca_file", [&](const std::string& v) { return o.ca_file = v, true; }},
      {"insecure_skip_verify",
       [&](const std::string& v) { return absl::SimpleAtob(v, &o.insecure_skip_verify); }},
  };
  for (const auto& [key, value] : parts.parameters) {
    if (key == "measurement") {
      if (measurement != nullptr) *measurement = value;
      continue;
    }
    auto it = setters.find(key);
    if (it == setters.end()) return bad(absl::StrCat("unknown parameter '", key, "'"));
    if (!it->second(value)) return bad(absl::StrCat("bad value '", value, "' for ", key));
  }
  if (o.api_version == 2 && o.bucket.empty()) o.bucket = o.database;
  return o;
}

absl::StatusOr<InfluxSink> InfluxSinkFromUrl(const std::string& url, std::string* measurement) {
  SLUICE_ASSIGN_OR_RETURN(auto options, ParseInfluxUrl(url, measurement));
  try {
    return InfluxSink(std::move(options));
  } catch (const std::invalid_argument& e) {
    return absl::InvalidArgumentError(absl::StrCat("InfluxDB URL '", url, "': ", e.what()));
  }
}

}  // namespace sluice
