#include "savepoint_tools.h"

#include <cstdio>
#include <filesystem>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "sluice/api/state_repair.h"
#include "sluice/checkpoint/checkpoint_inspection.h"
#include "sluice/checkpoint/savepoint_rewrite.h"

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

namespace {

int RewriteUsage(const std::string& message) {
  std::fprintf(stderr, "sluice: savepoint rewrite: %s\nusage:\n%s", message.c_str(),
               kSavepointToolsUsage);
  return 2;
}

}  // namespace

int RewriteSavepoint(const std::vector<std::string>& args) {
  // The repair library outlives the rules: their functions are its code.
  std::unique_ptr<StateRepairLibrary> library;
  std::vector<std::string> paths;
  SavepointRewriteRules rules;
  std::string repair_path;
  for (const std::string& a : args) {
    if (a.starts_with("--drop-state=")) {
      const std::string id = a.substr(13);
      const size_t slash = id.rfind('/');
      if (slash == std::string::npos || slash == 0 || slash + 1 == id.size()) {
        return RewriteUsage(absl::StrCat("--drop-state wants UID/NAME, got '", id, "'"));
      }
      rules.drop_states.insert({id.substr(0, slash), id.substr(slash + 1)});
    } else if (a.starts_with("--drop-keys-older-than=")) {
      absl::Duration d;
      if (!absl::ParseDuration(a.substr(23), &d) || d <= absl::ZeroDuration()) {
        return RewriteUsage(absl::StrCat("--drop-keys-older-than wants a duration such as 168h or ",
                                         "30m, got '", a.substr(23), "'"));
      }
      rules.drop_keys_older_than = d;
    } else if (a.starts_with("--with=")) {
      repair_path = a.substr(7);
    } else if (a.starts_with("--")) {
      return RewriteUsage(absl::StrCat("unknown option '", a, "'"));
    } else {
      paths.push_back(a);
    }
  }
  if (paths.size() != 2) return RewriteUsage("give PATH and OUT");
  if (rules.drop_states.empty() && !rules.drop_keys_older_than && repair_path.empty()) {
    return RewriteUsage("say what to change: --drop-state, --drop-keys-older-than or --with");
  }
  if (!repair_path.empty()) {
    auto loaded = StateRepairLibrary::Load(repair_path);
    if (!loaded.ok()) {
      std::fprintf(stderr, "sluice: savepoint rewrite: %s\n",
                   std::string(loaded.status().message()).c_str());
      return 1;
    }
    library = std::move(*loaded);
    rules.repairs = library->Repairs().specs();
  }
  auto result = sluice::RewriteSavepoint(std::filesystem::absolute(paths[0]).string(),
                                         std::filesystem::absolute(paths[1]).string(), rules);
  if (!result.ok()) {
    std::fprintf(stderr, "sluice: savepoint rewrite: %s\n",
                 std::string(result.status().message()).c_str());
    return 1;
  }
  std::printf("savepoint written to %s\n", result->dir.c_str());
  for (const StateRewriteCount& c : result->states) {
    if (c.removed) {
      std::printf("  %s/%s: removed (%lld entries)\n", c.uid.c_str(), c.state.c_str(),
                  static_cast<long long>(c.entries));
      continue;
    }
    std::printf("  %s/%s: %lld entries, %lld dropped, %lld changed%s\n", c.uid.c_str(),
                c.state.c_str(), static_cast<long long>(c.entries),
                static_cast<long long>(c.dropped), static_cast<long long>(c.changed),
                rules.drop_keys_older_than && !c.timestamps
                    ? " (no TTL: no access times, none dropped by age)"
                    : "");
  }
  return 0;
}

}  // namespace sluice::cli
