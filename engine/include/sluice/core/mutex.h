#pragma once

// A thin mutex over std::mutex that clang's thread-safety analysis understands (as LevelDB's
// port::Mutex): members say which mutex guards them (SLUICE_GUARDED_BY(mu_)), functions what
// they need held (SLUICE_REQUIRES(mu_)) or must not hold (SLUICE_EXCLUDES(mu_)), and
// `clang++ -Wthread-safety` (scripts/check-thread-safety.sh, run by the suite) rejects code
// that touches guarded state without the lock. Under GCC the annotations are empty.

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/time/clock.h"
#include "absl/time/time.h"

#if defined(__clang__)
#define SLUICE_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define SLUICE_THREAD_ANNOTATION_(x)
#endif

#define SLUICE_CAPABILITY(x) SLUICE_THREAD_ANNOTATION_(capability(x))
#define SLUICE_SCOPED_CAPABILITY SLUICE_THREAD_ANNOTATION_(scoped_lockable)
#define SLUICE_GUARDED_BY(x) SLUICE_THREAD_ANNOTATION_(guarded_by(x))
#define SLUICE_PT_GUARDED_BY(x) SLUICE_THREAD_ANNOTATION_(pt_guarded_by(x))
#define SLUICE_REQUIRES(...) SLUICE_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define SLUICE_EXCLUDES(...) SLUICE_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
#define SLUICE_ACQUIRE(...) SLUICE_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define SLUICE_RELEASE(...) SLUICE_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#define SLUICE_NO_THREAD_SAFETY_ANALYSIS SLUICE_THREAD_ANNOTATION_(no_thread_safety_analysis)

namespace sluice {

class CondVar;

/// std::mutex with the capability annotation.
class SLUICE_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() SLUICE_ACQUIRE() { mu_.lock(); }
  void Unlock() SLUICE_RELEASE() { mu_.unlock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

/// Holds a Mutex for its scope (std::lock_guard for Mutex).
class SLUICE_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) SLUICE_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() SLUICE_RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

/// Holds a Mutex for its scope, and can let it go and take it again inside that scope
/// (std::unique_lock for Mutex): for loops that work without the lock between waits.
class SLUICE_SCOPED_CAPABILITY UniqueMutexLock {
 public:
  explicit UniqueMutexLock(Mutex* mu) SLUICE_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~UniqueMutexLock() SLUICE_RELEASE() {
    if (held_) mu_->Unlock();
  }
  UniqueMutexLock(const UniqueMutexLock&) = delete;
  UniqueMutexLock& operator=(const UniqueMutexLock&) = delete;

  void Unlock() SLUICE_RELEASE() {
    mu_->Unlock();
    held_ = false;
  }
  void Lock() SLUICE_ACQUIRE() {
    mu_->Lock();
    held_ = true;
  }

 private:
  Mutex* const mu_;
  bool held_ = true;
};

/// A condition variable; each wait names the Mutex it releases while waiting, which the caller
/// holds (checked by the analysis) and holds again on return.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  /// Waits until signaled (or a spurious wakeup).
  void Wait(Mutex* mu) SLUICE_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  /// Waits until `ready()` (evaluated with `mu` held).
  template <typename Predicate>
  void Wait(Mutex* mu, Predicate ready) SLUICE_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock, ready);
    lock.release();
  }
  /// Waits until signaled or `timeout` (or a spurious wakeup); false on the timeout.
  bool WaitFor(Mutex* mu, absl::Duration timeout) SLUICE_REQUIRES(mu) {
    if (timeout == absl::InfiniteDuration()) {
      Wait(mu);
      return true;
    }
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool signaled =
        cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout)) == std::cv_status::no_timeout;
    lock.release();
    return signaled;
  }
  /// Waits until `ready()` (evaluated with `mu` held) or `timeout`; returns `ready()`.
  template <typename Predicate>
  bool WaitFor(Mutex* mu, absl::Duration timeout, Predicate ready) SLUICE_REQUIRES(mu) {
    if (timeout == absl::InfiniteDuration()) {
      Wait(mu, ready);
      return true;
    }
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool held = cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), ready);
    lock.release();
    return held;
  }
  // Deadlines become timeouts, measured on the steady clock: a wall-clock jump does not
  // shorten or stretch a wait.
  bool WaitUntil(Mutex* mu, absl::Time deadline) SLUICE_REQUIRES(mu) {
    return WaitFor(mu, deadline - absl::Now());
  }
  template <typename Predicate>
  bool WaitUntil(Mutex* mu, absl::Time deadline, Predicate ready) SLUICE_REQUIRES(mu) {
    return WaitFor(mu, deadline - absl::Now(), ready);
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace sluice
