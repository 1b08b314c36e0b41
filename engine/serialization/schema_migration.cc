#include "sluice/serialization/schema_migration.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "sluice/core/status_macros.h"

namespace sluice {
namespace {

using Kind = TypeSchema::Kind;

std::string Where(const std::string& path) {
  return path.empty() ? "the value" : absl::StrCat("field '", path, "'");
}

absl::Status Incompatible(const std::string& path, const TypeSchema& from, const TypeSchema& to) {
  return absl::FailedPreconditionError(absl::StrCat(Where(path), " was ", from.name(),
                                                    " and is now ", to.name(),
                                                    ": a type cannot change across a restore"));
}

std::string Child(const std::string& path, const std::string& part) {
  return path.empty() ? part : absl::StrCat(path, ".", part);
}

}  // namespace

absl::StatusOr<std::string> DefaultValueBytes(const TypeSchema& schema) {
  std::string out;
  ByteWriter w(&out);
  switch (schema.kind()) {
    case Kind::kVoid:
      break;
    case Kind::kCustom:
      return absl::FailedPreconditionError(
          absl::StrCat(schema.name(), " has a custom serializer: its default value is unknown"));
    case Kind::kFixed:
      // Zero bytes: 0, 0.0 (IEEE), false, '\0' and an enum's 0.
      out.append(schema.fixed_size(), '\0');
      break;
    case Kind::kString:
    case Kind::kProto:
    case Kind::kList:
    case Kind::kMap:
      w.WriteVarint(0);
      break;
    case Kind::kVersioned:
      return absl::FailedPreconditionError(
          absl::StrCat(schema.name(), " has its own versions: its default value is unknown"));
    case Kind::kOptional:
      w.WriteRaw(uint8_t{0});
      break;
    case Kind::kTuple:
    case Kind::kStruct:
      for (const TypeSchema& c : schema.children()) {
        SLUICE_ASSIGN_OR_RETURN(std::string part, DefaultValueBytes(c));
        out += part;
      }
      break;
    case Kind::kTtl: {
      SLUICE_ASSIGN_OR_RETURN(std::string part, DefaultValueBytes(schema.children()[0]));
      out += part;
      w.WriteRaw(int64_t{0});
      break;
    }
  }
  return out;
}

absl::StatusOr<SchemaMigration> SchemaMigration::Plan(const TypeSchema& from,
                                                      const TypeSchema& to) {
  SchemaMigration m;
  SLUICE_RETURN_IF_ERROR(Build(from, to, "", &m));
  return m;
}

absl::Status SchemaMigration::Build(const TypeSchema& from, const TypeSchema& to,
                                    const std::string& path, SchemaMigration* out) {
  out->from_ = from;
  if (from.name() == to.name()) {
    out->step_ = Step::kCopy;
    if (from.walkable()) return absl::OkStatus();
    // Walking is how a copy finds the value's end.
    return absl::FailedPreconditionError(
        absl::StrCat(Where(path), " (", from.name(),
                     ") has a custom serializer, so what holds it cannot change"));
  }
  if (to.kind() == Kind::kTtl && from.kind() != Kind::kTtl) {
    out->step_ = Step::kAddTtl;
    out->children_.resize(1);
    return Build(from, to.children()[0], path, &out->children_[0]);
  }
  if (from.kind() == Kind::kTtl && to.kind() != Kind::kTtl) {
    out->step_ = Step::kDropTtl;
    out->children_.resize(1);
    return Build(from.children()[0], to, path, &out->children_[0]);
  }
  if (from.kind() != to.kind()) return Incompatible(path, from, to);
  switch (from.kind()) {
    case Kind::kList:
      out->step_ = Step::kList;
      out->children_.resize(1);
      return Build(from.children()[0], to.children()[0], Child(path, "[]"), &out->children_[0]);
    case Kind::kOptional:
      out->step_ = Step::kOptional;
      out->children_.resize(1);
      return Build(from.children()[0], to.children()[0], path, &out->children_[0]);
    case Kind::kTtl:
      out->step_ = Step::kTtl;
      out->children_.resize(1);
      return Build(from.children()[0], to.children()[0], path, &out->children_[0]);
    case Kind::kMap:
      if (from.children()[0].name() != to.children()[0].name()) {
        return Incompatible(Child(path, "{key}"), from.children()[0], to.children()[0]);
      }
      out->step_ = Step::kMap;
      out->children_.resize(2);
      out->children_[0].from_ = from.children()[0];
      return Build(from.children()[1], to.children()[1], Child(path, "{}"), &out->children_[1]);
    case Kind::kTuple:
      if (from.children().size() != to.children().size()) return Incompatible(path, from, to);
      out->step_ = Step::kTuple;
      out->children_.resize(from.children().size());
      for (size_t i = 0; i < from.children().size(); ++i) {
        SLUICE_RETURN_IF_ERROR(Build(from.children()[i], to.children()[i],
                                     Child(path, absl::StrCat("#", i)), &out->children_[i]));
      }
      return absl::OkStatus();
    case Kind::kStruct: {
      out->step_ = Step::kStruct;
      const auto& old_names = from.field_names();
      const auto& new_names = to.field_names();
      out->children_.resize(old_names.size());
      out->old_to_new_.assign(old_names.size(), -1);
      out->fed_.assign(new_names.size(), false);
      out->defaults_.resize(new_names.size());
      for (size_t i = 0; i < old_names.size(); ++i) {
        SchemaMigration& child = out->children_[i];
        for (size_t j = 0; j < new_names.size(); ++j) {
          if (new_names[j] != old_names[i]) continue;
          out->old_to_new_[i] = static_cast<int>(j);
          out->fed_[j] = true;
          SLUICE_RETURN_IF_ERROR(
              Build(from.children()[i], to.children()[j], Child(path, old_names[i]), &child));
        }
        if (out->old_to_new_[i] < 0) {
          child.step_ = Step::kSkip;
          child.from_ = from.children()[i];
          if (!child.from_.walkable()) {
            return absl::FailedPreconditionError(absl::StrCat(
                Where(Child(path, old_names[i])), " was removed, but its type (",
                from.children()[i].name(), ") has a custom serializer, so it cannot be skipped"));
          }
        }
      }
      for (size_t j = 0; j < new_names.size(); ++j) {
        if (out->fed_[j]) continue;
        auto bytes = DefaultValueBytes(to.children()[j]);
        if (!bytes.ok()) {
          return absl::FailedPreconditionError(absl::StrCat(
              Where(Child(path, new_names[j])), " was added: ", bytes.status().message()));
        }
        out->defaults_[j] = std::move(*bytes);
      }
      return absl::OkStatus();
    }
    default:
      // Fixed-size numbers, strings, protobuf messages of another type, void: nothing
      // converts (an i32 is not read as an i64).
      return Incompatible(path, from, to);
  }
}

bool SchemaMigration::Transcode(ByteReader& in, ByteWriter& out, int64_t now) const {
  switch (step_) {
    case Step::kCopy: {
      const size_t start = in.position();
      if (!from_.Skip(in)) return false;
      out.Append(in.Consumed().substr(start));
      return true;
    }
    case Step::kSkip:
      return from_.Skip(in);
    case Step::kList:
    case Step::kMap: {
      uint64_t n = 0;
      if (!in.ReadVarint(&n) || !in.CheckCount(n, 1)) return false;
      out.WriteVarint(n);
      for (uint64_t i = 0; i < n; ++i) {
        if (step_ == Step::kMap) {
          const size_t start = in.position();
          if (!children_[0].from_.Skip(in)) return false;
          out.Append(in.Consumed().substr(start));
        }
        if (!children_.back().Transcode(in, out, now)) return false;
      }
      return true;
    }
    case Step::kOptional: {
      uint8_t present = 0;
      if (!in.ReadRaw(&present) || present > 1) return false;
      out.WriteRaw(present);
      return present == 0 || children_[0].Transcode(in, out, now);
    }
    case Step::kTuple:
      for (const SchemaMigration& c : children_) {
        if (!c.Transcode(in, out, now)) return false;
      }
      return true;
    case Step::kStruct: {
      // Old fields come in old order; each kept one is rewritten aside, then all are
      // written in the new order.
      std::vector<std::string> fields(defaults_.size());
      for (size_t i = 0; i < children_.size(); ++i) {
        const int j = old_to_new_[i];
        if (j < 0) {
          if (!children_[i].Transcode(in, out, now)) return false;  // kSkip writes nothing
          continue;
        }
        ByteWriter field(&fields[j]);
        if (!children_[i].Transcode(in, field, now)) return false;
      }
      for (size_t j = 0; j < fields.size(); ++j) out.Append(fed_[j] ? fields[j] : defaults_[j]);
      return true;
    }
    case Step::kTtl: {
      int64_t last_access = 0;
      if (!children_[0].Transcode(in, out, now) || !in.ReadRaw(&last_access)) return false;
      out.WriteRaw(last_access);
      return true;
    }
    case Step::kAddTtl:
      if (!children_[0].Transcode(in, out, now)) return false;
      out.WriteRaw(now);
      return true;
    case Step::kDropTtl: {
      int64_t last_access = 0;
      return children_[0].Transcode(in, out, now) && in.ReadRaw(&last_access);
    }
  }
  return false;
}

}  // namespace sluice
