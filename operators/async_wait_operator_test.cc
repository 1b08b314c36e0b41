// The asynchronous I/O operator (DataStream::AsyncWait) in the operator harness, against a
// service written here that answers from threads of its own after random delays (so in random
// order): ordered and unordered output, watermarks as barriers, capacity, every timeout path,
// retries, and the in-flight requests across a snapshot and restore.

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/sluice.h"
#include "sluice/testing/operator_harness.h"
#include "sluice/testing/slow_service.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;

using Service = testing::SlowService;

/// "x" -> "x!" through the service; fails the first `failures` attempts of each record; a
/// record in `silent` is never answered.
class Shout final : public AsyncFunction<std::string, std::string> {
 public:
  Shout(std::shared_ptr<Service> service, int failures = 0, std::set<std::string> silent = {})
      : service_(std::move(service)),
        failures_(failures),
        silent_(std::make_shared<std::set<std::string>>(std::move(silent))),
        attempts_(std::make_shared<std::map<std::string, int>>()) {}
  void AsyncInvoke(const std::string& input, ResultFuture<std::string> result) override {
    const int attempt = (*attempts_)[input]++;  // task thread only
    if (silent_->contains(input)) return;
    service_->Submit([result, input, fail = attempt < failures_]() mutable {
      if (fail) {
        result.CompleteExceptionally(absl::UnavailableError("busy"));
      } else {
        result.Complete(input + "!");
      }
    });
  }
  std::shared_ptr<std::map<std::string, int>> attempts() const { return attempts_; }

 private:
  std::shared_ptr<Service> service_;
  int failures_;
  std::shared_ptr<std::set<std::string>> silent_;
  std::shared_ptr<std::map<std::string, int>> attempts_;
};

/// Shout with a timeout hook: a fallback ("x?"), or nothing for records starting with "drop".
class ShoutOrGuess final : public AsyncFunction<std::string, std::string> {
 public:
  explicit ShoutOrGuess(Shout shout) : shout_(std::move(shout)) {}
  void AsyncInvoke(const std::string& input, ResultFuture<std::string> result) override {
    shout_.AsyncInvoke(input, std::move(result));
  }
  void Timeout(const std::string& input, ResultFuture<std::string> result) override {
    if (input.starts_with("drop")) {
      result.Complete(std::vector<std::string>{});
    } else {
      result.Complete(input + "?");
    }
  }

 private:
  Shout shout_;
};

template <typename F>
std::pair<std::unique_ptr<testing::OperatorHarness<std::string, std::string>>,
          std::shared_ptr<Pipeline>>
HarnessFor(F fn, AsyncOptions options, int subtask = 0, int parallelism = 1) {
  auto p = std::make_shared<Pipeline>("harness");
  auto out = p->Source(CollectionSource<std::string>({})).AsyncWait(fn, options);
  return {std::make_unique<testing::OperatorHarness<std::string, std::string>>(
              p->graph(), out.nodes()[0], subtask, parallelism),
          p};
}

std::vector<std::string> Inputs(int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back("r" + std::to_string(i));
  return v;
}

/// Feeds `inputs` with a watermark after every `every`-th record, then finishes. Returns the
/// input position of each watermark (how many records preceded it).
std::vector<size_t> Feed(testing::OperatorHarness<std::string, std::string>& h,
                         const std::vector<std::string>& inputs, size_t every) {
  std::vector<size_t> positions;
  for (size_t i = 0; i < inputs.size(); ++i) {
    h.ProcessElement(inputs[i], static_cast<Timestamp>(1000 + i));
    h.RunMail();  // as a task between records
    if ((i + 1) % every == 0) {
      h.ProcessWatermark(static_cast<Timestamp>(1000 + i));
      positions.push_back(i + 1);
    }
  }
  h.Finish();
  return positions;
}

