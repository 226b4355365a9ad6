// Kubernetes mode with node agents: the leader (`gpurm serve` in Kubernetes
// mode against an API server) finds the per-node agent -- a real `gpurm
// serve` with local discovery on a fake NVML machine, as the chart's
// DaemonSet runs it -- from its pod (kubernetes.node_agent_selector), pulls
// its snapshot, and shows the node's live GPU values and processes, each
// classed against the cluster's allocations: a job of an allocation on
// whichever GPU of its node the device plugin gave it is within its grant, a
// stray process is foreign. An agent that stops answering is a note; the
// node keeps the API server's view.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "kube/api_server.h"
#include "support/agent_files.h"
#include "support/daemon_process.h"
#include "support/eventually.h"
#include "support/fake_machine_environment.h"
#include "support/sleeping_child.h"
#include "support/test_pki.h"

namespace gpurm {
namespace {

using nlohmann::json;
using testing::DaemonProcess;
using testing::Eventually;
using ::testing::HasSubstr;
using testing::SleepingChild;
using testing::TestApiServer;

constexpr char kAgentLabel[] = "app.kubernetes.io/component";

class KubeNodeAgentsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("gpurm-kube-agents");
    Result<std::unique_ptr<TestApiServer>> started = TestApiServer::Start("gpurm");
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    server_ = std::move(started).value();
    ASSERT_TRUE(server_
                    ->CreateNode("node-a", "nvidia.com/gpu", 2,
                                 {{"nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"},
                                  {"nvidia.com/gpu.memory", "81559"}})
                    .ok());
    environment_ = std::make_unique<testing::FakeMachineEnvironment>(dir_, GPURM_FAKE_NVML);
    // The agent accepts the leader's token (role agent).
    ASSERT_EQ(testing::WriteAgentFiles(dir_, "leader"), "");
  }
  void TearDown() override {
    leader_.reset();
    agent_.reset();
    environment_.reset();
  }

  // node-a's machine: two H100s, `processes` ({pid, used_mib}) on GPU `on`.
  void WriteMachine(int on = 0, const json& processes = json::array()) {
    testing::WriteTwoH100Machine(GPURM_FAKE_MACHINES, dir_ + "/node-a.json", on, processes);
  }

  // The agent on node-a, and its pod as the DaemonSet would have it: Ready,
  // the pod IP it is reached at, its container port named http.
  // With `tls`, it serves https with the certificate its config names.
  void StartAgent(const std::optional<cli::TlsClientOptions>& tls = std::nullopt) {
    environment_->SetNodeName("node-a");
    environment_->SetNvmlMachine(dir_ + "/node-a.json");
    if (!agent_) {
      std::filesystem::create_directories(dir_ + "/agent");
      agent_ = std::make_unique<DaemonProcess>(dir_ + "/agent", std::vector<std::string>{});
      agent_->set_config(dir_ + "/agent.yaml");
      if (tls) agent_->set_tls(*tls);
    }
    std::string error;
    ASSERT_TRUE(agent_->Start(&error)) << error;
    const std::string url = agent_->base_url();
    const int port = std::stoi(url.substr(url.rfind(':') + 1));
    const std::string pods = "/api/v1/namespaces/gpurm/pods";
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata",
                 {{"name", "gpurm-node-x7k2p"},
                  {"namespace", "gpurm"},
                  {"labels", {{kAgentLabel, "node-monitor"}}}}},
                {"spec",
                 {{"nodeName", "node-a"},
                  {"containers",
                   {{{"name", "gpurm"},
                     {"image", "gpurm:test"},
                     {"ports", {{{"name", "http"}, {"containerPort", port}}}}}}}}}};
    Result<json> created = server_->client().Create(pods, pod);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    (*created)["status"] = {{"phase", "Running"},
                            {"podIP", "127.0.0.1"},
                            {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}};
    ASSERT_TRUE(server_->client().Replace(pods + "/gpurm-node-x7k2p/status", *created).ok());
  }

  // `https`: the node agents serve https, verified with `ca_file`.
  void StartLeader(bool https = false, const std::string& ca_file = "") {
    const std::string config = dir_ + "/leader.yaml";
    std::ofstream(config) << "monitor_update_interval: 0.3\n"
                          << "kubernetes:\n"
                          << "  enabled: true\n"
                          << "  kubeconfig: " << server_->kubeconfig() << "\n"
                          << "  namespace: gpurm\n"
                          << "  lease_duration_s: 3\n"
                          << "  renew_deadline_s: 2\n"
                          << "  retry_period_s: 0.3\n"
                          << "  node_agent_selector: " << kAgentLabel << "=node-monitor\n"
                          << "  node_agent_scheme: " << (https ? "https" : "http") << "\n"
                          << "controller:\n"
                          << "  token_file: " << dir_ << "/agent.token\n"
                          << "  ca_file: \"" << ca_file << "\"\n"
                          << "  request_timeout_s: 0.5\n";
    std::filesystem::create_directories(dir_ + "/leader");
    leader_ = std::make_unique<DaemonProcess>(dir_ + "/leader", std::vector<std::string>{});
    leader_->set_config(config);
    std::string error;
    ASSERT_TRUE(leader_->Start(&error)) << error;
    ASSERT_TRUE(Eventually([&] {
      Result<cli::HttpResponse> leads = leader_->Client().Get("/api/v1/gpu/leader");
      return leads.ok() && leads->status == 200;
    })) << leader_->LogTail();
  }

  json Get(const std::string& path) {
    auto response = leader_->Client().Get("/api/v1/gpu" + path);
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    if (!response.ok()) return json();
    EXPECT_EQ(response->status, 200) << path << ": " << response->raw_body;
    return response->body;
  }
  json NodeA() {
    const json monitoring = Get("/monitoring");
    for (const json& node : monitoring["nodes"]) {
      if (node["node_name"] == "node-a") return node;
    }
    return json();
  }
  bool NoteSays(const std::string& part) {
    const json health = Get("/health");
    for (const json& note : health["notes"]) {
      if (note.get<std::string>().find(part) != std::string::npos) return true;
    }
    return false;
  }

  std::string dir_;
  std::unique_ptr<TestApiServer> server_;
  std::unique_ptr<testing::FakeMachineEnvironment> environment_;
  std::unique_ptr<DaemonProcess> agent_;
  std::unique_ptr<DaemonProcess> leader_;
};

