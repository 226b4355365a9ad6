// The HTTP request/response values handlers see. Independent of Beast so
// handlers are plain functions, testable without sockets.
#ifndef GPURM_API_HTTP_TYPES_H_
#define GPURM_API_HTTP_TYPES_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/tokens.h"

namespace gpurm {

struct HttpRequest {
  std::string method;                              // "GET", "POST", ...
  std::string path;                                // Decoded path without the query string.
  std::map<std::string, std::string> query;        // Decoded query parameters.
  std::map<std::string, std::string> headers;      // Lower-case names.
  std::map<std::string, std::string> path_params;  // Filled by the router.
  std::string body;
  std::string remote_address;
  // Who sent it: set by the router once the bearer token is verified
  // (Router::RequireTokens); nullopt when access control is off or the
  // route is public.
  std::optional<Principal> principal;

  // Splits "/a/b?x=1&y=%20" into path and query (percent-decoded).
  void SetTarget(std::string_view target);
  // The header's value, or "" when absent. `name` must be lower-case.
  std::string Header(const std::string& name) const;
};

// A response body produced over time (Server-Sent Events). The HTTP server
// sends the headers, then writes what Pull returns as it becomes available,
// and a keep-alive payload when nothing was written for a while. It calls
// Start, Pull and KeepAlive on the connection's I/O strand, so none of them
// may block; Close may come from any thread.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  // Called once before any Pull. The stream calls `wake` (from any thread)
  // whenever Pull may have something new or the stream has ended. `wake`
  // only schedules a Pull on the connection's strand, never runs it inline,
  // so it may be called under the stream's own locks. It is safe to call
  // until Close() returns, and must not be called after.
  virtual void Start(std::function<void()> wake) = 0;
  // What is ready to send now (may be empty). Sets *done once the stream has
  // ended and everything was returned; the server then ends the response.
  virtual std::string Pull(bool* done) = 0;
  // Bytes to send when the stream has been quiet for the keep-alive period,
  // so that proxies and clients see the connection alive.
  virtual std::string KeepAlive() = 0;
  // Ends the stream: after Close returns, `wake` is not called again and
  // Pull reports done once drained. Idempotent; the server calls it when the
  // client goes away or the server drains.
  virtual void Close() = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  // The body is *shared_prefix, then `body`, then *shared_suffix (each
  // shared part only when set); all are ignored when `stream` is set. The
  // shared parts are immutable parts of a cache, so that a large cached
  // answer is sent without being copied per request: over plain TCP a large
  // one is sent from a memory file (see AnswerFiles).
  std::shared_ptr<const std::string> shared_prefix;
  std::string body;
  std::shared_ptr<const std::string> shared_suffix;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is streamed (see ResponseStream) instead of `body`,
  // and the connection is not reused for another request.
  std::shared_ptr<ResponseStream> stream;

  // The whole body: *shared_prefix + body + *shared_suffix (a copy; for
  // tests and logs).
  std::string FullBody() const;
};

// Percent-decodes a URL component ('+' becomes a space in queries).
std::string UrlDecode(std::string_view text, bool plus_is_space);

}  // namespace gpurm

#endif  // GPURM_API_HTTP_TYPES_H_