TEST(AsyncWaitOperatorTest, OrderedKeepsInputOrderUnderRandomCompletionOrder) {
  auto service = std::make_shared<Service>(absl::Milliseconds(5), 1);
  AsyncOptions o;
  o.capacity = 20;
  o.ordered = true;
  auto [h, p] = HarnessFor(Shout(service), o);
  h->Open();
  const auto inputs = Inputs(400);
  const auto positions = Feed(*h, inputs, 37);
  std::vector<std::string> expected;
  for (const auto& s : inputs) expected.push_back(s + "!");
  EXPECT_EQ(h->output().Values(), expected);
  // Each result keeps its record's timestamp, and each watermark follows exactly the
  // results of the records before it.
  for (size_t i = 0; i < h->output().records.size(); ++i) {
    EXPECT_EQ(h->output().records[i].timestamp, static_cast<Timestamp>(1000 + i));
  }
  EXPECT_EQ(h->output().records_before_watermark, positions);
  h->Close();
}

TEST(AsyncWaitOperatorTest, UnorderedEmitsAsAnsweredButNeverAcrossAWatermark) {
  auto service = std::make_shared<Service>(absl::Milliseconds(5), 2);
  AsyncOptions o;
  o.capacity = 20;
  o.ordered = false;
  auto [h, p] = HarnessFor(Shout(service), o);
  h->Open();
  const auto inputs = Inputs(400);
  const auto positions = Feed(*h, inputs, 37);
  const auto& out = h->output();
  std::vector<std::string> expected;
  for (const auto& s : inputs) expected.push_back(s + "!");
  EXPECT_THAT(out.Values(), UnorderedElementsAreArray(expected));
  EXPECT_NE(out.Values(), expected) << "random answer times must reorder some results";
  // The results between two watermarks are exactly those of the records between them.
  ASSERT_EQ(out.records_before_watermark, positions);
  size_t from = 0;
  for (size_t w = 0; w <= positions.size(); ++w) {
    const size_t to = w < positions.size() ? positions[w] : inputs.size();
    std::vector<std::string> got, want;
    for (size_t i = from; i < to; ++i) {
      got.push_back(out.records[i].value);
      want.push_back(inputs[i] + "!");
    }
    EXPECT_THAT(got, UnorderedElementsAreArray(want)) << "between watermarks " << w;
    from = to;
  }
  h->Close();
}

