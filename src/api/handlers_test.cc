// The REST handlers through the Router, without sockets, on the example
// 3-node inventory and a real SQLite ledger.
#include "api/handlers.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "inventory/providers/static/static_provider.h"
#include "ledger/memory_ledger.h"
#include "monitor/event_hub.h"
#include "monitor/http_metrics.h"
#include "monitor/sampler.h"

namespace gpurm {
namespace {

using nlohmann::json;

// Every allocation, ended ones included.
AllocationFilter AllOfThem() {
  AllocationFilter filter;
  filter.include_ended = true;
  return filter;
}

class HandlersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* source = std::getenv("GPURM_SOURCE_DIR");
    ASSERT_NE(source, nullptr) << "run through ctest (sets GPURM_SOURCE_DIR)";
    dir_ = std::filesystem::temp_directory_path() /
           ("gpurm-api-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    ledger_ = NewMemoryLedger();  // Storage is the ledger's tests' concern.
    // A copy, so that a test can change what the next Refresh reads.
    inventory_path_ = dir_ / "inventory.yaml";
    std::filesystem::copy_file(std::filesystem::path(source) / "examples" / "cluster-3node.yaml",
                               inventory_path_);
    inventory_ = std::make_unique<Inventory>(
        std::make_unique<StaticProvider>(inventory_path_.string(), GpuMemorySpecs{}), &clock_, 60);
    manager_ = std::make_unique<GpuManager>(inventory_.get(), ledger_.get(), &clock_, "binpack");
    context_.manager = manager_.get();
    context_.openapi_document = R"({"openapi": "3.0.3"})";
    RegisterApiRoutes(context_, router_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Load() { ASSERT_TRUE(inventory_->Refresh().ok()) << inventory_->LastError().ToString(); }

  HttpResponse Call(const std::string& method, const std::string& target,
                    const std::string& body = "", const std::string& owner = "") {
    HttpRequest request;
    request.method = method;
    request.SetTarget(target);
    request.body = body;
    if (!owner.empty()) request.headers["x-gpurm-owner"] = owner;
    return WholeBody(router_.Dispatch(request));
  }

  // What the I/O thread answers to a GET (Router::DispatchNow), its body
  // whole; nullopt when a worker must answer it.
  std::optional<HttpResponse> CallNow(const std::string& target) {
    HttpRequest request;
    request.method = "GET";
    request.SetTarget(target);
    std::optional<HttpResponse> response = router_.DispatchNow(request);
    if (response) response = WholeBody(std::move(*response));
    return response;
  }

  // `response` with its shared parts (cached parts) folded into its body:
  // the bytes a client receives.
  static HttpResponse WholeBody(HttpResponse response) {
    response.body = response.FullBody();
    response.shared_prefix.reset();
    response.shared_suffix.reset();
    return response;
  }

  json CallJson(const std::string& method, const std::string& target, int expected_status,
                const std::string& body = "") {
    HttpResponse response = Call(method, target, body);
    EXPECT_EQ(response.status, expected_status) << method << " " << target << ": " << response.body;
    return json::parse(response.body);
  }

  std::filesystem::path dir_;
  std::filesystem::path inventory_path_;
  FakeClock clock_;
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<Inventory> inventory_;
  std::unique_ptr<GpuManager> manager_;
  ApiContext context_;
  Router router_;
};

TEST_F(HandlersTest, HealthIs503UntilTheInventoryIsLoaded) {
  json before = CallJson("GET", "/api/v1/gpu/health", 503);
  EXPECT_EQ(before["ready"], false);
  EXPECT_FALSE(before["reason"].get<std::string>().empty());
  EXPECT_EQ(CallJson("GET", "/api/v1/gpu/status", 503)["error"]["code"], "unavailable");
  Load();
  json after = CallJson("GET", "/api/v1/gpu/health", 200);
  EXPECT_EQ(after["ready"], true);
  EXPECT_EQ(after["gpus"], 16);
}

TEST_F(HandlersTest, StatusHasTheMissionFields) {
  Load();
  json status = CallJson("GET", "/api/v1/gpu/status", 200);
  EXPECT_TRUE(status["utilization"]["gpu_utilization"].is_number());
  EXPECT_TRUE(status["utilization"]["gpu_memory_usage"].is_number());
  EXPECT_EQ(status["total_nodes"], 3);
  EXPECT_TRUE(status["timestamp"].is_string());
  ASSERT_EQ(status["available_nodes"].size(), 3u);
  for (const json& node : status["available_nodes"]) {
    for (const char* field :
         {"node_name", "gpu_type", "available_gpus", "memory_per_gpu", "utilization"}) {
      EXPECT_TRUE(node.contains(field)) << field;
    }
  }
  EXPECT_EQ(status["available_nodes"][1]["gpu_type"], "A100");
  EXPECT_EQ(status["available_nodes"][1]["available_gpus"], 8);
  EXPECT_EQ(status["available_nodes"][1]["memory_per_gpu"], 80.0);
}

TEST_F(HandlersTest, StatusChangesWithAllocationsReleasesAndSnapshotsOnly) {
  Load();
  const std::string idle = Call("GET", "/api/v1/gpu/status").body;
  // Nothing changed: the same bytes.
  EXPECT_EQ(Call("GET", "/api/v1/gpu/status").body, idle);

  json allocated = CallJson("POST", "/api/v1/gpu/allocate", 200, R"({"gpu_count": 2})");
  const std::string busy = Call("GET", "/api/v1/gpu/status").body;
  EXPECT_NE(busy, idle);
  EXPECT_EQ(json::parse(busy)["allocated_gpus"], 2);
  EXPECT_EQ(json::parse(busy)["active_allocations"], 1);
  EXPECT_EQ(json::parse(busy)["available_gpus"],
            json::parse(idle)["available_gpus"].get<int>() - 2);
  EXPECT_EQ(Call("GET", "/api/v1/gpu/status").body, busy);

  const std::string id = allocated["allocation_id"];
  CallJson("DELETE", "/api/v1/gpu/allocations/" + id, 200);
  EXPECT_EQ(Call("GET", "/api/v1/gpu/status").body, idle);

  // A new snapshot with other readings.
  std::ifstream in(inventory_path_);
  std::stringstream text;
  text << in.rdbuf();
  std::string yaml = text.str();
  for (size_t at = yaml.find("utilization: 0.0"); at != std::string::npos;
       at = yaml.find("utilization: 0.0", at)) {
    yaml.replace(at, 16, "utilization: 0.9");
  }
  std::ofstream(inventory_path_) << yaml;
  Load();
  const std::string refreshed = Call("GET", "/api/v1/gpu/status").body;
  EXPECT_NE(refreshed, idle);
  EXPECT_GT(json::parse(refreshed)["utilization"]["gpu_utilization"].get<double>(),
            json::parse(idle)["utilization"]["gpu_utilization"].get<double>());
  EXPECT_EQ(Call("GET", "/api/v1/gpu/status").body, refreshed);
}

TEST_F(HandlersTest, CachedGetsAreAnsweredNowWithTheSameBytesAndNeverStale) {
  Load();
  const std::vector<std::string> cached = {"/api/v1/gpu/status", "/api/v1/gpu/nodes", "/metrics"};
  for (const std::string& target : cached) {
    EXPECT_FALSE(CallNow(target).has_value()) << target << ": nothing cached yet";
  }
  // Every answer given now is byte for byte the one a worker gives, and
  // none survives a change of the state it was built from.
  const auto expect_current = [&](const char* step) {
    for (const std::string& target : cached) {
      const std::string built = Call("GET", target).body;
      const std::optional<HttpResponse> now = CallNow(target);
      ASSERT_TRUE(now.has_value()) << step << ": " << target;
      EXPECT_EQ(now->status, 200) << step << ": " << target;
      EXPECT_EQ(now->body, built) << step << ": " << target;
    }
  };
  const auto expect_stale = [&](const char* step) {
    for (const std::string& target : cached) {
      EXPECT_FALSE(CallNow(target).has_value()) << step << ": " << target;
    }
  };
  expect_current("idle");
  EXPECT_EQ(json::parse(CallNow("/api/v1/gpu/status")->body)["active_allocations"], 0);

  const json allocated = CallJson("POST", "/api/v1/gpu/allocate", 200, R"({"gpu_count": 2})");
  expect_stale("allocated");
  expect_current("allocated");
  const json status = json::parse(CallNow("/api/v1/gpu/status")->body);
  EXPECT_EQ(status["active_allocations"], 1);
  EXPECT_EQ(status["allocated_gpus"], 2);
  EXPECT_NE(CallNow("/metrics")->body.find("gpurm_allocations_active 1\n"), std::string::npos);

  CallJson("DELETE", "/api/v1/gpu/allocations/" + allocated["allocation_id"].get<std::string>(),
           200);
  expect_stale("released");
  expect_current("released");
  EXPECT_EQ(json::parse(CallNow("/api/v1/gpu/status")->body)["active_allocations"], 0);

  Load();  // A new snapshot.
  expect_stale("new snapshot");
  expect_current("new snapshot");

  // A filtered /nodes is built per request, on a worker.
  EXPECT_FALSE(CallNow("/api/v1/gpu/nodes?gpu_type=A100").has_value());
  EXPECT_EQ(CallJson("GET", "/api/v1/gpu/nodes?gpu_type=A100", 200)["count"], 1);
}

TEST_F(HandlersTest, HealthIsAnsweredNowAndFollowsTheInventory) {
  std::optional<HttpResponse> before = CallNow("/api/v1/gpu/health");
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(before->status, 503);
  Load();
  std::optional<HttpResponse> ready = CallNow("/api/v1/gpu/health");
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(ready->body, Call("GET", "/api/v1/gpu/health").body);
  EXPECT_FALSE(json::parse(ready->body).contains("last_refresh_error"));
  // A failed refresh keeps the snapshot; /health says why at once.
  std::ofstream(inventory_path_) << "nodes: [";
  EXPECT_FALSE(inventory_->Refresh().ok());
  const json failed = json::parse(CallNow("/api/v1/gpu/health")->body);
  EXPECT_EQ(failed["status"], "ok");
  EXPECT_TRUE(failed.contains("last_refresh_error")) << failed.dump();
}

TEST_F(HandlersTest, StatusTimestampIsTheTimeOfTheAnswer) {
  Load();
  json first = CallJson("GET", "/api/v1/gpu/status", 200);
  clock_.AdvanceMs(1500);
  json second = CallJson("GET", "/api/v1/gpu/status", 200);
  EXPECT_EQ(second["timestamp"], FormatIso8601(clock_.NowUnixMs()));
  EXPECT_NE(second["timestamp"], first["timestamp"]);
  first.erase("timestamp");
  second.erase("timestamp");
  EXPECT_EQ(first, second);
}

// Allocators each hold at most one GPU at a time while readers poll /status:
// every answer describes one state of the cluster, and none is older than
// the allocation its caller holds.
TEST_F(HandlersTest, StatusUnderConcurrentAllocationsIsConsistentAndCurrent) {
  Load();
  const std::string idle = Call("GET", "/api/v1/gpu/status").body;
  const int total = json::parse(idle)["total_gpus"];
  constexpr int kAllocators = 3;
  constexpr int kRounds = 20;
  auto check = [&](const json& status) {
    const int allocated = status["allocated_gpus"];
    EXPECT_LE(allocated + status["available_gpus"].get<int>(), total) << status.dump();
    EXPECT_LE(allocated, kAllocators) << status.dump();
    EXPECT_LE(status["active_allocations"].get<int>(), kAllocators) << status.dump();
    EXPECT_EQ(status["total_gpus"], total);
  };
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kAllocators; ++i) {
    threads.emplace_back([&] {
      for (int round = 0; round < kRounds; ++round) {
        HttpResponse allocated = Call("POST", "/api/v1/gpu/allocate", R"({"gpu_count": 1})");
        ASSERT_EQ(allocated.status, 200) << allocated.body;
        const json status = json::parse(Call("GET", "/api/v1/gpu/status").body);
        check(status);
        EXPECT_GE(status["allocated_gpus"], 1);  // At least the one this thread holds.
        EXPECT_GE(status["active_allocations"], 1);
        const std::string id = json::parse(allocated.body)["allocation_id"];
        EXPECT_EQ(Call("DELETE", "/api/v1/gpu/allocations/" + id).status, 200);
      }
    });
  }
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&] {
      while (!done.load()) {
        HttpResponse response = Call("GET", "/api/v1/gpu/status");
        ASSERT_EQ(response.status, 200) << response.body;
        check(json::parse(response.body));
      }
    });
  }
  for (int i = 0; i < kAllocators; ++i) threads[i].join();
  done = true;
  for (size_t i = kAllocators; i < threads.size(); ++i) threads[i].join();
  // Everything released: the idle answer again, byte for byte.
  EXPECT_EQ(Call("GET", "/api/v1/gpu/status").body, idle);
}

