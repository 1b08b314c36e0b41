#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "sluice/connectors/internal/io.h"
#include "sluice/function/functions.h"

namespace sluice {

/// Connects to host:port and emits every line received (the seed's `nc -lk` example).
/// Ends when the peer closes the connection. Not parallel.
class SocketTextSource final : public SourceFunction<std::string> {
 public:
  SocketTextSource(std::string host, int port) : host_(std::move(host)), port_(port) {}
  SocketTextSource(const SocketTextSource& o) : host_(o.host_), port_(o.port_) {}

  void Open(RuntimeContext&) override {
    reader_ = std::make_unique<internal::SocketLineReader>();
    absl::Status s = reader_->Connect(host_, port_);
    if (!s.ok()) throw std::runtime_error(std::string(s.message()));
  }
  SourceStatus Poll(SourceOutput<std::string>& out) override {
    std::string line;
    while (out.collected() < out.batch_hint()) {
      // Wait only while nothing was read yet, so a partial batch goes out promptly.
      int wait_ms = out.collected() == 0 ? 10 : 0;
      switch (reader_->Next(&line, wait_ms)) {
        case internal::SocketLineReader::ReadResult::kLine:
          out.Collect(std::move(line));
          break;
        case internal::SocketLineReader::ReadResult::kNothingYet:
          return out.collected() > 0 ? SourceStatus::kMoreAvailable
                                     : SourceStatus::kNothingAvailable;
        case internal::SocketLineReader::ReadResult::kClosed:
          return SourceStatus::kEndOfInput;
      }
    }
    return SourceStatus::kMoreAvailable;
  }
  void Close() override {
    if (reader_) reader_->Close();
  }
  bool IsParallel() const override { return false; }

 private:
  std::string host_;
  int port_;
  std::unique_ptr<internal::SocketLineReader> reader_;
};

}  // namespace sluice
