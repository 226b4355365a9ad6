// A controller and its agents, all on this machine: each agent a real
// `gpurm serve` with local discovery on its own fake NVML machine, its own
// node name (GPURM_NODE_NAME), port and token file; the controller a real
// `gpurm serve` whose inventory is pulled from them (controller.agents).
// Covers the shared view, placement on the right node, an agent killed and
// restarted (lost, offered to nobody, its allocation kept and flagged; back
// with its processes accounted through it), and agents that answer garbage,
// claim another node's name, or never answer.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

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

// Not a gpurm agent: a loopback server that answers every request with
// `answer` (a whole HTTP response), or, with an empty one, accepts and never
// answers.
class FakeAgent {
 public:
  explicit FakeAgent(std::string answer) : answer_(std::move(answer)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    ::listen(listener_, 16);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    url_ = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeAgent() {
    stop_ = true;
    thread_.join();
    for (int fd : held_) ::close(fd);
    ::close(listener_);
  }
  const std::string& url() const { return url_; }

 private:
  void Serve() {
    while (!stop_) {
      pollfd ready{listener_, POLLIN, 0};
      if (::poll(&ready, 1, 50) <= 0) continue;
      const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      if (answer_.empty()) {
        held_.push_back(client);  // Never answered.
        continue;
      }
      char request[4096];
      (void)::recv(client, request, sizeof(request), 0);
      (void)::send(client, answer_.data(), answer_.size(), MSG_NOSIGNAL);
      ::close(client);
    }
  }

  std::string answer_;
  int listener_ = -1;
  std::string url_;
  std::atomic<bool> stop_{false};
  std::vector<int> held_;
  std::thread thread_;
};

class AgentsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("gpurm-agents-e2e");
    // The agents see only the fake NVML, whatever this host has.
    environment_ = std::make_unique<testing::FakeMachineEnvironment>(dir_, GPURM_FAKE_NVML);
    // One identity of role agent, shared by every agent's token file.
    ASSERT_EQ(testing::WriteAgentFiles(dir_, "controller"), "");
    agent_config_ = dir_ + "/agent.yaml";
  }
  void TearDown() override {
    controller_.reset();
    agents_.clear();
    environment_.reset();
  }

  // Writes agent `name`'s machine: two H100s with uuids of its own, the
  // second running `processes` ({pid, used_mib}).
  std::string WriteMachine(const std::string& name, const json& processes = json::array()) {
    const std::string path = dir_ + "/" + name + ".json";
    testing::WriteTwoH100Machine(GPURM_FAKE_MACHINES, path, 1, processes, "GPU-" + name);
    return path;
  }

  // (Re)starts agent `name` on its machine file; a restart keeps its port.
  // With `tls`, it serves https with the certificate the config names.
  void StartAgent(const std::string& name,
                  const std::optional<cli::TlsClientOptions>& tls = std::nullopt) {
    environment_->SetNodeName(name);
    environment_->SetNvmlMachine(dir_ + "/" + name + ".json");
    std::unique_ptr<DaemonProcess>& agent = agents_[name];
    if (!agent) {
      std::filesystem::create_directories(dir_ + "/" + name);
      agent = std::make_unique<DaemonProcess>(dir_ + "/" + name, std::vector<std::string>{});
      agent->set_config(agent_config_);
      if (tls) agent->set_tls(*tls);
    }
    std::string error;
    ASSERT_TRUE(agent->Start(&error)) << error;
  }

  // The controller over `agents` ({node name, url}); `ca_file` verifies
  // https agents.
  void StartController(const std::vector<std::pair<std::string, std::string>>& agents,
                       const std::string& ca_file = "") {
    const std::string config = dir_ + "/controller.yaml";
    std::ofstream out(config);
    out << "monitor_update_interval: 0.2\ncontroller:\n  request_timeout_s: 0.5\n"
        << "  ca_file: \"" << ca_file << "\"\n"
        << "  token_file: " << dir_ << "/agent.token\n  agents:\n";
    for (const auto& [name, url] : agents) {
      out << "    - name: " << name << "\n      url: " << url << "\n";
    }
    out.close();
    std::filesystem::create_directories(dir_ + "/controller");
    controller_ = std::make_unique<DaemonProcess>(dir_ + "/controller", std::vector<std::string>{});
    controller_->set_config(config);
    std::string error;
    ASSERT_TRUE(controller_->Start(&error)) << error;
  }

  // Agents node-a and node-b (two H100s each), and their controller.
  void StartTwoAgentsAndTheirController() {
    WriteMachine("node-a");
    WriteMachine("node-b");
    StartAgent("node-a");
    StartAgent("node-b");
    StartController(
        {{"node-a", agents_["node-a"]->base_url()}, {"node-b", agents_["node-b"]->base_url()}});
  }

  json Get(const std::string& path) {
    auto response = controller_->Client().Get("/api/v1/gpu" + path);
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    if (!response.ok()) return json();
    EXPECT_EQ(response->status, 200) << path << ": " << response->raw_body;
    return response->body;
  }
  // The controller's /monitoring entry of node `name` (null when absent).
  json MonitoredNode(const std::string& name) {
    const json monitoring = Get("/monitoring");
    for (const json& node : monitoring["nodes"]) {
      if (node["node_name"] == name) return node;
    }
    return json();
  }
  std::vector<std::string> Notes() { return Get("/health")["notes"]; }
  bool NoteSays(const std::string& part) {
    for (const std::string& note : Notes()) {
      if (note.find(part) != std::string::npos) return true;
    }
    return false;
  }

  std::string dir_;
  std::unique_ptr<testing::FakeMachineEnvironment> environment_;
  std::string agent_config_;
  std::map<std::string, std::unique_ptr<DaemonProcess>> agents_;
  std::unique_ptr<DaemonProcess> controller_;
};

