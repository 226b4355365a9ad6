// Access control through the Router and the real handlers, without sockets:
// every route's role, 401 against 403, owners taken from tokens, per-owner
// checks, the allocation cap and the audit trail.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "api/auth.h"
#include "api/handlers.h"
#include "auth/tokens.h"
#include "inventory/providers/static/static_provider.h"
#include "ledger/memory_ledger.h"

namespace gpurm {
namespace {

using nlohmann::json;

constexpr char kBase[] = "/api/v1/gpu";

class AccessControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* source = std::getenv("GPURM_SOURCE_DIR");
    ASSERT_NE(source, nullptr) << "run through ctest (sets GPURM_SOURCE_DIR)";
    ledger_ = NewMemoryLedger();  // Storage is the ledger's tests' concern.
    inventory_ = std::make_unique<Inventory>(
        std::make_unique<StaticProvider>(std::string(source) + "/examples/cluster-3node.yaml",
                                         GpuMemorySpecs{}),
        &clock_, 60);
    ASSERT_TRUE(inventory_->Refresh().ok());
    manager_ = std::make_unique<GpuManager>(inventory_.get(), ledger_.get(), &clock_, "binpack");
    context_.manager = manager_.get();
    context_.openapi_document = R"({"openapi": "3.0.3"})";
    RegisterApiRoutes(context_, router_);
    for (const auto& [name, role] : std::vector<std::pair<std::string, std::string>>{
             {"val", "viewer"}, {"alice", "user"}, {"bob", "user"}, {"root", "admin"}}) {
      tokens_.push_back(*MakeTokenEntry(name, role, "token-" + name));
    }
    router_.RequireTokens([this](std::string_view token) { return MatchToken(tokens_, token); });
    router_.SetAuditSink([this](const HttpRequest& request, const HttpResponse& response) {
      audit_.push_back(AuditLine(request, response));
    });
  }

  // `as` is an identity ("alice" sends token-alice), "" for no token, or a
  // whole Authorization header when it contains a space.
  HttpResponse Call(const std::string& as, const std::string& method, const std::string& target,
                    const std::string& body = "", const std::string& owner_header = "") {
    HttpRequest request;
    request.method = method;
    request.SetTarget(target);
    request.body = body;
    request.remote_address = "192.0.2.7:41000";
    if (as.find(' ') != std::string::npos) {
      request.headers["authorization"] = as;
    } else if (!as.empty()) {
      request.headers["authorization"] = "Bearer token-" + as;
    }
    if (!owner_header.empty()) request.headers["x-gpurm-owner"] = owner_header;
    return router_.Dispatch(request);
  }

  // Allocates one GPU as `as`; returns the allocation's JSON.
  json Allocate(const std::string& as, const std::string& body = R"({"gpu_count": 1})",
                const std::string& owner_header = "") {
    HttpResponse response = Call(as, "POST", std::string(kBase) + "/allocate", body, owner_header);
    EXPECT_EQ(response.status, 200) << response.body;
    return json::parse(response.body)["allocation"];
  }

  FakeClock clock_;
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<Inventory> inventory_;
  std::unique_ptr<GpuManager> manager_;
  ApiContext context_;
  Router router_;
  std::vector<TokenEntry> tokens_;
  std::vector<std::string> audit_;
};

// Each endpoint class against each role: below the route's role is 403,
// at or above it the handler runs (whatever it answers), never 401.
TEST_F(AccessControlTest, EveryRouteNeedsItsRole) {
  const std::string id = Allocate("root")["allocation_id"];
  struct Endpoint {
    std::string method;
    std::string target;
    std::string body;
    int least;  // 0 public, 1 viewer, 2 user, 3 admin.
  };
  const std::string base = kBase;
  const std::vector<Endpoint> endpoints{
      {"GET", base + "/health", "", 0},
      {"GET", "/api/v1/openapi.json", "", 0},
      {"GET", base + "/status", "", 1},
      {"GET", base + "/nodes", "", 1},
      {"GET", base + "/allocations", "", 1},
      {"GET", base + "/allocations/" + id, "", 1},
      {"GET", base + "/queue", "", 1},
      {"GET", base + "/queue/queue-0", "", 1},
      {"GET", base + "/monitoring", "", 1},
      {"GET", base + "/events", "", 1},
      {"GET", "/metrics", "", 1},
      {"POST", base + "/validate", R"({"gpu_count": 1})", 2},
      {"POST", base + "/setup-pytorch", R"({"gpu_count": 1})", 2},
      {"POST", base + "/setup-tensorflow", R"({"gpu_count": 1})", 2},
      {"POST", base + "/monitoring/refresh", "", 2},
      {"POST", base + "/allocate", R"({"gpu_count": 99})", 2},
      {"POST", base + "/release", R"({"node_name": "none", "gpu_count": 1})", 2},
      {"POST", base + "/allocations/missing/heartbeat", "", 2},
      {"DELETE", base + "/allocations/missing", "", 2},
      {"DELETE", base + "/queue/missing", "", 2},
  };
  const std::vector<std::pair<std::string, int>> callers{
      {"", 0}, {"val", 1}, {"alice", 2}, {"root", 3}};
  for (const Endpoint& endpoint : endpoints) {
    for (const auto& [as, level] : callers) {
      const HttpResponse response = Call(as, endpoint.method, endpoint.target, endpoint.body);
      const std::string what = endpoint.method + " " + endpoint.target + " as '" + as + "'";
      if (level >= endpoint.least) {
        EXPECT_NE(response.status, 401) << what << ": " << response.body;
        EXPECT_NE(response.status, 403) << what << ": " << response.body;
      } else {
        EXPECT_EQ(response.status, level == 0 ? 401 : 403) << what << ": " << response.body;
      }
    }
  }
}

