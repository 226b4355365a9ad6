// Serving compiled-in files: routes, content types, caching headers,
// conditional requests and 404s, through the Router without sockets.
#include "api/static_assets.h"

#include <gtest/gtest.h>

#include <array>
#include <nlohmann/json.hpp>
#include <string>

namespace gpurm {
namespace {

constexpr std::array<StaticAsset, 3> kAssets = {{
    {"index.html", "<!doctype html><p>hi</p>", "\"aaaa\""},
    {"app-4OLHUDBT.js", "console.log(1)", "\"bbbb\""},
    {"notes.txt", "plain", "\"cccc\""},
}};

std::string HeaderOf(const HttpResponse& response, const std::string& name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return "";
}

class StaticAssetsTest : public ::testing::Test {
 protected:
  void SetUp() override { RegisterStaticAssets(kAssets, router_); }

  HttpResponse Get(const std::string& target, const std::string& if_none_match = "") {
    HttpRequest request;
    request.method = "GET";
    request.SetTarget(target);
    if (!if_none_match.empty()) request.headers["if-none-match"] = if_none_match;
    return router_.Dispatch(request);
  }

  Router router_;
};

TEST_F(StaticAssetsTest, RootIsIndexHtmlRevalidatedOnEveryLoad) {
  HttpResponse response = Get("/");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(response.body, "<!doctype html><p>hi</p>");
  EXPECT_EQ(HeaderOf(response, "Cache-Control"), "no-cache");
  EXPECT_EQ(HeaderOf(response, "ETag"), "\"aaaa\"");
  EXPECT_EQ(HeaderOf(response, "X-Content-Type-Options"), "nosniff");
  EXPECT_NE(HeaderOf(response, "Content-Security-Policy").find("script-src 'self'"),
            std::string::npos);
  EXPECT_EQ(Get("/ui/index.html").body, response.body);
}

TEST_F(StaticAssetsTest, HashedBundleIsImmutable) {
  HttpResponse response = Get("/ui/app-4OLHUDBT.js");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(response.body, "console.log(1)");
  EXPECT_EQ(HeaderOf(response, "Cache-Control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(HeaderOf(response, "Content-Security-Policy"), "") << "only pages carry a CSP";
  EXPECT_EQ(HeaderOf(Get("/ui/notes.txt"), "Cache-Control"), "no-cache");
}

TEST_F(StaticAssetsTest, MatchingIfNoneMatchIs304WithoutBody) {
  for (const std::string header : {"\"bbbb\"", "W/\"bbbb\"", "\"zzzz\", \"bbbb\"", "*"}) {
    HttpResponse response = Get("/ui/app-4OLHUDBT.js", header);
    EXPECT_EQ(response.status, 304) << header;
    EXPECT_EQ(response.body, "") << header;
    EXPECT_EQ(HeaderOf(response, "ETag"), "\"bbbb\"") << header;
  }
  EXPECT_EQ(Get("/ui/app-4OLHUDBT.js", "\"zzzz\"").status, 200);
  EXPECT_EQ(Get("/", "\"bbbb\"").status, 200) << "another file's tag";
}

TEST_F(StaticAssetsTest, UnknownFilesAre404WithTheApiErrorBody) {
  for (const std::string target : {"/ui/app.js", "/ui/..%2Findex.html", "/ui/a/b", "/ui"}) {
    HttpResponse response = Get(target);
    EXPECT_EQ(response.status, 404) << target;
    EXPECT_EQ(response.content_type, "application/json") << target;
    auto body = nlohmann::json::parse(response.body, nullptr, false);
    EXPECT_EQ(body["error"]["code"], "not_found") << target;
  }
}

TEST_F(StaticAssetsTest, OnlyGetIsAllowed) {
  HttpRequest request;
  request.method = "POST";
  request.SetTarget("/ui/app-4OLHUDBT.js");
  EXPECT_EQ(router_.Dispatch(request).status, 405);
}

TEST(StaticAssetNames, ContentTypeByExtension) {
  EXPECT_EQ(ContentTypeFor("a.css"), "text/css; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("icon.svg"), "image/svg+xml");
  EXPECT_EQ(ContentTypeFor("x.png"), "image/png");
  EXPECT_EQ(ContentTypeFor("data.json"), "application/json");
  EXPECT_EQ(ContentTypeFor("blob"), "application/octet-stream");
  EXPECT_EQ(ContentTypeFor("archive.tar.gz"), "application/octet-stream");
}

TEST(StaticAssetNames, ContentAddressedNamesCarryAHash) {
  EXPECT_TRUE(IsContentAddressed("app-4OLHUDBT.js"));
  EXPECT_TRUE(IsContentAddressed("app-IVECJJCW.css"));
  EXPECT_TRUE(IsContentAddressed("chunk-ABCDEFGH12"));
  EXPECT_FALSE(IsContentAddressed("index.html"));
  EXPECT_FALSE(IsContentAddressed("app.js"));
  EXPECT_FALSE(IsContentAddressed("app-short.js"));
  EXPECT_FALSE(IsContentAddressed("app-4olhudbt.js"));
  EXPECT_FALSE(IsContentAddressed("app-4OLHUDB.js"));
}

}  // namespace
}  // namespace gpurm
