#include "api/router.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>

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

TEST(RouterTest, DispatchNowAnswersOnlyNonBlockingRoutesThatCanAnswer) {
  Router router;
  bool ready = false;
  router.AddNonBlocking(
      "GET", "/items/{id}", Access::kViewer,
      [&ready](const HttpRequest& request) -> std::optional<HttpResponse> {
        if (!ready) return std::nullopt;
        HttpResponse response;
        response.body = "now " + request.path_params.at("id");
        return response;
      },
      [](const HttpRequest& request) {
        HttpResponse response;
        response.body = "built " + request.path_params.at("id");
        return response;
      });
  router.Add("GET", "/plain", [](const HttpRequest&) { return HttpResponse{}; });

  HttpRequest request = Make("GET", "/items/abc");
  EXPECT_FALSE(router.DispatchNow(request).has_value());  // Not ready: a worker answers.
  EXPECT_EQ(router.Dispatch(Make("GET", "/items/abc")).body, "built abc");
  ready = true;
  request = Make("GET", "/items/abc");
  const std::optional<HttpResponse> now = router.DispatchNow(request);
  ASSERT_TRUE(now.has_value());
  EXPECT_EQ(now->body, "now abc");

  // Routes without a non-blocking handler, unknown paths and other methods
  // are the worker's (with their 404 and 405).
  for (const auto& [method, target] :
       {std::pair("GET", "/plain"), std::pair("GET", "/nothing"), std::pair("PUT", "/items/abc")}) {
    HttpRequest other = Make(method, target);
    EXPECT_FALSE(router.DispatchNow(other).has_value()) << method << " " << target;
  }
  EXPECT_THROW(router.AddNonBlocking(
                   "POST", "/items", Access::kUser,
                   [](const HttpRequest&) { return std::optional<HttpResponse>(); },
                   [](const HttpRequest&) { return HttpResponse{}; }),
               std::invalid_argument);
}

TEST(RouterTest, DispatchNowRefusesAsDispatchDoes) {
  Router router;
  const auto whose = [](const HttpRequest& request) {
    HttpResponse response;
    response.body = request.principal ? request.principal->name : "nobody";
    return response;
  };
  router.AddNonBlocking(
      "GET", "/fast", Access::kViewer,
      [whose](const HttpRequest& request) -> std::optional<HttpResponse> { return whose(request); },
      whose);
  router.RequireTokens([](std::string_view token) -> std::optional<Principal> {
    if (token == "viewer") return Principal{"ada", Role::kViewer};
    if (token == "agent") return Principal{"node-1", Role::kAgent};
    return std::nullopt;
  });
  router.SetRequestGuard([](const HttpRequest& request, bool) -> std::optional<HttpResponse> {
    if (request.Header("origin").empty()) return std::nullopt;
    HttpResponse refused;
    refused.status = 403;
    refused.body = "cross-origin";
    return refused;
  });
  const auto both = [&router](HttpRequest request) {
    HttpRequest copy = request;
    std::optional<HttpResponse> now = router.DispatchNow(copy);
    EXPECT_TRUE(now.has_value());
    const HttpResponse dispatched = router.Dispatch(std::move(request));
    if (now) {
      EXPECT_EQ(now->status, dispatched.status);
      EXPECT_EQ(now->body, dispatched.body);
      EXPECT_EQ(now->headers, dispatched.headers);
    }
    return dispatched;
  };

  HttpRequest anonymous = Make("GET", "/fast");
  EXPECT_EQ(both(anonymous).status, 401);
  HttpRequest unknown = Make("GET", "/fast");
  unknown.headers["authorization"] = "Bearer nope";
  EXPECT_EQ(both(unknown).status, 401);
  HttpRequest agent = Make("GET", "/fast");
  agent.headers["authorization"] = "Bearer agent";
  EXPECT_EQ(both(agent).status, 403);
  HttpRequest cross_origin = Make("GET", "/fast");
  cross_origin.headers["authorization"] = "Bearer viewer";
  cross_origin.headers["origin"] = "https://elsewhere.example";
  EXPECT_EQ(both(cross_origin).body, "cross-origin");
  HttpRequest viewer = Make("GET", "/fast");
  viewer.headers["authorization"] = "Bearer viewer";
  const HttpResponse answered = both(viewer);
  EXPECT_EQ(answered.status, 200);
  EXPECT_EQ(answered.body, "ada");  // The verified principal reaches the handler.
}

}  // namespace
}  // namespace gpurm