TEST_F(KubeNodeAgentsTest, TheLeaderShowsEachNodesLiveGpusAndWhoUsesThem) {
  WriteMachine();
  StartLeader();
  // Granted before its job starts: the grant names a GPU of node-a by count.
  auto granted = leader_->Client("alice").Post("/api/v1/gpu/allocate",
                                               {{"gpu_count", 1}, {"node_name", "node-a"}});
  ASSERT_TRUE(granted.ok());
  ASSERT_EQ(granted->status, 200) << granted->raw_body;
  const std::string id = granted->body["allocation_id"];
  const int granted_index = granted->body["gpus"][0]["gpu_index"];
  // The device plugin gave the job the other GPU.
  const int used_index = 1 - granted_index;
  SleepingChild job({"GPURM_ALLOCATION_ID=" + id});
  SleepingChild stray({"HOME=/tmp"});
  WriteMachine(used_index, json::array({{{"pid", job.pid()}, {"used_mib", 1024}},
                                        {{"pid", stray.pid()}, {"used_mib", 512}}}));
  StartAgent();

  ASSERT_TRUE(Eventually([&] {
    const json node = NodeA();
    return !node.is_null() && node["gpus"][used_index]["processes"].size() == 2;
  })) << NodeA().dump()
      << leader_->LogTail();
  const json node = NodeA();
  const json& gpu = node["gpus"][used_index];
  EXPECT_EQ(gpu["uuid"], "k8s:node-a:nvidia.com/gpu:" + std::to_string(used_index));
  // Live values from the agent's NVML (the fake's GPU 1 reports 10%).
  EXPECT_DOUBLE_EQ(node["gpus"][1]["utilization"].get<double>(), 0.10);
  const json& processes = gpu["processes"];
  EXPECT_EQ(processes[0]["pid"], job.pid());
  EXPECT_EQ(processes[0]["command"], "sleep");
  EXPECT_EQ(processes[0]["allocation_id"], id);
  EXPECT_EQ(processes[0]["class"], "within_grant") << processes.dump();
  EXPECT_EQ(processes[1]["class"], "foreign") << processes.dump();
  EXPECT_EQ(gpu["foreign_processes"], 1);
  EXPECT_TRUE(NoteSays("live data from node agents on 1 of 1 GPU node(s)"));
  const std::string metrics = leader_->Client().Get("/metrics")->raw_body;
  EXPECT_THAT(metrics, HasSubstr("gpurm_allocation_gpu_memory_used_bytes{allocation=\"" + id));

  // An agent that stops answering: a note, and the node keeps the API
  // server's view (still offered: the cluster says it is Ready).
  agent_->Kill();
  ASSERT_TRUE(Eventually([&] { return NoteSays("not answering"); }));
  EXPECT_TRUE(NoteSays("node agent gpurm/gpurm-node-x7k2p"));
  EXPECT_TRUE(NoteSays("live data from node agents on 0 of 1 GPU node(s)"));
  EXPECT_EQ(NodeA()["lost"], false);
  auto again = leader_->Client("bob").Post("/api/v1/gpu/allocate",
                                           {{"gpu_count", 1}, {"node_name", "node-a"}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 200) << again->raw_body;
}

// Node agents are reached at pod IPs, which their certificate does not
// name: the leader verifies it against its CA and not against the address.
TEST_F(KubeNodeAgentsTest, HttpsNodeAgentsAreVerifiedByTheirCaNotTheirPodIp) {
  testing::TestPki pki(dir_);
  pki.MakeCa("ca");
  pki.MakeCa("other-ca");
  pki.MakeLeaf("node", "ca", "01", "serverAuth", "DNS:gpurm-node.gpurm.svc");
  std::ofstream(dir_ + "/agent.yaml", std::ios::app)
      << "  tls:\n    cert_file: " << pki.Path("node.pem")
      << "\n    key_file: " << pki.Path("node.key") << "\n";
  WriteMachine();
  cli::TlsClientOptions insecure;  // The test's own health checks do not verify it.
  insecure.insecure = true;
  StartAgent(insecure);
  ASSERT_EQ(agent_->base_url().rfind("https://", 0), 0u);

  StartLeader(/*https=*/true, pki.Path("ca.pem"));
  ASSERT_TRUE(Eventually([&] { return NoteSays("live data from node agents on 1 of 1"); }))
      << Get("/health").dump();

  leader_.reset();
  StartLeader(/*https=*/true, pki.Path("other-ca.pem"));
  ASSERT_TRUE(Eventually([&] { return NoteSays("not answering"); })) << Get("/health").dump();
  EXPECT_TRUE(NoteSays("live data from node agents on 0 of 1"));
}

}  // namespace
}  // namespace gpurm
