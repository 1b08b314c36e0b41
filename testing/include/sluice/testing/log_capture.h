#pragma once

#include <string>

#include "glog/logging.h"
#include "sluice/core/mutex.h"

namespace sluice::testing {

/// Collects what is logged (glog) while it lives, so a test can see a component's retries,
/// recoveries and warnings.
class LogCapture : public google::LogSink {
 public:
  LogCapture() { google::AddLogSink(this); }
  ~LogCapture() override { google::RemoveLogSink(this); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  void send(google::LogSeverity, const char*, const char*, int, const google::LogMessageTime&,
            const char* message, size_t length) override {
    MutexLock lock(&mu_);
    text_.append(message, length);
    text_.push_back('\n');
  }
  std::string text() {
    MutexLock lock(&mu_);
    return text_;
  }

 private:
  Mutex mu_;
  std::string text_ SLUICE_GUARDED_BY(mu_);
};

}  // namespace sluice::testing
