#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "sluice/testing/test_util.h"

namespace sluice::testing {

/// `sluice dev kafka` (librdkafka's mock cluster in its own process) for one test: started
/// with `args`, its bootstrap address read from its first line, fault commands sent over its
/// stdin; killed and reaped when the object dies.
class DevKafka {
 public:
  explicit DevKafka(const std::vector<std::string>& args);
  ~DevKafka();
  DevKafka(const DevKafka&) = delete;
  DevKafka& operator=(const DevKafka&) = delete;

  const std::string& bootstrap() const { return bootstrap_; }
  /// Sends a control command and returns the answer ("ok" or "error: ...").
  std::string Command(const std::string& command);
  /// Produces `lines` (one message each) to a partition with kcat.
  void Produce(const std::string& topic, int partition, const std::vector<std::string>& lines);
  /// Produces `messages` (any bytes, newlines included) to a partition with kcat, in order.
  void ProduceBinary(const std::string& topic, int partition,
                     const std::vector<std::string>& messages);

 private:
  int pid_ = -1;
  FILE* in_ = nullptr;   // its stdin
  FILE* out_ = nullptr;  // its stdout
  std::string bootstrap_;
  TempDir dir_;
};

}  // namespace sluice::testing
