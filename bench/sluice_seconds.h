#pragma once

// What the benchmarks that run jobs through the CLI share (they link sluice::testing).

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/time/clock.h"
#include "sluice/testing/local_cluster.h"

namespace sluice::bench {

/// Runs `sluice ARGS` and returns its wall time in seconds (and what it printed, into
/// `output` if given); exits naming the failure.
inline double SluiceSeconds(const std::string& args, std::string* output = nullptr) {
  const absl::Time start = absl::Now();
  auto r = sluice::testing::Sluice(args);
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (r.exit_code != 0) {
    std::fprintf(stderr, "sluice %s failed:\n%s\n", args.c_str(), r.output.c_str());
    std::exit(1);
  }
  if (output != nullptr) *output = r.output;
  return seconds;
}

}  // namespace sluice::bench
