#include "sluice/checkpoint/operator_snapshot.h"

namespace sluice {

RestoredOperatorState RedistributeState(const std::vector<OperatorSnapshot>& old, int index,
                                        int parallelism, int max_parallelism) {
  RestoredOperatorState out;
  const KeyGroupRange range = KeyGroupRangeForOperator(index, parallelism, max_parallelism);
  for (const OperatorSnapshot& snapshot : old) {
    for (const auto& [kg, bytes] : snapshot.key_groups) {
      if (range.Contains(kg)) out.key_groups[kg] = bytes;
    }
  }
  size_t position = 0;  // over the items of all old subtasks, in subtask order
  for (const OperatorSnapshot& snapshot : old) {
    for (const std::string& item : snapshot.operator_state) {
      if (position % static_cast<size_t>(parallelism) == static_cast<size_t>(index)) {
        out.operator_state.push_back(item);
      }
      out.operator_state_union.push_back(item);
      ++position;
    }
  }
  return out;
}

}  // namespace sluice
