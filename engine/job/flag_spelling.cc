#include "sluice/job/flag_spelling.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace sluice {

namespace {

/// `arg` with `from` replaced by `to` in its flag name (between `--` and `=`).
std::string Respelled(std::string_view arg, char from, char to) {
  std::string out(arg);
  if (out.size() <= 2 || !out.starts_with("--")) return out;
  const size_t end = std::min(out.find('='), out.size());
  for (size_t i = 2; i < end; ++i) {
    if (out[i] == from) out[i] = to;
  }
  return out;
}

absl::Status ExpandFlagFiles(const std::string& files, std::vector<std::string>* out) {
  for (const std::string& file :
       std::vector<std::string>(absl::StrSplit(files, ',', absl::SkipEmpty()))) {
    std::ifstream in(file);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read the flag file '", file, "'"));
    std::string line;
    while (std::getline(in, line)) {
      absl::StripAsciiWhitespace(&line);
      if (line.empty() || line.starts_with('#')) continue;
      std::string spelled = Respelled(line, '-', '_');
      if (spelled.starts_with("--flagfile=")) {
        if (absl::Status s = ExpandFlagFiles(spelled.substr(11), out); !s.ok()) {
          return s;
        }
      } else {
        out->push_back(std::move(spelled));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string DashedFlag(std::string_view arg) { return Respelled(arg, '_', '-'); }

absl::StatusOr<std::vector<std::string>> AbseilSpelledCommandLine(int argc, char** argv) {
  std::vector<std::string> out;
  bool after_terminator = false;
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (i == 0 || after_terminator) {
      out.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      after_terminator = true;
      out.emplace_back(arg);
      continue;
    }
    std::string spelled = Respelled(arg, '-', '_');
    if (spelled.starts_with("--flagfile=")) {
      if (absl::Status s = ExpandFlagFiles(spelled.substr(11), &out); !s.ok()) {
        return s;
      }
    } else {
      out.push_back(std::move(spelled));
    }
  }
  return out;
}

}  // namespace sluice
