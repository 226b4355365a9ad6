// End to end over HTTP against the real daemon: the wait queue (priority,
// backfill, grant on release, timeout, cancel), gang placement across nodes
// (all or nothing) and GPU sharing in milli-GPU (never oversubscribed), on a
// two-node inventory of 2 x T4 each, with the shipped gpu_config.yaml
// (binpack by default).
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/placement_policies.h"
#include "support/daemon_process.h"
#include "support/eventually.h"
#include "support/run_command.h"

namespace gpurm {
namespace {

using nlohmann::json;
using testing::DaemonProcess;

constexpr char kInventory[] = R"(nodes:
  - name: node-a
    gpus:
      - name: "Tesla T4"
        count: 2
  - name: node-b
    gpus:
      - name: "Tesla T4"
        count: 2
)";

class SchedulingE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("gpurm-sched-e2e");
    std::ofstream(dir_ + "/inventory.yaml") << kInventory;
    daemon_ = std::make_unique<DaemonProcess>(
        dir_, std::vector<std::string>{"--inventory", dir_ + "/inventory.yaml"});
    std::string error;
    ASSERT_TRUE(daemon_->Start(&error)) << error;
  }

  json Send(const std::string& method, const std::string& path, const json& body, long expected) {
    auto client = daemon_->Client("e2e");
    auto response = method == "GET"      ? client.Get("/api/v1/gpu" + path)
                    : method == "DELETE" ? client.Delete("/api/v1/gpu" + path)
                                         : client.Post("/api/v1/gpu" + path, body);
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    if (!response.ok()) return json();
    EXPECT_EQ(response->status, expected) << method << " " << path << ": " << response->raw_body;
    return response->body;
  }
  json Get(const std::string& path, long expected = 200) { return Send("GET", path, {}, expected); }
  json Post(const std::string& path, const json& body, long expected = 200) {
    return Send("POST", path, body, expected);
  }
  json Delete(const std::string& path, long expected = 200) {
    return Send("DELETE", path, {}, expected);
  }
  // Whether POST /allocate granted `body` (any status accepted).
  bool Granted(const json& body) {
    auto response = daemon_->Client("e2e").Post("/api/v1/gpu/allocate", body);
    return response.ok() && response->status == 200;
  }
  std::string Allocate(int gpus) {
    json granted = Post("/allocate", {{"gpu_count", gpus}, {"gpu_type", "T4"}});
    return granted.value("allocation_id", "");
  }
  // Polls a queue entry until it leaves `state` (the daemon serves the queue
  // on every release and expires waits on its lease-check tick).
  json PollUntilNot(const std::string& id, const std::string& state) {
    json entry;
    testing::Eventually([&] {
      entry = Get("/queue/" + id);
      return entry.value("state", "") != state;
    });
    return entry;
  }

  std::string dir_;
  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(SchedulingE2eTest, WaitingRequestIsGrantedWhenGpusAreReleased) {
  const std::string a = Allocate(2);
  const std::string b = Allocate(2);
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  json queued = Post(
      "/allocate",
      {{"gpu_count", 2}, {"gpu_type", "T4"}, {"wait", true}, {"wait_timeout_seconds", 120}}, 202);
  EXPECT_EQ(queued["queued"], true);
  EXPECT_EQ(queued["success"], false);
  EXPECT_EQ(queued["state"], "waiting");
  EXPECT_EQ(queued["position"], 1);
  const std::string id = queued["queue_id"];
  EXPECT_EQ(queued["poll"], "/api/v1/gpu/queue/" + id);
  EXPECT_FALSE(queued["reasons"].empty());

  // The CLI shows it too.
  testing::CommandResult cli = testing::RunCommand(
      {testing::GpurmBinary(), "queue", "--url", daemon_->base_url()}, std::chrono::seconds(30));
  EXPECT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_NE(cli.output.find(id), std::string::npos) << cli.output;
  EXPECT_NE(cli.output.find("1 waiting"), std::string::npos) << cli.output;
  testing::CommandResult missing = testing::RunCommand(
      {testing::GpurmBinary(), "queue", "show", "queue-nope", "--url", daemon_->base_url()},
      std::chrono::seconds(30));
  EXPECT_EQ(missing.exit_code, 1) << missing.output;

  json queue = Get("/queue");
  EXPECT_EQ(queue["waiting"], 1);
  ASSERT_EQ(queue["queue"].size(), 1u);
  EXPECT_EQ(queue["queue"][0]["queue_id"], id);
  EXPECT_EQ(queue["queue"][0]["request"]["gpu_count"], 2);

  Delete("/allocations/" + a);
  json granted = PollUntilNot(id, "waiting");
  ASSERT_EQ(granted["state"], "granted") << granted.dump();
  ASSERT_TRUE(granted["allocation"].is_object());
  EXPECT_EQ(granted["allocation"]["state"], "active");
  EXPECT_EQ(granted["allocation"]["gpus"].size(), 2u);
  EXPECT_TRUE(granted["gpu_config"].is_object());
  // The grant is a normal allocation in the ledger.
  json listed = Get("/allocations/" + granted["allocation_id"].get<std::string>());
  EXPECT_EQ(listed["owner"], "e2e");
  EXPECT_EQ(Get("/queue")["waiting"], 0);
  EXPECT_EQ(Get("/queue?all=true")["count"], 1);
}

