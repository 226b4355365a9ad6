#include "api/browser_guard.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace gpurm {
namespace {

using nlohmann::json;

HttpRequest Post(const std::string& host, const std::string& body = R"({"gpu_count":1})") {
  HttpRequest request;
  request.method = "POST";
  request.path = "/api/v1/gpu/release";
  request.headers["host"] = host;
  request.headers["content-type"] = "application/json";
  request.body = body;
  return request;
}

// The refused header, or "" when the request may go on.
std::string RefusedField(const BrowserGuard& guard, const HttpRequest& request,
                         bool changes_state = true, int* status = nullptr) {
  const std::optional<HttpResponse> refused = guard.Check(request, changes_state);
  if (!refused) return "";
  if (status != nullptr) *status = refused->status;
  return json::parse(refused->body)["error"]["field"];
}

TEST(BrowserGuardTest, HostMustNameTheDaemon) {
  const BrowserGuard guard("127.0.0.1", {"gpu-box.lab"});
  for (const char* host :
       {"127.0.0.1:8000", "localhost:8000", "LOCALHOST", "[::1]:8000", "10.1.2.3:8000",
        "app.localhost:8000", "gpu-box.lab:8000", "gpu-box.lab.:8000", ""}) {
    EXPECT_EQ(RefusedField(guard, Post(host)), "") << host;
  }
  // A rebound name is refused for reads too.
  int status = 0;
  EXPECT_EQ(RefusedField(guard, Post("evil.example:8000"), false, &status), "Host");
  EXPECT_EQ(status, 403);
  EXPECT_EQ(RefusedField(guard, Post("gpu-box.lab.evil.example")), "Host");
}

TEST(BrowserGuardTest, ListenNameAndWildcardAreAccepted) {
  EXPECT_EQ(RefusedField(BrowserGuard("gpu-box", {}), Post("gpu-box:8000")), "");
  EXPECT_EQ(RefusedField(BrowserGuard("0.0.0.0", {"*"}), Post("anything.example")), "");
  EXPECT_EQ(RefusedField(BrowserGuard("::1", {}), Post("evil.example")), "Host");
}

TEST(BrowserGuardTest, CrossSiteStateChangesAreRefused) {
  const BrowserGuard guard("127.0.0.1", {});
  HttpRequest evil_origin = Post("127.0.0.1:8000");
  evil_origin.headers["origin"] = "http://evil.example";
  EXPECT_EQ(RefusedField(guard, evil_origin), "Origin");
  // Same host, another port: another origin.
  HttpRequest other_port = Post("127.0.0.1:8000");
  other_port.headers["origin"] = "http://127.0.0.1:9999";
  EXPECT_EQ(RefusedField(guard, other_port), "Origin");
  HttpRequest null_origin = Post("127.0.0.1:8000");
  null_origin.headers["origin"] = "null";
  EXPECT_EQ(RefusedField(guard, null_origin), "Origin");
  HttpRequest cross_site = Post("127.0.0.1:8000");
  cross_site.headers["sec-fetch-site"] = "cross-site";
  EXPECT_EQ(RefusedField(guard, cross_site), "Sec-Fetch-Site");
  HttpRequest same_site = Post("127.0.0.1:8000");
  same_site.headers["sec-fetch-site"] = "same-site";
  EXPECT_EQ(RefusedField(guard, same_site), "Sec-Fetch-Site");
  // Reads are not state changes: only Host matters for them.
  EXPECT_EQ(RefusedField(guard, cross_site, false), "");
}

TEST(BrowserGuardTest, TheDashboardAndToolsPass) {
  const BrowserGuard guard("127.0.0.1", {});
  HttpRequest dashboard = Post("127.0.0.1:8000");
  dashboard.headers["origin"] = "http://127.0.0.1:8000";
  dashboard.headers["sec-fetch-site"] = "same-origin";
  dashboard.headers["content-type"] = "application/json; charset=utf-8";
  EXPECT_EQ(RefusedField(guard, dashboard), "");
  EXPECT_EQ(RefusedField(guard, Post("127.0.0.1:8000")), "");  // CLI, Python, curl.
  HttpRequest bodyless = Post("127.0.0.1:8000", "");
  bodyless.headers.erase("content-type");
  EXPECT_EQ(RefusedField(guard, bodyless), "");  // DELETE, heartbeat.
}

TEST(BrowserGuardTest, JsonBodiesNeedTheJsonContentType) {
  const BrowserGuard guard("127.0.0.1", {});
  for (const char* type :
       {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""}) {
    HttpRequest request = Post("127.0.0.1:8000");
    request.headers["content-type"] = type;
    int status = 0;
    EXPECT_EQ(RefusedField(guard, request, true, &status), "Content-Type") << type;
    EXPECT_EQ(status, 415);
  }
}

}  // namespace
}  // namespace gpurm
