#include "api/router.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace gpurm {
namespace {

HttpRequest Make(const std::string& method, const std::string& target) {
  HttpRequest request;
  request.method = method;
  request.SetTarget(target);
  return request;
}

TEST(HttpRequestTest, SplitsAndDecodesTargets) {
  HttpRequest request = Make("GET", "/api/v1/gpu/nodes?gpu_type=RTX%204090&min_memory_gb=16&x");
  EXPECT_EQ(request.path, "/api/v1/gpu/nodes");
  EXPECT_EQ(request.query.at("gpu_type"), "RTX 4090");
  EXPECT_EQ(request.query.at("min_memory_gb"), "16");
  EXPECT_EQ(request.query.at("x"), "");
  EXPECT_EQ(UrlDecode("a+b%2", true), "a b%2");
}

TEST(RouterTest, MatchesCapturesAndRejectsOthers) {
  Router router;
  router.Add("GET", "/items/{id}", [](const HttpRequest& request) {
    HttpResponse response;
    response.body = request.path_params.at("id");
    return response;
  });
  router.Add("DELETE", "/items/{id}", [](const HttpRequest&) {
    HttpResponse response;
    response.status = 204;
    return response;
  });

  EXPECT_EQ(router.Dispatch(Make("GET", "/items/abc")).body, "abc");
  EXPECT_EQ(router.Dispatch(Make("GET", "/items/abc/")).body, "abc");
  EXPECT_EQ(router.Dispatch(Make("DELETE", "/items/abc")).status, 204);

  HttpResponse missing = router.Dispatch(Make("GET", "/nothing"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(nlohmann::json::parse(missing.body)["error"]["code"], "not_found");

  HttpResponse wrong_method = router.Dispatch(Make("PUT", "/items/abc"));
  EXPECT_EQ(wrong_method.status, 405);
  ASSERT_EQ(wrong_method.headers.size(), 1u);
  EXPECT_EQ(wrong_method.headers[0].second, "GET, DELETE");
}

TEST(RouterTest, RouteOfNamesThePatternNotThePath) {
  Router router;
  router.Add("GET", "/items/{id}", [](const HttpRequest&) { return HttpResponse{}; });
  router.Add("GET", "/metrics", [](const HttpRequest&) { return HttpResponse{}; });
  EXPECT_EQ(router.RouteOf(Make("GET", "/items/abc")), "/items/{id}");
  EXPECT_EQ(router.RouteOf(Make("PUT", "/items/abc")), "/items/{id}");
  EXPECT_EQ(router.RouteOf(Make("GET", "/metrics")), "/metrics");
  EXPECT_EQ(router.RouteOf(Make("GET", "/items/abc/def")), "");
}

}  // namespace
}  // namespace gpurm
