#include "sluice/testing/dev_kafka.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace sluice::testing {

namespace {
std::string ReadLine(FILE* f) {
  std::string line;
  char buf[1024];
  while (std::fgets(buf, sizeof(buf), f) != nullptr) {
    line += buf;
    if (!line.empty() && line.back() == '\n') break;
  }
  return std::string(absl::StripTrailingAsciiWhitespace(line));
}
}  // namespace

DevKafka::DevKafka(const std::vector<std::string>& args) {
  int to_child[2], from_child[2];
  if (::pipe(to_child) != 0 || ::pipe(from_child) != 0) {
    ADD_FAILURE() << "pipe failed";
    return;
  }
  std::vector<std::string> argv = {BuildDir() + "/bin/sluice", "dev", "kafka"};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(to_child[0], 0);
    ::dup2(from_child[1], 1);
    ::close(to_child[1]);
    ::close(from_child[0]);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  ::close(to_child[0]);
  ::close(from_child[1]);
  in_ = ::fdopen(to_child[1], "w");
  out_ = ::fdopen(from_child[0], "r");
  bootstrap_ = ReadLine(out_);
  EXPECT_FALSE(bootstrap_.empty()) << "sluice dev kafka printed no bootstrap address";
}

DevKafka::~DevKafka() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (in_ != nullptr) std::fclose(in_);
  if (out_ != nullptr) std::fclose(out_);
}

std::string DevKafka::Command(const std::string& command) {
  std::fprintf(in_, "%s\n", command.c_str());
  std::fflush(in_);
  return ReadLine(out_);
}

void DevKafka::Produce(const std::string& topic, int partition,
                       const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) absl::StrAppend(&text, l, "\n");
  const std::string file = dir_.Join(absl::StrCat("produce-", topic, "-", partition));
  WriteFile(file, text);
  const auto r = RunCommand(
      absl::StrCat("kcat -P -b ", bootstrap_, " -t ", topic, " -p ", partition, " -l ", file));
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

void DevKafka::ProduceBinary(const std::string& topic, int partition,
                             const std::vector<std::string>& messages) {
  // kcat -P sends each file named on its command line as one message.
  std::string files;
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string file = dir_.Join(absl::StrCat("message-", topic, "-", partition, "-", i));
    WriteFile(file, messages[i]);
    absl::StrAppend(&files, " ", file);
  }
  const auto r =
      RunCommand(absl::StrCat("kcat -P -b ", bootstrap_, " -t ", topic, " -p ", partition, files));
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace sluice::testing
