// A job of independent pipelines (for region failover tests): each subtask reads its split
// of --input, tags every line and writes it to --output (exactly-once part files). No
// exchange joins the subtasks: at parallelism p the job has p pipelined regions.
#include <string>

#include "sluice/sluice.h"

namespace {

void Build(sluice::Pipeline& p) {
  const std::string input = p.Args().GetString("input");
  const std::string output = p.Args().GetString("output");
  p.Source(sluice::TextFileSource(input), "ReadLines")
      .Uid("read-lines")
      .Map([](const std::string& line) { return "seen " + line; }, "Tag")
      .Uid("tag")
      .Sink(sluice::TextFileSink<std::string>(output), "WriteLines")
      .Uid("write-lines");
}

}  // namespace

SLUICE_JOB(Build)