TEST_F(AgentsE2eTest, OneViewOfEveryServerAndGrantsOnTheRightNode) {
  StartTwoAgentsAndTheirController();

  ASSERT_TRUE(Eventually([&] { return Get("/health")["gpus"] == 4; })) << Get("/health").dump();
  EXPECT_EQ(Get("/health")["provider"], "agents");
  for (const std::string name : {"node-a", "node-b"}) {
    const json node = MonitoredNode(name);
    ASSERT_FALSE(node.is_null()) << name;
    EXPECT_EQ(node["lost"], false);
    ASSERT_EQ(node["gpus"].size(), 2u);
    EXPECT_EQ(node["gpus"][0]["uuid"], "GPU-" + name + "-0");
    // Live readings from the agent's NVML: GPU 1 of the fake reports 10%.
    EXPECT_DOUBLE_EQ(node["gpus"][1]["utilization"].get<double>(), 0.10);
    EXPECT_EQ(node["gpus"][1]["name"], "NVIDIA H100 80GB HBM3");
  }
  EXPECT_EQ(Get("/status")["total_gpus"], 4);

  auto granted = controller_->Client("alice").Post("/api/v1/gpu/allocate",
                                                   {{"gpu_count", 2}, {"node_name", "node-b"}});
  ASSERT_TRUE(granted.ok());
  ASSERT_EQ(granted->status, 200) << granted->raw_body;
  for (const json& gpu : granted->body["gpus"]) {
    EXPECT_EQ(gpu["node_name"], "node-b");
    EXPECT_THAT(gpu["gpu_uuid"].get<std::string>(), HasSubstr("GPU-node-b-"));
  }
  // The agent's role reads only the snapshot: the controller's token is no
  // viewer's on the agent.
  cli::HttpClientOptions options;
  options.base_url = agents_["node-a"]->base_url();
  std::ifstream token_in(dir_ + "/agent.token");
  std::string token;
  std::getline(token_in, token);
  options.token = token;
  cli::HttpClient as_controller(options);
  EXPECT_EQ(as_controller.Get("/api/v1/gpu/agent/snapshot")->status, 200);
  EXPECT_EQ(as_controller.Get("/api/v1/gpu/status")->status, 403);
  // Without a token the agent refuses, and a controller is no agent itself.
  EXPECT_EQ(agents_["node-a"]->Client().Get("/api/v1/gpu/agent/snapshot")->status, 401);
  EXPECT_EQ(controller_->Client().Get("/api/v1/gpu/agent/snapshot")->status, 409);
}

