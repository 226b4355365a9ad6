// Static files compiled into the binary (the web dashboard, web/dist) served
// through the API's router: GET / answers index.html, GET /ui/{name} the other
// files. Answers carry a Content-Type by extension, an ETag (a matching
// If-None-Match gets 304) and a caching policy: files whose name carries a
// content hash ("app-4OLHUDBT.js") are immutable for a year, everything else
// (index.html) is revalidated on every load, so a new binary's dashboard is
// picked up at once.
#ifndef GPURM_API_STATIC_ASSETS_H_
#define GPURM_API_STATIC_ASSETS_H_

#include <span>
#include <string_view>

#include "api/http_types.h"
#include "api/router.h"

namespace gpurm {

// One file. Views into storage that outlives the router (static data).
struct StaticAsset {
  std::string_view name;  // File name, no directories: "index.html", "app-4OLHUDBT.js".
  std::string_view body;
  std::string_view etag;  // Strong validator including its quotes: "\"9f86d081\"".
};

// The Content-Type for a file name, by extension (text types with
// charset=utf-8); application/octet-stream when unknown.
std::string_view ContentTypeFor(std::string_view name);

// True when the name's stem ends in "-" and at least 8 characters of
// [A-Z0-9] (the hash esbuild puts in file names): such a file's content never
// changes under its name.
bool IsContentAddressed(std::string_view name);

// The answer to a GET of `asset`: 200 with the body, or 304 without one when
// the request's If-None-Match lists the asset's ETag (or is "*").
HttpResponse ServeStaticAsset(const StaticAsset& asset, const HttpRequest& request);

// Registers GET / (the asset named "index.html", when there is one) and
// GET /ui/{name} (any asset; 404 with the API's JSON error for other names).
// `assets` must outlive the router.
void RegisterStaticAssets(std::span<const StaticAsset> assets, Router& router);

}  // namespace gpurm

#endif  // GPURM_API_STATIC_ASSETS_H_
