// Two-input operators end to end on the mini-cluster: Connect with CoMap / CoFlatMap /
// CoProcess, keyed connected streams with a KeyedCoProcessFunction (state both inputs share,
// event-time timers under the minimum watermark of both inputs), and an idle input that
// holds back neither watermarks nor checkpoints.

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/sluice.h"
#include "sluice/testing/test_util.h"

namespace sluice_connected_test {

struct Order {
  int64_t id = 0;
  int64_t ts = 0;
  int64_t amount = 0;
};
SLUICE_SERIALIZABLE(Order, id, ts, amount)

struct Payment {
  int64_t order_id = 0;
  int64_t ts = 0;
};
SLUICE_SERIALIZABLE(Payment, order_id, ts)

}  // namespace sluice_connected_test

namespace sluice {
namespace {

using sluice_connected_test::Order;
using sluice_connected_test::Payment;
using ::testing::UnorderedElementsAreArray;

/// Emits `items` with their timestamps (`ts` member) in order, a watermark of the highest
/// timestamp so far minus `bound_ms` after each, sleeping `pause` between batches of 50 (a
/// slow input), then ends. Not parallel.
template <typename T>
class TimedSource final : public SourceFunction<T> {
 public:
  TimedSource(std::vector<T> items, int64_t bound_ms, absl::Duration pause)
      : items_(std::make_shared<const std::vector<T>>(std::move(items))),
        bound_ms_(bound_ms),
        pause_(pause) {}
  SourceStatus Poll(SourceOutput<T>& out) override {
    if (pause_ > absl::ZeroDuration() && next_ > 0) absl::SleepFor(pause_);
    const size_t end = std::min(items_->size(), next_ + 50);
    for (; next_ < end; ++next_) {
      const T& item = (*items_)[next_];
      out.CollectWithTimestamp(item, item.ts);
      max_ts_ = std::max(max_ts_, item.ts);
      out.EmitWatermark(max_ts_ - bound_ms_);
    }
    return next_ < items_->size() ? SourceStatus::kMoreAvailable : SourceStatus::kEndOfInput;
  }
  bool IsParallel() const override { return false; }

