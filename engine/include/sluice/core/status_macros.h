#pragma once

#include <stdexcept>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sluice {
/// Throws a failed status so that it fails the task (in code called from an operator or a
/// user function, where exceptions are how failures travel).
inline void ThrowIfError(const absl::Status& s) {
  if (!s.ok()) throw std::runtime_error(std::string(s.message()));
}
}  // namespace sluice

/// Returns from the current function if `expr` yields a non-OK absl::Status.
#define SLUICE_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::absl::Status sluice_status_ = (expr);          \
    if (!sluice_status_.ok()) return sluice_status_; \
  } while (0)

#define SLUICE_CONCAT_INNER_(a, b) a##b
#define SLUICE_CONCAT_(a, b) SLUICE_CONCAT_INNER_(a, b)

/// Evaluates the expression after `lhs` (an absl::StatusOr; it may contain commas, as in
/// template arguments); returns its status on error, else moves its value into `lhs`, which
/// may be a declaration (`auto x`).
#define SLUICE_ASSIGN_OR_RETURN(lhs, ...) \
  SLUICE_ASSIGN_OR_RETURN_IMPL_(SLUICE_CONCAT_(sluice_statusor_, __LINE__), lhs, __VA_ARGS__)

#define SLUICE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, ...)  \
  auto statusor = (__VA_ARGS__);                           \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
