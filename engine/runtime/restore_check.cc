#include "sluice/runtime/restore_check.h"

#include <exception>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "sluice/checkpoint/native_keyed_state.h"
#include "sluice/core/status_macros.h"
#include "sluice/metrics/metrics.h"
#include "sluice/operator/stream_operator.h"
#include "sluice/operator/task_mailbox.h"

namespace sluice {
namespace {

/// The clock and mailbox of an operator opened only to be closed: nothing is ever run.
class IdleTaskServices final : public ProcessingTimeService, public TaskMailbox {
 public:
  Timestamp CurrentProcessingTime() const override { return absl::ToUnixMillis(absl::Now()); }
  void ScheduleAt(Timestamp, Target*) override {}
  void Execute(std::function<void()>) override {}
  void Yield(absl::Time) override {}
};

/// Adds each state's name and type tag in a key group's state part to `tags`.
absl::Status AddStateTags(std::string_view blob, int key_group,
                          std::map<std::string, std::string>* tags) {
  SLUICE_ASSIGN_OR_RETURN(internal::KeyGroupParts parts,
                          internal::ParseKeyGroupBlob(blob, key_group));
  ByteReader in(parts.state);
  uint64_t count = 0;
  if (!parts.state.empty() && !in.ReadVarint(&count)) {
    return absl::DataLossError(absl::StrCat("key group ", key_group, " is corrupt"));
  }
  for (uint64_t i = 0; i < count; ++i) {
    std::string_view name, tag, body;
    if (!in.ReadBytes(&name) || !in.ReadBytes(&tag) || !in.ReadBytes(&body)) {
      return absl::DataLossError(absl::StrCat("key group ", key_group, " is corrupt"));
    }
    tags->try_emplace(std::string(name), std::string(tag));
  }
  return absl::OkStatus();
}

/// Every state's name and type tag in the snapshots of one operator.
absl::StatusOr<std::map<std::string, std::string>> StateTags(
    const std::vector<OperatorSnapshot>& snapshots) {
  std::map<std::string, std::string> tags;
  for (const OperatorSnapshot& s : snapshots) {
    // Every key group names every state a subtask had: one of each snapshot is enough.
    if (!s.key_groups.empty()) {
      const auto& [kg, blob] = *s.key_groups.begin();
      SLUICE_RETURN_IF_ERROR(AddStateTags(blob, kg, &tags));
    }
    if (s.native.empty()) continue;
    // RocksDB's files record the types of their states; one key group of them names all.
    const int kg = s.native.key_group_start;
    std::map<int, std::string> portable;
    SLUICE_RETURN_IF_ERROR(MaterializeNativeState({s.native}, {kg, kg}, "", &portable));
    if (auto it = portable.find(kg); it != portable.end()) {
      SLUICE_RETURN_IF_ERROR(AddStateTags(it->second, kg, &tags));
    }
  }
  return tags;
}

/// One key group holding every state with no entries.
std::string EmptyStates(const std::map<std::string, std::string>& tags) {
  std::string state;
  ByteWriter w(&state);
  w.WriteVarint(tags.size());
  const std::string no_entries(1, '\0');  // varint 0
  for (const auto& [name, tag] : tags) {
    w.WriteBytes(name);
    w.WriteBytes(tag);
    w.WriteBytes(no_entries);
  }
  return internal::KeyGroupBlob(state, "", kMinWatermark);
}

absl::Status OpenOnce(const StreamGraph& graph, const StreamNode& node,
                      const std::map<std::string, std::string>& tags) {
  IdleTaskServices services;
  MetricGroup metrics;
  OperatorContext ctx;
  ctx.info.job_name = graph.config.job_name;
  ctx.info.operator_name = node.name;
  ctx.info.parallelism = 1;
  ctx.info.max_parallelism = node.max_parallelism;
  ctx.info.restored = true;
  ctx.info.state_backend = StateBackendKind::kHeap;
  ctx.key_group_range = {0, node.max_parallelism - 1};
  ctx.processing_time = &services;
  ctx.mailbox = &services;
  ctx.metrics = &metrics;
  std::unique_ptr<StreamOperator> op = node.factory->Create();
  // No output: an operator does not emit while it opens.
  op->Setup(std::move(ctx), nullptr);
  RestoredOperatorState restored;
  restored.key_groups[0] = EmptyStates(tags);
  op->InitializeState(std::move(restored));
  std::string failure;
  try {
    op->Open();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  try {
    op->Close();
  } catch (const std::exception&) {
    // Closing what did not open: its failure is the one above.
  }
  if (failure.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat("operator '", OperatorStateId(graph, node.id),
                                                    "' (", node.name, "): ", failure));
}

}  // namespace

absl::Status CheckStateTypes(const StreamGraph& graph,
                             const std::map<int, std::vector<OperatorSnapshot>>& state) {
  for (const auto& [node_id, snapshots] : state) {
    const StreamNode& node = graph.nodes[node_id];
    if (!node.keyed || node.factory == nullptr) continue;
    SLUICE_ASSIGN_OR_RETURN(auto tags, StateTags(snapshots));
    if (tags.empty()) continue;
    SLUICE_RETURN_IF_ERROR(OpenOnce(graph, node, tags));
  }
  return absl::OkStatus();
}

}  // namespace sluice
