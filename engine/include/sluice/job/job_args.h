#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace sluice {

/// A job argument that is missing or malformed. Thrown from a job's Build function; the
/// runner prints it and exits without starting the job.
class JobArgumentError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// The arguments a job was started with: `--name=value`, `--name value` is NOT accepted
/// (ambiguous with positionals), `--flag` alone means "true", anything else is positional.
/// Names are spelled with dashes; `--name_with_parts` is read as `--name-with-parts`.
/// The runner refuses arguments the job never read, so a typo is an error, not a default.
class JobArgs {
 public:
  JobArgs() = default;
  /// Parses arguments (without the program name). Throws JobArgumentError on `--=x`.
  static JobArgs Parse(const std::vector<std::string>& args);

  bool Has(const std::string& name) const;
  /// The value of a required argument.
  std::string GetString(const std::string& name) const;
  std::string GetString(const std::string& name, const std::string& fallback) const;
  int64_t GetInt(const std::string& name, int64_t fallback) const;
  bool GetBool(const std::string& name, bool fallback) const;
  /// A duration such as `500ms`, `10s`, `5m`, `1h30m`: never negative, and positive unless
  /// `allow_zero`. Throws JobArgumentError naming the argument otherwise.
  absl::Duration GetDuration(const std::string& name, bool allow_zero = true) const;
  absl::Duration GetDuration(const std::string& name, absl::Duration fallback,
                             bool allow_zero = true) const;
  const std::vector<std::string>& positional() const { return positional_; }

  /// Sets a value (used by runners for their own defaults, and by tests).
  void Set(const std::string& name, const std::string& value) { values_[name] = value; }
  /// Names given but never read.
  std::vector<std::string> Unused() const;

 private:
  const std::string* Find(const std::string& name) const;

  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
  mutable std::set<std::string> used_;
};

/// `text` as the duration argument `--name` (the rules of JobArgs::GetDuration), for values
/// that are part of an argument, such as the sizes in `--window=sliding:10s:5s`.
absl::Duration ParseDurationArg(const std::string& name, const std::string& text,
                                bool allow_zero = true);

}  // namespace sluice
