// A job that fails once (for restart tests): copies the lines of --input to --output through
// an exchange (rebalance); the first run to meet the line "fail here" creates the file
// --marker and throws, so a restarted run, finding the marker, goes past it.
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "sluice/sluice.h"

namespace {

void Build(sluice::Pipeline& p) {
  const std::string input = p.Args().GetString("input");
  const std::string output = p.Args().GetString("output");
  const std::string marker = p.Args().GetString("marker");
  p.Source(sluice::TextFileSource(input), "ReadLines")
      .Rebalance()
      .Map(
          [marker](const std::string& line) {
            if (line == "fail here" && !std::filesystem::exists(marker)) {
              std::ofstream(marker) << "failed once\n";
              throw std::runtime_error("the planned failure");
            }
            return line;
          },
          "FailOnce")
      .Uid("fail-once")
      .Sink(sluice::TextFileSink<std::string>(output), "WriteLines")
      .Uid("write-lines");
}

}  // namespace

SLUICE_JOB(Build)
