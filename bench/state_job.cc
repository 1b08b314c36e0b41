// state_job [--events=N] [--keys=K] [--payload-bytes=B]: a job whose keyed state grows to
// about K x B bytes (the latest payload per key, incompressible), for recovery_bench's
// large-state runs: Generator -> KeyBy -> a process function keeping the payload -> discard.
#include <cstdint>
#include <string>

#include "sluice/sluice.h"

namespace {

struct Record {
  int64_t key;
  int64_t seq;
};
SLUICE_SERIALIZABLE(Record, key, seq)

class KeepPayload final : public sluice::KeyedProcessFunction<int64_t, Record, int64_t> {
 public:
  explicit KeepPayload(int64_t bytes) : bytes_(bytes) {}
  void Open(sluice::KeyedRuntimeContext<int64_t>& ctx) override {
    payload_ = &ctx.GetState(sluice::ValueStateDescriptor<std::string>("payload"));
  }
  void ProcessElement(const Record& r, Context&, sluice::Collector<int64_t>&) override {
    // xorshift bytes: RocksDB's compression cannot shrink them, so the state is its size.
    std::string value(static_cast<size_t>(bytes_), '\0');
    uint64_t x = static_cast<uint64_t>(r.seq) * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i + 8 <= value.size(); i += 8) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      value.replace(i, 8, reinterpret_cast<const char*>(&x), 8);
    }
    payload_->Update(std::move(value));
  }

 private:
  int64_t bytes_;
  sluice::ValueState<std::string>* payload_ = nullptr;
};

void Build(sluice::Pipeline& p) {
  const int64_t events = p.Args().GetInt("events", 100'000'000);
  const int64_t keys = p.Args().GetInt("keys", 1'000'000);
  const int64_t bytes = p.Args().GetInt("payload-bytes", 1000);
  p.Source(sluice::Generator(
               [keys](uint64_t i) {
                 return Record{static_cast<int64_t>(i % static_cast<uint64_t>(keys)),
                               static_cast<int64_t>(i)};
               },
               {.count = static_cast<uint64_t>(events)}),
           "Generator")
      .KeyBy(&Record::key)
      .Process(KeepPayload(bytes), "KeepPayload")
      .Uid("keep-payload")
      .Sink(sluice::DiscardingSink<int64_t>{}, "Discard");
}

}  // namespace

SLUICE_JOB(Build)
