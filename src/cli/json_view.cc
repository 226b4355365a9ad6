#include "cli/json_view.h"

namespace gpurm::cli {

using nlohmann::json;

const json& Member(const json& object, std::string_view key) {
  static const json kNull;  // Immutable; shared by every miss.
  if (!object.is_object()) return kNull;
  const auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

const json& Array(const json& object, std::string_view key) {
  static const json kEmpty = json::array();  // Immutable; shared by every miss.
  const json& value = Member(object, key);
  return value.is_array() ? value : kEmpty;
}

std::string Text(const json& value, const std::string& fallback) {
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    return text.empty() ? fallback : text;
  }
  if (value.is_boolean()) return value.get<bool>() ? "yes" : "no";
  if (value.is_null()) return fallback;
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string String(const json& object, std::string_view key, const std::string& fallback) {
  return Text(Member(object, key), fallback);
}

std::optional<double> Number(const json& object, std::string_view key) {
  const json& value = Member(object, key);
  if (!value.is_number()) return std::nullopt;
  return value.get<double>();
}

double NumberOr(const json& value, double fallback) {
  return value.is_number() ? value.get<double>() : fallback;
}

}  // namespace gpurm::cli
