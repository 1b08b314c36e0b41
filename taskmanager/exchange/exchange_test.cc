// The data exchange between TaskManagers over real gRPC on loopback: a producer-side
// ExchangeClient and a consumer-side ExchangeServer delivering into InputGates.

#include <algorithm>
#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "exchange/exchange_channels.h"
#include "exchange/exchange_client.h"
#include "exchange/exchange_server.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "sluice/graph/stream_graph.h"
#include "sluice/internal/runtime/local_subtasks.h"
#include "sluice/sluice.h"
#include "sluice/testing/test_util.h"

namespace sluice::cluster {
namespace {

using Codec = TypedOutputTypeOps<std::string>;

internal::ChannelEvent BatchOf(const std::string& prefix, int records) {
  auto b = std::make_unique<Batch<std::string>>();
  for (int i = 0; i < records; ++i) b->Add(prefix + std::to_string(i), i);
  internal::ChannelEvent e;
  e.batch = std::move(b);
  return e;
}

internal::ChannelEvent Control(internal::ChannelEvent::Kind kind, int64_t value = 0) {
  internal::ChannelEvent e;
  e.kind = kind;
  e.watermark = value;
  e.checkpoint_id = value;
  return e;
}

/// One TaskManager's data plane: an exchange server on a free loopback port.
struct DataPlane {
  DataPlane() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&server);
    grpc = builder.BuildAndStart();
  }
  ~DataPlane() { Stop(); }
  /// The TaskManager goes away: its streams end.
  void Stop() {
    if (grpc) grpc->Shutdown(std::chrono::system_clock::now());
    grpc.reset();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }

  ExchangeServer server;
  std::unique_ptr<grpc::Server> grpc;
  int port = 0;
};

/// An exchange server on a free loopback port.
class ExchangeTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(plane_.port, 0); }

  /// Takes the next event of `gate` (waiting at most 10 s).
  static internal::ChannelEvent Take(internal::InputGate& gate, int* channel = nullptr) {
    int c = -1;
    internal::ChannelEvent e;
    EXPECT_EQ(gate.Next(absl::Now() + absl::Seconds(10), &c, &e),
              internal::InputGate::NextResult::kEvent);
    if (channel != nullptr) *channel = c;
    return e;
  }

  DataPlane plane_;
  ExchangeServer& server_ = plane_.server;
  const std::string address_ = plane_.address();
  std::shared_ptr<const internal::BatchCodec> codec_ = std::make_shared<Codec>();
};

TEST_F(ExchangeTest, EventsArriveInOrderWithTheirContents) {
  internal::InputGate gate(2, 4);
  server_.RegisterInbound("job", 1, 7, &gate, 1, codec_, 4);
  ExchangeClient client(address_, "job", 1);
  client.OpenChannel(7, codec_);
  ASSERT_TRUE(client.Push(7, BatchOf("a", 3)));
  ASSERT_TRUE(client.Push(7, Control(internal::ChannelEvent::Kind::kWatermark, 99)));
  ASSERT_TRUE(client.Push(7, Control(internal::ChannelEvent::Kind::kBarrier, 5)));
  ASSERT_TRUE(client.Push(7, BatchOf("b", 1)));
  ASSERT_TRUE(client.Push(7, Control(internal::ChannelEvent::Kind::kEndOfStream)));
  int channel = -1;
  internal::ChannelEvent e = Take(gate, &channel);
  EXPECT_EQ(channel, 1);
  ASSERT_EQ(e.kind, internal::ChannelEvent::Kind::kBatch);
  const auto& batch = static_cast<const Batch<std::string>&>(*e.batch);
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch[2].value, "a2");
  EXPECT_EQ(batch[2].timestamp, 2);
  e = Take(gate);
  EXPECT_EQ(e.kind, internal::ChannelEvent::Kind::kWatermark);
  EXPECT_EQ(e.watermark, 99);
  e = Take(gate);
  EXPECT_EQ(e.kind, internal::ChannelEvent::Kind::kBarrier);
  EXPECT_EQ(e.checkpoint_id, 5);
  EXPECT_EQ(Take(gate).kind, internal::ChannelEvent::Kind::kBatch);
  EXPECT_EQ(Take(gate).kind, internal::ChannelEvent::Kind::kEndOfStream);
}

