#include <dlfcn.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sluice/api/job.h"
#include "sluice/api/state_repair.h"

namespace sluice {

const char* EngineAbi() { return SLUICE_ENGINE_ABI; }

namespace {

/// A Sluice library (`what`: "job binary", "state repair library") opened with dlopen: its
/// handle and entry point `entry`, once its ABI string `abi_symbol` matched the engine's.
struct OpenedLibrary {
  void* handle = nullptr;
  void* entry = nullptr;
};

absl::StatusOr<OpenedLibrary> OpenLibrary(const std::string& path, const std::string& what,
                                          const char* abi_symbol, const char* entry,
                                          const char* entry_macro, const char* how_to_build) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat(what, " '", path, "': ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " '", path, "' is not a regular file"));
  }
  char magic[4] = {0, 0, 0, 0};
  std::ifstream(path, std::ios::binary).read(magic, sizeof(magic));
  if (std::memcmp(magic,
                  "\x7f"
                  "ELF",
                  4) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", path, "' is not a ", what, ": not an ELF shared library (", how_to_build, ")"));
  }
  // RTLD_LOCAL keeps one library's symbols from resolving another's; RTLD_NOW reports
  // missing symbols here rather than in the middle of a run.
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "' cannot be loaded as a ", what, ": ", ::dlerror()));
  }
  auto* abi = static_cast<const char**>(::dlsym(handle, abi_symbol));
  void* entry_point = ::dlsym(handle, entry);
  if (abi == nullptr || *abi == nullptr || entry_point == nullptr) {
    ::dlclose(handle);
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' is not a Sluice ", what,
                                                   ": it has no ", entry_macro, " entry point"));
  }
  if (std::strcmp(*abi, EngineAbi()) != 0) {
    std::string library_abi = *abi;
    ::dlclose(handle);
    return absl::FailedPreconditionError(
        absl::StrCat(what, " '", path, "' was built against engine ABI '", library_abi,
                     "', but this engine is '", EngineAbi(), "': rebuild it against this engine"));
  }
  return OpenedLibrary{handle, entry_point};
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobLibrary>> JobLibrary::Load(const std::string& path) {
  auto opened = OpenLibrary(path, "job binary", "sluice_job_abi", "sluice_job_build", "SLUICE_JOB",
                            "build the job with sluice_add_job and pass its .so");
  if (!opened.ok()) return opened.status();
  return std::unique_ptr<JobLibrary>(
      new JobLibrary(opened->handle, path, reinterpret_cast<JobBuildFn>(opened->entry)));
}

absl::StatusOr<std::unique_ptr<StateRepairLibrary>> StateRepairLibrary::Load(
    const std::string& path) {
  auto opened = OpenLibrary(path, "state repair library", "sluice_state_repair_abi",
                            "sluice_state_repair_build", "SLUICE_STATE_REPAIR",
                            "build it with sluice_add_state_repair and pass its .so");
  if (!opened.ok()) return opened.status();
  return std::unique_ptr<StateRepairLibrary>(
      new StateRepairLibrary(opened->handle, reinterpret_cast<BuildFn>(opened->entry)));
}

StateRepairLibrary::~StateRepairLibrary() {
  if (handle_ != nullptr) ::dlclose(handle_);
}

StateRepairs StateRepairLibrary::Repairs() const {
  StateRepairs repairs;
  build_(&repairs);
  return repairs;
}

JobLibrary::~JobLibrary() {
  if (handle_ != nullptr) ::dlclose(handle_);
}

std::string JobLibrary::JobName() const {
  std::string name = path_.substr(path_.find_last_of('/') + 1);
  if (absl::EndsWith(name, ".so")) name.resize(name.size() - 3);
  return name;
}

}  // namespace sluice
