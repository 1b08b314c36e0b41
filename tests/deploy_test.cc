// The deployment files in deploy/ as shipped: systemd-analyze verifies the units (run from
// this build's programs), the daemons accept the flag files and the Kubernetes manifests'
// arguments, and a JobManager and a TaskManager started from the flag files form a cluster.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/testing/local_cluster.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;

std::string Deploy(const std::string& path) {
  return absl::StrCat(SLUICE_SOURCE_DIR, "/deploy/", path);
}

TEST(DeployTest, SystemdVerifiesTheUnits) {
  if (testing::RunCommand("command -v systemd-analyze").exit_code != 0) {
    GTEST_SKIP() << "systemd-analyze is not installed (scripts/setup.sh installs it)";
  }
  // As installed by the package, except that the programs are this build's.
  testing::TempDir dir;
  std::string units;
  for (const std::string name : {"sluice-jobmanager.service", "sluice-taskmanager@.service"}) {
    const std::string text = absl::StrReplaceAll(testing::ReadFile(Deploy("systemd/" + name)),
                                                 {{"/usr/bin/", testing::BuildDir() + "/bin/"}});
    ASSERT_THAT(text, HasSubstr(testing::BuildDir() + "/bin/sluice-"));
    testing::WriteFile(dir.Join(name), text);
    absl::StrAppend(&units, " ", dir.Join(name));
  }
  // A template is verified through an instance of it.
  testing::WriteFile(dir.Join("sluice-taskmanager@1.service"),
                     testing::ReadFile(dir.Join("sluice-taskmanager@.service")));
  auto verify = testing::RunCommand(
      absl::StrCat("systemd-analyze verify --man=no ", dir.Join("sluice-jobmanager.service"), " ",
                   dir.Join("sluice-taskmanager@1.service"), " 2>&1"));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_EQ(verify.output, "") << "systemd has remarks";
}

/// The command line of `unit`'s ExecStart, flag files and all.
std::string ExecStart(const std::string& unit) {
  const std::vector<std::string> lines =
      absl::StrSplit(testing::ReadFile(Deploy("systemd/" + unit)), '\n');
  for (const std::string& line : lines) {
    if (line.starts_with("ExecStart=")) return line.substr(10);
  }
  return "";
}

TEST(DeployTest, TheDaemonsAcceptEveryShippedFlag) {
  // The flag files, as the units pass them (--only_check_args: parse, then exit).
  const std::string config = Deploy("config/");
  for (const std::string unit : {"sluice-jobmanager.service", "sluice-taskmanager@.service"}) {
    std::string command =
        absl::StrReplaceAll(ExecStart(unit), {{"/usr/bin/", testing::BuildDir() + "/bin/"},
                                              {"/etc/sluice/", config},
                                              {"%H", "host"},
                                              {"%i", "1"}});
    ASSERT_THAT(command, HasSubstr("--flagfile=" + config)) << unit;
    auto r = testing::RunCommand(command + " --only_check_args 2>&1");
    EXPECT_EQ(r.exit_code, 0) << command << "\n" << r.output;
  }
  // The Kubernetes manifests' containers: each one's command and arguments.
  auto containers = testing::RunCommand(
      absl::StrCat("/usr/bin/python3 -c 'import sys, yaml\n"
                   "for doc in yaml.safe_load_all(open(sys.argv[1])):\n"
                   "  if doc[\"kind\"] == \"Deployment\":\n"
                   "    for c in doc[\"spec\"][\"template\"][\"spec\"][\"containers\"]:\n"
                   "      print(\" \".join(c[\"command\"] + c[\"args\"]))' ",
                   Deploy("kubernetes/sluice.yaml")));
  ASSERT_EQ(containers.exit_code, 0) << containers.output;
  const std::vector<std::string> lines = absl::StrSplit(containers.output, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << containers.output;
  for (const std::string& line : lines) {
    // Kubernetes fills in $(VAR) from the container's environment.
    const std::string command = absl::StrReplaceAll(
        line, {{"$(POD_NAME)", "sluice-taskmanager-1"}, {"$(POD_IP)", "10.1.2.3"}});
    auto r = testing::RunCommand(
        absl::StrCat(testing::BuildDir(), "/bin/", command, " --only_check_args 2>&1"));
    EXPECT_EQ(r.exit_code, 0) << line << "\n" << r.output;
  }
}

TEST(DeployTest, AClusterStartedFromTheFlagFilesRunsWithItsToken) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("token"), "a-token-for-the-deploy-test\n");
  ASSERT_EQ(testing::RunCommand("chmod 600 " + dir.Join("token")).exit_code, 0);
  // The shipped files, with this machine's paths and ports put after them (later flags win).
  testing::JobManagerProcess jm({"--flagfile=" + Deploy("config/jobmanager.flags"), "--port=0",
                                 "--bind-address=127.0.0.1", "--blob-dir=" + dir.Join("blobs"),
                                 "--recovery-dir=" + dir.Join("recovery"), "--rest-port=0",
                                 "--auth-token-file=" + dir.Join("token"), "--log-dir="});
  testing::TaskManagerProcess tm(
      jm.address(), 1, "tm-1",
      {"--flagfile=" + Deploy("config/taskmanager.flags"), "--jobmanager=" + jm.address(),
       "--bind-address=127.0.0.1", "--metrics-port=0", "--auth-token-file=" + dir.Join("token"),
       "--log-dir="});
  // The flag file's 4 slots, not the 1 the harness put before it.
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return testing::Sluice("status --jobmanager=" + jm.address())
                   .output.find("slots: 4 total") != std::string::npos;
      },
      10000))
      << jm.log() << tm.log();
  // The token the flag file names is required: a TaskManager without it is refused.
  EXPECT_THAT(jm.log(), ::testing::Not(HasSubstr("this cluster is open")));
  testing::TaskManagerProcess intruder(jm.address(), 1, "intruder");
  EXPECT_EQ(intruder.process().Wait(), 1);
  EXPECT_THAT(intruder.log(), HasSubstr("the call carries no auth token"));
  EXPECT_THAT(tm.metrics_url(), HasSubstr("http://127.0.0.1:"));
}

}  // namespace
}  // namespace sluice
