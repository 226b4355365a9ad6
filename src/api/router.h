// Router: maps (method, path pattern) to a handler. Patterns are literal
// segments and `{name}` captures: "/api/v1/gpu/allocations/{id}".
//
// Access control happens here, once, for every route: each route declares
// the least role that may call it (Access), and with RequireTokens the
// router verifies the request's bearer token before running the handler,
// answering 401 (no or unknown token) or 403 (role too low) itself, and
// hands the verified identity to the handler in HttpRequest::principal.
// Handlers only decide what depends on the object (whose allocation it is).
#ifndef GPURM_API_ROUTER_H_
#define GPURM_API_ROUTER_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/http_types.h"
#include "auth/tokens.h"

namespace gpurm {

using Handler = std::function<HttpResponse(const HttpRequest&)>;
// Answers a request now, without blocking (in-memory state and brief locks
// only: no ledger, no I/O, no waiting on placement), or returns nullopt when
// only the route's Handler can answer it (e.g. a cached answer is out of
// date). See Router::AddNonBlocking.
using NonBlockingHandler = std::function<std::optional<HttpResponse>(const HttpRequest&)>;

// The least role a route needs when tokens are required. kPublic routes are
// never authenticated (liveness, the dashboard's static files).
// kAgent routes are what an agent's controller reads (role agent and up).
enum class Access { kPublic = -1, kAgent = 0, kViewer = 1, kUser = 2, kAdmin = 3 };

// The identity a bearer token belongs to, or nullopt (e.g. TokenStore).
using Authenticator = std::function<std::optional<Principal>(std::string_view token)>;
// Told about every request to a route that changes state (any method but
// GET and HEAD) after it was answered, refusals included; the request
// carries the verified principal, if any.
using AuditSink = std::function<void(const HttpRequest&, const HttpResponse&)>;
// Looks at every request to a known route before its token is checked; an
// answer refuses the request with it (BrowserGuard::Check). `changes_state`:
// the route's method is neither GET nor HEAD.
using RequestGuard =
    std::function<std::optional<HttpResponse>(const HttpRequest&, bool changes_state)>;

// Not thread-safe to Add or configure; Dispatch and DispatchNow are const and
// safe from many threads (the authenticator, the guard and the sink must be
// thread-safe, and must not block: DispatchNow runs them on I/O threads).
class Router {
 public:
  // A route with the default access: kViewer for GET and HEAD, kUser for
  // anything else.
  void Add(std::string method, std::string pattern, Handler handler);
  void Add(std::string method, std::string pattern, Access access, Handler handler);
  // A route that may be answered on the server's I/O thread: `now` is tried
  // there first (DispatchNow), and `handler` runs on a worker when `now`
  // returns nullopt. Both must give the same answer to the same request in
  // the same state. Only for methods that do not change state (GET, HEAD).
  void AddNonBlocking(std::string method, std::string pattern, Access access,
                      NonBlockingHandler now, Handler handler);
  // Turns access control on: non-public routes need "Authorization: Bearer
  // <token>" that `authenticate` accepts.
  void RequireTokens(Authenticator authenticate) { authenticate_ = std::move(authenticate); }
  void SetAuditSink(AuditSink sink) { audit_ = std::move(sink); }
  void SetRequestGuard(RequestGuard guard) { guard_ = std::move(guard); }

  // Runs the matching handler. Unknown path: 404; known path, other method:
  // 405 with an Allow header; refused by the guard: its answer; no or bad
  // token: 401 with WWW-Authenticate; too low a role: 403. All with a JSON
  // error body.
  HttpResponse Dispatch(HttpRequest request) const;
  // For the I/O thread: the answer to a request of a route added with
  // AddNonBlocking -- the guard's refusal, 401 or 403 as Dispatch gives them,
  // or the route's non-blocking answer -- or nullopt when the request must go
  // to Dispatch on a worker (any other route, unknown paths, and a
  // non-blocking handler that cannot answer now). Fills `request`'s
  // path_params and principal as Dispatch does.
  std::optional<HttpResponse> DispatchNow(HttpRequest& request) const;
  // The pattern of the route matching the request's path (whatever its
  // method), e.g. "/api/v1/gpu/allocations/{id}"; "" when none does. For
  // metrics labels, which must not carry raw paths.
  // The view is of the router's own pattern: valid as long as the router.
  std::string_view RouteOf(const HttpRequest& request) const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    Access access;
    Handler handler;
    NonBlockingHandler now;  // Empty unless added with AddNonBlocking.
  };
  // Whether `path` matches the route's pattern; fills `params` (when not
  // null) with its captures.
  static bool Matches(const Route& route, std::string_view path,
                      std::map<std::string, std::string>* params);
  // The guard's or the token check's refusal of `request` on `route`.
  std::optional<HttpResponse> Refusal(const Route& route, HttpRequest* request) const;
  // Sets request->principal once the token is known; returns the 401/403
  // answer when the request may not go on.
  std::optional<HttpResponse> Authorize(const Route& route, HttpRequest* request) const;

  std::vector<Route> routes_;
  Authenticator authenticate_;
  AuditSink audit_;
  RequestGuard guard_;
};

}  // namespace gpurm

#endif  // GPURM_API_ROUTER_H_
