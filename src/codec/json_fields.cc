#include "codec/json_fields.h"

#include <cmath>

namespace gpurm {

using nlohmann::json;

const char* JsonTypeName(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a number";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "an unsupported value";
  }
}

Status WrongType(const std::string& field, const char* expected, const json& value) {
  return InvalidArgument(std::string("expected ") + expected + ", got " + JsonTypeName(value),
                         field);
}

Result<int64_t> ReadInteger(const std::string& field, const json& value, int64_t min, int64_t max) {
  const auto out_of_range = [&](const std::string& got) {
    return InvalidArgument(
        "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + got,
        field);
  };
  if (value.is_number_unsigned()) {
    const uint64_t n = value.get<uint64_t>();
    if (max < 0 || n > static_cast<uint64_t>(max)) return out_of_range(std::to_string(n));
    return static_cast<int64_t>(n);
  }
  if (value.is_number_integer()) {
    const int64_t n = value.get<int64_t>();
    if (n < min || n > max) return out_of_range(std::to_string(n));
    return n;
  }
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (!std::isfinite(d) || std::floor(d) != d) {
      // The value itself says more than "a number" here.
      return InvalidArgument("expected an integer, got " + value.dump(), field);
    }
    // A whole double outside [-2^63, 2^63) has no int64 value to convert to.
    if (d < -0x1p63 || d >= 0x1p63 || d < static_cast<double>(min) ||
        d > static_cast<double>(max)) {
      return out_of_range(value.dump());
    }
    return static_cast<int64_t>(d);
  }
  return WrongType(field, "an integer", value);
}

}  // namespace gpurm