TEST_F(HandlersTest, NodesFiltersByTypeAndFreeMemory) {
  Load();
  json v100 = CallJson("GET", "/api/v1/gpu/nodes?gpu_type=V100&min_memory_gb=16", 200);
  ASSERT_EQ(v100["count"], 1);
  EXPECT_EQ(v100["nodes"][0]["node_name"], "gpu-node-1");
  EXPECT_EQ(CallJson("GET", "/api/v1/gpu/nodes?gpu_type=V100&min_memory_gb=33", 200)["count"], 0);
  json bad = CallJson("GET", "/api/v1/gpu/nodes?min_memory_gb=lots", 400);
  EXPECT_EQ(bad["error"]["field"], "min_memory_gb");
}

TEST_F(HandlersTest, AllocateAnswersWithGpusAndConfigThenReleases) {
  Load();
  json allocated = CallJson("POST", "/api/v1/gpu/allocate", 200,
                            R"({"gpu_count": 2, "gpu_type": "V100", "memory_gb": 16,
                                "distributed_training": false, "mixed_precision": true})");
  EXPECT_EQ(allocated["success"], true);
  EXPECT_EQ(allocated["node_name"], "gpu-node-1");
  ASSERT_EQ(allocated["gpus"].size(), 2u);
  EXPECT_TRUE(allocated["gpu_config"].is_object());
  const std::string id = allocated["allocation_id"];

  json listed = CallJson("GET", "/api/v1/gpu/allocations", 200);
  EXPECT_EQ(listed["count"], 1);
  EXPECT_EQ(CallJson("GET", "/api/v1/gpu/allocations/" + id, 200)["state"], "active");

  json released = CallJson("DELETE", "/api/v1/gpu/allocations/" + id, 200);
  EXPECT_EQ(released["allocation"]["state"], "released");
  // Idempotent.
  EXPECT_EQ(CallJson("DELETE", "/api/v1/gpu/allocations/" + id, 200)["allocation"]["state"],
            "released");
  EXPECT_EQ(CallJson("GET", "/api/v1/gpu/allocations", 200)["count"], 0);
  EXPECT_EQ(CallJson("GET", "/api/v1/gpu/allocations?all=true", 200)["count"], 1);
  EXPECT_EQ(CallJson("DELETE", "/api/v1/gpu/allocations/alloc-nope", 404)["error"]["code"],
            "not_found");
}