 private:
  std::shared_ptr<const std::vector<T>> items_;
  int64_t bound_ms_;
  absl::Duration pause_;
  size_t next_ = 0;
  int64_t max_ts_ = kMinWatermark + 1'000'000;
};

TEST(ConnectedStreamsTest, CoMapAndCoFlatMapTakeBothInputs) {
  struct ToText final : CoMapFunction<int64_t, std::string, std::string> {
    std::string Map1(const int64_t& v) override { return absl::StrCat("n", v); }
    std::string Map2(const std::string& v) override { return "s" + v; }
  };
  struct Split final : CoFlatMapFunction<int64_t, std::string, std::string> {
    void FlatMap1(const int64_t& v, Collector<std::string>& out) override {
      for (int64_t i = 0; i < v % 3; ++i) out.Collect(absl::StrCat(v, "#", i));
    }
    void FlatMap2(const std::string& v, Collector<std::string>& out) override {
      out.Collect(v + v);
    }
  };
  for (int parallelism : {1, 3}) {
    SCOPED_TRACE(parallelism);
    std::vector<int64_t> numbers;
    std::vector<std::string> words;
    std::vector<std::string> mapped, flat;
    for (int64_t i = 0; i < 2000; ++i) {
      numbers.push_back(i);
      mapped.push_back(absl::StrCat("n", i));
      for (int64_t k = 0; k < i % 3; ++k) flat.push_back(absl::StrCat(i, "#", k));
    }
    for (int i = 0; i < 700; ++i) {
      words.push_back(absl::StrCat("w", i));
      mapped.push_back(absl::StrCat("sw", i));
      flat.push_back(absl::StrCat("w", i, "w", i));
    }
    Pipeline p("co-map");
    p.SetParallelism(parallelism);
    auto n = p.Source(CollectionSource<int64_t>(numbers));
    auto w = p.Source(CollectionSource<std::string>(words));
    auto mapped_out = std::make_shared<CollectedRecords<std::string>>();
    auto flat_out = std::make_shared<CollectedRecords<std::string>>();
    n.Connect(w).Map(ToText{}).Sink(CollectSink<std::string>(mapped_out));
    n.Connect(w).FlatMap(Split{}).Sink(CollectSink<std::string>(flat_out));
    ASSERT_OK(ExecuteLocally(p).status());
    EXPECT_THAT(mapped_out->Values(), UnorderedElementsAreArray(mapped));
    EXPECT_THAT(flat_out->Values(), UnorderedElementsAreArray(flat));
  }
}

TEST(ConnectedStreamsTest, CoProcessSeesTimestampsWatermarkAndSideOutput) {
  // Every record says its side and timestamp; records of the second input below 100 go to
  // a side output.
  struct Tag final : CoProcessFunction<Order, Payment, std::string> {
    void ProcessElement1(const Order& o, Context& ctx, Collector<std::string>& out) override {
      if (ctx.timestamp() != o.ts) throw std::runtime_error("order timestamp lost");
      out.Collect(absl::StrCat("o", o.id));
    }
    void ProcessElement2(const Payment& pay, Context& ctx, Collector<std::string>& out) override {
      if (ctx.timestamp() != pay.ts) throw std::runtime_error("payment timestamp lost");
      if (ctx.CurrentWatermark() >= pay.ts) throw std::runtime_error("watermark passed a record");
      if (pay.order_id < 100) {
        ctx.Output(OutputTag<int64_t>("small"), pay.order_id);
      } else {
        out.Collect(absl::StrCat("p", pay.order_id));
      }
    }
  };
  std::vector<Order> orders;
  std::vector<Payment> payments;
  std::vector<std::string> expected;
  std::vector<int64_t> small;
  for (int64_t i = 0; i < 500; ++i) {
    orders.push_back({i, 1000 + i * 10, i});
    payments.push_back({i, 1000 + i * 7});
    expected.push_back(absl::StrCat("o", i));
    if (i < 100) {
      small.push_back(i);
    } else {
      expected.push_back(absl::StrCat("p", i));
    }
  }
  Pipeline p("co-process");
  auto o = p.Source(TimedSource<Order>(orders, 0, absl::ZeroDuration()));
  auto pay = p.Source(TimedSource<Payment>(payments, 0, absl::ZeroDuration()));
  auto out = std::make_shared<CollectedRecords<std::string>>();
  auto side = std::make_shared<CollectedRecords<int64_t>>();
  auto processed = o.Connect(pay).Process(Tag{});
  processed.Sink(CollectSink<std::string>(out));
  processed.GetSideOutput(OutputTag<int64_t>("small")).Sink(CollectSink<int64_t>(side));
  ASSERT_OK(ExecuteLocally(p).status());
  EXPECT_THAT(out->Values(), UnorderedElementsAreArray(expected));
  EXPECT_THAT(side->Values(), UnorderedElementsAreArray(small));
}

/// Matches orders with their payments in keyed state both inputs share. An order's timer
/// at ts + 100 reports it unpaid if no payment came; a payment without an order is reported
/// by its own timer. A payment is never more than 50 ms after its order, and each source is
/// at most 20 ms out of order, so when the watermark of *both* inputs passes ts + 100 every
/// matching record has arrived: the result is exact.
class MatchPayments final : public KeyedCoProcessFunction<int64_t, Order, Payment, std::string> {
 public:
  void Open(KeyedRuntimeContext<int64_t>& ctx) override {
    amount_ = &ctx.GetState(ValueStateDescriptor<int64_t>("amount"));
    paid_ = &ctx.GetState(ValueStateDescriptor<bool>("paid"));
  }
  void ProcessElement1(const Order& o, Context& ctx, Collector<std::string>& out) override {
    amount_->Update(o.amount);
    if (paid_->Value().value_or(false)) {
      out.Collect(absl::StrCat("paid ", o.id, " ", o.amount));
    } else {
      ctx.Timers().RegisterEventTimeTimer(o.ts + 100);
    }
  }
  void ProcessElement2(const Payment& pay, Context& ctx, Collector<std::string>& out) override {
    paid_->Update(true);
    if (auto amount = amount_->Value()) {
      out.Collect(absl::StrCat("paid ", pay.order_id, " ", *amount));
    } else {
      ctx.Timers().RegisterEventTimeTimer(pay.ts + 100);
    }
  }
  void OnTimer(Timestamp, OnTimerContext& ctx, Collector<std::string>& out) override {
    const bool paid = paid_->Value().value_or(false);
    const bool ordered = amount_->Value().has_value();
    if (ordered && !paid) out.Collect(absl::StrCat("unpaid ", ctx.CurrentKey()));
    if (paid && !ordered) out.Collect(absl::StrCat("orphan ", ctx.CurrentKey()));
  }

