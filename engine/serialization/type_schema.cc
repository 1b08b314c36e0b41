#include "sluice/serialization/type_schema.h"

#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "sluice/core/json_string.h"

namespace sluice {

class TypeSchema::Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  absl::StatusOr<TypeSchema> ParseAll() {
    TypeSchema t;
    if (!ParseType(&t)) return Error();
    if (pos_ != text_.size()) return Error();
    return t;
  }

 private:
  absl::Status Error() const {
    return absl::InvalidArgumentError(
        absl::StrCat("'", std::string(text_), "' is not a serialized type name (at ", pos_, ": '",
                     std::string(text_.substr(pos_, 20)), "')"));
  }

  bool Peek(char c) const { return pos_ < text_.size() && text_[pos_] == c; }
  bool Take(char c) {
    if (!Peek(c)) return false;
    ++pos_;
    return true;
  }

  /// A word: letters, digits, '_', '.', and "::" (a C++ scope); a single ':' ends it.
  std::string Word() {
    std::string w;
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.') {
        w.push_back(c);
        ++pos_;
      } else if (c == ':' && pos_ + 1 < text_.size() && text_[pos_ + 1] == ':') {
        w.append("::");
        pos_ += 2;
      } else {
        break;
      }
    }
    return w;
  }

  bool ParseArgs(TypeSchema* t, size_t min, size_t max) {
    if (!Take('<')) return false;
    if (Take('>')) return min == 0;
    do {
      TypeSchema child;
      if (!ParseType(&child)) return false;
      t->children_.push_back(std::move(child));
    } while (Take(','));
    return Take('>') && t->children_.size() >= min && t->children_.size() <= max;
  }

  bool ParseType(TypeSchema* t) {
    const size_t start = pos_;
    const std::string word = Word();
    bool ok = true;
    if (word == "enum" && Take(':')) {
      ok = ParseType(t) && t->kind_ == Kind::kFixed;
    } else if ((word == "proto" || word == "versioned") && Take(':')) {
      t->kind_ = word == "proto" ? Kind::kProto : Kind::kVersioned;
      while (pos_ < text_.size() && text_[pos_] != ',' && text_[pos_] != '>' &&
             text_[pos_] != '}') {
        ++pos_;
      }
    } else if (Peek('<')) {
      if (word == "list" || word == "set") {
        t->kind_ = Kind::kList;
        ok = ParseArgs(t, 1, 1);
      } else if (word == "optional") {
        t->kind_ = Kind::kOptional;
        ok = ParseArgs(t, 1, 1);
      } else if (word == "ttl") {
        t->kind_ = Kind::kTtl;
        ok = ParseArgs(t, 1, 1);
      } else if (word == "map" || word == "pair") {
        t->kind_ = word == "map" ? Kind::kMap : Kind::kTuple;
        ok = ParseArgs(t, 2, 2);
      } else if (word == "tuple") {
        t->kind_ = Kind::kTuple;
        ok = ParseArgs(t, 0, SIZE_MAX);
      } else {
        ok = false;
      }
    } else if (!word.empty() && Take('{')) {
      t->kind_ = Kind::kStruct;
      if (!Take('}')) {
        do {
          const std::string field = Word();
          TypeSchema child;
          if (field.empty() || !Take(':') || !ParseType(&child)) return false;
          t->field_names_.push_back(field);
          t->children_.push_back(std::move(child));
        } while (Take(','));
        ok = Take('}');
      }
    } else {
      ok = ParseScalar(word, t);
    }
    t->name_ = std::string(text_.substr(start, pos_ - start));
    return ok;
  }

  static bool ParseScalar(const std::string& word, TypeSchema* t) {
    if (word == "void") {
      t->kind_ = Kind::kVoid;
    } else if (word == "custom") {
      t->kind_ = Kind::kCustom;
    } else if (word == "string") {
      t->kind_ = Kind::kString;
    } else if (word == "bool" || word == "char") {
      t->kind_ = Kind::kFixed;
      t->size_ = 1;
      t->numeric_ = word[0] == 'b' ? 'b' : 'c';
    } else if (word.size() >= 2 && (word[0] == 'i' || word[0] == 'u' || word[0] == 'f')) {
      const std::string bits = word.substr(1);
      if (bits != "8" && bits != "16" && bits != "32" && bits != "64") return false;
      if (word[0] == 'f' && bits != "32" && bits != "64") return false;
      t->kind_ = Kind::kFixed;
      t->size_ = static_cast<size_t>(std::stoi(bits) / 8);
      t->numeric_ = word[0];
    } else {
      return false;
    }
    return true;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

absl::StatusOr<TypeSchema> TypeSchema::Parse(std::string_view name) {
  return Parser(name).ParseAll();
}

bool TypeSchema::walkable() const {
  if (kind_ == Kind::kCustom) return false;
  for (const auto& c : children_) {
    if (!c.walkable()) return false;
  }
  return true;
}

bool TypeSchema::Skip(ByteReader& in) const {
  // As Render, without building text: inspection skips every entry it does not show.
  std::string_view bytes;
  uint64_t n = 0;
  uint8_t present = 0;
  switch (kind_) {
    case Kind::kVoid:
      return true;
    case Kind::kCustom:
      return false;
    case Kind::kFixed:
      for (size_t i = 0; i < size_; ++i) {
        if (!in.ReadRaw(&present)) return false;
      }
      return true;
    case Kind::kString:
    case Kind::kProto:
      return in.ReadBytes(&bytes);
    case Kind::kVersioned:
      return in.ReadVarint(&n) && in.ReadBytes(&bytes);
    case Kind::kList:
    case Kind::kMap:
      if (!in.ReadVarint(&n) || !in.CheckCount(n, 1)) return false;
      for (uint64_t i = 0; i < n; ++i) {
        if (!children_[0].Skip(in) || (kind_ == Kind::kMap && !children_[1].Skip(in))) {
          return false;
        }
      }
      return true;
    case Kind::kOptional:
      if (!in.ReadRaw(&present) || present > 1) return false;
      return present == 0 || children_[0].Skip(in);
    case Kind::kTuple:
    case Kind::kStruct:
      for (const TypeSchema& c : children_) {
        if (!c.Skip(in)) return false;
      }
      return true;
    case Kind::kTtl: {
      int64_t last_access = 0;
      return children_[0].Skip(in) && in.ReadRaw(&last_access);
    }
  }
  return false;
}

namespace {

template <typename T>
bool RenderRaw(ByteReader& in, std::string* out) {
  T v{};
  if (!in.ReadRaw(&v)) return false;
  if constexpr (std::is_floating_point_v<T>) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.17g", static_cast<double>(v));
    out->append(buf);
  } else {
    absl::StrAppend(out, v);
  }
  return true;
}

}  // namespace

