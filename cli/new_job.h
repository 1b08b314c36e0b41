#pragma once

#include <string>
#include <vector>

namespace sluice::cli {

inline constexpr char kNewJobUsage[] =
    "  sluice new job DIR\n"
    "      Writes a job project into DIR (which must not exist or be empty): CMakeLists.txt\n"
    "      (find_package(Sluice), sluice_add_job), a word-count job source and a README with\n"
    "      the commands that build it against this installation and run it.\n";

/// `sluice new job DIR`: returns the process exit code.
int NewJob(const std::vector<std::string>& args);

/// The job's name for a project folder: its last component, letters, digits and '_' only
/// (others become '_'), not starting with a digit. Empty if nothing is left.
std::string JobNameForFolder(const std::string& dir);

}  // namespace sluice::cli