TEST_F(AccessControlTest, MissingOrBadTokensAre401WithAChallenge) {
  struct Case {
    std::string authorization;
    std::string challenge;
  };
  for (const Case& c : std::vector<Case>{
           {"", "Bearer realm=\"gpurm\""},
           {"Basic YWxpY2U6cHc=", "Bearer realm=\"gpurm\", error=\"invalid_request\""},
           {"Bearer token-mallory", "Bearer realm=\"gpurm\", error=\"invalid_token\""},
           {"Bearer " + tokens_[1].hash, "Bearer realm=\"gpurm\", error=\"invalid_token\""},
       }) {
    const HttpResponse response = Call(c.authorization, "GET", std::string(kBase) + "/status");
    ASSERT_EQ(response.status, 401) << c.authorization;
    ASSERT_EQ(response.headers.size(), 1u);
    EXPECT_EQ(response.headers[0].first, "WWW-Authenticate");
    EXPECT_EQ(response.headers[0].second, c.challenge);
    const json body = json::parse(response.body);
    EXPECT_EQ(body["error"]["code"], "unauthenticated");
    EXPECT_EQ(body["error"]["field"], "Authorization");
  }
  // The scheme is case-insensitive.
  EXPECT_EQ(Call("bearer token-val", "GET", std::string(kBase) + "/status").status, 200);
  const HttpResponse forbidden = Call("val", "POST", std::string(kBase) + "/allocate", "{}");
  ASSERT_EQ(forbidden.status, 403);
  EXPECT_EQ(json::parse(forbidden.body)["error"]["code"], "permission_denied");
  EXPECT_EQ(ledger_->List(AllocationFilter{}).size(), 0u);
}

TEST_F(AccessControlTest, TheOwnerIsTheTokensIdentityNotWhatTheClientSays) {
  EXPECT_EQ(Allocate("alice", R"({"gpu_count": 1, "owner": "bob"})")["owner"], "alice");
  EXPECT_EQ(Allocate("alice", R"({"gpu_count": 1})", "bob")["owner"], "alice");
  // An admin may act on behalf of someone.
  EXPECT_EQ(Allocate("root", R"({"gpu_count": 1})", "bob")["owner"], "bob");
  EXPECT_EQ(Allocate("root", R"({"gpu_count": 1, "owner": "carol"})")["owner"], "carol");
  EXPECT_EQ(Allocate("root")["owner"], "root");
}

TEST_F(AccessControlTest, UsersChangeOnlyTheirOwnAllocations) {
  const std::string base = kBase;
  const std::string id =
      Allocate("alice", R"({"gpu_count": 1, "lease_ttl_seconds": 60})")["allocation_id"];
  const std::string node = ledger_->Get(id)->grants[0].node_name;
  EXPECT_EQ(Call("bob", "POST", base + "/allocations/" + id + "/heartbeat").status, 403);
  EXPECT_EQ(Call("bob", "DELETE", base + "/allocations/" + id).status, 403);
  EXPECT_EQ(Call("bob", "POST", base + "/release", json{{"allocation_id", id}}.dump()).status, 403);
  // Releasing by node and count acts on the caller's own allocations only,
  // whatever owner it names.
  EXPECT_EQ(Call("bob", "POST", base + "/release",
                 json{{"node_name", node}, {"gpu_count", 1}, {"owner", "alice"}}.dump())
                .status,
            404);
  EXPECT_EQ(ledger_->Get(id)->state, AllocationState::kActive);
  EXPECT_EQ(Call("alice", "POST", base + "/allocations/" + id + "/heartbeat").status, 200);
  EXPECT_EQ(Call("alice", "DELETE", base + "/allocations/" + id).status, 200);

  // An admin releases anyone's.
  const std::string other = Allocate("alice")["allocation_id"];
  EXPECT_EQ(Call("root", "POST", base + "/release", json{{"allocation_id", other}}.dump()).status,
            200);
  EXPECT_EQ(ledger_->Get(other)->state, AllocationState::kReleased);
}