TEST(AsyncWaitOperatorTest, GoingIdleWaitsBehindTheRecordsStillOut) {
  auto service = std::make_shared<Service>(absl::ZeroDuration(), 12);
  AsyncOptions o;
  o.ordered = false;
  auto [h, p] = HarnessFor(Shout(service), o);
  h->Open();
  h->ProcessIdle(true);  // nothing out: at once
  EXPECT_EQ(h->output().idle_changes, std::vector<bool>{true});
  h->ProcessIdle(false);
  h->ProcessElement("a", 5);
  h->ProcessIdle(true);
  EXPECT_EQ(h->output().idle_changes, (std::vector<bool>{true, false}))
      << "idle must not overtake the record still out";
  service->Release();
  ASSERT_TRUE(testing::WaitFor([&] { return service->answered() == 1; }, 10'000));
  h->RunMail();
  EXPECT_EQ(h->output().Values(), std::vector<std::string>{"a!"});
  EXPECT_EQ(h->output().idle_changes, (std::vector<bool>{true, false, true}));
  h->Close();
}

TEST(AsyncWaitOperatorTest, AFullCapacityHoldsBackInputUntilAnAnswerArrives) {
  // The service answers only when released: what it holds is what is in flight.
  auto service = std::make_shared<Service>(absl::ZeroDuration(), 3);
  AsyncOptions o;
  o.capacity = 7;
  auto [h, p] = HarnessFor(Shout(service), o);
  h->Open();
  const auto inputs = Inputs(9);
  for (int i = 0; i < 7; ++i) h->ProcessElement(inputs[i]);
  EXPECT_EQ(service->held(), 7);
  std::atomic<bool> fed{false};
  std::thread feeder([&] {
    h->ProcessElement(inputs[7]);
    h->ProcessElement(inputs[8]);
    fed = true;
  });
  // Nothing can answer, so the feeder cannot get its records in: a bounded look at what must
  // not happen.
  EXPECT_FALSE(testing::WaitFor([&] { return fed.load(); }, 300));
  EXPECT_EQ(service->held(), 7) << "never more than the capacity in flight";
  service->Release();
  ASSERT_TRUE(testing::WaitFor([&] { return fed.load(); }, 10'000));
  feeder.join();
  EXPECT_EQ(service->max_held(), 7);
  service->Release();
  h->Finish();
  std::vector<std::string> expected;
  for (const auto& s : inputs) expected.push_back(s + "!");
  EXPECT_EQ(h->output().Values(), expected);
  h->Close();
}

TEST(AsyncWaitOperatorTest, ATimeoutFailsTheTaskNamingTheRecordByDefault) {
  auto service = std::make_shared<Service>(absl::Milliseconds(1), 4);
  AsyncOptions o;
  o.timeout = absl::Milliseconds(50);
  auto [h, p] = HarnessFor(Shout(service, 0, {"r3"}), o);
  h->Open();
  const absl::Time start = absl::Now();
  try {
    Feed(*h, Inputs(5), 1000);
    FAIL() << "the unanswered request must fail the task";
  } catch (const OperatorFailure& e) {
    EXPECT_THAT(e.what(), HasSubstr("record 'r3'"));
    EXPECT_THAT(e.what(), HasSubstr("timed out"));
    EXPECT_EQ(e.operator_name(), "AsyncWait");
  }
  EXPECT_GE(absl::Now() - start, o.timeout);
  EXPECT_EQ(h->metrics().GetCounter("async_timed_out").value(), 1);
  h->Close();
}

TEST(AsyncWaitOperatorTest, ATimeoutHookEmitsAFallbackOrDropsAndLateAnswersAreIgnored) {
  // Silent records never answer; the others answer at once. "late" answers only after the
  // timeout: its own answer must not appear beside the fallback.
  auto service = std::make_shared<Service>(absl::Milliseconds(1), 5);
  auto late = std::make_shared<Service>(absl::ZeroDuration(), 6);
  class LateOrShout final : public AsyncFunction<std::string, std::string> {
   public:
    LateOrShout(std::shared_ptr<Service> late, ShoutOrGuess shout)
        : late_(std::move(late)), shout_(std::move(shout)) {}
    void AsyncInvoke(const std::string& in, ResultFuture<std::string> r) override {
      if (in == "late") {
        late_->Submit([r, in]() mutable { r.Complete(in + "!"); });
      } else {
        shout_.AsyncInvoke(in, std::move(r));
      }
    }
    void Timeout(const std::string& in, ResultFuture<std::string> r) override {
      shout_.Timeout(in, std::move(r));
    }

   private:
    std::shared_ptr<Service> late_;
    ShoutOrGuess shout_;
  };
  AsyncOptions o;
  o.timeout = absl::Milliseconds(50);
  auto [h, p] =
      HarnessFor(LateOrShout(late, ShoutOrGuess(Shout(service, 0, {"quiet", "drop-me"}))), o);
  h->Open();
  for (const std::string s : {"a", "quiet", "b", "drop-me", "late", "c"}) h->ProcessElement(s);
  h->Finish();
  EXPECT_EQ(h->output().Values(), (std::vector<std::string>{"a!", "quiet?", "b!", "late?", "c!"}));
  late->Release();  // the late answer arrives now, after its timeout
  ASSERT_TRUE(testing::WaitFor([&] { return late->answered() == 1; }, 5000));
  h->RunMail();
  EXPECT_EQ(h->output().records.size(), 5u) << "a late answer after a timeout is ignored";
  EXPECT_EQ(h->metrics().GetCounter("async_timed_out").value(), 3);
  EXPECT_EQ(h->metrics().GetCounter("async_completed").value(), 6);
  h->Close();
}

TEST(AsyncWaitOperatorTest, FailedRequestsAreRetriedWithBackoffUpToTheLimit) {
  auto service = std::make_shared<Service>(absl::Milliseconds(1), 7);
  AsyncOptions o;
  o.retry.max_attempts = 3;
  o.retry.backoff = {absl::Milliseconds(2), absl::Milliseconds(10), 2.0, 0.0};
  Shout shout(service, /*failures=*/2);
  auto [h, p] = HarnessFor(shout, o);
  h->Open();
  const auto inputs = Inputs(30);
  Feed(*h, inputs, 1000);
  std::vector<std::string> expected;
  for (const auto& s : inputs) expected.push_back(s + "!");
  EXPECT_EQ(h->output().Values(), expected);
  EXPECT_EQ(h->metrics().GetCounter("async_retried").value(), 2 * 30);
  h->Close();

  // One attempt too few: the task fails naming the record and the attempts.
  o.retry.max_attempts = 2;
  auto [h2, p2] = HarnessFor(Shout(service, 2), o);
  h2->Open();
  try {
    Feed(*h2, Inputs(3), 1000);
    FAIL() << "the third failure must fail the task";
  } catch (const OperatorFailure& e) {
    EXPECT_THAT(e.what(), ContainsRegex("record 'r[0-2]' failed after 2 attempts"));
    EXPECT_THAT(e.what(), HasSubstr("busy"));
  }
  h2->Close();

  // Errors the policy does not retry fail at once.
  o.retry.max_attempts = 5;
  o.retry.retry_if = [](const absl::Status& s) { return absl::IsDeadlineExceeded(s); };
  auto [h3, p3] = HarnessFor(Shout(service, 1), o);
  h3->Open();
  EXPECT_THROW(Feed(*h3, Inputs(3), 1000), OperatorFailure);
  EXPECT_EQ(h3->metrics().GetCounter("async_retried").value(), 0);
  h3->Close();
}

TEST(AsyncWaitOperatorTest, RequestsInFlightAtASnapshotAreSentAgainOnRestore) {
  // The first service never answers on its own: what is in flight at the snapshot stays so.
  auto held = std::make_shared<Service>(absl::ZeroDuration(), 8);
  AsyncOptions o;
  o.capacity = 10;
  auto [before, p] = HarnessFor(Shout(held), o);
  before->Open();
  before->ProcessElement("a", 1);
  before->ProcessElement("b", 2);
  before->ProcessWatermark(2);
  before->ProcessElement("c", 3);
  auto snapshot = before->op().SnapshotNow(1);
  ASSERT_OK(snapshot);
  EXPECT_TRUE(before->output().records.empty());
  before->Close();

  auto answering = std::make_shared<Service>(absl::Milliseconds(2), 9);
  auto [after, p2] = HarnessFor(Shout(answering), o);
  after->op().InitializeState(RedistributeState({*snapshot}, 0, 1, 128));
  after->Open();
  after->Finish();
  const auto& out = after->output();
  EXPECT_EQ(out.Values(), (std::vector<std::string>{"a!", "b!", "c!"}));
  EXPECT_EQ(out.records[2].timestamp, 3);
  EXPECT_EQ(out.watermarks, std::vector<Timestamp>{2});
  EXPECT_EQ(out.records_before_watermark, std::vector<size_t>{2});
  after->Close();

  // At another parallelism the records are dealt out and the held watermark is not kept.
  auto [other, p3] = HarnessFor(Shout(answering), o, 0, 2);
  other->op().InitializeState(RedistributeState({*snapshot}, 0, 2, 128));
  other->Open();
  other->Finish();
  EXPECT_TRUE(other->output().watermarks.empty());
  other->Close();
  // The late answers of the first run's requests reach nobody.
  held->Release();
}

}  // namespace
}  // namespace sluice
