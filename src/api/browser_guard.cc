#include "api/browser_guard.h"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cctype>
#include <nlohmann/json.hpp>
#include <utility>

#include "api/json_codec.h"

namespace gpurm {
namespace {

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string Trim(const std::string& text) {
  const size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  const size_t end = text.find_last_not_of(" \t");
  return text.substr(begin, end - begin + 1);
}

// The host of an authority ("name:port", "[v6]:port"), lower-case, without
// a trailing dot.
std::string HostOf(const std::string& authority) {
  std::string host;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    host = authority.substr(1, close == std::string::npos ? std::string::npos : close - 1);
  } else {
    host = authority.substr(0, authority.rfind(':'));
  }
  host = Lower(std::move(host));
  if (!host.empty() && host.back() == '.') host.pop_back();
  return host;
}

bool IsIpLiteral(const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  return !ec;
}

bool EndsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

HttpResponse Refusal(int http_status, StatusCode code, const std::string& message,
                     const std::string& field) {
  HttpResponse response;
  response.status = http_status;
  // The message quotes request headers, which need not be UTF-8.
  response.body = ErrorJson(Status(code, message, field))
                      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

}  // namespace

BrowserGuard::BrowserGuard(std::string listen_host, std::vector<std::string> allowed_hosts)
    : listen_host_(HostOf(listen_host.find(':') != std::string::npos && listen_host[0] != '['
                              ? "[" + listen_host + "]"  // A bare IPv6 address.
                              : listen_host)) {
  for (std::string& name : allowed_hosts) {
    if (name == "*") any_host_ = true;
    allowed_hosts_.push_back(HostOf(name + ":"));
  }
}

bool BrowserGuard::HostAllowed(const std::string& host_header) const {
  if (any_host_ || host_header.empty()) return true;
  const std::string host = HostOf(host_header);
  return IsIpLiteral(host) || host == "localhost" || EndsWith(host, ".localhost") ||
         host == listen_host_ ||
         std::find(allowed_hosts_.begin(), allowed_hosts_.end(), host) != allowed_hosts_.end();
}

std::optional<HttpResponse> BrowserGuard::Check(const HttpRequest& request,
                                                bool changes_state) const {
  const std::string host = request.Header("host");
  if (!HostAllowed(host)) {
    return Refusal(403, StatusCode::kPermissionDenied,
                   "this server does not answer to the name \"" + HostOf(host) +
                       "\" (a DNS rebinding page?); add it to server.allowed_hosts if clients "
                       "reach the daemon by that name",
                   "Host");
  }
  if (!changes_state) return std::nullopt;
  const std::string fetch_site = Lower(request.Header("sec-fetch-site"));
  if (!fetch_site.empty() && fetch_site != "same-origin" && fetch_site != "none") {
    return Refusal(403, StatusCode::kPermissionDenied,
                   "a " + fetch_site +
                       " browser request may not change state here; use the daemon's own "
                       "dashboard, the CLI or the API directly",
                   "Sec-Fetch-Site");
  }
  if (request.headers.count("origin") != 0) {
    const std::string origin = request.Header("origin");
    const size_t scheme_end = origin.find("://");
    const std::string authority =
        scheme_end == std::string::npos ? "" : Lower(origin.substr(scheme_end + 3));
    if (authority.empty() || authority != Lower(host)) {
      return Refusal(403, StatusCode::kPermissionDenied,
                     "requests from a page of origin \"" + origin +
                         "\" may not change state here (only the daemon's own pages may)",
                     "Origin");
    }
  }
  if (!request.body.empty()) {
    const std::string content_type = request.Header("content-type");
    const std::string media_type = Lower(Trim(content_type.substr(0, content_type.find(';'))));
    if (media_type != "application/json") {
      return Refusal(
          415, StatusCode::kInvalidArgument,
          "expected a JSON body with Content-Type: application/json, got " +
              (content_type.empty() ? std::string("no Content-Type") : "\"" + content_type + "\""),
          "Content-Type");
    }
  }
  return std::nullopt;
}

}  // namespace gpurm
