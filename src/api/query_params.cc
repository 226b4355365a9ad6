#include "api/query_params.h"

#include <charconv>
#include <cmath>
#include <string_view>

namespace gpurm {
namespace {

// Percent-encodes a query value.
std::string QueryEscape(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      out += {'%', kHex[u >> 4], kHex[u & 15]};
    }
  }
  return out;
}

}  // namespace

// Parses an optional non-negative number query parameter.
Result<std::optional<double>> QueryNumber(const HttpRequest& request, const std::string& name) {
  auto it = request.query.find(name);
  if (it == request.query.end() || it->second.empty()) return std::optional<double>();
  char* end = nullptr;
  const double value = std::strtod(it->second.c_str(), &end);
  if (end == it->second.c_str() || *end != '\0' || !std::isfinite(value) || value < 0) {
    return InvalidArgument("expected a number >= 0, got \"" + it->second + "\"", name);
  }
  return std::optional<double>(value);
}

// The query parameter `limit`: 1..kMaxPageSize, kMaxPageSize when absent.
Result<int> QueryLimit(const HttpRequest& request) {
  auto it = request.query.find("limit");
  if (it == request.query.end() || it->second.empty()) return kMaxPageSize;
  int64_t value = 0;
  const char* end = it->second.data() + it->second.size();
  const auto [ptr, ec] = std::from_chars(it->second.data(), end, value);
  if (ec != std::errc() || ptr != end || value < 1 || value > kMaxPageSize) {
    return InvalidArgument("expected an integer from 1 to " + std::to_string(kMaxPageSize) +
                               ", got \"" + it->second + "\"",
                           "limit");
  }
  return static_cast<int>(value);
}

// The link to the page after `last`, keeping the request's other parameters.
std::string NextLink(const HttpRequest& request, const std::string& cursor) {
  std::string link = request.path + "?";
  for (const auto& [name, value] : request.query) {
    if (name != "after") link += QueryEscape(name) + "=" + QueryEscape(value) + "&";
  }
  return link + "after=" + QueryEscape(cursor);
}

Result<bool> QueryBool(const HttpRequest& request, const std::string& name) {
  auto it = request.query.find(name);
  if (it == request.query.end()) return false;
  if (it->second.empty() || it->second == "true" || it->second == "1") return true;
  if (it->second == "false" || it->second == "0") return false;
  return InvalidArgument("expected true or false, got \"" + it->second + "\"", name);
}

}  // namespace gpurm
