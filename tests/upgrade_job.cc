// A Kafka -> Kafka exactly-once job in several versions, for `sluice upgrade` tests (built
// once per UPGRADE_JOB_VERSION): record "i" from --in, keyed by i mod 4, is written to --out
// as "i:n", n being how many records of its key the job has seen (a keyed state). Version 2
// adds a field to that state; version 3 changes a field's type (its check refuses it);
// version 4 fails on its first record.
#include <stdexcept>
#include <string>

#include "sluice/sluice.h"

namespace upgrade_job {

#if UPGRADE_JOB_VERSION == 1 || UPGRADE_JOB_VERSION == 4
struct Seen {
  int64_t count = 0;
};
SLUICE_SERIALIZABLE(Seen, count)
#elif UPGRADE_JOB_VERSION == 2
struct Seen {
  std::string last;  // added
  int64_t count = 0;
};
SLUICE_SERIALIZABLE(Seen, last, count)
#else
struct Seen {
  double count = 0;  // was i64
};
SLUICE_SERIALIZABLE(Seen, count)
#endif

class CountPerKey final : public sluice::KeyedProcessFunction<int64_t, std::string, std::string> {
 public:
  void Open(sluice::KeyedRuntimeContext<int64_t>& ctx) override {
    seen_ = &ctx.GetState(sluice::ValueStateDescriptor<Seen>("seen"));
  }
  void ProcessElement(const std::string& value, Context&,
                      sluice::Collector<std::string>& out) override {
    if (UPGRADE_JOB_VERSION == 4) throw std::runtime_error("version 4 fails on every record");
    Seen s = seen_->ValueOr(Seen{});
    s.count += 1;
#if UPGRADE_JOB_VERSION == 2
    s.last = value;
#endif
    seen_->Update(s);
    out.Collect(absl::StrCat(value, ":", static_cast<int64_t>(s.count)));
  }

 private:
  sluice::ValueState<Seen>* seen_ = nullptr;
};

void Build(sluice::Pipeline& p) {
  sluice::KafkaSourceOptions in;
  in.bootstrap_servers = p.Args().GetString("kafka");
  in.topics = {p.Args().GetString("in")};
  sluice::KafkaSinkOptions out;
  out.bootstrap_servers = in.bootstrap_servers;
  out.topic = p.Args().GetString("out");
  out.delivery = sluice::KafkaDelivery::kExactlyOnce;
  p.Source(sluice::KafkaSource(in))
      .Uid("in")
      .Map([](const sluice::KafkaRecord& r) { return r.value; })
      .Uid("values")
      .KeyBy([](const std::string& v) { return static_cast<int64_t>(std::stoll(v) % 4); })
      .Process(CountPerKey())
      .Uid("count")
      .Map([](const std::string& line) {
        sluice::KafkaMessage m;
        m.value = line;
        return m;
      })
      .Uid("messages")
      .Sink(sluice::KafkaSink(out))
      .Uid("out");
}

}  // namespace upgrade_job

SLUICE_JOB(upgrade_job::Build)
