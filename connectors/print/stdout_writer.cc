#include <cstdio>

#include "sluice/connectors/internal/io.h"
#include "sluice/core/mutex.h"

namespace sluice::internal {

void WriteToStdout(const std::string& text) {
  static Mutex mu;  // one writer at a time, so lines of parallel sinks do not interleave
  MutexLock lock(&mu);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

}  // namespace sluice::internal