TEST_F(AgentsE2eTest, AKilledAgentIsLostThenBackWithItsProcessesAccounted) {
  StartTwoAgentsAndTheirController();
  ASSERT_TRUE(Eventually([&] { return Get("/health")["gpus"] == 4; }));
  auto granted = controller_->Client("alice").Post("/api/v1/gpu/allocate",
                                                   {{"gpu_count", 1}, {"node_name", "node-a"}});
  ASSERT_TRUE(granted.ok());
  ASSERT_EQ(granted->status, 200) << granted->raw_body;
  const std::string id = granted->body["allocation_id"];
  const std::string uuid = granted->body["gpus"][0]["gpu_uuid"];

  agents_["node-a"]->Kill();
  ASSERT_TRUE(Eventually([&] { return MonitoredNode("node-a")["lost"] == true; }))
      << MonitoredNode("node-a").dump();
  const json lost = MonitoredNode("node-a");
  EXPECT_THAT(lost["lost_reason"].get<std::string>(), HasSubstr("not answering"));
  // It keeps the GPUs it last reported, each shown lost.
  ASSERT_EQ(lost["gpus"].size(), 2u);
  EXPECT_EQ(lost["gpus"][0]["state"], "lost");
  // Offered to nobody; the allocation on it is kept, flagged.
  auto refused = controller_->Client("bob").Post("/api/v1/gpu/allocate",
                                                 {{"gpu_count", 1}, {"node_name", "node-a"}});
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 409) << refused->raw_body;
  json allocation = Get("/allocations/" + id);
  EXPECT_EQ(allocation["state"], "active");
  EXPECT_EQ(allocation["lost_nodes"], json::array({"node-a"}));
  EXPECT_EQ(Get("/status")["available_gpus"], 2);  // node-b's only.
  const std::string metrics = controller_->Client().Get("/metrics")->raw_body;
  EXPECT_THAT(metrics, HasSubstr("gpurm_node_lost{node=\"node-a\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("gpurm_node_lost{node=\"node-b\"} 0"));

  // The job of the allocation runs on node-a's GPU when its agent returns.
  SleepingChild job({"GPURM_ALLOCATION_ID=" + id});
  SleepingChild stray({"HOME=/tmp"});
  const int gpu_index = granted->body["gpus"][0]["gpu_index"];
  ASSERT_EQ(gpu_index, 1) << "the fake's processes run on its GPU 1; policy changed?";
  WriteMachine("node-a", json::array({{{"pid", job.pid()}, {"used_mib", 1024}},
                                      {{"pid", stray.pid()}, {"used_mib", 512}}}));
  StartAgent("node-a");
  ASSERT_TRUE(Eventually([&] { return MonitoredNode("node-a")["lost"] == false; }));
  EXPECT_TRUE(NoteSays("agent node-a (" + agents_["node-a"]->base_url() + "): answering again") ||
              NoteSays("2 of 2 agents answering"));
  EXPECT_EQ(Get("/allocations/" + id)["lost_nodes"], json::array());
  ASSERT_TRUE(Eventually([&] {
    const json node = MonitoredNode("node-a");
    for (const json& gpu : node["gpus"]) {
      if (gpu["uuid"] == uuid && gpu["processes"].size() == 2) return true;
    }
    return false;
  })) << MonitoredNode("node-a").dump();
  const json back = MonitoredNode("node-a");
  for (const json& gpu : back["gpus"]) {
    if (gpu["uuid"] != uuid) continue;
    const json& processes = gpu["processes"];
    EXPECT_EQ(processes[0]["pid"], job.pid());
    EXPECT_EQ(processes[0]["allocation_id"], id);
    EXPECT_EQ(processes[0]["class"], "within_grant") << processes.dump();
    EXPECT_EQ(processes[0]["command"], "sleep");
    EXPECT_EQ(processes[1]["class"], "foreign") << processes.dump();
    EXPECT_EQ(gpu["foreign_processes"], 1);
  }
}

