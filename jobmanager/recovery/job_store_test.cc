#include "recovery/job_store.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/testing/test_util.h"

namespace sluice::cluster {
namespace {

using ::testing::HasSubstr;

RecoveredJob Job(const std::string& id, int64_t attempt) {
  RecoveredJob job;
  job.set_job_id(id);
  job.mutable_submission()->set_job_name("name-of-" + id);
  job.mutable_submission()->add_args("--x=1");
  job.set_attempt(attempt);
  return job;
}

TEST(JobStoreTest, JobsAndTheNextNumberSurviveReopening) {
  testing::TempDir dir;
  {
    auto store = JobStore::Open(dir.Join("recovery"));
    ASSERT_OK(store);
    EXPECT_EQ(*(*store)->NextJobNumber(), 1) << "a new directory";
    ASSERT_OK((*store)->SetNextJobNumber(4));
    ASSERT_OK((*store)->Save(Job("job-2", 1)));
    ASSERT_OK((*store)->Save(Job("job-3", 1)));
    ASSERT_OK((*store)->Save(Job("job-2", 7)));  // its latest run
    ASSERT_OK((*store)->Remove("job-3"));        // ended
  }
  auto again = JobStore::Open(dir.Join("recovery"));
  ASSERT_OK(again);
  EXPECT_EQ(*(*again)->NextJobNumber(), 4);
  auto jobs = (*again)->Load();
  ASSERT_OK(jobs);
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0].job_id(), "job-2");
  EXPECT_EQ((*jobs)[0].attempt(), 7);
  EXPECT_EQ((*jobs)[0].submission().job_name(), "name-of-job-2");
  EXPECT_EQ((*jobs)[0].submission().args(0), "--x=1");
}

TEST(JobStoreTest, DamagedFilesAreNamed) {
  testing::TempDir dir;
  auto store = JobStore::Open(dir.path());
  ASSERT_OK(store);
  testing::WriteFile(dir.Join("jobs/job-1.job"), "\\xff not a job");
  auto jobs = (*store)->Load();
  ASSERT_FALSE(jobs.ok());
  EXPECT_THAT(std::string(jobs.status().message()),
              HasSubstr(dir.Join("jobs/job-1.job") + "' is damaged"));
  testing::WriteFile(dir.Join("next-job"), "many");
  EXPECT_THAT(std::string((*store)->NextJobNumber().status().message()),
              HasSubstr("next-job' is damaged"));
}

TEST(JobStoreTest, AnUnusableDirectoryIsNamed) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("file"), "x");
  auto store = JobStore::Open(dir.Join("file/recovery"));
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(std::string(store.status().message()),
              HasSubstr("cannot use the recovery directory '" + dir.Join("file/recovery")));
}

}  // namespace
}  // namespace sluice::cluster
