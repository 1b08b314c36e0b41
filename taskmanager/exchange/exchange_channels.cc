#include "exchange/exchange_channels.h"

namespace sluice::cluster {

ExchangeChannels::ExchangeChannels(std::string job, int64_t attempt, ExchangeServer* server,
                                   std::vector<std::string> addresses)
    : job_(std::move(job)), attempt_(attempt), server_(server), addresses_(std::move(addresses)) {}

ExchangeChannels::~ExchangeChannels() { Close(); }

internal::ChannelSink* ExchangeChannels::OpenOutbound(
    int location, int channel_id, std::shared_ptr<const internal::BatchCodec> codec) {
  ExchangeClient* client;
  {
    MutexLock lock(&mu_);
    auto& slot = clients_[location];
    if (slot == nullptr)
      slot = std::make_unique<ExchangeClient>(addresses_[location], job_, attempt_,
                                              server_->credentials());
    client = slot.get();
  }
  client->OpenChannel(channel_id, std::move(codec));
  return client;
}

void ExchangeChannels::RegisterInbound(int channel_id, internal::InputGate* gate, int index,
                                       std::shared_ptr<const internal::BatchCodec> codec,
                                       int capacity) {
  server_->RegisterInbound(job_, attempt_, channel_id, gate, index, std::move(codec), capacity);
  MutexLock lock(&mu_);
  inbound_.push_back(channel_id);
}

absl::Status ExchangeChannels::status() const {
  MutexLock lock(&mu_);
  for (const auto& [location, client] : clients_) {
    absl::Status s = client->status();
    if (!s.ok() && !absl::IsCancelled(s)) return s;
  }
  return absl::OkStatus();
}

void ExchangeChannels::Cancel() {
  MutexLock lock(&mu_);
  for (auto& [location, client] : clients_) client->Cancel();
}

void ExchangeChannels::Close() {
  std::vector<int> inbound;
  std::map<int, std::unique_ptr<ExchangeClient>> clients;
  {
    MutexLock lock(&mu_);
    inbound.swap(inbound_);
    clients.swap(clients_);
  }
  for (int id : inbound) server_->UnregisterInbound(job_, attempt_, id);
  clients.clear();  // each closes its stream
}

}  // namespace sluice::cluster