 private:
  ValueState<int64_t>* amount_ = nullptr;
  ValueState<bool>* paid_ = nullptr;
};

struct MatchInput {
  std::vector<Order> orders;
  std::vector<Payment> payments;
  std::vector<std::string> expected;  // from the model
};

/// Orders every ~3 ms, 80% paid 0-50 ms later, 5% orphan payments; both streams up to 20 ms
/// out of order. The expected output is computed from the whole input.
MatchInput GenerateMatchInput(uint64_t seed, int count) {
  std::mt19937_64 rng(seed);
  MatchInput in;
  int64_t t = 10'000;
  for (int64_t id = 0; id < count; ++id) {
    t += static_cast<int64_t>(rng() % 6);
    const int64_t amount = static_cast<int64_t>(rng() % 1000);
    const uint64_t r = rng() % 100;
    if (r < 95) in.orders.push_back({id, t, amount});
    if (r < 80 || r >= 95) in.payments.push_back({id, t + static_cast<int64_t>(rng() % 51)});
    if (r < 80) {
      in.expected.push_back(absl::StrCat("paid ", id, " ", amount));
    } else if (r < 95) {
      in.expected.push_back(absl::StrCat("unpaid ", id));
    } else {
      in.expected.push_back(absl::StrCat("orphan ", id));
    }
  }
  // Out of order by up to 20 ms: each item arrives at its timestamp plus 0-20 ms, so an
  // item arriving before another is at most 20 ms later in event time.
  auto shuffle = [&rng](auto& items) {
    std::vector<std::pair<int64_t, size_t>> arrival;
    for (size_t i = 0; i < items.size(); ++i) {
      arrival.emplace_back(items[i].ts + static_cast<int64_t>(rng() % 21), i);
    }
    std::sort(arrival.begin(), arrival.end());
    auto sorted = items;
    for (size_t i = 0; i < arrival.size(); ++i) sorted[i] = items[arrival[i].second];
    items = std::move(sorted);
  };
  shuffle(in.orders);
  shuffle(in.payments);
  return in;
}

/// A fresh seed per run (SLUICE_TEST_SEED replays one); failures print it.
uint64_t FreshSeed() {
  if (const char* fixed = std::getenv("SLUICE_TEST_SEED")) return std::stoull(fixed);
  return std::random_device()();
}

TEST(ConnectedStreamsTest, KeyedCoProcessSharesStateAndFiresTimersAtTheMinimumWatermark) {
  const uint64_t seed = FreshSeed();
  for (StateBackendKind backend : {StateBackendKind::kHeap, StateBackendKind::kRocksDb}) {
    for (int parallelism : {1, 2, 4}) {
      SCOPED_TRACE(absl::StrCat("SLUICE_TEST_SEED=", seed, " parallelism ", parallelism,
                                backend == StateBackendKind::kHeap ? " heap" : " rocksdb"));
      MatchInput in = GenerateMatchInput(seed + parallelism, 3000);
      Pipeline p("match-payments");
      p.SetParallelism(parallelism);
      p.mutable_config().state_backend = backend;
      // Payments come slowly: the orders' watermark runs far ahead of theirs, and a timer
      // fired by the orders' watermark alone would report paid orders as unpaid.
      auto orders = p.Source(TimedSource<Order>(in.orders, 20, absl::ZeroDuration()));
      auto payments = p.Source(TimedSource<Payment>(in.payments, 20, absl::Milliseconds(2)));
      auto out = std::make_shared<CollectedRecords<std::string>>();
      orders.KeyBy(&Order::id)
          .Connect(payments.KeyBy(&Payment::order_id))
          .Process(MatchPayments{})
          .Sink(CollectSink<std::string>(out));
      ASSERT_OK(ExecuteLocally(p).status());
      EXPECT_THAT(out->Values(), UnorderedElementsAreArray(in.expected));
    }
  }
}

/// Emits `items` with their timestamps and a watermark after each, then (optionally) marks
/// itself idle, then holds its input open (no end of stream) until `*release` is set; gives
/// up after 60 s so a broken run ends.
template <typename T>
class HeldSource final : public SourceFunction<T> {
 public:
  HeldSource(std::vector<T> items, Timestamp final_watermark, bool go_idle,
             std::shared_ptr<std::atomic<bool>> release)
      : items_(std::make_shared<const std::vector<T>>(std::move(items))),
        final_watermark_(final_watermark),
        go_idle_(go_idle),
        release_(std::move(release)) {}
  SourceStatus Poll(SourceOutput<T>& out) override {
    if (next_ < items_->size()) {
      const T& item = (*items_)[next_++];
      out.CollectWithTimestamp(item, item.ts);
      out.EmitWatermark(item.ts);
      return SourceStatus::kMoreAvailable;
    }
    if (!held_) {
      held_ = true;
      deadline_ = absl::Now() + absl::Seconds(60);
      out.EmitWatermark(final_watermark_);
      if (go_idle_) out.MarkIdle(true);
    }
    if (release_->load() || absl::Now() > deadline_) return SourceStatus::kEndOfInput;
    absl::SleepFor(absl::Milliseconds(1));
    return SourceStatus::kNothingAvailable;
  }
  bool IsParallel() const override { return false; }

