// BrowserGuard: refuses requests a web browser sends on behalf of a page
// that is not the daemon's own (cross-site request forgery, DNS rebinding).
// A browser lets any page it shows send requests to 127.0.0.1; what it does
// not let a page choose are the Host, Origin and Sec-Fetch-Site headers and
// (without a CORS preflight, which the daemon never answers) a JSON
// Content-Type. So, with or without tokens:
//  - every request's Host must name the daemon: an IP literal, "localhost"
//    (or a name under .localhost), the listen address, or one of the
//    configured names (server.allowed_hosts; "*" turns the check off, for a
//    reverse proxy that checks it). A rebound DNS name is refused even for
//    reads. No Host at all (HTTP/1.0 tools) is allowed: browsers always send one.
//  - a request that changes state (not GET or HEAD) is refused when it
//    carries Sec-Fetch-Site other than same-origin or none, or an Origin
//    whose host:port is not the request's Host;
//  - and, when it has a body, unless its Content-Type is application/json
//    (HTML forms and no-preflight fetches can only send text/plain,
//    form-urlencoded and multipart).
// Non-browser clients (the CLI, the Python package, curl) send no Origin or
// Sec-Fetch-Site and already send application/json.
#ifndef GPURM_API_BROWSER_GUARD_H_
#define GPURM_API_BROWSER_GUARD_H_

#include <optional>
#include <string>
#include <vector>

#include "api/http_types.h"

namespace gpurm {

class BrowserGuard {
 public:
  // `listen_host`: the host part of the listen address; `allowed_hosts`:
  // further names clients use for the daemon (compared case-insensitively).
  BrowserGuard(std::string listen_host, std::vector<std::string> allowed_hosts);

  // nullopt when the request may go on; otherwise the answer: 403 naming
  // the header (Host, Origin or Sec-Fetch-Site), or 415 naming Content-Type.
  std::optional<HttpResponse> Check(const HttpRequest& request, bool changes_state) const;

 private:
  bool HostAllowed(const std::string& host_header) const;

  std::string listen_host_;
  std::vector<std::string> allowed_hosts_;
  bool any_host_ = false;
};

}  // namespace gpurm

#endif  // GPURM_API_BROWSER_GUARD_H_
