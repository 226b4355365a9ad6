#include "kube/quantity.h"

#include <array>
#include <charconv>
#include <cmath>
#include <utility>

namespace gpurm::kube {

std::optional<double> ParseQuantity(std::string_view text) {
  // The number is the longest prefix of sign, digits and one '.'.
  size_t end = 0;
  if (end < text.size() && (text[end] == '+' || text[end] == '-')) ++end;
  bool digits = false;
  bool dot = false;
  for (; end < text.size(); ++end) {
    if (text[end] >= '0' && text[end] <= '9') {
      digits = true;
    } else if (text[end] == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (!digits) return std::nullopt;
  double number = 0;
  const std::string_view number_text = text.substr(text[0] == '+' ? 1 : 0, end - (text[0] == '+'));
  const auto [ptr, ec] =
      std::from_chars(number_text.data(), number_text.data() + number_text.size(), number);
  if (ec != std::errc() || ptr != number_text.data() + number_text.size()) return std::nullopt;
  const std::string_view suffix = text.substr(end);
  if (suffix.empty()) return number;
  static constexpr std::array<std::pair<std::string_view, double>, 13> kSuffixes = {{
      {"m", 1e-3},
      {"k", 1e3},
      {"M", 1e6},
      {"G", 1e9},
      {"T", 1e12},
      {"P", 1e15},
      {"E", 1e18},
      {"Ki", 1024.0},
      {"Mi", 1048576.0},
      {"Gi", 1073741824.0},
      {"Ti", 1099511627776.0},
      {"Pi", 1125899906842624.0},
      {"Ei", 1152921504606846976.0},
  }};
  for (const auto& [name, factor] : kSuffixes) {
    if (suffix == name) return number * factor;
  }
  if (suffix[0] == 'e' || suffix[0] == 'E') {
    int exponent = 0;
    std::string_view exponent_text = suffix.substr(1);
    if (!exponent_text.empty() && exponent_text[0] == '+') exponent_text.remove_prefix(1);
    const auto [eptr, eec] = std::from_chars(exponent_text.data(),
                                             exponent_text.data() + exponent_text.size(), exponent);
    if (exponent_text.empty() || eec != std::errc() ||
        eptr != exponent_text.data() + exponent_text.size()) {
      return std::nullopt;
    }
    return number * std::pow(10.0, exponent);
  }
  return std::nullopt;
}

}  // namespace gpurm::kube
