// InfluxPoint: checks at the setters and the line-protocol encoding with exact escaping.

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "sluice/connectors/influxdb.h"

namespace sluice {
namespace {

/// Names and values go into one line: a newline anywhere would split the point.
void CheckText(const std::string& what, const std::string& text) {
  if (text.find_first_of("\n\r") != std::string::npos) {
    throw std::invalid_argument(
        absl::StrCat("InfluxDB point: ", what, " '", text,
                     "' contains a newline, which line protocol cannot carry"));
  }
}

void CheckKey(const std::string& what, const std::string& key) {
  if (key.empty()) throw std::invalid_argument(absl::StrCat("InfluxDB point: empty ", what));
  if (key == "time") {
    throw std::invalid_argument(absl::StrCat("InfluxDB point: a ", what,
                                             " may not be called 'time' (InfluxDB rejects it)"));
  }
  CheckText(what, key);
}

/// Appends `s` with a backslash before each character of `special`.
void AppendEscaped(std::string& out, std::string_view s, std::string_view special) {
  for (char c : s) {
    if (special.find(c) != std::string_view::npos) out.push_back('\\');
    out.push_back(c);
  }
}

int64_t UnitsPerSecond(InfluxPrecision p) {
  switch (p) {
    case InfluxPrecision::kNanoseconds:
      return 1'000'000'000;
    case InfluxPrecision::kMicroseconds:
      return 1'000'000;
    case InfluxPrecision::kMilliseconds:
      return 1'000;
    case InfluxPrecision::kSeconds:
      return 1;
  }
  return 1;
}

int64_t ConvertTime(int64_t t, InfluxPrecision from, InfluxPrecision to) {
  const int64_t a = UnitsPerSecond(from), b = UnitsPerSecond(to);
  return b >= a ? t * (b / a) : t / (a / b);
}

}  // namespace

InfluxPoint::InfluxPoint(std::string measurement) : measurement_(std::move(measurement)) {
  if (measurement_.empty()) throw std::invalid_argument("InfluxDB point: empty measurement");
  CheckText("measurement", measurement_);
}

InfluxPoint& InfluxPoint::Tag(std::string key, std::string value) {
  CheckKey("tag key", key);
  CheckText("tag value", value);
  if (value.empty()) return *this;  // InfluxDB has no empty tag values: no tag
  auto it = std::find_if(tags_.begin(), tags_.end(), [&](const auto& t) { return t.first == key; });
  if (it != tags_.end()) {
    it->second = std::move(value);
  } else {
    tags_.emplace_back(std::move(key), std::move(value));
  }
  return *this;
}

namespace {
template <typename V>
void SetField(std::vector<std::pair<std::string, InfluxPoint::FieldValue>>& fields, std::string key,
              V value) {
  auto it =
      std::find_if(fields.begin(), fields.end(), [&](const auto& f) { return f.first == key; });
  if (it != fields.end()) {
    it->second = std::move(value);
  } else {
    fields.emplace_back(std::move(key), std::move(value));
  }
}
}  // namespace

InfluxPoint& InfluxPoint::Field(std::string key, int64_t value) {
  CheckKey("field key", key);
  SetField(fields_, std::move(key), value);
  return *this;
}
InfluxPoint& InfluxPoint::Field(std::string key, double value) {
  CheckKey("field key", key);
  if (!std::isfinite(value)) {
    throw std::invalid_argument(absl::StrCat("InfluxDB point: field '", key, "' is ", value,
                                             ": InfluxDB stores no NaN or infinite values"));
  }
  SetField(fields_, std::move(key), value);
  return *this;
}
InfluxPoint& InfluxPoint::Field(std::string key, bool value) {
  CheckKey("field key", key);
  SetField(fields_, std::move(key), value);
  return *this;
}
InfluxPoint& InfluxPoint::Field(std::string key, std::string value) {
  CheckKey("field key", key);
  CheckText(absl::StrCat("value of field '", key, "'"), value);
  SetField(fields_, std::move(key), std::move(value));
  return *this;
}

InfluxPoint& InfluxPoint::Time(int64_t time, InfluxPrecision precision) {
  time_ = time;
  time_precision_ = precision;
  has_time_ = true;
  return *this;
}

absl::StatusOr<std::string> InfluxPoint::ToLineProtocol(InfluxPrecision precision) const {
  if (measurement_.empty()) return absl::InvalidArgumentError("InfluxDB point without measurement");
  if (fields_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("InfluxDB point '", measurement_, "' has no field (InfluxDB needs one)"));
  }
  if (!has_time_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "InfluxDB point '", measurement_,
        "' has no timestamp: the sink sends one with every point, so that a point resent "
        "after a recovery overwrites itself instead of being stored twice"));
  }
  std::string out;
  AppendEscaped(out, measurement_, ", ");
  std::vector<const std::pair<std::string, std::string>*> tags;
  for (const auto& t : tags_) tags.push_back(&t);
  std::sort(tags.begin(), tags.end(), [](auto* a, auto* b) { return a->first < b->first; });
  for (const auto* t : tags) {
    out.push_back(',');
    AppendEscaped(out, t->first, ",= ");
    out.push_back('=');
    AppendEscaped(out, t->second, ",= ");
  }
  char separator = ' ';
  for (const auto& [key, value] : fields_) {
    out.push_back(separator);
    separator = ',';
    AppendEscaped(out, key, ",= ");
    out.push_back('=');
    if (const auto* i = std::get_if<int64_t>(&value)) {
      absl::StrAppend(&out, *i, "i");
    } else if (const auto* d = std::get_if<double>(&value)) {
      // Enough digits to read back as the same double (a float even without a dot).
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.17g", *d);
      out += buf;
    } else if (const auto* b = std::get_if<bool>(&value)) {
      out += *b ? "true" : "false";
    } else {
      out.push_back('"');
      AppendEscaped(out, std::get<std::string>(value), "\"\\");
      out.push_back('"');
    }
  }
  absl::StrAppend(&out, " ", ConvertTime(time_, time_precision_, precision));
  return out;
}

