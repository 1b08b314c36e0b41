// A job whose sink is much slower than its source (for back-pressure tests): an unbounded
// generator of 1 KiB records, rebalanced to a sink that takes 1 ms per record.
#include <chrono>
#include <string>
#include <thread>

#include "sluice/sluice.h"

namespace {

class SlowSink final : public sluice::SinkFunction<std::string> {
 public:
  void Invoke(const std::string&, const sluice::SinkContext&) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the slow consumer itself
  }
};

}  // namespace

void Build(sluice::Pipeline& p) {
  p.Source(sluice::Generator([](uint64_t i) { return std::string(1024, 'a' + i % 26); }, {}))
      .Rebalance()
      .Sink(SlowSink{}, "SlowSink");
}

SLUICE_JOB(Build)
