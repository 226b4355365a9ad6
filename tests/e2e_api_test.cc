// End to end over HTTP against the real daemon binary with the example
// 3-node inventory: every documented endpoint (docs/api.md) answers with the documented
// fields and types; bad input gets a 4xx naming the field and changes nothing.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "support/daemon_process.h"

namespace gpurm {
namespace {

using nlohmann::json;
using testing::DaemonProcess;

class E2eApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("gpurm-e2e");
    daemon_ = std::make_unique<DaemonProcess>(dir_, testing::ExampleInventoryArgs());
    std::string error;
    ASSERT_TRUE(daemon_->Start(&error)) << error;
  }

  json Get(const std::string& path, long expected = 200) {
    auto response = daemon_->Client().Get("/api/v1/gpu" + path);
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    if (!response.ok()) return json();
    EXPECT_EQ(response->status, expected) << path << ": " << response->raw_body;
    return response->body;
  }
  json Post(const std::string& path, const json& body, long expected = 200) {
    auto response = daemon_->Client("e2e").Post("/api/v1/gpu" + path, body);
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    if (!response.ok()) return json();
    EXPECT_EQ(response->status, expected) << path << ": " << response->raw_body;
    return response->body;
  }

  std::string dir_;
  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(E2eApiTest, EveryEndpointAnswersWithTheDocumentedFields) {
  json health = Get("/health");
  EXPECT_EQ(health["status"], "ok");
  EXPECT_EQ(health["gpus"], 16);

  json status = Get("/status");
  EXPECT_TRUE(status["utilization"]["gpu_utilization"].is_number());
  EXPECT_TRUE(status["utilization"]["gpu_memory_usage"].is_number());
  EXPECT_TRUE(status["total_nodes"].is_number_integer());
  EXPECT_TRUE(status["timestamp"].is_string());
  ASSERT_TRUE(status["available_nodes"].is_array());
  for (const json& node : status["available_nodes"]) {
    EXPECT_TRUE(node["node_name"].is_string());
    EXPECT_TRUE(node["gpu_type"].is_string());
    EXPECT_TRUE(node["available_gpus"].is_number_integer());
    EXPECT_TRUE(node["memory_per_gpu"].is_number());
    EXPECT_TRUE(node["utilization"].is_number());
  }

  json nodes = Get("/nodes?gpu_type=V100&min_memory_gb=16");
  ASSERT_EQ(nodes["nodes"].size(), 1u);
  EXPECT_EQ(nodes["nodes"][0]["node_name"], "gpu-node-1");

  json request = {{"gpu_count", 2},          {"gpu_type", "A100"},
                  {"memory_gb", 40.0},       {"distributed_training", false},
                  {"mixed_precision", true}, {"gpu_memory_fraction", 0.9}};
  json validation = Post("/validate", request);
  EXPECT_EQ(validation["valid"], true);
  EXPECT_EQ(validation["possible_ever"], true);

  json tf = Post("/setup-tensorflow", request);
  EXPECT_EQ(tf["success"], true);
  EXPECT_TRUE(tf["plan"].is_object());
  json torch = Post("/setup-pytorch", request);
  EXPECT_EQ(torch["success"], true);
  EXPECT_TRUE(torch["plan"].is_object());

  json allocated = Post("/allocate", request);
  EXPECT_EQ(allocated["success"], true);
  EXPECT_EQ(allocated["node_name"], "gpu-node-2");
  EXPECT_TRUE(allocated["gpu_config"].is_object());
  EXPECT_EQ(allocated["gpus"].size(), 2u);
  const std::string id = allocated["allocation_id"];

  EXPECT_EQ(Get("/allocations")["count"], 1);
  EXPECT_EQ(Get("/allocations/" + id)["owner"], "e2e");
  json monitoring = Get("/monitoring");
  EXPECT_EQ(monitoring["nodes"].size(), 3u);
  EXPECT_FALSE(monitoring["nodes"][0]["gpus"][0]["history"].empty());

  auto released = daemon_->Client().Delete("/api/v1/gpu/allocations/" + id);
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(released->status, 200);
  EXPECT_EQ(released->body["allocation"]["state"], "released");

  auto openapi = daemon_->Client().Get("/api/v1/openapi.json");
  ASSERT_TRUE(openapi.ok());
  EXPECT_EQ(openapi->body["openapi"], "3.0.3");
  EXPECT_TRUE(openapi->body["paths"].contains("/allocate"));

  EXPECT_EQ(daemon_->Terminate(), 0) << "SIGTERM drains and exits 0";
}

TEST_F(E2eApiTest, BadInputIsA4xxNamingTheFieldAndTheLedgerIsUnchanged) {
  EXPECT_EQ(Post("/allocate", {{"gpu_count", -2}}, 400)["error"]["field"], "gpu_count");
  EXPECT_EQ(Post("/allocate", {{"gpu_count", "two"}}, 400)["error"]["field"], "gpu_count");
  EXPECT_EQ(Post("/allocate", {{"memory_gb", true}}, 400)["error"]["field"], "memory_gb");
  EXPECT_EQ(Post("/allocate", {{"gpu_tpye", "V100"}}, 400)["error"]["field"], "gpu_tpye");
  json unknown_type = Post("/allocate", {{"gpu_type", "Z9000"}}, 409);
  EXPECT_EQ(unknown_type["error"]["code"], "unschedulable_never");
  EXPECT_FALSE(unknown_type["would_fit"]["suggestion"].get<std::string>().empty());

  // Malformed JSON and an oversized body go through the raw HTTP layer.
  auto malformed = daemon_->Client().Post("/api/v1/gpu/allocate", json("{oops"));
  ASSERT_TRUE(malformed.ok());
  EXPECT_EQ(malformed->status, 400);
  json huge = {{"gpu_type", std::string(2 << 20, 'x')}};
  auto oversized = daemon_->Client().Post("/api/v1/gpu/allocate", huge);
  ASSERT_TRUE(oversized.ok()) << oversized.status().ToString();
  EXPECT_EQ(oversized->status, 413);
  EXPECT_EQ(oversized->body["error"]["field"], "body");

  EXPECT_EQ(Get("/allocations?all=true")["count"], 0);
  EXPECT_EQ(Get("/nothing-here", 404)["error"]["code"], "not_found");
}

TEST_F(E2eApiTest, AllocationsSurviveARestart) {
  const std::string id = Post("/allocate", {{"gpu_type", "T4"}})["allocation_id"];
  EXPECT_EQ(daemon_->Terminate(), 0);
  std::string error;
  ASSERT_TRUE(daemon_->Start(&error)) << error;
  EXPECT_EQ(Get("/allocations/" + id)["state"], "active");
}

// What POST /allocate answered is what every later read gets, field for
// field, before and after the daemon is killed (nothing of the request, e.g.
// a gpu_milli share, may be lost on the way to the ledger and back).
TEST_F(E2eApiTest, TheAllocateAnswerIsWhatReadsReturnBeforeAndAfterKill9) {
  const json request = {{"gpu_count", 1},
                        {"gpu_type", "A100"},
                        {"gpu_milli", 250},
                        {"shared", true},
                        {"mixed_precision", true},
                        {"distributed_training", false},
                        {"gpu_memory_fraction", 0.5},
                        {"policy", "spread"},
                        {"lease_ttl_seconds", 3600},
                        {"node_name", "gpu-node-2"}};
  const json answer = Post("/allocate", request);
  ASSERT_EQ(answer.value("success", false), true) << answer.dump();
  const json granted = answer.at("allocation");
  const std::string id = granted.at("allocation_id");
  for (const auto& [key, value] : request.items()) {
    EXPECT_EQ(granted.at("request").at(key), value) << key;
  }
  EXPECT_EQ(Get("/allocations/" + id), granted);

  daemon_->Kill();
  std::string error;
  ASSERT_TRUE(daemon_->Start(&error)) << error;
  EXPECT_EQ(Get("/allocations/" + id), granted);
  const json listed = Get("/allocations");
  ASSERT_EQ(listed.at("allocations").size(), 1u) << listed.dump();
  EXPECT_EQ(listed.at("allocations").at(0), granted);
}

}  // namespace
}  // namespace gpurm
