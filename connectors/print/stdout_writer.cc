#include <cstdio>
#include <mutex>

#include "sluice/connectors/internal/io.h"

namespace sluice::internal {

void WriteToStdout(const std::string& text) {
  static std::mutex mu;  // one writer at a time, so lines of parallel sinks do not interleave
  std::lock_guard<std::mutex> lock(mu);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

}  // namespace sluice::internal