TEST_F(HandlersTest, BadInputIsA400NamingTheFieldAndChangesNothing) {
  Load();
  struct Case {
    std::string body;
    std::string field;
  };
  for (const Case& c : std::vector<Case>{
           {"{not json", "body"},
           {"[1, 2]", "body"},
           {R"({"gpu_count": -1})", "gpu_count"},
           {R"({"gpu_count": "2"})", "gpu_count"},
           {R"({"gpu_count": 1.5})", "gpu_count"},
           {R"({"memory_gb": "lots"})", "memory_gb"},
           {R"({"memory_gb": -3})", "memory_gb"},
           {R"({"gpu_memory_fraction": 0})", "gpu_memory_fraction"},
           {R"({"distributed_training": "yes"})", "distributed_training"},
           {R"({"gpus": 2})", "gpus"},
           {R"({"shared": true})", "shared"},
       }) {
    json error = CallJson("POST", "/api/v1/gpu/allocate", 400, c.body);
    EXPECT_EQ(error["error"]["field"], c.field) << c.body;
    EXPECT_EQ(error["error"]["code"], "invalid_argument") << c.body;
  }
  EXPECT_TRUE(ledger_->List(AllOfThem()).empty());
}

// Found by fuzz/http_fuzzer: bytes that are not UTF-8 made the answer a 500,
// after the allocation had been recorded, and every later list a 500 too.
TEST_F(HandlersTest, HeadersThatAreNotUtf8AreRefusedAndNeverBreakAnswers) {
  Load();
  HttpResponse owner = Call("POST", "/api/v1/gpu/allocate", R"({"gpu_type": "T4"})", "\xff\xfe");
  EXPECT_EQ(owner.status, 400) << owner.body;
  EXPECT_EQ(json::parse(owner.body)["error"]["field"], "X-Gpurm-Owner");
  HttpRequest keyed;
  keyed.method = "POST";
  keyed.SetTarget("/api/v1/gpu/allocate");
  keyed.body = R"({"gpu_type": "T4"})";
  keyed.headers["idempotency-key"] = "\xff";
  HttpResponse key = router_.Dispatch(keyed);
  EXPECT_EQ(key.status, 400) << key.body;
  EXPECT_EQ(json::parse(key.body)["error"]["field"], "Idempotency-Key");
  EXPECT_EQ(CallJson("GET", "/api/v1/gpu/allocations?all=true", 200)["count"], 0);

  HttpResponse path = Call("GET", "/api/v1/gpu/monit%FFor");
  EXPECT_EQ(path.status, 404);
  EXPECT_TRUE(json::accept(path.body)) << path.body;
  HttpResponse release =
      Call("POST", "/api/v1/gpu/release", R"({"node_name": "gpu-node-1", "gpu_count": 1})", "\xff");
  EXPECT_NE(release.status, 500) << release.body;
  EXPECT_TRUE(json::accept(release.body)) << release.body;
}

