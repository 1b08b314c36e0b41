#include "new_job.h"

#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "new_job_template.h"  // generated: examples/word_count.cc as kJobTemplate

namespace sluice::cli {

namespace {

// The project's files; @NAME@ and @PREFIX@ are replaced. The job source is the word count example
// (kJobTemplate), its name replaced.
constexpr char kCMakeLists[] = R"(cmake_minimum_required(VERSION 3.25)
project(@NAME@ LANGUAGES CXX)

# The installed Sluice engine: -DCMAKE_PREFIX_PATH=@PREFIX@ if it is not in a standard place.
find_package(Sluice REQUIRED)

# Builds @NAME@ (runs the job on the embedded mini-cluster) and @NAME@.so (for `sluice run`).
sluice_add_job(@NAME@ SOURCES @NAME@.cc)
)";

constexpr char kReadme[] = R"(# @NAME@

A Sluice job (`@NAME@.cc`): a word count over a text file, with its counts in keyed state.

Build it against the installed Sluice (@PREFIX@):

    cmake -S . -B build -DCMAKE_PREFIX_PATH=@PREFIX@
    cmake --build build -j2

That builds two things from the one source:
- `build/@NAME@`: runs the job on the embedded mini-cluster,
  `build/@NAME@ --input=words.txt [--output=out/] [--parallelism=2]`;
- `build/@NAME@.so`: the job binary for the `sluice` command, locally
  `sluice run --local build/@NAME@.so -- --input=words.txt`, or on a cluster
  `sluice run --jobmanager=HOST:PORT build/@NAME@.so -- --input=/path/on/the/taskmanagers`.

With `--output=DIR` the counts go to exactly-once part files in DIR; without, to stdout.
Add `--checkpoint-interval=1s` for checkpoints (and a restart after a failure).
)";

bool Write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  return static_cast<bool>(out);
}

/// Where this `sluice` is installed: the folder above its bin/.
std::string InstallPrefix() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "/usr/local";
  return self.parent_path().parent_path().string();
}

}  // namespace

std::string JobNameForFolder(const std::string& dir) {
  std::string base = std::filesystem::path(dir).lexically_normal().filename().string();
  if (base.empty()) base = std::filesystem::path(dir).lexically_normal().parent_path().filename();
  std::string name;
  for (char c : base) {
    name.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  }
  if (!name.empty() && std::isdigit(static_cast<unsigned char>(name[0]))) name = "job_" + name;
  return name;
}

int NewJob(const std::vector<std::string>& args) {
  if (args.size() != 2 || args[0] != "job") {
    std::fprintf(stderr, "sluice: usage:\n%s", kNewJobUsage);
    return 2;
  }
  const std::filesystem::path dir = args[1];
  const std::string name = JobNameForFolder(args[1]);
  if (name.empty()) {
    std::fprintf(stderr, "sluice: cannot name a job after '%s'\n", args[1].c_str());
    return 2;
  }
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_empty(dir, ec)) {
    std::fprintf(stderr, "sluice: '%s' exists and is not empty: nothing written\n", dir.c_str());
    return 1;
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "sluice: cannot create '%s': %s\n", dir.c_str(), ec.message().c_str());
    return 1;
  }
  const std::string prefix = InstallPrefix();
  auto fill = [&](const char* text) {
    return absl::StrReplaceAll(text, {{"@NAME@", name}, {"@PREFIX@", prefix}});
  };
  const std::string source = absl::StrCat(name, ".cc");
  for (const auto& [file, text] :
       {std::pair{std::string("CMakeLists.txt"), fill(kCMakeLists)},
        std::pair{source, absl::StrReplaceAll(kJobTemplate, {{"word_count", name}})},
        std::pair{std::string("README.md"), fill(kReadme)}}) {
    if (!Write(dir / file, text)) {
      std::fprintf(stderr, "sluice: cannot write '%s'\n", (dir / file).c_str());
      return 1;
    }
  }
  std::printf("job '%s' written to %s (CMakeLists.txt, %s, README.md)\n", name.c_str(), dir.c_str(),
              source.c_str());
  std::printf("build: cmake -S %s -B %s/build -DCMAKE_PREFIX_PATH=%s && cmake --build %s/build\n",
              dir.c_str(), dir.c_str(), prefix.c_str(), dir.c_str());
  return 0;
}

}  // namespace sluice::cli
