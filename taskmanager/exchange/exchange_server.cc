#include "exchange/exchange_server.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace sluice::cluster {

/// One producer TaskManager's stream, and the credits waiting to go back on it.
struct ExchangeServer::Connection {
  grpc::ServerReaderWriter<ConsumerMessage, ProducerMessage>* stream = nullptr;
  CondVar has_credits;  // waited on with the server's mu_
};

ExchangeServer::~ExchangeServer() = default;

void ExchangeServer::RegisterInbound(const std::string& job, int64_t attempt, int channel_id,
                                     internal::InputGate* gate, int index,
                                     std::shared_ptr<const internal::BatchCodec> codec,
                                     int credits) {
  MutexLock lock(&mu_);
  const ChannelKey key{job, attempt, channel_id};
  Inbound& in = inbound_[key];
  in.gate = gate;
  in.index = index;
  in.codec = std::move(codec);
  in.credits = credits;
  auto [it, first_of_gate] = by_gate_.try_emplace(gate);
  it->second[index] = key;
  if (first_of_gate) {
    gate->SetBatchConsumedCallback([this, gate](int i) { ReturnCredit(gate, i); });
  }
  if (in.connection != nullptr) {  // opened before it was registered here
    connections_[in.connection].pending_credits[channel_id] += credits;
    in.connection->has_credits.Signal();
  }
}

void ExchangeServer::UnregisterInbound(const std::string& job, int64_t attempt, int channel_id) {
  MutexLock lock(&mu_);
  auto it = inbound_.find(ChannelKey{job, attempt, channel_id});
  if (it == inbound_.end()) return;
  if (it->second.gate != nullptr) {
    auto g = by_gate_.find(it->second.gate);
    if (g != by_gate_.end()) {
      g->second.erase(it->second.index);
      if (g->second.empty()) by_gate_.erase(g);
    }
  }
  inbound_.erase(it);
}

void ExchangeServer::ReturnCredit(internal::InputGate* gate, int index) {
  MutexLock lock(&mu_);
  auto g = by_gate_.find(gate);
  if (g == by_gate_.end()) return;
  auto i = g->second.find(index);
  if (i == g->second.end()) return;  // a local channel of the same gate
  Inbound& in = inbound_[i->second];
  if (in.connection == nullptr) return;
  connections_[in.connection].pending_credits[i->second.channel] += 1;
  in.connection->has_credits.Signal();
}

void ExchangeServer::SendCredits(Connection* c) {
  UniqueMutexLock lock(&mu_);
  for (;;) {
    c->has_credits.Wait(&mu_, [&]() SLUICE_REQUIRES(mu_) {
      const ConnectionCredits& credits = connections_[c];
      return credits.done || !credits.pending_credits.empty();
    });
    ConnectionCredits& credits = connections_[c];
    if (credits.pending_credits.empty()) return;  // done
    ConsumerMessage message;
    for (const auto& [channel, n] : credits.pending_credits) {
      Credit* credit = message.add_credits();
      credit->set_channel_id(channel);
      credit->set_buffers(n);
    }
    credits.pending_credits.clear();
    lock.Unlock();
    const bool sent = c->stream->Write(message);
    lock.Lock();
    if (!sent) return;  // the producer went away
  }
}

grpc::Status ExchangeServer::Connect(
    grpc::ServerContext* ctx, grpc::ServerReaderWriter<ConsumerMessage, ProducerMessage>* stream) {
  if (grpc::Status denied = credentials_.Check(*ctx, "an exchange stream"); !denied.ok())
    return denied;
  Connection connection;
  connection.stream = stream;
  {
    MutexLock lock(&mu_);
    connections_[&connection];
  }
  std::thread credit_sender([&] { SendCredits(&connection); });
  grpc::Status status = grpc::Status::OK;
  ProducerMessage message;
  std::string job;
  int64_t attempt = 0;
  while (stream->Read(&message)) {
    if (!message.job().empty()) {
      job = message.job();
      attempt = message.attempt();
    }
    UniqueMutexLock lock(&mu_);
    for (int channel : message.open_channels()) {
      Inbound& in = inbound_[ChannelKey{job, attempt, channel}];
      in.connection = &connection;
      if (in.gate != nullptr) connections_[&connection].pending_credits[channel] += in.credits;
    }
    if (message.open_channels_size() > 0) connection.has_credits.Signal();
    for (const ChannelBuffer& buffer : message.buffers()) {
      auto it = inbound_.find(ChannelKey{job, attempt, buffer.channel_id()});
      if (it == inbound_.end() || it->second.gate == nullptr) {
        status =
            grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                         absl::StrCat("a buffer for channel ", buffer.channel_id(), " of job '",
                                      job, "' (run ", attempt, "), which has no consumer here"));
        break;
      }
      std::shared_ptr<const internal::BatchCodec> codec = it->second.codec;
      lock.Unlock();  // decoding needs no lock (and other streams go on meanwhile)
      auto event = internal::DecodeChannelEvent(buffer.event(), *codec);
      lock.Lock();
      if (!event.ok()) {
        status = grpc::Status(
            grpc::StatusCode::DATA_LOSS,
            absl::StrCat("channel ", buffer.channel_id(), ": ", event.status().message()));
        break;
      }
      // Looked up again: the consumer may have been unregistered (and its gate freed) while
      // decoding. Under mu_, so the gate stays alive while the event goes in; Push never
      // blocks for long: a batch had a credit, and control events do not wait.
      it = inbound_.find(ChannelKey{job, attempt, buffer.channel_id()});
      if (it == inbound_.end() || it->second.gate == nullptr) continue;  // its job part ended
      if (event->kind == internal::ChannelEvent::Kind::kEndOfStream) it->second.ended = true;
      it->second.gate->Push(it->second.index, *std::move(event));
    }
    if (!status.ok()) break;
  }
  // A producer whose part ended closes its stream (its channels ended, or it was stopped);
  // a broken one (its process died, or it was canceled) leaves its channels unfinished.
  const bool broken = ctx->IsCancelled() || !status.ok();
  {
    MutexLock lock(&mu_);
    ConnectionCredits& credits = connections_[&connection];
    credits.done = true;
    credits.pending_credits.clear();
    for (auto it = inbound_.begin(); it != inbound_.end();) {
      auto& [key, in] = *it;
      if (in.connection != &connection) {
        ++it;
        continue;
      }
      if (in.gate == nullptr) {  // opened by this producer, never registered here
        it = inbound_.erase(it);
        continue;
      }
      in.connection = nullptr;
      if (broken && in.gate != nullptr && !in.ended) {
        in.gate->Fail(absl::StrCat(
            "the exchange stream from the TaskManager at ", ctx->peer(), " broke before channel ",
            key.channel, " of job '", key.job, "' ended (",
            status.ok() ? "its process ended, or its part was canceled" : status.error_message(),
            ")"));
      }
      ++it;
    }
  }
  connection.has_credits.Signal();
  credit_sender.join();
  {
    MutexLock lock(&mu_);
    connections_.erase(&connection);
  }
  if (!status.ok()) {
    LOG(WARNING) << "exchange stream from " << ctx->peer() << " ended: " << status.error_message();
  }
  return status;
}

}  // namespace sluice::cluster