HttpResponse CallWithKey(Router& router, const std::string& body, const std::string& key) {
  HttpRequest request;
  request.method = "POST";
  request.SetTarget("/api/v1/gpu/allocate");
  request.body = body;
  request.headers["idempotency-key"] = key;
  return router.Dispatch(request);
}

// A retry under an Idempotency-Key gets its allocation only while it is
// active and only for the same request: another request under the key is
// 422, the key of a released allocation 409, both naming the header.
TEST_F(HandlersTest, IdempotencyKeysReplayOnlyTheSameActiveRequest) {
  Load();
  const std::string request = R"({"gpu_count": 2, "gpu_type": "A100"})";
  HttpResponse first = CallWithKey(router_, request, "job-17");
  ASSERT_EQ(first.status, 200) << first.body;
  HttpResponse retry = CallWithKey(router_, request, "job-17");
  EXPECT_EQ(retry.status, 200) << retry.body;
  EXPECT_EQ(json::parse(retry.body)["replayed"], true);
  HttpResponse other = CallWithKey(router_, R"({"gpu_count": 1, "gpu_type": "T4"})", "job-17");
  EXPECT_EQ(other.status, 422) << other.body;
  EXPECT_EQ(json::parse(other.body)["error"]["field"], "Idempotency-Key");
  const std::string id = json::parse(first.body)["allocation_id"];
  CallJson("DELETE", "/api/v1/gpu/allocations/" + id, 200);
  HttpResponse stale = CallWithKey(router_, request, "job-17");
  EXPECT_EQ(stale.status, 409) << stale.body;
  const json error = json::parse(stale.body);
  EXPECT_EQ(error["error"]["field"], "Idempotency-Key");
  EXPECT_EQ(error["success"], false);
  EXPECT_FALSE(error.contains("gpu_config"));
  EXPECT_EQ(CallJson("GET", "/api/v1/gpu/allocations", 200)["count"], 0);
}

// /validate and /allocate parse and refuse alike, with messages that say
// what is wrong.
TEST_F(HandlersTest, ValidateAndAllocateRefuseTheSameRequests) {
  Load();
  manager_->set_min_slice_mib(256);
  struct Case {
    std::string body;
    std::string field;
    std::string message;  // A part of it.
  };
  for (const Case& c : std::vector<Case>{
           {R"({"priority": 1001})", "priority", "between -1000 and 1000, got 1001"},
           {R"({"priority": -1001})", "priority", "between -1000 and 1000"},
           {R"({"wait_timeout_seconds": 0})", "wait_timeout_seconds", "more than 0"},
           {R"({"wait_timeout_seconds": 1e308})", "wait_timeout_seconds", "at most 86400"},
           {R"({"gpu_count": 9223372036854775808})", "gpu_count",
            "between 1 and 4096, got 9223372036854775808"},
           {R"({"gpu_count": 5000})", "gpu_count", "between 1 and 4096, got 5000"},
           {R"({"gpu_count": 1.5})", "gpu_count", "expected an integer, got 1.5"},
           {R"({"gpu_count": 1, "gpu_count": 8})", "gpu_count", "more than once"},
           {R"({"memory_gb": 1e-9, "shared": true})", "memory_gb", "at least 256 MiB"},
       }) {
    for (const char* endpoint : {"/api/v1/gpu/validate", "/api/v1/gpu/allocate"}) {
      json error = CallJson("POST", endpoint, 400, c.body);
      EXPECT_EQ(error["error"]["field"], c.field) << endpoint << " " << c.body;
      EXPECT_NE(error["error"]["message"].get<std::string>().find(c.message), std::string::npos)
          << endpoint << " " << c.body << ": " << error["error"]["message"];
    }
  }
  EXPECT_TRUE(ledger_->List(AllOfThem()).empty());
}

