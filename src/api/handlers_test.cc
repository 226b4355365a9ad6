// The REST handlers through the Router, without sockets, on the example
// 3-node inventory and a real SQLite ledger.
#include "api/handlers.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "inventory/providers/static/static_provider.h"
#include "ledger/sqlite_ledger.h"

namespace gpurm {
namespace {

using nlohmann::json;

class HandlersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* source = std::getenv("GPURM_SOURCE_DIR");
    ASSERT_NE(source, nullptr) << "run through ctest (sets GPURM_SOURCE_DIR)";
    dir_ = std::filesystem::temp_directory_path() /
           ("gpurm-api-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    auto ledger = OpenSqliteLedger((dir_ / "ledger.db").string());
    ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
    ledger_ = std::move(*ledger);
    inventory_ = std::make_unique<Inventory>(
        std::make_unique<StaticProvider>(std::string(source) + "/examples/cluster-3node.yaml",
                                         GpuMemorySpecs{}),
        &clock_, 60);
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
    return router_.Dispatch(request);
  }

  json CallJson(const std::string& method, const std::string& target, int expected_status,
                const std::string& body = "") {
    HttpResponse response = Call(method, target, body);
    EXPECT_EQ(response.status, expected_status) << method << " " << target << ": " << response.body;
    return json::parse(response.body);
  }

  std::filesystem::path dir_;
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
  EXPECT_TRUE(ledger_->List(AllocationFilter{true, "", 1000}).empty());
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
  EXPECT_TRUE(ledger_->List(AllocationFilter{true, "", 1000}).empty());
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

TEST_F(HandlersTest, ServesTheOpenApiDocument) {
  EXPECT_EQ(CallJson("GET", "/api/v1/openapi.json", 200)["openapi"], "3.0.3");
}

}  // namespace
}  // namespace gpurm