void Serializer<InfluxPoint>::Write(const InfluxPoint& p, ByteWriter& w) {
  w.WriteBytes(p.measurement_);
  w.WriteVarint(p.tags_.size());
  for (const auto& [k, v] : p.tags_) {
    w.WriteBytes(k);
    w.WriteBytes(v);
  }
  w.WriteVarint(p.fields_.size());
  for (const auto& [k, v] : p.fields_) {
    w.WriteBytes(k);
    w.WriteVarint(v.index());
    if (const auto* i = std::get_if<int64_t>(&v)) w.WriteRaw(*i);
    if (const auto* d = std::get_if<double>(&v)) w.WriteRaw(*d);
    if (const auto* b = std::get_if<bool>(&v)) w.WriteRaw(*b);
    if (const auto* s = std::get_if<std::string>(&v)) w.WriteBytes(*s);
  }
  w.WriteRaw(p.has_time_);
  w.WriteRaw(p.time_);
  w.WriteRaw(p.time_precision_);
}

bool Serializer<InfluxPoint>::Read(ByteReader& r, InfluxPoint* out) {
  std::string_view s;
  uint64_t n = 0;
  if (!r.ReadBytes(&s)) return false;
  out->measurement_.assign(s);
  if (!r.ReadVarint(&n) || !r.CheckCount(n, 2)) return false;
  out->tags_.clear();
  for (uint64_t i = 0; i < n; ++i) {
    std::string_view k, v;
    if (!r.ReadBytes(&k) || !r.ReadBytes(&v)) return false;
    out->tags_.emplace_back(std::string(k), std::string(v));
  }
  if (!r.ReadVarint(&n) || !r.CheckCount(n, 2)) return false;
  out->fields_.clear();
  for (uint64_t i = 0; i < n; ++i) {
    std::string_view k;
    uint64_t type = 0;
    if (!r.ReadBytes(&k) || !r.ReadVarint(&type)) return false;
    InfluxPoint::FieldValue value;
    bool ok = false;
    if (type == 0) {
      int64_t x;
      ok = r.ReadRaw(&x);
      value = x;
    } else if (type == 1) {
      double x;
      ok = r.ReadRaw(&x);
      value = x;
    } else if (type == 2) {
      bool x;
      ok = r.ReadRaw(&x);
      value = x;
    } else if (type == 3) {
      std::string_view x;
      ok = r.ReadBytes(&x);
      value = std::string(x);
    }
    if (!ok) return false;
    out->fields_.emplace_back(std::string(k), std::move(value));
  }
  return r.ReadRaw(&out->has_time_) && r.ReadRaw(&out->time_) && r.ReadRaw(&out->time_precision_);
}

}  // namespace sluice
