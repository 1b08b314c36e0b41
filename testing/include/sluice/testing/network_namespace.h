#pragma once

#include <string>
#include <vector>

namespace sluice::testing {

/// A network namespace of the test's own, joined to this one by a veth pair whose two ends get
/// addresses of the benchmarking range 198.18.0.0/15 (RFC 2544: used by no real network), so
/// that a process run inside can be cut off without its connections being closed: a silent
/// host. Needs CAP_NET_ADMIN (root in the machine's or a container's network namespace);
/// without it `available()` is false and `why()` says what failed. Removed when it goes.
class NetworkNamespace {
 public:
  NetworkNamespace();
  ~NetworkNamespace();
  NetworkNamespace(const NetworkNamespace&) = delete;
  NetworkNamespace& operator=(const NetworkNamespace&) = delete;

  bool available() const { return available_; }
  const std::string& why() const { return why_; }
  /// This namespace's end of the pair, and the inside one's.
  const std::string& outer_address() const { return outer_address_; }
  const std::string& inner_address() const { return inner_address_; }
  /// What runs a command inside: prepend it to the command's argv.
  std::vector<std::string> Launcher() const { return {"ip", "netns", "exec", name_}; }
  /// Takes the inside end of the link down (packets to it vanish: nothing reaches this side,
  /// no reset either; this side's own address stays usable here), or up again.
  bool SetLinkUp(bool up);

 private:
  bool Run(const std::string& command);

  std::string name_;
  std::string outer_link_;
  std::string inner_link_;
  std::string outer_address_;
  std::string inner_address_;
  bool available_ = false;
  std::string why_;
};

/// Hosts made of network namespaces of the test's own, joined by a bridge in a further
/// namespace (a switch): host i has `address(i)` in one /24, and the hosts reach each other
/// and nothing else — not the test's own namespace, which is left untouched. Processes run on
/// a host through `Launcher(i)` (or a shell command through `Prefix(i)`); files are shared.
/// Needs CAP_NET_ADMIN and bridges; without them `available()` is false and `why()` says what
/// failed. Removed when it goes.
class NetworkHosts {
 public:
  explicit NetworkHosts(int hosts);
  ~NetworkHosts();
  NetworkHosts(const NetworkHosts&) = delete;
  NetworkHosts& operator=(const NetworkHosts&) = delete;

  bool available() const { return available_; }
  const std::string& why() const { return why_; }
  const std::string& address(int host) const { return addresses_[host]; }
  std::vector<std::string> Launcher(int host) const {
    return {"ip", "netns", "exec", names_[host]};
  }
  /// What runs a shell command on `host`: prepend it.
  std::string Prefix(int host) const { return "ip netns exec " + names_[host] + " "; }

 private:
  bool Run(const std::string& command);
  void Remove();

  std::string switch_;
  std::vector<std::string> names_;
  std::vector<std::string> addresses_;
  bool available_ = false;
  std::string why_;
};

}  // namespace sluice::testing
