#include "api/static_assets.h"

#include <array>
#include <cctype>
#include <string>
#include <utility>

#include "api/json_codec.h"
#include "core/status.h"

namespace gpurm {
namespace {

constexpr std::string_view kIndexName = "index.html";

// The dashboard loads only its own files and talks only to this daemon; the
// favicon is a data: URI. No inline script or style is needed, so none is
// allowed.
constexpr char kContentSecurityPolicy[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

std::string_view Extension(std::string_view name) {
  const size_t dot = name.rfind('.');
  return dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

// If-None-Match is "*" or a comma-separated list of entity tags; the
// comparison is weak (a W/ prefix is ignored), as RFC 9110 asks for it.
bool NoneMatchHits(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    const size_t comma = header.find(',');
    std::string_view tag = Trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    if (tag == "*") return true;
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == etag) return true;
  }
  return false;
}

HttpResponse NoSuchFile(const std::string& path) {
  HttpResponse response;
  response.status = 404;
  // The path need not be UTF-8.
  response.body = ErrorJson(NotFound("no such file: " + path))
                      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  response.headers.emplace_back("Cache-Control", "no-cache");
  return response;
}

}  // namespace

std::string_view ContentTypeFor(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 10> kTypes = {{
      {"html", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"json", "application/json"},
      {"map", "application/json"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"ico", "image/x-icon"},
      {"txt", "text/plain; charset=utf-8"},
  }};
  const std::string_view extension = Extension(name);
  for (const auto& [known, type] : kTypes) {
    if (extension == known) return type;
  }
  return "application/octet-stream";
}

bool IsContentAddressed(std::string_view name) {
  const size_t dot = name.rfind('.');
  const std::string_view stem = dot == std::string_view::npos ? name : name.substr(0, dot);
  const size_t dash = stem.rfind('-');
  if (dash == std::string_view::npos || stem.size() - dash - 1 < 8) return false;
  for (const char c : stem.substr(dash + 1)) {
    if (!std::isupper(static_cast<unsigned char>(c)) &&
        !std::isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

HttpResponse ServeStaticAsset(const StaticAsset& asset, const HttpRequest& request) {
  HttpResponse response;
  response.content_type = std::string(ContentTypeFor(asset.name));
  response.headers.emplace_back("ETag", std::string(asset.etag));
  response.headers.emplace_back("Cache-Control", IsContentAddressed(asset.name)
                                                     ? "public, max-age=31536000, immutable"
                                                     : "no-cache");
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (Extension(asset.name) == "html") {
    response.headers.emplace_back("Content-Security-Policy", kContentSecurityPolicy);
    response.headers.emplace_back("Referrer-Policy", "no-referrer");
  }
  if (NoneMatchHits(request.Header("if-none-match"), asset.etag)) {
    response.status = 304;
    return response;
  }
  response.body = std::string(asset.body);
  return response;
}

// Public even when tokens are required: the files hold no data (the
// dashboard's API calls are what need a token).
void RegisterStaticAssets(std::span<const StaticAsset> assets, Router& router) {
  for (const StaticAsset& asset : assets) {
    if (asset.name == kIndexName) {
      router.Add("GET", "/", Access::kPublic,
                 [&asset](const HttpRequest& request) { return ServeStaticAsset(asset, request); });
    }
  }
  router.Add("GET", "/ui/{name}", Access::kPublic, [assets](const HttpRequest& request) {
    const std::string& name = request.path_params.at("name");
    for (const StaticAsset& asset : assets) {
      if (asset.name == name) return ServeStaticAsset(asset, request);
    }
    return NoSuchFile(request.path);
  });
}

}  // namespace gpurm