TEST_F(ExchangeTest, AProducerNeverHasMoreBatchesInFlightThanTheConsumerHasRoomFor) {
  constexpr int kCapacity = 2;
  constexpr int kBatches = 50;
  internal::InputGate gate(1, kCapacity);
  server_.RegisterInbound("job", 1, 1, &gate, 0, codec_, kCapacity);
  ExchangeClient client(address_, "job", 1);
  client.OpenChannel(1, codec_);
  std::atomic<int> pushed{0};
  std::thread producer([&] {
    for (int i = 0; i < kBatches; ++i) {
      ASSERT_TRUE(client.Push(1, BatchOf("x", 10)));
      pushed++;
    }
  });
  for (int consumed = 1; consumed <= kBatches; ++consumed) {
    ASSERT_EQ(Take(gate).kind, internal::ChannelEvent::Kind::kBatch);
    // Credits: the initial room plus one per batch taken so far.
    EXPECT_LE(pushed.load(), kCapacity + consumed);
  }
  producer.join();
  EXPECT_LE(gate.max_queued_records(), kCapacity * 10);
}

TEST_F(ExchangeTest, ABlockedChannelDoesNotHoldUpTheOthersOnTheSameStream) {
  internal::InputGate stuck(1, 1);  // its consumer never reads
  internal::InputGate moving(1, 2);
  server_.RegisterInbound("job", 1, 1, &stuck, 0, codec_, 1);
  server_.RegisterInbound("job", 1, 2, &moving, 0, codec_, 2);
  ExchangeClient client(address_, "job", 1);
  client.OpenChannel(1, codec_);
  client.OpenChannel(2, codec_);
  std::atomic<int> stuck_pushed{0};
  std::thread blocked([&] {
    while (client.Push(1, BatchOf("s", 1))) stuck_pushed++;
  });
  // The stuck channel used its only credit: its producer now waits.
  ASSERT_TRUE(testing::WaitFor([&] { return stuck_pushed.load() == 1; }, 10000));
  std::thread flowing([&] {
    for (int i = 0; i < 200; ++i) ASSERT_TRUE(client.Push(2, BatchOf("m", 5)));
  });
  for (int i = 0; i < 200; ++i) ASSERT_EQ(Take(moving).kind, internal::ChannelEvent::Kind::kBatch);
  flowing.join();
  EXPECT_EQ(stuck_pushed.load(), 1) << "only the one credit of the stuck channel was used";
  client.Cancel();  // releases the blocked producer
  blocked.join();
  // As a job part does before its gates go: the canceled stream's end fails what is still
  // registered (its channels never ended).
  server_.UnregisterInbound("job", 1, 1);
  server_.UnregisterInbound("job", 1, 2);
}

TEST_F(ExchangeTest, AChannelOpenedBeforeItsConsumerIsRegisteredWaitsForIt) {
  ExchangeClient client(address_, "job", 1);
  client.OpenChannel(9, codec_);
  std::thread producer([&] { EXPECT_TRUE(client.Push(9, BatchOf("late", 2))); });
  internal::InputGate gate(1, 2);
  server_.RegisterInbound("job", 1, 9, &gate, 0, codec_, 2);  // the consumer task deployed later
  internal::ChannelEvent e = Take(gate);
  producer.join();
  ASSERT_EQ(e.kind, internal::ChannelEvent::Kind::kBatch);
  EXPECT_EQ(static_cast<const Batch<std::string>&>(*e.batch)[1].value, "late1");
}

TEST_F(ExchangeTest, AProducerLearnsThatTheConsumerSideWentAway) {
  internal::InputGate gate(1, 1);
  server_.RegisterInbound("job", 1, 3, &gate, 0, codec_, 1);
  ExchangeClient client(address_, "job", 1);
  client.OpenChannel(3, codec_);
  ASSERT_TRUE(client.Push(3, BatchOf("a", 1)));
  std::thread producer([&] { EXPECT_FALSE(client.Push(3, BatchOf("b", 1))); });  // no credit
  plane_.Stop();
  producer.join();
  EXPECT_FALSE(client.status().ok());
  EXPECT_FALSE(client.Push(3, Control(internal::ChannelEvent::Kind::kEndOfStream)));
}

