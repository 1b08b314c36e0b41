// Google Benchmark micro-benchmarks of per-record building blocks: key hashing, keyed state
// access and serialization. Run: build/bench/micro_bench

#include <string>

#include "benchmark/benchmark.h"
#include "sluice/core/key_groups.h"
#include "sluice/serialization/serializer.h"
#include "sluice/state/heap_keyed_state_backend.h"

namespace {

void BM_KeyGroupOfInt(benchmark::State& state) {
  int64_t k = 0;
  for (auto _ : state) benchmark::DoNotOptimize(sluice::KeyGroupFor(k++, 128));
}
BENCHMARK(BM_KeyGroupOfInt);

void BM_KeyGroupOfString(benchmark::State& state) {
  std::string key = "stream-0000000042";
  for (auto _ : state) {
    key[16] = static_cast<char>('0' + (key[16] + 1) % 10);
    benchmark::DoNotOptimize(sluice::KeyGroupFor(key, 128));
  }
}
BENCHMARK(BM_KeyGroupOfString);

void BM_HeapValueStateUpdate(benchmark::State& state) {
  sluice::HeapKeyedStateBackend<int64_t> backend({0, 127}, 128);
  auto* value = backend.GetState(sluice::ValueStateDescriptor<int64_t>("v"));
  int64_t k = 0;
  for (auto _ : state) {
    backend.SetCurrentKey(k++ % state.range(0));
    value->Update(value->ValueOr(0) + 1);
  }
}
BENCHMARK(BM_HeapValueStateUpdate)->Arg(1000)->Arg(1000000);

struct Reading {
  std::string sensor;
  int64_t ts;
  double value;
};
SLUICE_SERIALIZABLE(Reading, sensor, ts, value)

void BM_SerializeStruct(benchmark::State& state) {
  Reading r{"sensor-17", 1700000000000, 21.5};
  std::string out;
  for (auto _ : state) {
    out.clear();
    sluice::ByteWriter w(&out);
    sluice::Serializer<Reading>::Write(r, w);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_SerializeStruct);

}  // namespace

BENCHMARK_MAIN();
