#include "savepoint_tools.h"

#include <cstdio>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sluice/checkpoint/checkpoint_inspection.h"

namespace sluice::cli {

const char kSavepointToolsUsage[] =
    "  sluice savepoint inspect PATH [--json] [--top=N]\n"
    "      What a savepoint or retained checkpoint (PATH: its directory, or a job's checkpoint\n"
    "      directory for the newest) holds: per operator uid each state's kind, keys and\n"
    "      bytes, key groups, TTL; --top=N the N largest entries of each keyed state.\n";

int InspectSavepoint(const std::vector<std::string>& args) {
  std::string path;
  bool json = false;
  int top = 0;
  for (const std::string& a : args) {
    if (a == "--json") {
      json = true;
    } else if (a.starts_with("--top=")) {
      if (!absl::SimpleAtoi(a.substr(6), &top) || top < 1) {
        std::fprintf(stderr, "sluice: savepoint inspect: --top must be an integer >= 1, got '%s'\n",
                     a.substr(6).c_str());
        return 2;
      }
    } else if (a.starts_with("--") || !path.empty()) {
      std::fprintf(stderr, "sluice: savepoint inspect: unexpected argument '%s'\nusage:\n%s",
                   a.c_str(), kSavepointToolsUsage);
      return 2;
    } else {
      path = a;
    }
  }
  if (path.empty()) {
    std::fprintf(stderr, "sluice: savepoint inspect: give PATH\nusage:\n%s", kSavepointToolsUsage);
    return 2;
  }
  auto inspection = InspectCheckpoint(std::filesystem::absolute(path).string(), top);
  if (!inspection.ok()) {
    std::fprintf(stderr, "sluice: savepoint inspect: %s\n",
                 std::string(inspection.status().message()).c_str());
    return 1;
  }
  const std::string out =
      json ? InspectionToJson(*inspection) + "\n" : InspectionToText(*inspection);
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace sluice::cli
