#include "cli/cluster_commands.h"

#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cluster/client/jobmanager_client.h"

namespace sluice::cli {

const char kClusterUsage[] =
    "  sluice status --jobmanager=HOST:PORT\n"
    "      The cluster: TaskManagers with their slots, the blob store.\n";

namespace {

int Fail(const std::string& message, int code) {
  std::fprintf(stderr, "sluice: %s\n", message.c_str());
  return code;
}

}  // namespace

int ClusterStatus(const std::vector<std::string>& args) {
  std::string address;
  for (const std::string& a : args) {
    if (absl::StartsWith(a, "--jobmanager=")) {
      address = a.substr(13);
    } else {
      return Fail(absl::StrCat("status: unexpected argument '", a, "'\nusage:\n", kClusterUsage),
                  2);
    }
  }
  if (address.empty()) {
    return Fail(absl::StrCat("status: --jobmanager=HOST:PORT is required\nusage:\n", kClusterUsage),
                2);
  }
  cluster::JobManagerClient client(address, absl::Seconds(5));
  auto status = client.Status();
  if (!status.ok()) return Fail(std::string(status.status().message()), 1);
  std::printf("JobManager %s (%s)\n", address.c_str(), status->jobmanager_id().c_str());
  std::printf("TaskManagers: %d, slots: %d total, %d free\n", status->taskmanagers_size(),
              status->total_slots(), status->free_slots());
  for (const auto& tm : status->taskmanagers()) {
    std::printf("  %-24s %s pid %lld  slots %d (%d free)  last heartbeat %lld ms ago\n",
                tm.taskmanager_id().c_str(), tm.host().c_str(), static_cast<long long>(tm.pid()),
                tm.slots(), tm.free_slots(), static_cast<long long>(tm.last_heartbeat_ms_ago()));
  }
  std::printf("Blob store: %s (%d job binaries)\n", status->blob_dir().c_str(), status->blobs());
  return 0;
}

}  // namespace sluice::cli
