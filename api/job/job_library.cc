#include <dlfcn.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sluice/api/job.h"

namespace sluice {

const char* EngineAbi() { return SLUICE_ENGINE_ABI; }

absl::StatusOr<std::unique_ptr<JobLibrary>> JobLibrary::Load(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("job binary '", path, "': ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("job binary '", path, "' is not a regular file"));
  }
  char magic[4] = {0, 0, 0, 0};
  std::ifstream(path, std::ios::binary).read(magic, sizeof(magic));
  if (std::memcmp(magic,
                  "\x7f"
                  "ELF",
                  4) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path,
                     "' is not a job binary: not an ELF shared library (build the job with "
                     "sluice_add_job and pass its .so)"));
  }
  // RTLD_LOCAL keeps one job's symbols from resolving another's; RTLD_NOW reports missing
  // symbols here rather than in the middle of a run.
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "' cannot be loaded as a job binary: ", ::dlerror()));
  }
  auto* abi = static_cast<const char**>(::dlsym(handle, "sluice_job_abi"));
  auto build = reinterpret_cast<JobBuildFn>(::dlsym(handle, "sluice_job_build"));
  if (abi == nullptr || *abi == nullptr || build == nullptr) {
    ::dlclose(handle);
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "' is not a Sluice job binary: it has no SLUICE_JOB entry point"));
  }
  if (std::strcmp(*abi, EngineAbi()) != 0) {
    std::string job_abi = *abi;
    ::dlclose(handle);
    return absl::FailedPreconditionError(absl::StrCat(
        "job binary '", path, "' was built against engine ABI '", job_abi,
        "', but this engine is '", EngineAbi(), "': rebuild the job against this engine"));
  }
  return std::unique_ptr<JobLibrary>(new JobLibrary(handle, path, build));
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