TEST_F(SchedulingE2eTest, PriorityBackfillTimeoutAndCancel) {
  const std::string one = Allocate(1);  // node-a, GPU 0 (binpack).
  const std::string two = Allocate(2);  // node-b.
  ASSERT_FALSE(one.empty());
  ASSERT_FALSE(two.empty());
  // The head waits for a whole node.
  json head = Post("/allocate", {{"gpu_count", 2}, {"wait", true}, {"priority", 1}}, 202);
  // A later, lower-priority 1-GPU request would take the GPU held for the
  // head: refused now (it would delay the head), queued behind with wait.
  json refused = Post("/allocate", {{"gpu_count", 1}}, 409);
  EXPECT_NE(refused["error"]["message"].get<std::string>().find("held for"), std::string::npos)
      << refused.dump();
  json behind = Post("/allocate", {{"gpu_count", 1}, {"wait", true}}, 202);
  EXPECT_EQ(behind["position"], 2);
  // Waiting with a short timeout expires.
  json brief =
      Post("/allocate", {{"gpu_count", 1}, {"wait", true}, {"wait_timeout_seconds", 0.3}}, 202);
  json expired = PollUntilNot(brief["queue_id"], "waiting");
  EXPECT_EQ(expired["state"], "expired") << expired.dump();
  // Cancelling takes an entry out.
  json cancelled = Delete("/queue/" + behind["queue_id"].get<std::string>());
  EXPECT_EQ(cancelled["cancelled"], true);
  EXPECT_EQ(cancelled["entry"]["state"], "cancelled");
  Get("/queue/queue-0000000000000000", 404);
  // Freeing node-a's GPU lets the head have node-a.
  Delete("/allocations/" + one);
  json granted = PollUntilNot(head["queue_id"], "waiting");
  ASSERT_EQ(granted["state"], "granted");
  EXPECT_EQ(granted["allocation"]["node_name"], "node-a");
  // Bad wait fields name the field.
  EXPECT_EQ(Post("/allocate", {{"gpu_count", 1}, {"wait", true}, {"wait_timeout_seconds", -1}},
                 400)["error"]["field"],
            "wait_timeout_seconds");
  EXPECT_EQ(Post("/allocate", {{"gpu_count", 1}, {"wait", "yes"}}, 400)["error"]["field"], "wait");
  // A request that can never fit is refused even with wait.
  EXPECT_EQ(Post("/allocate", {{"gpu_count", 3}, {"wait", true}}, 409)["error"]["code"],
            "unschedulable_never");
}

TEST_F(SchedulingE2eTest, GangIsAllOrNothingAcrossNodes) {
  json gang = Post("/allocate", {{"gpu_count", 4}, {"distributed_training", true}});
  ASSERT_EQ(gang["success"], true);
  std::map<std::string, int> per_node;
  for (const json& gpu : gang["gpus"]) ++per_node[gpu["node_name"].get<std::string>()];
  EXPECT_EQ(per_node, (std::map<std::string, int>{{"node-a", 2}, {"node-b", 2}}));
  EXPECT_EQ(gang["gpu_config"]["distributed"]["world_size"], 4) << gang["gpu_config"].dump();
  EXPECT_EQ(gang["gpu_config"]["distributed"]["nnodes"], 2);
  Delete("/allocations/" + gang["allocation_id"].get<std::string>());
  // With one GPU taken, 4 GPUs cannot be had: nothing at all is granted.
  const std::string one = Allocate(1);
  json refused = Post("/allocate", {{"gpu_count", 4}, {"distributed_training", true}}, 409);
  EXPECT_EQ(refused["error"]["code"], "unschedulable_now");
  EXPECT_EQ(Get("/allocations")["count"], 1);
}