 private:
  std::shared_ptr<const std::vector<T>> items_;
  Timestamp final_watermark_;
  bool go_idle_;
  std::shared_ptr<std::atomic<bool>> release_;
  size_t next_ = 0;
  bool held_ = false;
  absl::Time deadline_;
};

/// Keeps what reaches it and releases the held sources once `expected` records arrived and
/// two more checkpoints completed after that.
class ReleasingSink final : public SinkFunction<std::string>, public CheckpointListener {
 public:
  ReleasingSink(std::shared_ptr<CollectedRecords<std::string>> into, size_t expected,
                std::shared_ptr<std::atomic<bool>> release)
      : into_(std::move(into)), expected_(expected), release_(std::move(release)) {}
  void Invoke(const std::string& value, const SinkContext& ctx) override {
    Record<std::string> r{value, ctx.timestamp()};
    into_->Add(std::span<const Record<std::string>>(&r, 1));
    ++seen_;
  }
  void NotifyCheckpointComplete(int64_t) override {
    if (seen_ >= expected_ && ++checkpoints_after_ >= 2) release_->store(true);
  }

 private:
  std::shared_ptr<CollectedRecords<std::string>> into_;
  size_t expected_;
  std::shared_ptr<std::atomic<bool>> release_;
  size_t seen_ = 0;
  int checkpoints_after_ = 0;
};

TEST(ConnectedStreamsTest, AnIdleInputHoldsBackNeitherTimersNorCheckpoints) {
  // Payments arrive for the first 20 orders, then the payment input goes idle for good
  // while staying open. The orders' watermark alone must fire every order's timer, and
  // checkpoints (barriers aligned over both inputs) must go on completing.
  for (bool exactly_once : {true, false}) {
    SCOPED_TRACE(exactly_once ? "exactly-once" : "at-least-once");
    std::vector<Order> orders;
    std::vector<Payment> payments;
    std::vector<std::string> expected;
    for (int64_t id = 0; id < 200; ++id) {
      orders.push_back({id, 1000 + id * 10, id * 3});
      if (id < 20) {
        payments.push_back({id, 1000 + id * 10 + 5});
        expected.push_back(absl::StrCat("paid ", id, " ", id * 3));
      } else {
        expected.push_back(absl::StrCat("unpaid ", id));
      }
    }
    auto release = std::make_shared<std::atomic<bool>>(false);
    Pipeline p("idle-input");
    p.SetParallelism(2);
    p.EnableCheckpointing(absl::Milliseconds(30), exactly_once);
    auto o = p.Source(HeldSource<Order>(orders, 100'000, /*go_idle=*/false, release));
    auto pay = p.Source(HeldSource<Payment>(payments, 1500, /*go_idle=*/true, release));
    auto out = std::make_shared<CollectedRecords<std::string>>();
    o.KeyBy(&Order::id)
        .Connect(pay.KeyBy(&Payment::order_id))
        .Process(MatchPayments{})
        .Sink(ReleasingSink(out, expected.size(), release))
        .Parallelism(1);
    const absl::Time start = absl::Now();
    auto result = ExecuteLocally(p);
    ASSERT_OK(result.status());
    EXPECT_TRUE(release->load()) << "the held sources ran into their 60 s deadline";
    EXPECT_LT(absl::Now() - start, absl::Seconds(50));
    EXPECT_THAT(out->Values(), UnorderedElementsAreArray(expected));
    EXPECT_GE(result->completed_checkpoints, 2);
  }
}

}  // namespace
}  // namespace sluice
