#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

namespace sluice {

/// Appends the binary encoding of values to a string. Fixed-width little-endian numbers,
/// varint lengths. Not thread-safe; one writer per buffer.
class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}

  template <typename T>
  requires std::is_trivially_copyable_v<T>
  void WriteRaw(const T& v) { out_->append(reinterpret_cast<const char*>(&v), sizeof(T)); }
  void WriteVarint(uint64_t v) {
    while (v >= 0x80) {
      out_->push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    out_->push_back(static_cast<char>(v));
  }
  /// Appends bytes as they are (no length): for data that is already serialized.
  void Append(std::string_view bytes) { out_->append(bytes.data(), bytes.size()); }
  void WriteBytes(std::string_view bytes) {
    WriteVarint(bytes.size());
    out_->append(bytes.data(), bytes.size());
  }

 private:
  std::string* out_;
};

/// Reads what ByteWriter wrote. Every read checks bounds; after the first failure `ok()` is
/// false and all further reads fail, so callers check once at the end.
class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  template <typename T>
  requires std::is_trivially_copyable_v<T>
  bool ReadRaw(T* v) {
    if (!ok_ || in_.size() - pos_ < sizeof(T)) return Fail();
    std::memcpy(v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool ReadVarint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (!ok_ || pos_ >= in_.size()) return Fail();
      uint8_t byte = static_cast<uint8_t>(in_[pos_++]);
      result |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) {
        *v = result;
        return true;
      }
    }
    return Fail();
  }
  bool ReadBytes(std::string_view* bytes) {
    uint64_t n;
    if (!ReadVarint(&n) || in_.size() - pos_ < n) return Fail();
    *bytes = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  /// Checks that a declared element count can fit in what is left, so a corrupt length
  /// cannot make a reader allocate gigabytes.
  bool CheckCount(uint64_t count, size_t min_bytes_each) {
    if (!ok_ || (min_bytes_each > 0 && count > (in_.size() - pos_) / min_bytes_each)) return Fail();
    return true;
  }

  bool ok() const { return ok_; }
  bool AtEnd() const { return pos_ == in_.size(); }
  size_t position() const { return pos_; }
  /// What has been read so far.
  std::string_view Consumed() const { return in_.substr(0, pos_); }
  /// What has not been read yet.
  std::string_view Remaining() const { return in_.substr(pos_); }

 private:
  bool Fail() {
    ok_ = false;
    return false;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace sluice
