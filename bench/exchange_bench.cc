// exchange_bench [--records=N] [--batch=N]
//
// The raw throughput of the data exchange between TaskManagers: 100-byte records in batches
// pushed through an ExchangeClient, over gRPC on loopback, into an ExchangeServer that
// decodes them into an InputGate a consumer thread drains (credit-based flow control on).
// Beside it, in the same run: the same batches through the in-memory channel (an InputGate
// directly, as inside one TaskManager), and a plain TCP socket copy of the same payload
// bytes on loopback; and, to explain the difference, encoding plus decoding alone on one
// thread. Prints MB/s (of record payload) and records/s, and the ratio of the exchange to
// the TCP copy. Batches are built before the clock starts.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/time/clock.h"
#include "exchange/exchange_client.h"
#include "exchange/exchange_server.h"
#include "grpcpp/grpcpp.h"
#include "sluice/graph/stream_graph.h"
#include "sluice/job/abseil_flags.h"

ABSL_FLAG(int64_t, records, 2'000'000, "records of 100 bytes");
ABSL_FLAG(int, batch, 300, "records per batch (about 32 KiB)");
ABSL_FLAG(int, capacity, 4, "batches a channel holds (the runtime's default: 4): the credits");

namespace {

constexpr int kRecordBytes = 100;

std::vector<sluice::internal::ChannelEvent> MakeBatches(int64_t records, int per_batch) {
  std::vector<sluice::internal::ChannelEvent> out;
  for (int64_t done = 0; done < records;) {
    auto b = std::make_unique<sluice::Batch<std::string>>(per_batch);
    for (int i = 0; i < per_batch && done < records; ++i, ++done) {
      b->Add(std::string(kRecordBytes, static_cast<char>('a' + done % 26)), done);
    }
    sluice::internal::ChannelEvent e;
    e.batch = std::move(b);
    out.push_back(std::move(e));
  }
  return out;
}

/// Drains `batches` batches from `gate`; returns the records seen.
int64_t Drain(sluice::internal::InputGate& gate, size_t batches) {
  int64_t records = 0;
  for (size_t i = 0; i < batches; ++i) {
    int channel;
    sluice::internal::ChannelEvent e;
    gate.Next(absl::InfiniteFuture(), &channel, &e);
    records += static_cast<int64_t>(e.batch->size());
  }
  return records;
}

double InMemorySeconds(std::vector<sluice::internal::ChannelEvent> batches) {
  sluice::internal::InputGate gate(1, absl::GetFlag(FLAGS_capacity));
  const size_t n = batches.size();
  const absl::Time start = absl::Now();
  std::thread producer([&] {
    for (auto& e : batches) gate.Push(0, std::move(e));
  });
  Drain(gate, n);
  producer.join();
  return absl::ToDoubleSeconds(absl::Now() - start);
}

double ExchangeSeconds(std::vector<sluice::internal::ChannelEvent> batches) {
  sluice::cluster::ExchangeServer server;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&server);
  auto grpc_server = builder.BuildAndStart();
  auto codec = std::make_shared<sluice::TypedOutputTypeOps<std::string>>();
  sluice::internal::InputGate gate(1, absl::GetFlag(FLAGS_capacity));
  server.RegisterInbound("bench", 1, 1, &gate, 0, codec, absl::GetFlag(FLAGS_capacity));
  double seconds = 0;
  {
    sluice::cluster::ExchangeClient client("127.0.0.1:" + std::to_string(port), "bench", 1);
    client.OpenChannel(1, codec);
    const size_t n = batches.size();
    const absl::Time start = absl::Now();
    std::thread producer([&] {
      for (auto& e : batches) client.Push(1, std::move(e));
    });
    Drain(gate, n);
    seconds = absl::ToDoubleSeconds(absl::Now() - start);
    producer.join();
  }
  grpc_server->Shutdown(std::chrono::system_clock::now());
  return seconds;
}

/// Encoding and decoding alone, one thread: what the exchange spends on (de)serialization.
double CodecSeconds(std::vector<sluice::internal::ChannelEvent> batches) {
  sluice::TypedOutputTypeOps<std::string> codec;
  const absl::Time start = absl::Now();
  std::string bytes;
  for (auto& e : batches) {
    bytes.clear();
    sluice::internal::EncodeChannelEvent(e, codec, &bytes);
    auto decoded = sluice::internal::DecodeChannelEvent(bytes, codec);
    if (!decoded.ok()) std::abort();
  }
  return absl::ToDoubleSeconds(absl::Now() - start);
}

double TcpSeconds(int64_t bytes) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::listen(listener, 1);
  socklen_t len = sizeof(addr);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  const int out = ::socket(AF_INET, SOCK_STREAM, 0);
  ::connect(out, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  const int in = ::accept(listener, nullptr, nullptr);
  std::vector<char> buffer(32 * 1024, 'x');
  const absl::Time start = absl::Now();
  std::thread writer([&] {
    for (int64_t sent = 0; sent < bytes;) {
      const ssize_t n = ::write(
          out, buffer.data(), static_cast<size_t>(std::min<int64_t>(buffer.size(), bytes - sent)));
      if (n <= 0) break;
      sent += n;
    }
  });
  std::vector<char> sink(32 * 1024);
  for (int64_t got = 0; got < bytes;) {
    const ssize_t n = ::read(in, sink.data(), sink.size());
    if (n <= 0) break;
    got += n;
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  writer.join();
  ::close(in);
  ::close(out);
  ::close(listener);
  return seconds;
}

void Report(const char* what, int64_t records, double seconds) {
  std::printf("%-28s %8.1f MB/s  %10.0f records/s  (%.2f s)\n", what,
              static_cast<double>(records) * kRecordBytes / seconds / 1e6,
              static_cast<double>(records) / seconds, seconds);
}

}  // namespace

int main(int argc, char** argv) {
  sluice::ParseAbseilFlags(argc, argv);
  const int64_t records = absl::GetFlag(FLAGS_records);
  const int per_batch = absl::GetFlag(FLAGS_batch);
  std::printf("%lld records of %d bytes, %d per batch\n", static_cast<long long>(records),
              kRecordBytes, per_batch);
  const double tcp = TcpSeconds(records * kRecordBytes);
  const double memory = InMemorySeconds(MakeBatches(records, per_batch));
  const double exchange = ExchangeSeconds(MakeBatches(records, per_batch));
  const double codec = CodecSeconds(MakeBatches(records, per_batch));
  Report("TCP socket copy (payload)", records, tcp);
  Report("in-memory channel", records, memory);
  Report("gRPC exchange", records, exchange);
  Report("encode + decode alone", records, codec);
  std::printf("exchange / TCP copy: %.1f%%\n", 100 * tcp / exchange);
  return 0;
}
