#include "sluice/job/job_args.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sluice/job/flag_spelling.h"

namespace sluice {

JobArgs JobArgs::Parse(const std::vector<std::string>& args) {
  JobArgs out;
  for (const auto& a : args) {
    if (a.size() > 2 && a.rfind("--", 0) == 0) {
      size_t eq = a.find('=');
      const std::string dashed = DashedFlag(a);
      std::string name = dashed.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      if (name.empty()) throw JobArgumentError(absl::StrCat("malformed argument '", a, "'"));
      out.values_[name] = eq == std::string::npos ? "true" : a.substr(eq + 1);
    } else {
      out.positional_.push_back(a);
    }
  }
  return out;
}

const std::string* JobArgs::Find(const std::string& name) const {
  used_.insert(name);
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : &it->second;
}

bool JobArgs::Has(const std::string& name) const { return Find(name) != nullptr; }

std::string JobArgs::GetString(const std::string& name) const {
  const std::string* v = Find(name);
  if (v == nullptr) throw JobArgumentError(absl::StrCat("missing required argument --", name));
  return *v;
}

std::string JobArgs::GetString(const std::string& name, const std::string& fallback) const {
  const std::string* v = Find(name);
  return v == nullptr ? fallback : *v;
}

int64_t JobArgs::GetInt(const std::string& name, int64_t fallback) const {
  const std::string* v = Find(name);
  if (v == nullptr) return fallback;
  int64_t out;
  if (!absl::SimpleAtoi(*v, &out)) {
    throw JobArgumentError(
        absl::StrCat("argument --", name, " must be an integer, got '", *v, "'"));
  }
  return out;
}

bool JobArgs::GetBool(const std::string& name, bool fallback) const {
  const std::string* v = Find(name);
  if (v == nullptr) return fallback;
  bool out;
  if (!absl::SimpleAtob(*v, &out)) {
    throw JobArgumentError(
        absl::StrCat("argument --", name, " must be true or false, got '", *v, "'"));
  }
  return out;
}

absl::Duration ParseDurationArg(const std::string& name, const std::string& text, bool allow_zero) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d < absl::ZeroDuration() ||
      (!allow_zero && d == absl::ZeroDuration())) {
    throw JobArgumentError(absl::StrCat("--", name, ": '", text, "' is not a ",
                                        allow_zero ? "" : "positive ",
                                        "duration (e.g. 500ms, 10s, 5m)"));
  }
  return d;
}

absl::Duration JobArgs::GetDuration(const std::string& name, bool allow_zero) const {
  return ParseDurationArg(name, GetString(name), allow_zero);
}

absl::Duration JobArgs::GetDuration(const std::string& name, absl::Duration fallback,
                                    bool allow_zero) const {
  const std::string* v = Find(name);
  return v == nullptr ? fallback : ParseDurationArg(name, *v, allow_zero);
}

std::vector<std::string> JobArgs::Unused() const {
  std::vector<std::string> unused;
  for (const auto& [name, value] : values_) {
    if (!used_.contains(name)) unused.push_back(name);
  }
  return unused;
}

}  // namespace sluice
