#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sluice/testing/test_util.h"

namespace sluice::testing {

/// A sluice-jobmanager process for one test: its blob store in a temporary directory, on a
/// free loopback port (the one it prints), killed and reaped when the object dies.
class JobManagerProcess {
 public:
  /// `port` 0: any free port. Waits until it listens. `bin_dir`: where sluice-jobmanager is
  /// (empty: this build's bin/; an installed prefix's bin/ in the install test).
  /// `launcher`: what runs the process (e.g. NetworkHosts::Launcher(i)), empty: nothing.
  explicit JobManagerProcess(std::vector<std::string> extra_args = {}, int port = 0,
                             const std::string& bin_dir = "",
                             std::vector<std::string> launcher = {});

  const std::string& address() const { return address_; }
  int port() const { return port_; }
  /// http://HOST:PORT of its REST API (started with --rest-port), else empty.
  const std::string& rest_url() const { return rest_url_; }
  const std::string& blob_dir() const { return blob_dir_; }
  std::string log() const { return ReadFile(log_path_); }
  ChildProcess& process() { return *process_; }

 private:
  TempDir dir_;
  std::string blob_dir_;
  std::string log_path_;
  std::unique_ptr<ChildProcess> process_;
  std::string address_;
  std::string rest_url_;
  int port_ = 0;
};

/// A sluice-taskmanager process for one test (its cache in a temporary directory).
class TaskManagerProcess {
 public:
  /// `launcher`: what runs the process (e.g. NetworkNamespace::Launcher()), empty: nothing.
  TaskManagerProcess(const std::string& jobmanager, int slots, const std::string& id,
                     std::vector<std::string> extra_args = {}, const std::string& bin_dir = "",
                     std::vector<std::string> launcher = {});

  std::string log() const { return ReadFile(log_path_); }
  ChildProcess& process() { return *process_; }
  const std::string& cache_dir() const { return cache_dir_; }
  /// Its --local-state-dir.
  const std::string& local_state_dir() const { return local_state_dir_; }
  /// Where it serves /metrics (with --metrics-port), "http://HOST:PORT"; waits for its log
  /// to say so (10 s at most, then empty).
  std::string metrics_url() const;

 private:
  TempDir dir_;
  std::string cache_dir_;
  std::string local_state_dir_;
  std::string log_path_;
  std::unique_ptr<ChildProcess> process_;
};

/// Runs the `sluice` command line with `args` and waits for it.
CommandResult Sluice(const std::string& args);

}  // namespace sluice::testing