TEST_F(AgentsE2eTest, BadAgentsAreLostWithTheReasonAndChangeNothingElse) {
  WriteMachine("node-a");
  StartAgent("node-a");
  FakeAgent garbage(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n"
      "Connection: close\r\n\r\n{not json");
  const std::string wrong_shape = R"({"agent_protocol": 1, "node": {"name": "node-g", "gpus": 3}})";
  FakeAgent invalid("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(wrong_shape.size()) +
                    "\r\nConnection: close\r\n\r\n" + wrong_shape);
  FakeAgent silent("");
  // A valid snapshot of a node claiming node-a's first GPU.
  const std::string claim = json{
      {"agent_protocol", 1},
      {"node",
       {{"name", "node-dup"},
        {"gpus",
         {{{"uuid", "GPU-node-a-0"},
           {"name", "NVIDIA H100 80GB HBM3"},
           {"memory_total_mib", 81559}}}}}},
      {"taken_unix_ms", 0},
      {"stale_gpus", json::array()},
      {"notes", json::array()}}.dump();
  FakeAgent duplicate("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(claim.size()) +
                      "\r\nConnection: close\r\n\r\n" + claim);
  const std::string refusal =
      R"({"error": {"code": "unauthenticated", "message": "unknown or revoked token"}})";
  FakeAgent locked("HTTP/1.1 401 Unauthorized\r\nContent-Length: " +
                   std::to_string(refusal.size()) + "\r\nConnection: close\r\n\r\n" + refusal);
  StartController({{"node-a", agents_["node-a"]->base_url()},
                   {"node-impostor", agents_["node-a"]->base_url()},
                   {"node-garbage", garbage.url()},
                   {"node-g", invalid.url()},
                   {"node-slow", silent.url()},
                   {"node-dup", duplicate.url()},
                   {"node-locked", locked.url()}});

  ASSERT_TRUE(Eventually([&] { return NoteSays("1 of 7 agents answering"); }))
      << json(Notes()).dump();
  EXPECT_TRUE(NoteSays("reports GPU GPU-node-a-0, which agent 'node-a' reported first"));
  EXPECT_TRUE(NoteSays("answered HTTP 401: unknown or revoked token (controller.token_file"));
  EXPECT_TRUE(NoteSays("reports node 'node-a', but is configured as 'node-impostor'"));
  EXPECT_TRUE(
      NoteSays("agent node-garbage (" + garbage.url() + ") answered something that is not JSON"));
  EXPECT_TRUE(NoteSays("answered an invalid snapshot: node.gpus: expected an array"));
  EXPECT_TRUE(NoteSays("not answering: Timeout was reached"));
  // node-a is whole and the only one offered; the others are lost, empty.
  EXPECT_EQ(MonitoredNode("node-a")["lost"], false);
  EXPECT_EQ(MonitoredNode("node-a")["gpus"].size(), 2u);
  for (const std::string name :
       {"node-impostor", "node-garbage", "node-g", "node-slow", "node-dup", "node-locked"}) {
    const json node = MonitoredNode(name);
    EXPECT_EQ(node["lost"], true) << name;
    EXPECT_EQ(node["gpus"].size(), 0u) << name;
  }
  EXPECT_EQ(Get("/status")["total_gpus"], 2);
  EXPECT_EQ(Get("/status")["available_gpus"], 2);
}

// Agent and controller over TLS: the controller verifies the agent's
// certificate against controller.ca_file and refuses one another CA signed.
TEST_F(AgentsE2eTest, AgentsServedOverTlsAreVerifiedAgainstTheControllersCa) {
  testing::TestPki pki(dir_);
  pki.MakeCa("ca");
  pki.MakeCa("other-ca");
  pki.MakeLeaf("agent", "ca", "01", "serverAuth");
  std::ofstream(agent_config_, std::ios::app)
      << "  tls:\n    cert_file: " << pki.Path("agent.pem")
      << "\n    key_file: " << pki.Path("agent.key") << "\n";
  WriteMachine("node-a");
  cli::TlsClientOptions trust;
  trust.ca_bundle = pki.Path("ca.pem");
  StartAgent("node-a", trust);
  ASSERT_EQ(agents_["node-a"]->base_url().rfind("https://", 0), 0u);

  StartController({{"node-a", agents_["node-a"]->base_url()}}, pki.Path("ca.pem"));
  ASSERT_TRUE(Eventually([&] { return Get("/health")["gpus"] == 2; })) << json(Notes()).dump();
  EXPECT_EQ(MonitoredNode("node-a")["lost"], false);

  controller_.reset();
  StartController({{"node-a", agents_["node-a"]->base_url()}}, pki.Path("other-ca.pem"));
  ASSERT_TRUE(Eventually([&] { return MonitoredNode("node-a")["lost"] == true; }));
  EXPECT_THAT(MonitoredNode("node-a")["lost_reason"].get<std::string>(), HasSubstr("not answering"))
      << "an agent whose certificate the controller cannot verify is not answering it";
}

}  // namespace
}  // namespace gpurm
