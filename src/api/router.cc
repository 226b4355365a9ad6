#include "api/router.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "api/json_codec.h"

namespace gpurm {
namespace {

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> segments;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end > start) segments.emplace_back(path.substr(start, end - start));
    start = end + 1;
  }
  return segments;
}

// The next non-empty segment of `*path` (consumed up to its end); empty when
// none is left. Empty segments ("//", a trailing "/") are skipped, as
// SplitPath skips them.
std::string_view NextSegment(std::string_view* path) {
  const size_t start = path->find_first_not_of('/');
  if (start == std::string_view::npos) {
    *path = {};
    return {};
  }
  size_t end = path->find('/', start);
  if (end == std::string_view::npos) end = path->size();
  const std::string_view segment = path->substr(start, end - start);
  path->remove_prefix(end);
  return segment;
}

bool IsCapture(const std::string& pattern_segment) {
  return pattern_segment.size() > 2 && pattern_segment.front() == '{' &&
         pattern_segment.back() == '}';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

HttpResponse JsonError(int http_status, StatusCode code, const std::string& message,
                       const std::string& field = "") {
  HttpResponse response;
  response.status = http_status;
  // The message may quote the request's path, which need not be UTF-8.
  response.body = ErrorJson(Status(code, message, field))
                      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

// RFC 6750: a 401 names the scheme, and the error when a token was given.
HttpResponse Unauthorized(const std::string& message, const char* bearer_error) {
  HttpResponse response = JsonError(401, StatusCode::kUnauthenticated, message, "Authorization");
  std::string challenge = "Bearer realm=\"gpurm\"";
  if (bearer_error != nullptr) challenge += std::string(", error=\"") + bearer_error + "\"";
  response.headers.emplace_back("WWW-Authenticate", std::move(challenge));
  return response;
}

const char* AccessName(Access access) {
  switch (access) {
    case Access::kPublic:
      return "anyone";
    case Access::kAgent:
      return "agent";
    case Access::kViewer:
      return "viewer";
    case Access::kUser:
      return "user";
    case Access::kAdmin:
      return "admin";
  }
  return "admin";
}

bool ChangesState(const std::string& method) { return method != "GET" && method != "HEAD"; }

}  // namespace

std::string UrlDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      const int high = HexValue(text[i + 1]);
      const int low = HexValue(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

void HttpRequest::SetTarget(std::string_view target) {
  const size_t question = target.find('?');
  path = UrlDecode(target.substr(0, question), false);
  query.clear();
  if (question == std::string_view::npos) return;
  std::string_view rest = target.substr(question + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::string key = UrlDecode(pair.substr(0, eq), true);
    std::string value = eq == std::string_view::npos ? "" : UrlDecode(pair.substr(eq + 1), true);
    query.insert_or_assign(std::move(key), std::move(value));
  }
}

std::string HttpResponse::FullBody() const {
  std::string whole = shared_prefix ? *shared_prefix : std::string();
  whole += body;
  if (shared_suffix) whole += *shared_suffix;
  return whole;
}

std::string HttpRequest::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

void Router::Add(std::string method, std::string pattern, Handler handler) {
  const Access access = ChangesState(method) ? Access::kUser : Access::kViewer;
  Add(std::move(method), std::move(pattern), access, std::move(handler));
}

void Router::Add(std::string method, std::string pattern, Access access, Handler handler) {
  std::vector<std::string> segments = SplitPath(pattern);
  routes_.push_back(Route{
      std::move(method), std::move(pattern), std::move(segments), access, std::move(handler), {}});
}

void Router::AddNonBlocking(std::string method, std::string pattern, Access access,
                            NonBlockingHandler now, Handler handler) {
  if (ChangesState(method)) {
    // Its audit record is written by Dispatch only.
    throw std::invalid_argument("a non-blocking route must not change state: " + method + " " +
                                pattern);
  }
  Add(std::move(method), std::move(pattern), access, std::move(handler));
  routes_.back().now = std::move(now);
}

bool Router::Matches(const Route& route, std::string_view path,
                     std::map<std::string, std::string>* params) {
  for (const std::string& pattern : route.segments) {
    const std::string_view segment = NextSegment(&path);
    if (segment.empty()) return false;
    if (IsCapture(pattern)) {
      if (params != nullptr) (*params)[pattern.substr(1, pattern.size() - 2)] = segment;
    } else if (pattern != segment) {
      return false;
    }
  }
  return NextSegment(&path).empty();
}

std::optional<HttpResponse> Router::Refusal(const Route& route, HttpRequest* request) const {
  std::optional<HttpResponse> refused =
      guard_ ? guard_(*request, ChangesState(route.method)) : std::nullopt;
  if (!refused) refused = Authorize(route, request);
  return refused;
}

std::optional<HttpResponse> Router::Authorize(const Route& route, HttpRequest* request) const {
  if (!authenticate_ || route.access == Access::kPublic) return std::nullopt;
  const std::string header = request->Header("authorization");
  if (header.empty()) {
    return Unauthorized("this endpoint needs a bearer token (Authorization: Bearer <token>)",
                        nullptr);
  }
  // The scheme is case-insensitive (RFC 7235); the token follows one space.
  constexpr std::string_view kScheme = "bearer ";
  const bool bearer =
      header.size() > kScheme.size() &&
      std::equal(kScheme.begin(), kScheme.end(), header.begin(),
                 [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); });
  if (!bearer) {
    return Unauthorized("expected \"Authorization: Bearer <token>\"", "invalid_request");
  }
  const std::string_view credentials = header;
  std::optional<Principal> principal = authenticate_(credentials.substr(kScheme.size()));
  if (!principal) return Unauthorized("unknown or revoked token", "invalid_token");
  // Known from here on, refused or not (the audit log names who was refused).
  request->principal = std::move(principal);
  const Principal& who = *request->principal;
  if (static_cast<int>(who.role) < static_cast<int>(route.access)) {
    return JsonError(403, StatusCode::kPermissionDenied,
                     "\"" + who.name + "\" has role " + RoleName(who.role) + "; " +
                         request->method + " " + route.pattern + " needs " +
                         AccessName(route.access));
  }
  return std::nullopt;
}

std::string_view Router::RouteOf(const HttpRequest& request) const {
  for (const Route& route : routes_) {
    if (Matches(route, request.path, nullptr)) return route.pattern;
  }
  return {};
}

std::optional<HttpResponse> Router::DispatchNow(HttpRequest& request) const {
  for (const Route& route : routes_) {
    std::map<std::string, std::string> params;
    // The first route of the path and method is the one Dispatch runs.
    if (!Matches(route, request.path, &params) || route.method != request.method) continue;
    if (!route.now) return std::nullopt;
    request.path_params = std::move(params);
    if (std::optional<HttpResponse> refused = Refusal(route, &request)) return refused;
    return route.now(request);
  }
  return std::nullopt;
}

HttpResponse Router::Dispatch(HttpRequest request) const {
  std::string allowed;
  for (const Route& route : routes_) {
    std::map<std::string, std::string> params;
    if (!Matches(route, request.path, &params)) continue;
    if (route.method != request.method) {
      allowed += (allowed.empty() ? "" : ", ") + route.method;
      continue;
    }
    request.path_params = std::move(params);
    std::optional<HttpResponse> refused = Refusal(route, &request);
    HttpResponse response = refused ? std::move(*refused) : route.handler(request);
    if (audit_ && ChangesState(route.method)) audit_(request, response);
    return response;
  }
  if (!allowed.empty()) {
    HttpResponse response =
        JsonError(405, StatusCode::kInvalidArgument,
                  "method " + request.method + " not allowed here; allowed: " + allowed);
    response.headers.emplace_back("Allow", allowed);
    return response;
  }
  return JsonError(404, StatusCode::kNotFound, "no such endpoint: " + request.path);
}

}  // namespace gpurm
