// Failures in user code and bad input end the job with a message that names the operator
// and the cause, and stop every other task (also unbounded sources).

#include <stdexcept>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/sluice.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;

TEST(FailureTest, ExceptionInUserCodeFailsTheJobWithOperatorName) {
  Pipeline p("explode");
  p.SetParallelism(2);
  // Unbounded source: the job ends only because the failure cancels it.
  p.Source(Generator([](uint64_t i) { return static_cast<int64_t>(i); }))
      .Map(
          [](const int64_t& v) {
            if (v == 5000) throw std::runtime_error("boom at 5000");
            return v;
          },
          "Explode")
      .Sink(DiscardingSink<int64_t>{});
  auto r = ExecuteLocally(p);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("operator 'Explode'"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("boom at 5000"));
}

class FailingOpenSink final : public SinkFunction<int64_t> {
 public:
  void Open(RuntimeContext&) override { throw std::runtime_error("cannot reach the database"); }
  void Invoke(const int64_t&, const SinkContext&) override {}
};

TEST(FailureTest, ExceptionInOpenIsReportedWithTheSinkName) {
  Pipeline p("open-fails");
  p.Source(Generator([](uint64_t i) {
     return static_cast<int64_t>(i);
   })).Sink(FailingOpenSink{}, "Database");
  auto r = ExecuteLocally(p);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("operator 'Database'"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("cannot reach the database"));
}

TEST(FailureTest, FailureInADownstreamTaskStopsABlockedProducer) {
  // The sink fails after the first records while the source is blocked on a full channel:
  // cancellation must wake it.
  Pipeline p("downstream-fails");
  p.SetChannelCapacity(1);
  p.Source(Generator([](uint64_t i) { return static_cast<int64_t>(i); }))
      .Rebalance()
      .Map(
          [](const int64_t& v) {
            if (v > 100000) throw std::invalid_argument("bad record " + std::to_string(v));
            return v;
          },
          "Validate")
      .Parallelism(2)
      .Sink(DiscardingSink<int64_t>{});
  auto r = ExecuteLocally(p);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("operator 'Validate'"));
}

TEST(FailureTest, MissingInputFileIsNamed) {
  Pipeline p("missing");
  p.Source(TextFileSource("/nonexistent/input.txt"), "ReadLines").Print();
  auto r = ExecuteLocally(p);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("operator 'ReadLines'"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("/nonexistent/input.txt"));
}

TEST(FailureTest, NonDeterministicKeySelectorIsCaught) {
  Pipeline p("random-keys");
  int64_t calls = 0;
  struct Bump final : public KeyedProcessFunction<int64_t, int64_t, int64_t> {
    void ProcessElement(const int64_t& v, Context&, Collector<int64_t>& out) override {
      out.Collect(v);
    }
  };
  p.Source(Generator([](uint64_t i) { return static_cast<int64_t>(i); }, {.count = 10000}))
      .KeyBy([calls](const int64_t& v) mutable { return v + (calls++); })
      .Process(Bump{})
      .Parallelism(2)
      .Sink(DiscardingSink<int64_t>{});
  auto r = ExecuteLocally(p);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("key selector must return the same key"));
}

}  // namespace
}  // namespace sluice
