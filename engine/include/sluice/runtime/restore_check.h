#pragma once

#include <map>
#include <vector>

#include "absl/status/status.h"
#include "sluice/checkpoint/operator_snapshot.h"
#include "sluice/graph/stream_graph.h"

namespace sluice {

/// Checks, before a job starts from `state` (MatchToGraph's result: stream node id -> old
/// subtasks' snapshots), that its keyed operators can read the state they register: each
/// keyed operator with state is created once, alone, on the heap, given the names and types
/// of its states without their entries, opened and closed, so every state it registers in
/// Open() is checked as a restore checks it (and would migrate: StateMigration). An
/// incompatible change is a FAILED_PRECONDITION naming the operator's uid, the state, the
/// field and both types. States registered only later (lazily) are checked when the job
/// restores them. The functions' Open() runs here once: it should not act on the world.
absl::Status CheckStateTypes(const StreamGraph& graph,
                             const std::map<int, std::vector<OperatorSnapshot>>& state);

}  // namespace sluice
