#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace sluice {

/// One state of an operator as a checkpoint holds it, over all subtasks.
struct StateInspection {
  std::string name;
  /// "value" (also reducing and aggregating state), "list", "map"; "operator-list" for a
  /// function's operator state (CheckpointedFunction items).
  std::string kind;
  bool ttl = false;
  /// The stored types as the serializers name them (keyed states).
  std::string key_type, namespace_type, value_type;
  int64_t keys = 0;  // entries: (key, namespace) pairs; items for operator state
  int64_t bytes = 0;
  /// The largest entries (key as text, bytes), when asked for and the types can be walked.
  std::vector<std::pair<std::string, int64_t>> top;
};

struct OperatorInspection {
  std::string uid;  // the operator's uid (or the id generated for it)
  int parallelism = 0;
  int max_parallelism = 0;
  int key_groups = 0;  // key groups with state
  /// RocksDB files of incremental checkpoints (the states in them are read through a copy of
  /// the database and listed as the others).
  int64_t native_files = 0;
  int64_t native_bytes = 0;
  std::vector<StateInspection> states;
};

struct CheckpointInspection {
  std::string dir;
  int64_t checkpoint_id = 0;
  std::string job_name;
  bool savepoint = false;
  std::vector<OperatorInspection> operators;
};

/// Reads the savepoint or checkpoint at `path` (as LoadCheckpoint: a savepoint, a chk-N
/// directory, or a job's checkpoint directory for its newest checkpoint), every file
/// verified, and sums up what it holds per operator and state; with `top` > 0 also each
/// keyed state's `top` largest entries. A missing or damaged file is an error naming it.
absl::StatusOr<CheckpointInspection> InspectCheckpoint(const std::string& path, int top = 0);

/// {"dir":..,"checkpoint_id":N,"job":..,"savepoint":B,"operators":[{"uid":"...",
/// "parallelism":N,"max_parallelism":N,"key_groups":N,"native_files":N,"native_bytes":N,
/// "states":[{"name":"...","kind":"...","ttl":B,"keys":N,"bytes":N,"key_type":"...",
/// "namespace_type":"...","value_type":"...","top":[{"key":"...","bytes":N}]}]}]}
std::string InspectionToJson(const CheckpointInspection& inspection);
/// The same as a table for people.
std::string InspectionToText(const CheckpointInspection& inspection);

}  // namespace sluice
