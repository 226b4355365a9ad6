#include "codec/request_codec.h"

#include <array>
#include <cctype>
#include <climits>
#include <cstddef>
#include <variant>

#include "codec/json_fields.h"

namespace gpurm {
namespace {

using nlohmann::json;

// Strings longer than this are refused: names and types are short, and a
// bound keeps one request from storing megabytes.
constexpr size_t kMaxStringLength = 256;

struct IntField {
  int GpuRequest::*member;
  int64_t min;
  int64_t max;
};
struct Int64Field {
  int64_t GpuRequest::*member;
  int64_t min;
  int64_t max;
};
using Member = std::variant<IntField, Int64Field, double GpuRequest::*, bool GpuRequest::*,
                            std::string GpuRequest::*>;

struct Field {
  std::string_view name;  // snake_case
  Member member;
};

// Every GpuRequest field, in declaration order. Numbers are bounded here only
// as far as a single field goes; ValidateRequest (scheduler) checks the rest.
constexpr std::array kFields = {
    Field{"gpu_count", IntField{&GpuRequest::gpu_count, 1, kMaxGpuCount}},
    Field{"gpu_type", &GpuRequest::gpu_type},
    Field{"memory_gb", &GpuRequest::memory_gb},
    Field{"distributed_training", &GpuRequest::distributed_training},
    Field{"mixed_precision", &GpuRequest::mixed_precision},
    Field{"gpu_memory_fraction", &GpuRequest::gpu_memory_fraction},
    Field{"node_name", &GpuRequest::node_name},
    Field{"shared", &GpuRequest::shared},
    Field{"gpu_milli", IntField{&GpuRequest::gpu_milli, 0, kMilliPerGpu}},
    Field{"policy", &GpuRequest::policy},
    Field{"lease_ttl_seconds", Int64Field{&GpuRequest::lease_ttl_s, 0, kMaxLeaseTtlS}},
};

// The number of members of an aggregate: the most initialisers `T{...}`
// accepts, each convertible to anything.
struct AnyMember {
  template <typename T>
  operator T() const;  // NOLINT(google-explicit-constructor): declared only, never called.
};
template <typename T, typename... Members>
constexpr size_t AggregateMemberCount() {
  if constexpr (requires { T{Members{}..., AnyMember{}}; }) {
    return AggregateMemberCount<T, Members..., AnyMember>();
  } else {
    return sizeof...(Members);
  }
}
static_assert(AggregateMemberCount<GpuRequest>() == kFields.size(),
              "every GpuRequest member must be listed in kFields");

std::string CamelCase(std::string_view snake) {
  std::string camel;
  bool upper = false;
  for (const char c : snake) {
    if (c == '_') {
      upper = true;
      continue;
    }
    camel += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    upper = false;
  }
  return camel;
}

std::vector<std::string> MakeNames(FieldCase names) {
  std::vector<std::string> out;
  for (const Field& field : kFields) {
    out.push_back(names == FieldCase::kSnake ? std::string(field.name) : CamelCase(field.name));
  }
  return out;
}

Status DecodeInto(const Member& member, const std::string& field, const json& value,
                  GpuRequest* request) {
  struct Decoder {
    const std::string& field;
    const json& value;
    GpuRequest* request;
    Status operator()(const IntField& f) const {
      Result<int64_t> n = ReadInteger(field, value, f.min, f.max);
      if (!n.ok()) return n.status();
      request->*f.member = static_cast<int>(*n);
      return Status::Ok();
    }
    Status operator()(const Int64Field& f) const {
      Result<int64_t> n = ReadInteger(field, value, f.min, f.max);
      if (!n.ok()) return n.status();
      request->*f.member = *n;
      return Status::Ok();
    }
    Status operator()(double GpuRequest::*m) const {
      if (!value.is_number()) return WrongType(field, "a number", value);
      request->*m = value.get<double>();
      return Status::Ok();
    }
    Status operator()(bool GpuRequest::*m) const {
      if (!value.is_boolean()) return WrongType(field, "true or false", value);
      request->*m = value.get<bool>();
      return Status::Ok();
    }
    Status operator()(std::string GpuRequest::*m) const {
      if (!value.is_string()) return WrongType(field, "a string", value);
      if (value.get_ref<const std::string&>().size() > kMaxStringLength) {
        return InvalidArgument(
            "must be at most " + std::to_string(kMaxStringLength) + " characters", field);
      }
      request->*m = value.get<std::string>();
      return Status::Ok();
    }
  };
  return std::visit(Decoder{field, value, request}, member);
}

json EncodeMember(const Member& member, const GpuRequest& request) {
  return std::visit(
      [&request](const auto& m) -> json {
        using M = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<M, IntField> || std::is_same_v<M, Int64Field>) {
          return request.*m.member;
        } else {
          return request.*m;
        }
      },
      member);
}

// The name of the object whose fields carry `prefix`: "request." -> "request".
std::string ObjectField(const std::string& prefix) {
  if (prefix.empty()) return "body";
  return prefix.back() == '.' ? prefix.substr(0, prefix.size() - 1) : prefix;
}

}  // namespace

const std::vector<std::string>& GpuRequestFieldNames(FieldCase names) {
  static const std::vector<std::string> snake = MakeNames(FieldCase::kSnake);
  static const std::vector<std::string> camel = MakeNames(FieldCase::kCamel);
  return names == FieldCase::kSnake ? snake : camel;
}

json EncodeGpuRequest(const GpuRequest& request, FieldCase names) {
  const std::vector<std::string>& keys = GpuRequestFieldNames(names);
  json out = json::object();
  for (size_t i = 0; i < kFields.size(); ++i)
    out[keys[i]] = EncodeMember(kFields[i].member, request);
  return out;
}

Status DecodeGpuRequestField(std::string_view key, const json& value, GpuRequest* request,
                             FieldCase names, const std::string& field_prefix) {
  const std::vector<std::string>& keys = GpuRequestFieldNames(names);
  for (size_t i = 0; i < kFields.size(); ++i) {
    if (keys[i] != key) continue;
    if (value.is_null()) return Status::Ok();
    return DecodeInto(kFields[i].member, field_prefix + keys[i], value, request);
  }
  return NotFound("no GpuRequest field is called " + std::string(key));
}

Result<GpuRequest> DecodeGpuRequest(const json& object, FieldCase names,
                                    const std::string& field_prefix) {
  if (!object.is_object()) return WrongType(ObjectField(field_prefix), "an object", object);
  GpuRequest request;
  for (const auto& [key, value] : object.items()) {
    Status status = DecodeGpuRequestField(key, value, &request, names, field_prefix);
    if (status.code() == StatusCode::kNotFound) {
      std::string known;
      for (const std::string& name : GpuRequestFieldNames(names)) {
        known += (known.empty() ? "" : ", ") + name;
      }
      return InvalidArgument("unknown field (known: " + known + ")", field_prefix + key);
    }
    if (!status.ok()) return status;
  }
  return request;
}

}  // namespace gpurm