TEST_F(SchedulingE2eTest, SharesPackGpusAndNeverOversubscribe) {
  std::vector<std::string> uuids;
  for (int i = 0; i < 2; ++i) {
    json share = Post("/allocate", {{"gpu_count", 1}, {"gpu_milli", 470}});
    ASSERT_EQ(share["success"], true);
    ASSERT_EQ(share["gpus"].size(), 1u);
    EXPECT_EQ(share["gpus"][0]["exclusive"], false);
    uuids.push_back(share["gpus"][0]["gpu_uuid"]);
    EXPECT_EQ(share["allocation"]["request"]["gpu_milli"], 470);
  }
  EXPECT_EQ(uuids[0], uuids[1]) << "binpack pairs two 0.47 shares on one GPU";
  json third = Post("/allocate", {{"gpu_count", 1}, {"gpu_milli", 470}});
  EXPECT_NE(third["gpus"][0]["gpu_uuid"], uuids[0]) << "0.94 + 0.47 would oversubscribe";
  // Fill the rest with 0.5 shares: 3 more GPUs x 2, less what the third took.
  int granted = 0;
  while (Granted({{"gpu_count", 1}, {"gpu_milli", 500}})) {
    ++granted;
    ASSERT_LT(granted, 100);
  }
  EXPECT_EQ(granted, 5) << "1 beside the 0.47 on the third GPU, 2 on each of the other two";
  // The first GPU still has 0.06 free: a 0.05 share fits, nothing more does.
  EXPECT_EQ(Post("/allocate", {{"gpu_count", 1}, {"gpu_milli", 50}})["gpus"][0]["gpu_uuid"],
            uuids[0]);
  json full = Post("/allocate", {{"gpu_count", 1}, {"gpu_milli", 100}}, 409);
  EXPECT_EQ(full["error"]["code"], "unschedulable_now");
  EXPECT_EQ(Post("/allocate", {{"gpu_count", 1}}, 409)["error"]["code"], "unschedulable_now")
      << "no whole GPU is left";
  for (const json& reason : full["reasons"]) EXPECT_EQ(reason["status"], "not_now");
  // A share of several GPUs is refused, naming the field.
  EXPECT_EQ(Post("/allocate", {{"gpu_count", 2}, {"gpu_milli", 500}}, 400)["error"]["field"],
            "gpu_milli");
}

// GET /policies lists the scheduler's policies (core/placement_policies.h),
// each of which a request may name; docs/openapi.json, a hand-written copy
// compiled into the binary, enumerates exactly those names.
TEST_F(SchedulingE2eTest, EveryPolicyTheDaemonListsCanBeAskedPerRequest) {
  json listed = Get("/policies");
  EXPECT_EQ(listed["default"], std::string(kDefaultPlacementPolicy));
  std::vector<std::string> names;
  for (const json& policy : listed["policies"]) {
    names.push_back(policy["name"]);
    EXPECT_FALSE(policy["description"].get<std::string>().empty()) << policy["name"];
  }
  std::vector<std::string> catalog;
  for (const PlacementPolicyInfo& policy : kPlacementPolicies) catalog.emplace_back(policy.name);
  EXPECT_EQ(names, catalog);
  for (const std::string& policy : names) {
    json granted = Post("/allocate", {{"gpu_count", 1}, {"policy", policy}});
    ASSERT_EQ(granted["success"], true) << policy;
    EXPECT_EQ(granted["allocation"]["request"]["policy"], policy);
    Delete("/allocations/" + granted["allocation_id"].get<std::string>());
  }
  EXPECT_EQ(Post("/allocate", {{"gpu_count", 1}, {"policy", "fastest"}}, 400)["error"]["field"],
            "policy");

  auto document = daemon_->Client().Get("/api/v1/openapi.json");
  ASSERT_TRUE(document.ok()) << document.status().ToString();
  const json& schemas = document->body["components"]["schemas"];
  std::vector<std::string> request_enum = {""};  // Empty: the daemon's default.
  request_enum.insert(request_enum.end(), catalog.begin(), catalog.end());
  EXPECT_EQ(schemas["GpuRequest"]["properties"]["policy"]["enum"], request_enum);
  const json& list = schemas["PolicyList"]["properties"];
  EXPECT_EQ(list["policies"]["items"]["properties"]["name"]["enum"], catalog);
  EXPECT_EQ(list["default"]["enum"], catalog);
}

}  // namespace
}  // namespace gpurm