bool TypeSchema::Render(ByteReader& in, std::string* out) const {
  switch (kind_) {
    case Kind::kVoid:
      out->append("null");
      return true;
    case Kind::kCustom:
      return false;
    case Kind::kFixed:
      switch (numeric_) {
        case 'b': {
          uint8_t b = 0;
          if (!in.ReadRaw(&b)) return false;
          out->append(b != 0 ? "true" : "false");
          return true;
        }
        case 'c': {
          char c = 0;
          if (!in.ReadRaw(&c)) return false;
          AppendJsonString(std::string_view(&c, 1), out);
          return true;
        }
        case 'f':
          return size_ == 4 ? RenderRaw<float>(in, out) : RenderRaw<double>(in, out);
        case 'u':
          switch (size_) {
            case 1:
              return RenderRaw<uint8_t>(in, out);
            case 2:
              return RenderRaw<uint16_t>(in, out);
            case 4:
              return RenderRaw<uint32_t>(in, out);
            default:
              return RenderRaw<uint64_t>(in, out);
          }
        default:
          switch (size_) {
            case 1:
              return RenderRaw<int8_t>(in, out);
            case 2:
              return RenderRaw<int16_t>(in, out);
            case 4:
              return RenderRaw<int32_t>(in, out);
            default:
              return RenderRaw<int64_t>(in, out);
          }
      }
    case Kind::kString: {
      std::string_view s;
      if (!in.ReadBytes(&s)) return false;
      AppendJsonString(s, out);
      return true;
    }
    case Kind::kProto: {
      std::string_view s;
      if (!in.ReadBytes(&s)) return false;
      absl::StrAppend(out, "\"<", name_, ", ", s.size(), " bytes>\"");
      return true;
    }
    case Kind::kVersioned: {
      uint64_t version = 0;
      std::string_view s;
      if (!in.ReadVarint(&version) || !in.ReadBytes(&s)) return false;
      absl::StrAppend(out, "\"<", name_, " v", version, ", ", s.size(), " bytes>\"");
      return true;
    }
    case Kind::kList:
    case Kind::kMap: {
      uint64_t n = 0;
      if (!in.ReadVarint(&n) || !in.CheckCount(n, 1)) return false;
      const bool map = kind_ == Kind::kMap;
      out->push_back(map ? '{' : '[');
      for (uint64_t i = 0; i < n; ++i) {
        if (i > 0) out->push_back(',');
        if (!children_[0].Render(in, out)) return false;
        if (map) {
          out->push_back(':');
          if (!children_[1].Render(in, out)) return false;
        }
      }
      out->push_back(map ? '}' : ']');
      return true;
    }
    case Kind::kOptional: {
      uint8_t present = 0;
      if (!in.ReadRaw(&present) || present > 1) return false;
      if (present == 0) {
        out->append("null");
        return true;
      }
      return children_[0].Render(in, out);
    }
    case Kind::kTuple:
    case Kind::kStruct: {
      const bool fields = kind_ == Kind::kStruct;
      out->push_back(fields ? '{' : '[');
      for (size_t i = 0; i < children_.size(); ++i) {
        if (i > 0) out->push_back(',');
        if (fields) {
          AppendJsonString(field_names_[i], out);
          out->push_back(':');
        }
        if (!children_[i].Render(in, out)) return false;
      }
      out->push_back(fields ? '}' : ']');
      return true;
    }
    case Kind::kTtl: {
      int64_t last_access = 0;
      return children_[0].Render(in, out) && in.ReadRaw(&last_access);
    }
  }
  return false;
}

}  // namespace sluice