TEST_F(ExchangeTest, AConsumerWhoseProducerVanishesBeforeItsEndFailsAtOnce) {
  internal::InputGate gate(2, 4);
  server_.RegisterInbound("job", 1, 1, &gate, 0, codec_, 4);
  server_.RegisterInbound("job", 1, 2, &gate, 1, codec_, 4);
  auto client = std::make_unique<ExchangeClient>(address_, "job", 1);
  client->OpenChannel(1, codec_);
  client->OpenChannel(2, codec_);
  ASSERT_TRUE(client->Push(1, BatchOf("a", 2)));
  ASSERT_TRUE(client->Push(2, Control(internal::ChannelEvent::Kind::kEndOfStream)));
  EXPECT_EQ(Take(gate).kind, internal::ChannelEvent::Kind::kBatch);
  EXPECT_EQ(Take(gate).kind, internal::ChannelEvent::Kind::kEndOfStream);
  // The producer's stream breaks with channel 1 unfinished (as when its process dies: the
  // connection goes, not the stream's orderly end): the consumer hears it now, not when
  // somebody cancels it.
  client->Cancel();
  int channel = -1;
  internal::ChannelEvent e;
  ASSERT_EQ(gate.Next(absl::Now() + absl::Seconds(10), &channel, &e),
            internal::InputGate::NextResult::kFailed);
  EXPECT_THAT(gate.failure(), ::testing::HasSubstr("broke before channel 1 of job 'job' ended"));
  server_.UnregisterInbound("job", 1, 1);
  server_.UnregisterInbound("job", 1, 2);
}

TEST_F(ExchangeTest, AProducerThatClosesItsStreamOrEndsItsChannelsFailsNoConsumer) {
  internal::InputGate gate(2, 4);
  server_.RegisterInbound("job", 1, 1, &gate, 0, codec_, 4);
  server_.RegisterInbound("job", 1, 2, &gate, 1, codec_, 4);
  {
    ExchangeClient ended(address_, "job", 1);
    ended.OpenChannel(1, codec_);
    ASSERT_TRUE(ended.Push(1, Control(internal::ChannelEvent::Kind::kEndOfStream)));
    EXPECT_EQ(Take(gate).kind, internal::ChannelEvent::Kind::kEndOfStream);
    ExchangeClient stopped(address_, "job", 1);  // a stopped part closes its stream in order
    stopped.OpenChannel(2, codec_);
    ASSERT_TRUE(stopped.Push(2, BatchOf("a", 1)));
    EXPECT_EQ(Take(gate).kind, internal::ChannelEvent::Kind::kBatch);
  }
  // The stream's end after its channels ended is normal. Shutting the server down waits
  // until its handler of that stream returned.
  plane_.Stop();
  EXPECT_EQ(gate.failure(), "");
}

TEST_F(ExchangeTest, AProducerOfAnOlderRunNeverReachesTheNewRunsConsumer) {
  // Runs 1 and 2 of the job use the same channel id. A producer of run 1 (a TaskManager that
  // was cut off while its run failed, and came back) must reach only run 1's consumer, never
  // the new run's, whatever the order of the streams.
  internal::InputGate old_run(1, 4);
  internal::InputGate new_run(1, 4);
  server_.RegisterInbound("job", 1, 4, &old_run, 0, codec_, 4);
  server_.RegisterInbound("job", 2, 4, &new_run, 0, codec_, 4);
  ExchangeClient zombie(address_, "job", 1);
  ExchangeClient current(address_, "job", 2);
  zombie.OpenChannel(4, codec_);
  current.OpenChannel(4, codec_);
  ASSERT_TRUE(zombie.Push(4, BatchOf("old", 1)));
  ASSERT_TRUE(current.Push(4, BatchOf("new", 1)));
  for (auto [gate, value] : {std::pair{&old_run, "old0"}, std::pair{&new_run, "new0"}}) {
    internal::ChannelEvent e = Take(*gate);
    ASSERT_EQ(e.kind, internal::ChannelEvent::Kind::kBatch);
    EXPECT_EQ(static_cast<const Batch<std::string>&>(*e.batch)[0].value, value);
  }
  server_.UnregisterInbound("job", 1, 4);
  server_.UnregisterInbound("job", 2, 4);
}