TEST_F(HandlersTest, OwnerNamesAreBounded) {
  Load();
  const std::string long_name(kMaxOwnerLength + 1, 'o');
  HttpResponse header = Call("POST", "/api/v1/gpu/allocate", R"({"gpu_type": "T4"})", long_name);
  EXPECT_EQ(header.status, 400) << header.body;
  EXPECT_EQ(json::parse(header.body)["error"]["field"], "X-Gpurm-Owner");
  json body = CallJson("POST", "/api/v1/gpu/allocate", 400,
                       json{{"gpu_type", "T4"}, {"owner", long_name}}.dump());
  EXPECT_EQ(body["error"]["field"], "owner");
  EXPECT_EQ(Call("POST", "/api/v1/gpu/allocate", R"({"gpu_type": "T4"})",
                 std::string(kMaxOwnerLength, 'o'))
                .status,
            200);
}

// With tokens on, a priority above server.max_priority_without_admin needs
// an admin, for /validate as for /allocate.
TEST_F(HandlersTest, HighPriorityNeedsTheAdminRole) {
  Load();
  context_.max_priority_without_admin = 0;
  for (const Role role : {Role::kUser, Role::kAdmin}) {
    for (const char* endpoint : {"/api/v1/gpu/validate", "/api/v1/gpu/allocate"}) {
      HttpRequest request;
      request.method = "POST";
      request.SetTarget(endpoint);
      request.body = R"({"gpu_type": "T4", "priority": 1})";
      request.principal = Principal{"carol", role};
      HttpResponse response = router_.Dispatch(request);
      if (role == Role::kUser) {
        EXPECT_EQ(response.status, 403) << endpoint << ": " << response.body;
        EXPECT_EQ(json::parse(response.body)["error"]["field"], "priority");
      } else {
        EXPECT_EQ(response.status, 200) << endpoint << ": " << response.body;
      }
    }
  }
}

// /nodes?min_memory_gb counts a shared GPU with that much free, as /validate
// places a shared slice there.
TEST_F(HandlersTest, NodesAndValidateAgreeOnSharedGpus) {
  Load();
  CallJson("POST", "/api/v1/gpu/allocate", 200,
           R"({"gpu_count": 4, "node_name": "gpu-node-1", "shared": true, "memory_gb": 1})");
  json nodes = CallJson("GET", "/api/v1/gpu/nodes?gpu_type=V100&min_memory_gb=5", 200);
  ASSERT_EQ(nodes["count"], 1) << nodes.dump();
  EXPECT_EQ(nodes["nodes"][0]["available_gpus"], 4);
  json fits = CallJson("POST", "/api/v1/gpu/validate", 200,
                       R"({"gpu_type": "V100", "memory_gb": 5, "shared": true})");
  EXPECT_EQ(fits["possible_now"], true);
  // Without min_memory_gb only untouched GPUs are counted (whole GPUs).
  EXPECT_EQ(CallJson("GET", "/api/v1/gpu/nodes?gpu_type=V100", 200)["count"], 0);
}

