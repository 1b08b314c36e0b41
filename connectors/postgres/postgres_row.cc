// PostgresRow's typed reads and JSON; PostgresRowWriter's COPY text escaping.

#include <cmath>
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "pg_connection.h"
#include "sluice/connectors/postgres.h"
#include "sluice/core/json_string.h"

namespace sluice {
namespace {

/// Debian's Abseil has a string_view of its own.
absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

/// "YYYY-MM-DD HH:MM:SS[.ffffff][+00]" (the session speaks UTC) -> microseconds.
bool ParseTimestamp(std::string_view text, int64_t* micros) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, n = 0;
  const std::string t(text);
  if (std::sscanf(t.c_str(), "%d-%d-%d %d:%d:%d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6) {
    return false;
  }
  int64_t fraction = 0;
  size_t i = static_cast<size_t>(n);
  if (i < t.size() && t[i] == '.') {
    int digits = 0;
    for (++i; i < t.size() && std::isdigit(static_cast<unsigned char>(t[i])); ++i, ++digits) {
      if (digits < 6) fraction = fraction * 10 + (t[i] - '0');
    }
    for (; digits < 6; ++digits) fraction *= 10;
  }
  // A zone other than UTC cannot come from a UTC session; BC dates are out of range here.
  if (i < t.size() && t.substr(i) != "+00") return false;
  const absl::Time time =
      absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
  *micros = absl::ToUnixMicros(time) + fraction;
  return true;
}

}  // namespace

const std::vector<PostgresColumn>& PostgresRow::columns() const { return *data_.columns; }

int PostgresRow::Find(std::string_view name) const {
  const auto& c = columns();
  for (size_t i = 0; i < c.size(); ++i) {
    if (c[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

bool PostgresRow::IsNull(int column) const {
  return PQgetisnull(data_.result, data_.row, column) != 0;
}

std::string_view PostgresRow::Text(int column) const {
  return std::string_view(PQgetvalue(data_.result, data_.row, column),
                          static_cast<size_t>(PQgetlength(data_.result, data_.row, column)));
}

namespace {

absl::Status WrongKind(const PostgresColumn& c, const char* wanted, std::string_view text) {
  return absl::InvalidArgumentError(absl::StrCat("column '", c.name, "' (", c.type_name,
                                                 ") read as ", wanted, ": '", Absl(text), "'"));
}

}  // namespace

absl::StatusOr<int64_t> PostgresRow::Integer(int column) const {
  const PostgresColumn& c = columns()[column];
  int64_t v = 0;
  if (IsNull(column) || c.type != PostgresType::kInteger ||
      !absl::SimpleAtoi(Absl(Text(column)), &v)) {
    return WrongKind(c, "an integer", IsNull(column) ? "NULL" : Text(column));
  }
  return v;
}

absl::StatusOr<double> PostgresRow::Float(int column) const {
  const PostgresColumn& c = columns()[column];
  double v = 0;
  const bool numeric = c.type == PostgresType::kFloat || c.type == PostgresType::kInteger ||
                       c.type == PostgresType::kNumeric;
  if (IsNull(column) || !numeric || !absl::SimpleAtod(Absl(Text(column)), &v)) {
    return WrongKind(c, "a float", IsNull(column) ? "NULL" : Text(column));
  }
  return v;
}

absl::StatusOr<bool> PostgresRow::Bool(int column) const {
  const PostgresColumn& c = columns()[column];
  if (IsNull(column) || c.type != PostgresType::kBool) {
    return WrongKind(c, "a boolean", IsNull(column) ? "NULL" : Text(column));
  }
  return Text(column) == "t";
}

absl::StatusOr<int64_t> PostgresRow::TimestampMicros(int column) const {
  const PostgresColumn& c = columns()[column];
  int64_t micros = 0;
  if (IsNull(column) ||
      (c.type != PostgresType::kTimestamp && c.type != PostgresType::kTimestampTz) ||
      !ParseTimestamp(Text(column), &micros)) {
    return WrongKind(c, "a timestamp", IsNull(column) ? "NULL" : Text(column));
  }
  return micros;
}

std::string PostgresRow::ToJson() const {
  std::string out = "{";
  const auto& cols = columns();
  for (size_t i = 0; i < cols.size(); ++i) {
    const int col = static_cast<int>(i);
    if (i > 0) out.push_back(',');
    AppendJsonString(cols[i].name, &out);
    out.push_back(':');
    if (IsNull(col)) {
      out.append("null");
      continue;
    }
    const std::string_view text = Text(col);
    switch (cols[i].type) {
      case PostgresType::kBool:
        out.append(text == "t" ? "true" : "false");
        break;
      case PostgresType::kInteger:
        out.append(text);
        break;
      case PostgresType::kFloat:
      case PostgresType::kNumeric: {
        double v = 0;
        // NaN and the infinities have no JSON number.
        if (absl::SimpleAtod(Absl(text), &v) && std::isfinite(v)) {
          out.append(text);
        } else {
          AppendJsonString(text, &out);
        }
        break;
      }
      case PostgresType::kTimestamp:
      case PostgresType::kTimestampTz: {
        // ISO 8601: "2026-12-07T19:26:18.5" (and "Z" where the server said +00).
        std::string iso(text);
        if (iso.size() > 10 && iso[10] == ' ') iso[10] = 'T';
        if (cols[i].type == PostgresType::kTimestampTz && iso.size() > 3 &&
            iso.compare(iso.size() - 3, 3, "+00") == 0) {
          iso.replace(iso.size() - 3, 3, "Z");
        }
        AppendJsonString(iso, &out);
        break;
      }
      case PostgresType::kJson:
        out.append(text);
        break;
      case PostgresType::kText:
        AppendJsonString(text, &out);
        break;
    }
  }
  out.push_back('}');
  return out;
}

void PostgresRowWriter::Add(double value) {
  Separate();
  if (std::isnan(value)) {
    out_.append("NaN");
  } else if (std::isinf(value)) {
    out_.append(value > 0 ? "Infinity" : "-Infinity");
  } else {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.17g", value);
    out_.append(buf);
  }
}

void PostgresRowWriter::Add(std::string_view text) {
  Separate();
  // COPY's text format: backslash escapes for the delimiter, line ends and itself.
  for (char c : text) {
    switch (c) {
      case '\\':
        out_.append("\\\\");
        break;
      case '\t':
        out_.append("\\t");
        break;
      case '\n':
        out_.append("\\n");
        break;
      case '\r':
        out_.append("\\r");
        break;
      default:
        out_.push_back(c);
    }
  }
}

void PostgresRowWriter::AddTimestampMillis(int64_t millis_since_epoch) {
  Separate();
  const absl::Time t = absl::FromUnixMillis(millis_since_epoch);
  out_.append(absl::FormatTime("%Y-%m-%d %H:%M:%E3S+00", t, absl::UTCTimeZone()));
}

}  // namespace sluice
