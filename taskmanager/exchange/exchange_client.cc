#include "exchange/exchange_client.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "sluice/internal/metrics/back_pressure.h"

namespace sluice::cluster {

ExchangeClient::ExchangeClient(const std::string& address, const std::string& job, int64_t attempt,
                               const Credentials& credentials)
    : address_(address), stub_(Exchange::NewStub(credentials.Channel(address))) {
  // No waiting for a consumer that is not there: every TaskManager of a job serves the
  // exchange before it registers, so an unreachable one is gone, and the stream fails at once
  // (its producers then fail naming the peer) instead of hanging the deployment.
  stream_ = stub_->Connect(&ctx_);
  ProducerMessage hello;
  hello.set_job(job);
  hello.set_attempt(attempt);
  if (!stream_->Write(hello)) closed_ = true;
  reader_ = std::thread([this] { ReadCredits(); });
}

ExchangeClient::~ExchangeClient() {
  {
    MutexLock lock(&write_mu_);
    if (!closed_) {
      closed_ = true;
      stream_->WritesDone();
    }
  }
  reader_.join();
}

void ExchangeClient::OpenChannel(int channel_id,
                                 std::shared_ptr<const internal::BatchCodec> codec) {
  {
    MutexLock lock(&mu_);
    channels_[channel_id].codec = std::move(codec);
  }
  ProducerMessage message;
  message.add_open_channels(channel_id);
  MutexLock lock(&write_mu_);
  if (!closed_ && !stream_->Write(message)) closed_ = true;
}

bool ExchangeClient::Push(int channel_id, internal::ChannelEvent event) {
  const bool is_batch = event.kind == internal::ChannelEvent::Kind::kBatch;
  std::shared_ptr<const internal::BatchCodec> codec;
  {
    UniqueMutexLock lock(&mu_);
    Channel& ch = channels_[channel_id];
    auto can_send = [&]() SLUICE_REQUIRES(mu_) {
      return !status_.ok() || (ch.open && (!is_batch || ch.credits > 0));
    };
    if (!can_send()) {
      internal::ScopedBackPressure blocked;  // no credit: the consumer has no room
      changed_.Wait(&mu_, can_send);
    }
    if (!status_.ok()) return false;
    if (is_batch) --ch.credits;
    codec = ch.codec;
  }
  ProducerMessage message;
  ChannelBuffer* buffer = message.add_buffers();
  buffer->set_channel_id(channel_id);
  internal::EncodeChannelEvent(event, *codec, buffer->mutable_event());
  {
    MutexLock lock(&write_mu_);
    if (!closed_ && stream_->Write(message)) return true;
    closed_ = true;
  }
  // The stream broke. The reader thread learns why from Finish(), at once; waiting for it
  // here means whoever sees this push fail also finds the cause in status() (else the job
  // failed saying only that "a channel to another TaskManager failed").
  UniqueMutexLock lock(&mu_);
  changed_.WaitFor(&mu_, absl::Seconds(5), [&]() SLUICE_REQUIRES(mu_) { return !status_.ok(); });
  return false;
}

void ExchangeClient::ReadCredits() {
  ConsumerMessage message;
  while (stream_->Read(&message)) {
    MutexLock lock(&mu_);
    for (const Credit& credit : message.credits()) {
      Channel& ch = channels_[credit.channel_id()];
      ch.open = true;
      ch.credits += credit.buffers();
    }
    changed_.SignalAll();
  }
  grpc::Status s = stream_->Finish();
  Fail(s.ok() ? absl::CancelledError("the exchange stream was closed")
              : absl::UnavailableError(absl::StrCat("exchange with the TaskManager at ", address_,
                                                    " failed: ", s.error_message())));
}

void ExchangeClient::Fail(absl::Status why) {
  MutexLock lock(&mu_);
  if (status_.ok()) status_ = std::move(why);
  changed_.SignalAll();
}

void ExchangeClient::Cancel() {
  Fail(absl::CancelledError("canceled"));
  ctx_.TryCancel();
}

absl::Status ExchangeClient::status() const {
  MutexLock lock(&mu_);
  return status_;
}

}  // namespace sluice::cluster
