#pragma once

#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "proto/exchange.grpc.pb.h"
#include "sluice/core/mutex.h"
#include "sluice/internal/network/channel_codec.h"
#include "sluice/internal/network/channel_sink.h"
#include "sluice/jobmanager/credentials.h"

namespace sluice::cluster {

/// The producer side of the data exchange: one stream to one consumer TaskManager, shared
/// by every channel from this TaskManager's tasks to that one (channels are multiplexed by
/// id). As a ChannelSink it takes the events of a RecordWriter whose target is a remote
/// channel (`ChannelTarget{client, channel_id}`): an event waits until the channel is open
/// (its first credit arrived), a batch also waits for a credit — that wait is the back
/// pressure a slow remote consumer exerts on exactly its producers.
class ExchangeClient final : public internal::ChannelSink {
 public:
  /// Connects to the exchange server at `address` (HOST:PORT) for the channels of run
  /// `attempt` of `job`.
  /// Calls go with `credentials` (the cluster's token and TLS, if it has them).
  ExchangeClient(const std::string& address, const std::string& job, int64_t attempt,
                 const Credentials& credentials = {});
  ~ExchangeClient() override;

  /// Declares a channel and how its batches are encoded; before any Push on it.
  void OpenChannel(int channel_id, std::shared_ptr<const internal::BatchCodec> codec);
  /// Sends one event on channel `channel_id`. False when the connection failed or was
  /// canceled (status() says why).
  bool Push(int channel_id, internal::ChannelEvent event) override;
  /// Unblocks every waiting Push (they return false); the stream is closed.
  void Cancel();
  /// OK, or why the connection ended.
  absl::Status status() const;

 private:
  struct Channel {
    std::shared_ptr<const internal::BatchCodec> codec;
    bool open = false;  // the first credit arrived
    int credits = 0;
  };
  /// Takes credits off the stream (its own thread).
  void ReadCredits();
  void Fail(absl::Status why);

  const std::string address_;
  std::unique_ptr<Exchange::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<ProducerMessage, ConsumerMessage>> stream_;
  std::thread reader_;

  mutable Mutex mu_;
  CondVar changed_;  // credits arrived, or the connection ended
  std::map<int, Channel> channels_ SLUICE_GUARDED_BY(mu_);
  absl::Status status_ SLUICE_GUARDED_BY(mu_);
  Mutex write_mu_;  // gRPC allows one writer at a time
  bool closed_ SLUICE_GUARDED_BY(write_mu_) = false;
};

}  // namespace sluice::cluster
