#include "sluice/internal/metrics/back_pressure.h"

namespace sluice::internal {

namespace {
thread_local Meter* back_pressure_meter = nullptr;
}  // namespace

void SetThreadBackPressureMeter(Meter* meter) { back_pressure_meter = meter; }
Meter* ThreadBackPressureMeter() { return back_pressure_meter; }

}  // namespace sluice::internal
