// The HTTP request/response values handlers see. Independent of Beast so
// handlers are plain functions, testable without sockets.
#ifndef GPURM_API_HTTP_TYPES_H_
#define GPURM_API_HTTP_TYPES_H_

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gpurm {

struct HttpRequest {
  std::string method;                              // "GET", "POST", ...
  std::string path;                                // Decoded path without the query string.
  std::map<std::string, std::string> query;        // Decoded query parameters.
  std::map<std::string, std::string> headers;      // Lower-case names.
  std::map<std::string, std::string> path_params;  // Filled by the router.
  std::string body;
  std::string remote_address;

  // Splits "/a/b?x=1&y=%20" into path and query (percent-decoded).
  void SetTarget(std::string_view target);
  // The header's value, or "" when absent. `name` must be lower-case.
  std::string Header(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Percent-decodes a URL component ('+' becomes a space in queries).
std::string UrlDecode(std::string_view text, bool plus_is_space);

}  // namespace gpurm

#endif  // GPURM_API_HTTP_TYPES_H_
