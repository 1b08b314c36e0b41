#pragma once

#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>

#include "proto/exchange.grpc.pb.h"
#include "sluice/core/mutex.h"
#include "sluice/internal/network/channel_codec.h"
#include "sluice/internal/network/input_gate.h"
#include "sluice/jobmanager/credentials.h"

namespace sluice::cluster {

/// The consumer side of the data exchange, served by every TaskManager: producers on other
/// TaskManagers connect (one stream per producer TaskManager) and send the buffers of many
/// channels; each channel delivers into one channel of a local InputGate. Credit-based flow
/// control: a channel's producer may have at most as many batches in flight as the gate has
/// room for on that channel, and gets a credit back each time the consumer takes one. So the
/// receiving thread never blocks on a full gate, a slow consumer holds back exactly its own
/// producers (not the other channels of the stream), and memory stays bounded. A stream
/// that breaks before its channels ended (the producer's process died) fails their
/// consumers at once: their input can never be complete.
class ExchangeServer final : public Exchange::Service {
 public:
  /// With a token in `credentials`, producers must carry it (the cluster's
  /// --auth-token-file); this TaskManager's own producers use them too.
  explicit ExchangeServer(Credentials credentials = {}) : credentials_(std::move(credentials)) {}
  ~ExchangeServer() override;

  const Credentials& credentials() const { return credentials_; }

  /// Channel `channel_id` of run `attempt` of `job` delivers into `gate`'s channel `index`,
  /// batches decoded with `codec`; `credits` is the room the gate has for that channel (its
  /// capacity). Before the consumer runs. A producer of that run that opened the channel
  /// earlier gets its credits now; producers of other runs never reach it.
  void RegisterInbound(const std::string& job, int64_t attempt, int channel_id,
                       internal::InputGate* gate, int index,
                       std::shared_ptr<const internal::BatchCodec> codec, int credits);
  /// The channel's consumer is gone (its task ended); its gate may be destroyed after this.
  void UnregisterInbound(const std::string& job, int64_t attempt, int channel_id);

  grpc::Status Connect(grpc::ServerContext* ctx,
                       grpc::ServerReaderWriter<ConsumerMessage, ProducerMessage>* stream) override;

 private:
  struct Connection;
  struct Inbound {
    internal::InputGate* gate = nullptr;
    int index = 0;
    std::shared_ptr<const internal::BatchCodec> codec;
    int credits = 0;
    Connection* connection = nullptr;  // the producer's stream, once it opened the channel
    bool ended = false;                // its end of stream arrived
  };
  /// The consumer took a batch from `gate`'s channel `index`: one credit back.
  void ReturnCredit(internal::InputGate* gate, int index);
  /// Sends pending credits of one connection (its own thread).
  void SendCredits(Connection* c);

  struct ChannelKey {
    std::string job;
    int64_t attempt = 0;
    int channel = 0;
    auto operator<=>(const ChannelKey&) const = default;
  };

  /// What a connection's credit sender waits for.
  struct ConnectionCredits {
    std::map<int, int> pending_credits;  // channel id -> buffers
    bool done = false;                   // the producer's stream ended
  };

  const Credentials credentials_;
  Mutex mu_;
  std::map<ChannelKey, Inbound> inbound_ SLUICE_GUARDED_BY(mu_);
  std::map<internal::InputGate*, std::map<int, ChannelKey>> by_gate_
      SLUICE_GUARDED_BY(mu_);  // gate -> index -> channel
  std::map<const Connection*, ConnectionCredits> connections_ SLUICE_GUARDED_BY(mu_);
};

}  // namespace sluice::cluster
