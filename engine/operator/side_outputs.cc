#include "sluice/function/side_outputs.h"

#include "sluice/operator/stream_operator.h"

namespace sluice::internal {

void SideOutputs::FlushAll() {
  for (auto& [tag, channel] : channels_) {
    if (channel.batch == nullptr || channel.batch->size() == 0) continue;
    channel.output->PushErased(*channel.batch);
    channel.batch->clear();
  }
  pending_ = false;
}

}  // namespace sluice::internal