TEST_F(AccessControlTest, UsersCancelOnlyTheirOwnQueueEntries) {
  const std::string base = kBase;
  Allocate("alice", R"({"gpu_count": 8, "gpu_type": "A100"})");
  // No A100 is free: waits.
  const HttpResponse waiting = Call("alice", "POST", base + "/allocate",
                                    R"({"gpu_count": 1, "gpu_type": "A100", "wait": true})");
  ASSERT_EQ(waiting.status, 202) << waiting.body;
  const std::string entry = json::parse(waiting.body)["queue_id"];
  EXPECT_EQ(Call("bob", "DELETE", base + "/queue/" + entry).status, 403);
  EXPECT_EQ(Call("alice", "DELETE", base + "/queue/" + entry).status, 200);
}

TEST_F(AccessControlTest, TheCapIsAnswered429NamingIt) {
  manager_->set_max_allocations_per_owner(1);
  Allocate("alice");
  const HttpResponse over =
      Call("alice", "POST", std::string(kBase) + "/allocate", R"({"gpu_count": 1})");
  ASSERT_EQ(over.status, 429) << over.body;
  const json body = json::parse(over.body);
  EXPECT_EQ(body["error"]["field"], "max_allocations_per_owner");
  EXPECT_EQ(body["limit"], 1);
  // Owners are identities: claiming another owner does not get around it.
  EXPECT_EQ(
      Call("alice", "POST", std::string(kBase) + "/allocate", R"({"gpu_count": 1})", "x").status,
      429);
  Allocate("bob");
}

TEST_F(AccessControlTest, StateChangesAreAuditedWithIdentityAndAddress) {
  const std::string id = Allocate("alice")["allocation_id"];
  Call("", "DELETE", std::string(kBase) + "/allocations/" + id);
  Call("alice", "GET", std::string(kBase) + "/status");  // Reads are not audited.
  Call("alice", "DELETE", std::string(kBase) + "/allocations/" + id);
  ASSERT_EQ(audit_.size(), 3u);
  EXPECT_EQ(audit_[0],
            "identity=alice role=user from=192.0.2.7:41000 method=POST path=/api/v1/gpu/allocate "
            "status=200 allocation=" +
                id + " owner=alice");
  EXPECT_EQ(audit_[1],
            "identity=- role=- from=192.0.2.7:41000 method=DELETE path=/api/v1/gpu/"
            "allocations/" +
                id + " status=401 allocation=" + id);
  EXPECT_EQ(audit_[2].rfind("identity=alice role=user", 0), 0u);
  EXPECT_NE(audit_[2].find("status=200 allocation=" + id + " owner=alice"), std::string::npos);
}

TEST(AuditLineTest, EscapesWhatTheClientControls) {
  HttpRequest request;
  request.method = "POST";
  request.path = "/a b\n\"c\"";
  request.remote_address = "127.0.0.1:1";
  request.headers["x-gpurm-owner"] = "eve forged=1";
  HttpResponse response;
  response.status = 404;
  response.body = "not json";
  EXPECT_EQ(AuditLine(request, response),
            "identity=- role=- from=127.0.0.1:1 method=POST path=/a%20b%0A%22c%22 status=404 "
            "claimed_owner=eve%20forged=1");
}

// Without RequireTokens nothing changes: the owner comes from the header.
TEST(AccessControlOffTest, OwnersComeFromTheRequest) {
  HttpRequest request;
  request.headers["x-gpurm-owner"] = "bob";
  EXPECT_EQ(RequestOwner(request, "carol"), "bob");
  request.headers.clear();
  EXPECT_EQ(RequestOwner(request, "carol"), "carol");
  EXPECT_EQ(RequestOwner(request, ""), "anonymous");
  EXPECT_TRUE(MayActOn(request, "anyone", "allocation x").ok());
  Router router;
  router.Add("POST", "/x", [](const HttpRequest& r) {
    HttpResponse response;
    response.body = r.principal ? "principal" : "none";
    return response;
  });
  HttpRequest post;
  post.method = "POST";
  post.path = "/x";
  EXPECT_EQ(router.Dispatch(post).body, "none");
}

}  // namespace
}  // namespace gpurm
