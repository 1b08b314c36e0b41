#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "sluice/job/flag_spelling.h"

namespace sluice {

/// absl::ParseCommandLine for the daemons and benchmarks, accepting `--flag-name` as well as
/// `--flag_name` (see flag_spelling.h). Exits with status 2 naming an unreadable flag file.
/// Header-only: only programs that link absl::flags_parse include it.
inline void ParseAbseilFlags(int argc, char** argv) {
  auto args = AbseilSpelledCommandLine(argc, argv);
  if (!args.ok()) {
    std::fprintf(stderr, "%s: %s\n", argv[0], std::string(args.status().message()).c_str());
    std::exit(2);
  }
  // Abseil keeps pointers into argv (positional arguments): the strings live for the process.
  static std::vector<std::string> storage;
  storage = std::move(*args);
  static std::vector<char*> pointers;
  for (std::string& arg : storage) pointers.push_back(arg.data());
  absl::ParseCommandLine(static_cast<int>(pointers.size()), pointers.data());
}

}  // namespace sluice