TEST(ExchangeClientTest, AConsumerThatIsNotThereFailsTheProducerAtOnce) {
  testing::ClosedPort closed;  // nothing listens there
  const int port = closed.port();
  ExchangeClient client("127.0.0.1:" + std::to_string(port), "job", 1);
  client.OpenChannel(1, std::make_shared<Codec>());
  EXPECT_FALSE(client.Push(1, BatchOf("x", 1)));
  EXPECT_THAT(std::string(client.status().message()),
              ::testing::HasSubstr("exchange with the TaskManager at 127.0.0.1:" +
                                   std::to_string(port) + " failed"));
}

// --- a job's subtasks split over two TaskManagers' worth of runtime ---

TEST(DistributedRunTest, AKeyedJobSplitOverTwoTaskManagersMatchesTheMiniCluster) {
  using KV = std::pair<int64_t, int64_t>;
  auto build = [](std::shared_ptr<CollectedRecords<KV>> out) {
    auto p = std::make_unique<Pipeline>("split");
    p->SetParallelism(3);
    p->Source(Generator([](uint64_t i) { return static_cast<int64_t>(i); }, {.count = 20000}))
        .Parallelism(2)
        .Map([](const int64_t& v) {
          return KV{v % 101, v};
        })
        .KeyBy([](const KV& kv) { return kv.first; })
        .Reduce([](const KV& a, const KV& b) {
          return KV{a.first, a.second + b.second};
        })
        .Sink(CollectSink<KV>(out));
    return p;
  };
  // The reference: the mini-cluster.
  auto expected_out = std::make_shared<CollectedRecords<KV>>();
  auto reference = ExecuteLocally(*build(expected_out));
  ASSERT_OK(reference);
  int64_t expected_in = 0;
  for (const auto& t : reference->tasks) expected_in += t.records_in;
  // A rolling reduce's intermediate sums depend on arrival order; per key, the last (largest)
  // one and the number of updates do not.
  auto final_sums = [](const std::vector<KV>& updates) {
    std::map<int64_t, std::pair<int64_t, int64_t>> out;  // key -> (updates, largest sum)
    for (const auto& [k, sum] : updates) {
      out[k].first++;
      out[k].second = std::max(out[k].second, sum);
    }
    return out;
  };
  const auto expected = final_sums(expected_out->Values());
  ASSERT_EQ(expected.size(), 101u);

  auto out = std::make_shared<CollectedRecords<KV>>();
  auto pipeline = build(out);
  auto graph = pipeline->BuildJobGraph();
  ASSERT_OK(graph);
  DataPlane a, b;
  const std::vector<std::string> addresses = {a.address(), b.address()};
  // Subtask s of every vertex runs on TaskManager s % 2: every keyed channel between
  // subtasks of different parity crosses the exchange.
  internal::Placement placement;
  for (const JobVertex& v : graph->vertices) {
    std::vector<int> where;
    for (int s = 0; s < v.parallelism; ++s) where.push_back(s % 2);
    placement.location.push_back(where);
  }
  ExchangeChannels channels_a("job-1", 1, &a.server, addresses);
  ExchangeChannels channels_b("job-1", 1, &b.server, addresses);
  internal::Placement at_a = placement, at_b = placement;
  at_a.self = 0;
  at_b.self = 1;
  internal::LocalSubtasks on_a(&*graph, at_a, &channels_a);
  internal::LocalSubtasks on_b(&*graph, at_b, &channels_b);
  absl::Status status_a, status_b;
  std::thread run_b([&] { status_b = on_b.Run(); });
  status_a = on_a.Run();
  run_b.join();
  ASSERT_OK(status_a);
  ASSERT_OK(status_b);
  channels_a.Close();
  channels_b.Close();
  EXPECT_EQ(final_sums(out->Values()), expected);
  // Both sides ran their share, and records crossed between them.
  int64_t in_a = 0, in_b = 0;
  for (const auto& t : on_a.Stats()) in_a += t.records_in;
  for (const auto& t : on_b.Stats()) in_b += t.records_in;
  EXPECT_GT(in_a, 0);
  EXPECT_GT(in_b, 0);
  EXPECT_EQ(in_a + in_b, expected_in);
}

}  // namespace
}  // namespace sluice::cluster