// Lists come in bounded pages with a next link until the end.
TEST_F(HandlersTest, AllocationsAndQueuePaginateWithNextLinks) {
  Load();
  for (int i = 0; i < 5; ++i) {
    json allocated = CallJson("POST", "/api/v1/gpu/allocate", 200, R"({"gpu_type": "T4"})");
    CallJson("DELETE", "/api/v1/gpu/allocations/" + allocated["allocation_id"].get<std::string>(),
             200);
    clock_.AdvanceMs(1);
  }
  std::set<std::string> seen;
  std::string target = "/api/v1/gpu/allocations?all=true&limit=2";
  int pages = 0;
  while (true) {
    json page = CallJson("GET", target, 200);
    ++pages;
    for (const json& allocation : page["allocations"]) seen.insert(allocation["allocation_id"]);
    if (page["next"].is_null()) break;
    target = page["next"];
    ASSERT_LE(pages, 5) << "next links loop";
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(CallJson("GET", "/api/v1/gpu/allocations?limit=1001", 400)["error"]["field"], "limit");
  EXPECT_EQ(CallJson("GET", "/api/v1/gpu/allocations?all=true&after=x", 400)["error"]["field"],
            "after");

  // The queue: two waiting entries, a page of one at a time.
  CallJson("POST", "/api/v1/gpu/allocate", 200, R"({"gpu_count": 8, "gpu_type": "A100"})");
  for (int i = 0; i < 2; ++i) {
    CallJson("POST", "/api/v1/gpu/allocate", 202,
             R"({"gpu_count": 8, "gpu_type": "A100", "wait": true})");
  }
  json first = CallJson("GET", "/api/v1/gpu/queue?limit=1", 200);
  ASSERT_EQ(first["count"], 1);
  EXPECT_EQ(first["waiting"], 2);
  json second = CallJson("GET", first["next"].get<std::string>(), 200);
  ASSERT_EQ(second["count"], 1);
  EXPECT_EQ(second["queue"][0]["position"], 2);
  EXPECT_TRUE(second["next"].is_null());
}

TEST_F(HandlersTest, RefusalsSayWhyAndWhatWouldFit) {
  Load();
  json unknown = CallJson("POST", "/api/v1/gpu/allocate", 409, R"({"gpu_type": "H100"})");
  EXPECT_EQ(unknown["success"], false);
  EXPECT_EQ(unknown["error"]["code"], "unschedulable_never");
  EXPECT_EQ(unknown["reasons"].size(), 3u);
  EXPECT_EQ(unknown["would_fit"]["gpu_types_available"]["A100"], 8);

  json validate = CallJson("POST", "/api/v1/gpu/validate", 200,
                           R"({"gpu_count": 4, "gpu_type": "V100", "memory_gb": 32})");
  EXPECT_EQ(validate["possible_ever"], true);
  // One V100 has 8 GB used by another process in the example inventory.
  EXPECT_EQ(validate["possible_now"], false);
  EXPECT_EQ(validate["would_fit"]["max_gpus_on_one_node"], 3);
}

TEST_F(HandlersTest, FrameworkPlansDescribeTheGpusOrTheCpu) {
  Load();
  json tf = CallJson("POST", "/api/v1/gpu/setup-tensorflow", 200,
                     R"({"gpu_count": 2, "gpu_type": "A100", "mixed_precision": true})");
  EXPECT_EQ(tf["success"], true);
  EXPECT_EQ(tf["node_name"], "gpu-node-2");
  EXPECT_TRUE(tf["plan"].is_object());
  json torch = CallJson("POST", "/api/v1/gpu/setup-pytorch", 200, R"({"gpu_type": "H100"})");
  EXPECT_EQ(torch["success"], false);
  EXPECT_EQ(torch["plan"]["device"], "cpu");
  // Nothing was reserved by either.
  EXPECT_TRUE(ledger_->List(AllOfThem()).empty());
}

// An allocation's plan is the plan /setup-pytorch answered for the same GPUs
// before they were granted: one builder for both.
TEST_F(HandlersTest, AllocationPlansAreTheSetupPlansOfTheGrantedGpus) {
  Load();
  const std::string request = R"({"gpu_count": 2, "gpu_type": "A100", "mixed_precision": true})";
  json torch_setup = CallJson("POST", "/api/v1/gpu/setup-pytorch", 200, request);
  json tf_setup = CallJson("POST", "/api/v1/gpu/setup-tensorflow", 200, request);
  json allocated = CallJson("POST", "/api/v1/gpu/allocate", 200, request);
  const std::string id = allocated["allocation_id"];
  const std::string plan_path = "/api/v1/gpu/allocations/" + id + "/plan";

  json torch = CallJson("GET", plan_path + "?framework=pytorch", 200);
  EXPECT_EQ(torch["success"], true);
  EXPECT_EQ(torch["allocation_id"], id);
  EXPECT_EQ(torch["node_name"], "gpu-node-2");
  EXPECT_EQ(torch["plan"], torch_setup["plan"]);
  EXPECT_EQ(torch["plan"]["device"], "cuda");
  EXPECT_EQ(torch["plan"]["visible_devices"].size(), 2u);
  json tf = CallJson("GET", plan_path + "?framework=tensorflow", 200);
  EXPECT_EQ(tf["plan"], tf_setup["plan"]);

  EXPECT_EQ(CallJson("GET", plan_path, 400)["error"]["field"], "framework");
  EXPECT_EQ(CallJson("GET", plan_path + "?framework=jax", 400)["error"]["field"], "framework");
  EXPECT_EQ(
      CallJson("GET", "/api/v1/gpu/allocations/nope/plan?framework=pytorch", 404)["error"]["code"],
      "not_found");
  CallJson("DELETE", "/api/v1/gpu/allocations/" + id, 200);
  EXPECT_EQ(CallJson("GET", plan_path + "?framework=pytorch", 409)["error"]["code"],
            "failed_precondition");
}

// GET /policies is the scheduler's list, with the configured default.
TEST_F(HandlersTest, PoliciesAreTheSchedulersWithTheConfiguredDefault) {
  json answer = CallJson("GET", "/api/v1/gpu/policies", 200);
  ASSERT_EQ(answer["policies"].size(), PolicyNames().size());
  for (size_t i = 0; i < PolicyNames().size(); ++i) {
    const std::string name = PolicyNames()[i];
    EXPECT_EQ(answer["policies"][i]["name"], name);
    EXPECT_EQ(answer["policies"][i]["description"], std::string(FindPolicy(name)->description()));
  }
  EXPECT_EQ(answer["default"], "binpack");

  GpuManager spreading(inventory_.get(), ledger_.get(), &clock_, "spread");
  ApiContext context;
  context.manager = &spreading;
  Router router;
  RegisterApiRoutes(context, router);
  HttpRequest request;
  request.method = "GET";
  request.SetTarget("/api/v1/gpu/policies");
  EXPECT_EQ(json::parse(router.Dispatch(request).body)["default"], "spread");
}

TEST_F(HandlersTest, ReleaseByNodeAndCountUsesTheCallersIdentity) {
  Load();
  HttpResponse allocated = Call("POST", "/api/v1/gpu/allocate", R"({"gpu_type": "T4"})", "alice");
  ASSERT_EQ(allocated.status, 200);
  const std::string node = json::parse(allocated.body)["node_name"];
  const std::string body = R"({"node_name": ")" + node + R"(", "gpu_count": 1})";
  EXPECT_EQ(Call("POST", "/api/v1/gpu/release", body, "bob").status, 404);
  HttpResponse released = Call("POST", "/api/v1/gpu/release", body, "alice");
  EXPECT_EQ(released.status, 200) << released.body;
  EXPECT_EQ(CallJson("POST", "/api/v1/gpu/release", 400, R"({"gpu_count": 1})")["error"]["field"],
            "node_name");
}

TEST_F(HandlersTest, MonitoringReportsEveryGpuWithHistory) {
  Load();
  clock_.AdvanceMs(30000);
  Load();
  json monitoring = CallJson("GET", "/api/v1/gpu/monitoring", 200);
  ASSERT_EQ(monitoring["nodes"].size(), 3u);
  const json& gpu = monitoring["nodes"][1]["gpus"][0];
  EXPECT_EQ(gpu["gpu_type"], "A100");
  EXPECT_EQ(gpu["history"].size(), 2u);
  EXPECT_EQ(
      CallJson("GET", "/api/v1/gpu/monitoring?window=10", 200)["nodes"][1]["gpus"][0]["history"]
          .size(),
      1u);
}

// /monitoring carries /status's summary (the same function builds both), and
// the summary is the real figure: the mean and ratios of the per-GPU detail.
TEST_F(HandlersTest, MonitoringCarriesTheStatusUtilizationSummary) {
  Load();
  CallJson("POST", "/api/v1/gpu/allocate", 200, R"({"gpu_count": 2})");
  json monitoring = CallJson("GET", "/api/v1/gpu/monitoring", 200);
  json status = CallJson("GET", "/api/v1/gpu/status", 200);
  EXPECT_EQ(monitoring["utilization"], status["utilization"]);
  double utilization_sum = 0;
  double used_gb = 0;
  double total_gb = 0;
  int gpus = 0;
  for (const json& node : monitoring["nodes"]) {
    for (const json& gpu : node["gpus"]) {
      ++gpus;
      utilization_sum += gpu["utilization"].get<double>();
      used_gb += gpu["memory_used_gb"].get<double>();
      total_gb += gpu["memory_total_gb"].get<double>();
    }
  }
  ASSERT_EQ(gpus, 16);
  const json& summary = monitoring["utilization"];
  EXPECT_GT(summary["gpu_utilization"].get<double>(), 0.0);
  EXPECT_NEAR(summary["gpu_utilization"].get<double>(), utilization_sum / gpus, 0.0005);
  EXPECT_NEAR(summary["gpu_memory_usage"].get<double>(), used_gb / total_gb, 0.001);
  EXPECT_GT(summary["gpu_memory_reserved"].get<double>(), 0.0);  // The 2 GPUs allocated.
}

TEST_F(HandlersTest, HeartbeatRenewsLeases) {
  Load();
  json allocated = CallJson("POST", "/api/v1/gpu/allocate", 200,
                            R"({"gpu_type": "T4", "lease_ttl_seconds": 30})");
  const std::string id = allocated["allocation_id"];
  const std::string before = allocated["allocation"]["lease_expires_at"];
  clock_.AdvanceMs(10000);
  json renewed = CallJson("POST", "/api/v1/gpu/allocations/" + id + "/heartbeat", 200);
  EXPECT_GT(renewed["allocation"]["lease_expires_at"].get<std::string>(), before);
}

TEST_F(HandlersTest, MonitoringShowsStateHoldersAndProcesses) {
  Load();
  HttpResponse answer = Call("POST", "/api/v1/gpu/allocate", R"({"gpu_type": "A100"})", "alice");
  ASSERT_EQ(answer.status, 200) << answer.body;
  const json allocated = json::parse(answer.body);
  const std::string uuid = allocated["gpus"][0]["gpu_uuid"];
  json monitoring = CallJson("GET", "/api/v1/gpu/monitoring", 200);
  bool found = false;
  for (const json& node : monitoring["nodes"]) {
    for (const json& gpu : node["gpus"]) {
      EXPECT_TRUE(gpu["processes"].is_array());
      if (gpu["uuid"] != uuid) continue;
      found = true;
      EXPECT_EQ(gpu["state"], "allocated");
      EXPECT_EQ(gpu["memory_reserved_gb"], gpu["memory_total_gb"]);
      ASSERT_EQ(gpu["allocations"].size(), 1u);
      EXPECT_EQ(gpu["allocations"][0]["allocation_id"], allocated["allocation_id"]);
      EXPECT_EQ(gpu["allocations"][0]["owner"], "alice");
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(HandlersTest, MetricsInPrometheusTextFormat) {
  HttpResponse before = Call("GET", "/metrics");
  EXPECT_EQ(before.status, 200);
  EXPECT_NE(before.body.find("gpurm_up 0\n"), std::string::npos) << before.body;
  Load();
  HttpMetrics http_metrics;
  http_metrics.Observe("GET", "/api/v1/gpu/status", 200, 0.003);
  context_.http_metrics = &http_metrics;
  CallJson("POST", "/api/v1/gpu/allocate", 200, R"({"gpu_type": "T4"})");
  HttpResponse response = Call("GET", "/metrics");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.content_type, "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = response.body;
  EXPECT_NE(text.find("gpurm_up 1\n"), std::string::npos);
  for (const char* family :
       {"gpurm_gpu_utilization_ratio", "gpurm_gpu_memory_used_bytes",
        "gpurm_gpu_memory_total_bytes", "gpurm_gpu_temperature_celsius", "gpurm_gpu_power_watts",
        "gpurm_gpu_healthy", "gpurm_gpu_allocated", "gpurm_allocations_active",
        "gpurm_http_requests_total", "gpurm_http_request_duration_seconds"}) {
    EXPECT_NE(text.find(std::string("# TYPE ") + family + " "), std::string::npos) << family;
  }
  EXPECT_NE(text.find("gpurm_allocations_active 1\n"), std::string::npos);
  int allocated_gpus = 0;
  for (size_t at = text.find("\ngpurm_gpu_allocated{"); at != std::string::npos;
       at = text.find("\ngpurm_gpu_allocated{", at + 1)) {
    const size_t end = text.find('\n', at + 1);
    if (text.substr(at, end - at).ends_with("} 1")) ++allocated_gpus;
    EXPECT_NE(text.substr(at, end - at).find("model=\""), std::string::npos);
  }
  EXPECT_EQ(allocated_gpus, 1) << text;
  EXPECT_NE(text.find("gpurm_http_requests_total{method=\"GET\",route=\"/api/v1/gpu/status\","
                      "code=\"200\"} 1\n"),
            std::string::npos);
}

TEST_F(HandlersTest, EventsStreamServerSentEvents) {
  EXPECT_EQ(CallJson("GET", "/api/v1/gpu/events", 503)["error"]["code"], "unavailable");
  EventHub hub;
  context_.events = &hub;
  HttpResponse response = Call("GET", "/api/v1/gpu/events");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.content_type, "text/event-stream");
  ASSERT_NE(response.stream, nullptr);
  int wakes = 0;
  response.stream->Start([&wakes] { ++wakes; });
  bool done = false;
  EXPECT_EQ(response.stream->Pull(&done), "retry: 5000\n: gpurm GPU events\n\n");
  EXPECT_FALSE(done);

  GpuEvent event;
  event.type = GpuEventType::kHealth;
  event.node_name = "n1";
  event.gpu_uuid = "GPU-1";
  event.changed = {"health"};
  event.current.healthy = false;
  event.current.health_reason = "XID 79";
  hub.Publish({event});
  EXPECT_EQ(wakes, 1);
  const std::string text = response.stream->Pull(&done);
  ASSERT_EQ(text.rfind("id: 1\nevent: health\ndata: {", 0), 0u) << text;
  const json data = json::parse(text.substr(text.find('{'), text.rfind('}') - text.find('{') + 1));
  EXPECT_EQ(data["uuid"], "GPU-1");
  EXPECT_EQ(data["current"]["healthy"], false);
  EXPECT_EQ(data["current"]["health_reason"], "XID 79");
  EXPECT_TRUE(data["previous"].is_null());
  EXPECT_EQ(response.stream->KeepAlive(), ": keep-alive\n\n");

  event.model = "GPU \xff";  // Not UTF-8: replaced, not thrown on the I/O strand.
  hub.Publish({event});
  EXPECT_NE(response.stream->Pull(&done).find("\"name\":\"GPU \xEF\xBF\xBD\""), std::string::npos);

  response.stream->Close();
  EXPECT_EQ(response.stream->Pull(&done), "");
  EXPECT_TRUE(done);
  EXPECT_EQ(hub.stats().subscribers, 0u);
}

TEST_F(HandlersTest, EventsCanBeLimitedToOneNodeAndReportDrops) {
  EventHub hub(/*queue_capacity=*/2);
  context_.events = &hub;
  HttpResponse response = Call("GET", "/api/v1/gpu/events?node=n2");
  bool done = false;
  response.stream->Pull(&done);
  std::vector<GpuEvent> events(3);
  events[0].node_name = "n1";
  events[1].node_name = "n2";
  events[2].node_name = "n2";
  hub.Publish(events);
  const std::string text = response.stream->Pull(&done);
  EXPECT_EQ(text.rfind("event: dropped\ndata: {\"dropped\":1}\n\n", 0), 0u) << text;
  EXPECT_EQ(text.find("\"node_name\":\"n1\""), std::string::npos) << text;
  EXPECT_NE(text.find("id: 3\n"), std::string::npos) << text;
}

TEST_F(HandlersTest, RefreshRunsASamplingPassOnTheSampler) {
  EXPECT_EQ(CallJson("POST", "/api/v1/gpu/monitoring/refresh", 503)["error"]["code"],
            "unavailable");
  EventHub hub;
  Sampler sampler(inventory_.get(), &clock_, &hub, SamplerOptions{});
  context_.sampler = &sampler;
  sampler.Start();
  json refreshed = CallJson("POST", "/api/v1/gpu/monitoring/refresh", 200);
  EXPECT_EQ(refreshed["refreshed"], true);
  EXPECT_EQ(refreshed["gpus"], 16);
  EXPECT_GE(refreshed["inventory_generation"].get<int>(), 1);
  EXPECT_NE(Call("GET", "/metrics").body.find("gpurm_sampler_passes_total "), std::string::npos);
  sampler.Stop();
  context_.sampler = nullptr;
}

TEST_F(HandlersTest, ServesTheOpenApiDocument) {
  EXPECT_EQ(CallJson("GET", "/api/v1/openapi.json", 200)["openapi"], "3.0.3");
}

}  // namespace
}  // namespace gpurm
