#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "exchange/exchange_client.h"
#include "exchange/exchange_server.h"
#include "sluice/core/mutex.h"
#include "sluice/internal/runtime/remote_channels.h"

namespace sluice::cluster {

/// A TaskManager's remote channels for one job over the data exchange: outbound channels
/// through one ExchangeClient per consumer TaskManager (all channels to it share the
/// stream), inbound ones registered on this TaskManager's ExchangeServer.
class ExchangeChannels final : public internal::RemoteChannels {
 public:
  /// The channels of run `attempt` of `job`; `addresses[location]`: the exchange server of
  /// each TaskManager of the run.
  ExchangeChannels(std::string job, int64_t attempt, ExchangeServer* server,
                   std::vector<std::string> addresses);
  ~ExchangeChannels() override;

  internal::ChannelSink* OpenOutbound(int location, int channel_id,
                                      std::shared_ptr<const internal::BatchCodec> codec) override;
  void RegisterInbound(int channel_id, internal::InputGate* gate, int index,
                       std::shared_ptr<const internal::BatchCodec> codec, int capacity) override;
  absl::Status status() const override;

  /// Unblocks every producer waiting on a remote consumer.
  void Cancel();
  /// Unregisters the inbound channels (before their gates go) and closes the streams.
  void Close();

 private:
  const std::string job_;
  const int64_t attempt_;
  ExchangeServer* server_;
  const std::vector<std::string> addresses_;
  mutable Mutex mu_;
  std::map<int, std::unique_ptr<ExchangeClient>> clients_ SLUICE_GUARDED_BY(mu_);  // by location
  std::vector<int> inbound_ SLUICE_GUARDED_BY(mu_);
};

}  // namespace sluice::cluster
