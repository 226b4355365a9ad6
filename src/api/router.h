// Router: maps (method, path pattern) to a handler. Patterns are literal
// segments and `{name}` captures: "/api/v1/gpu/allocations/{id}".
#ifndef GPURM_API_ROUTER_H_
#define GPURM_API_ROUTER_H_

#include <functional>
#include <string>
#include <vector>

#include "api/http_types.h"

namespace gpurm {

using Handler = std::function<HttpResponse(const HttpRequest&)>;

// Not thread-safe to Add; Dispatch is const and safe from many threads.
class Router {
 public:
  void Add(std::string method, std::string pattern, Handler handler);
  // Runs the matching handler. Unknown path: 404; known path, other method:
  // 405 with an Allow header. Both with a JSON error body.
  HttpResponse Dispatch(HttpRequest request) const;
  // The pattern of the route matching the request's path (whatever its
  // method), e.g. "/api/v1/gpu/allocations/{id}"; "" when none does. For
  // metrics labels, which must not carry raw paths.
  std::string RouteOf(const HttpRequest& request) const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    Handler handler;
  };
  std::vector<Route> routes_;
};

}  // namespace gpurm

#endif  // GPURM_API_ROUTER_H_
