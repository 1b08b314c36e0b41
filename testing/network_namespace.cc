#include "sluice/testing/network_namespace.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "sluice/testing/test_util.h"

namespace sluice::testing {

NetworkNamespace::NetworkNamespace() {
  const int pid = static_cast<int>(::getpid());
  name_ = absl::StrCat("sluice-test-", pid);
  outer_link_ = absl::StrCat("slc", pid % 1000000, "o");  // interface names: 15 characters
  inner_link_ = absl::StrCat("slc", pid % 1000000, "i");
  // A /30 of 198.18.0.0/15 chosen by the pid, so that tests running at once do not collide.
  const int subnet = pid % (2 * 256 * 64);
  const int a = 18 + subnet / (256 * 64), b = (subnet / 64) % 256, c = (subnet % 64) * 4;
  outer_address_ = absl::StrCat("198.", a, ".", b, ".", c + 1);
  inner_address_ = absl::StrCat("198.", a, ".", b, ".", c + 2);
  // Left by an earlier process with this pid that crashed.
  Run(absl::StrCat("ip netns del ", name_, " 2>/dev/null; ip link del ", outer_link_,
                   " 2>/dev/null; true"));
  const std::string in = absl::StrCat("ip netns exec ", name_, " ");
  available_ =
      Run(absl::StrCat("ip netns add ", name_)) &&
      Run(absl::StrCat("ip link add ", outer_link_, " type veth peer name ", inner_link_)) &&
      Run(absl::StrCat("ip link set ", inner_link_, " netns ", name_)) &&
      Run(absl::StrCat("ip addr add ", outer_address_, "/30 dev ", outer_link_)) &&
      Run(absl::StrCat("ip link set ", outer_link_, " up")) &&
      Run(absl::StrCat(in, "ip addr add ", inner_address_, "/30 dev ", inner_link_)) &&
      Run(absl::StrCat(in, "ip link set ", inner_link_, " up")) &&
      Run(absl::StrCat(in, "ip link set lo up"));
}

NetworkNamespace::~NetworkNamespace() {
  // Deleting the namespace deletes the inner end, and with it the pair.
  Run(absl::StrCat("ip netns del ", name_, " 2>/dev/null; ip link del ", outer_link_,
                   " 2>/dev/null; true"));
}

bool NetworkNamespace::SetLinkUp(bool up) {
  return Run(
      absl::StrCat("ip netns exec ", name_, " ip link set ", inner_link_, up ? " up" : " down"));
}

bool NetworkNamespace::Run(const std::string& command) {
  const CommandResult r = RunCommand(command);
  if (r.exit_code != 0 && why_.empty()) {
    why_ = absl::StrCat("'", command, "' failed (exit ", r.exit_code, "): ", r.output);
  }
  return r.exit_code == 0;
}

}  // namespace sluice::testing
