#include "sluice/testing/network_namespace.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sluice/testing/test_util.h"

namespace sluice::testing {

namespace {

/// Deletes the namespaces (and with them their links) that test processes no longer alive
/// left behind: each name ends in its process's pid. A test killed before its destructors
/// ran leaves them; the next one that makes namespaces sweeps them.
void RemoveNamespacesOfDeadTests() {
  const CommandResult list = RunCommand("ip netns list 2>/dev/null");
  for (absl::string_view line : absl::StrSplit(list.output, '\n', absl::SkipEmpty())) {
    const absl::string_view name = line.substr(0, line.find(' '));
    if (!absl::StartsWith(name, "sluice-")) continue;
    int pid = 0;
    if (!absl::SimpleAtoi(name.substr(name.rfind('-') + 1), &pid) || pid <= 0) continue;
    if (::kill(pid, 0) != 0 && errno == ESRCH) {
      RunCommand(absl::StrCat("ip netns del ", name, " 2>/dev/null"));
    }
  }
}

}  // namespace

NetworkNamespace::NetworkNamespace() {
  RemoveNamespacesOfDeadTests();
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

NetworkHosts::NetworkHosts(int hosts) {
  RemoveNamespacesOfDeadTests();
  const int pid = static_cast<int>(::getpid());
  switch_ = absl::StrCat("sluice-sw-", pid);
  for (int i = 0; i < hosts; ++i) {
    names_.push_back(absl::StrCat("sluice-h", i, "-", pid));
    // The hosts' network is a world of its own: the same addresses in another test's hosts,
    // or in the test's namespace, never meet these.
    addresses_.push_back(absl::StrCat("198.18.200.", i + 1));
  }
  Remove();  // left by an earlier process with this pid that crashed
  const std::string on_switch = absl::StrCat("ip netns exec ", switch_, " ");
  available_ = Run("ip netns add " + switch_) && Run(on_switch + "ip link add br0 type bridge") &&
               Run(on_switch + "ip link set br0 up");
  for (int i = 0; available_ && i < hosts; ++i) {
    const std::string host_end = absl::StrCat("slh", pid % 100000, "x", i);  // <= 15 characters
    const std::string switch_end = absl::StrCat("slh", pid % 100000, "s", i);
    const std::string on_host = absl::StrCat("ip netns exec ", names_[i], " ");
    available_ = Run("ip netns add " + names_[i]) &&
                 Run(absl::StrCat("ip link add ", host_end, " type veth peer name ", switch_end)) &&
                 Run(absl::StrCat("ip link set ", host_end, " netns ", names_[i])) &&
                 Run(absl::StrCat("ip link set ", switch_end, " netns ", switch_)) &&
                 Run(absl::StrCat(on_switch, "ip link set ", switch_end, " master br0")) &&
                 Run(absl::StrCat(on_switch, "ip link set ", switch_end, " up")) &&
                 Run(absl::StrCat(on_host, "ip addr add ", addresses_[i], "/24 dev ", host_end)) &&
                 Run(absl::StrCat(on_host, "ip link set ", host_end, " up")) &&
                 Run(on_host + "ip link set lo up");
  }
}

NetworkHosts::~NetworkHosts() { Remove(); }

void NetworkHosts::Remove() {
  // Deleting a namespace deletes the veth ends in it, and with them their pairs.
  std::string command;
  for (const std::string& name : names_)
    absl::StrAppend(&command, "ip netns del ", name, " 2>/dev/null; ");
  absl::StrAppend(&command, "ip netns del ", switch_, " 2>/dev/null; true");
  RunCommand(command);
}

bool NetworkHosts::Run(const std::string& command) {
  const CommandResult r = RunCommand(command);
  if (r.exit_code != 0 && why_.empty()) {
    why_ = absl::StrCat("'", command, "' failed (exit ", r.exit_code, "): ", r.output);
  }
  return r.exit_code == 0;
}

}  // namespace sluice::testing
