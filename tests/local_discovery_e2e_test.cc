// The real daemon on local discovery, with the fake vendor libraries of
// tests/fakes in place of the drivers (GPURM_NVML_LIBRARY & co.): it serves
// the GPUs NVML reports, never grants one NVML reports broken, keeps serving
// the others while one GPU's NVML calls hang, and with no vendor library at
// all still starts, answers every endpoint and says why there is no GPU.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/daemon_process.h"
#include "support/eventually.h"
#include "support/fake_machine_environment.h"
#include "support/sleeping_child.h"
#include "support/stream_reader.h"

namespace gpurm {
namespace {

using nlohmann::json;
using ::testing::Contains;
using testing::DaemonProcess;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::SleepingChild;

// Points the daemon's local discovery at the fakes. The daemon inherits the
// environment when DaemonProcess forks it.
class LocalDiscoveryE2eTest : public ::testing::Test {
 protected:
  void TearDown() override {
    daemon_.reset();
    environment_.reset();
  }

  // `nvml_machine`: a file of tests/fakes/machines (or an absolute path), or
  // nullopt for a machine without the NVIDIA driver.
  // `config`: the daemon's config file; empty = the repository's.
  void StartDaemon(const std::optional<std::string>& nvml_machine, const std::string& config = "") {
    if (dir_.empty()) dir_ = testing::MakeTempDir("gpurm-local-e2e");
    // The test sees the same machine whatever this host has installed.
    if (!environment_) {
      environment_ = std::make_unique<testing::FakeMachineEnvironment>(dir_, GPURM_FAKE_NVML);
    }
    std::optional<std::string> machine;
    if (nvml_machine) {
      machine = nvml_machine->starts_with("/")
                    ? *nvml_machine
                    : std::string(GPURM_FAKE_MACHINES) + "/" + *nvml_machine;
    }
    environment_->SetNvmlMachine(machine);
    daemon_ = std::make_unique<DaemonProcess>(dir_, std::vector<std::string>{});
    if (!config.empty()) daemon_->set_config(config);
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
  // The response status and body of an allocation request.
  std::pair<long, json> Allocate(const json& request) {
    auto response = daemon_->Client("e2e").Post("/api/v1/gpu/allocate", request);
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    if (!response.ok()) return {0, json()};
    return {response->status, response->body};
  }

  // The 8xH100 node with GPU 3's memory call blocking while the returned
  // file exists (tests/fakes/machines/README.md); the file is not there yet.
  std::string StartDaemonWithGpu3Hanging() {
    dir_ = testing::MakeTempDir("gpurm-local-e2e");
    std::string hang = dir_ + "/gpu3.hang";
    std::ifstream in(std::string(GPURM_FAKE_MACHINES) + "/nvml_h100x8.json");
    json machine = json::parse(in);
    machine["gpus"][3]["hang"] = {{"nvmlDeviceGetMemoryInfo", hang}};
    std::ofstream(dir_ + "/nvml_hanging.json") << machine.dump();
    StartDaemon(dir_ + "/nvml_hanging.json");
    return hang;
  }

  // A sampling pass now (POST /monitoring/refresh), then /monitoring's GPUs.
  json RefreshedGpus() {
    auto refreshed = daemon_->Client().Post("/api/v1/gpu/monitoring/refresh", json::object());
    EXPECT_TRUE(refreshed.ok()) << refreshed.status().ToString();
    if (refreshed.ok()) {
      EXPECT_EQ(refreshed->status, 200) << refreshed->raw_body;
    }
    return Get("/monitoring")["nodes"][0]["gpus"];
  }

  std::string dir_;
  std::unique_ptr<testing::FakeMachineEnvironment> environment_;
  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(LocalDiscoveryE2eTest, ServesTheGpusNvmlReports) {
  StartDaemon("nvml_h100x8.json");
  const json health = Get("/health");
  EXPECT_EQ(health["provider"], "local");
  EXPECT_EQ(health["gpus"], 8);
  EXPECT_THAT(health["notes"].get<std::vector<std::string>>(),
              Contains("nvidia: NVML 12.550.54.15, driver 550.54.15, 8 GPU(s)"));

  const json monitoring = Get("/monitoring");
  ASSERT_EQ(monitoring["nodes"].size(), 1u);
  const json& gpus = monitoring["nodes"][0]["gpus"];
  ASSERT_EQ(gpus.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    SCOPED_TRACE("GPU " + std::to_string(i));
    const json& gpu = gpus[i];
    EXPECT_EQ(gpu["index"], i);
    EXPECT_EQ(gpu["name"], "NVIDIA H100 80GB HBM3");
    EXPECT_DOUBLE_EQ(gpu["utilization"].get<double>(), 0.10 * i);
    EXPECT_DOUBLE_EQ(gpu["temperature_c"].get<double>(), 30.0 + i);
    EXPECT_DOUBLE_EQ(gpu["power_w"].get<double>(), 70.0 + 10.0 * i);
    EXPECT_EQ(gpu["healthy"], true);
  }

  // All eight can be had at once: they are one NVLink island.
  const auto [status, body] = Allocate({{"gpu_count", 8}, {"gpu_type", "H100"}});
  EXPECT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["gpus"].size(), 8u);
}

TEST_F(LocalDiscoveryE2eTest, AGpuNvmlReportsBrokenIsNeverGranted) {
  StartDaemon("nvml_failing.json");
  const json monitoring = Get("/monitoring");
  const json& gpus = monitoring["nodes"][0]["gpus"];
  ASSERT_EQ(gpus.size(), 6u);
  std::vector<bool> healthy;
  for (const json& gpu : gpus) healthy.push_back(gpu["healthy"].get<bool>());
  EXPECT_THAT(healthy, ElementsAre(true, false, false, false, false, false));
  EXPECT_EQ(gpus[1]["health_reason"], "XID 79");

  // One GPU at a time until the daemon refuses: only the healthy one is ever granted.
  std::set<std::string> granted;
  for (int attempt = 0; attempt < 6; ++attempt) {
    const auto [status, body] = Allocate({{"gpu_count", 1}});
    if (status != 200) {
      EXPECT_EQ(status, 409) << body.dump();
      break;
    }
    for (const json& gpu : body["gpus"]) granted.insert(gpu["gpu_uuid"].get<std::string>());
  }
  EXPECT_THAT(granted, ElementsAre("GPU-a100-0"));
  const auto [status, body] = Allocate({{"gpu_count", 2}});
  EXPECT_EQ(status, 409) << body.dump();
}

TEST_F(LocalDiscoveryE2eTest, AGpuWhoseNvmlCallsHangIsStaleAndTheOthersStayLive) {
  const std::string hang = StartDaemonWithGpu3Hanging();
  const std::string hung_uuid = Get("/monitoring")["nodes"][0]["gpus"][3]["uuid"];

  std::ofstream(hang) << "hang\n";
  // The refresh answers after the per-GPU deadline (monitor_sample_timeout_s, 2 s).
  const json gpus = RefreshedGpus();
  ASSERT_EQ(gpus.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    SCOPED_TRACE("GPU " + std::to_string(i));
    EXPECT_EQ(gpus[i]["healthy"], i != 3) << gpus[i]["health_reason"];
  }
  EXPECT_THAT(gpus[3]["health_reason"].get<std::string>(),
              ::testing::StartsWith("sampling timed out after 2 s; values from "));
  // The last values stay on display.
  EXPECT_DOUBLE_EQ(gpus[3]["temperature_c"].get<double>(), 33.0);
  EXPECT_THAT(Get("/health")["notes"].get<std::vector<std::string>>(),
              Contains(::testing::AllOf(HasSubstr("nvidia: GPU 3 (" + hung_uuid + ")"),
                                        HasSubstr("sampling timed out after 2 s"),
                                        HasSubstr("is still running"))));

  // Nothing of the stale GPU is granted: one GPU at a time, the other 7 only.
  std::set<std::string> granted;
  for (int attempt = 0; attempt < 8; ++attempt) {
    const auto [status, body] = Allocate({{"gpu_count", 1}});
    if (status != 200) {
      EXPECT_EQ(status, 409) << body.dump();
      break;
    }
    for (const json& gpu : body["gpus"]) granted.insert(gpu["gpu_uuid"].get<std::string>());
  }
  EXPECT_EQ(granted.size(), 7u);
  EXPECT_FALSE(granted.contains(hung_uuid));

  // The call returns: a pass or two later GPU 3 is live again, and granted.
  std::filesystem::remove(hang);
  bool recovered = false;
  for (int pass = 0; pass < 20 && !recovered; ++pass) {
    recovered = RefreshedGpus()[3]["healthy"].get<bool>();
  }
  ASSERT_TRUE(recovered);
  const auto [status, body] = Allocate({{"gpu_count", 1}});
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["gpus"][0]["gpu_uuid"], hung_uuid);
}

TEST_F(LocalDiscoveryE2eTest, AStuckNvmlCallDoesNotHoldUpShutdown) {
  const std::string hang = StartDaemonWithGpu3Hanging();
  std::ofstream(hang) << "hang\n";
  ASSERT_FALSE(RefreshedGpus()[3]["healthy"].get<bool>());
  // SIGTERM with GPU 3's call still stuck: the daemon waits its grace
  // (monitor_sample_timeout_s) for the call, leaves it behind and exits.
  EXPECT_EQ(daemon_->Terminate(), 0);
  EXPECT_THAT(daemon_->LogTail(), HasSubstr("gpurm stopped"));
  std::filesystem::remove(hang);
}

TEST_F(LocalDiscoveryE2eTest, WithoutAnyVendorLibraryEveryEndpointStillAnswers) {
  StartDaemon(std::nullopt);
  const json health = Get("/health");
  EXPECT_EQ(health["gpus"], 0);
  EXPECT_THAT(health["notes"].get<std::vector<std::string>>(),
              ElementsAre("nvidia: /nonexistent/libnvidia-ml.so.1 not found (no NVIDIA driver)",
                          "amd: no AMD GPU on PCI", "intel: no Intel GPU on PCI",
                          "ascend: no Ascend NPU on PCI"));
  EXPECT_EQ(Get("/status")["total_nodes"], 1);
  EXPECT_EQ(Get("/nodes")["count"], 0);
  EXPECT_EQ(Get("/monitoring")["nodes"][0]["gpus"].size(), 0u);
  EXPECT_EQ(Get("/allocations")["count"], 0);
  const auto [status, body] = Allocate({{"gpu_count", 1}});
  EXPECT_EQ(status, 409) << body.dump();
  EXPECT_EQ(body["success"], false);
  EXPECT_THAT(daemon_->LogTail(), HasSubstr("nvidia: /nonexistent/libnvidia-ml.so.1 not found"));
}

}  // namespace
}  // namespace gpurm

namespace gpurm {
namespace {

// A DGX H100 with GPUs 4 and 5 in MIG mode (two 3g.40gb; a 2g.20gb, two
// 1g.10gb and a 3g.40gb): MIG devices are shown under their GPU with no
// utilization, granted alone by memory or profile and handed to CUDA by
// uuid; the GPUs in MIG mode are never granted whole.
TEST_F(LocalDiscoveryE2eTest, MigDevicesAreUnitsUnderTheirGpu) {
  StartDaemon("nvml_dgx_h100_mig.json");
  const json health = Get("/health");
  EXPECT_EQ(health["gpus"], 8);
  EXPECT_EQ(health["mig_devices"], 6);
  EXPECT_THAT(health["notes"].get<std::vector<std::string>>(),
              Contains("nvidia: NVML 12.550.54.15, driver 550.54.15, 8 GPU(s), 6 MIG device(s) "
                       "on 2 GPU(s) in MIG mode"));

  const json gpus = Get("/monitoring")["nodes"][0]["gpus"];
  ASSERT_EQ(gpus.size(), 8u);  // MIG devices are under their GPU, not beside it.
  for (int i = 0; i < 8; ++i) {
    SCOPED_TRACE("GPU " + std::to_string(i));
    const bool mig = i == 4 || i == 5;
    EXPECT_EQ(gpus[i]["index"], i);
    EXPECT_EQ(gpus[i]["mig_mode"], mig);
    EXPECT_EQ(gpus[i]["state"], mig ? "mig" : "free");
    EXPECT_EQ(gpus[i]["mig_devices"].size(), i == 4 ? 2u : i == 5 ? 4u : 0u);
    // No utilization in MIG mode: null, not 0.
    EXPECT_EQ(gpus[i]["utilization"].is_null(), mig);
    EXPECT_EQ(gpus[i]["utilization_available"], !mig);
  }
  const json& mig = gpus[5]["mig_devices"][1];
  EXPECT_EQ(mig["uuid"], "MIG-00000005-0000-4000-8000-000000000001");
  EXPECT_EQ(mig["index"], 5);
  EXPECT_EQ(mig["gpu_type"], "H100 MIG 1g.10gb");
  EXPECT_EQ(mig["mig_profile"], "1g.10gb");
  EXPECT_EQ(mig["mig_parent_uuid"], gpus[5]["uuid"]);
  EXPECT_EQ(mig["name"], "NVIDIA H100 80GB HBM3 MIG 1g.10gb");
  EXPECT_DOUBLE_EQ(mig["memory_total_gb"].get<double>(), 9.75);  // 9984 MiB, as reported.
  EXPECT_TRUE(mig["utilization"].is_null());
  EXPECT_EQ(mig["utilization_available"], false);
  EXPECT_EQ(mig["processes"].size(), 1u);
  ASSERT_FALSE(mig["history"].empty());
  EXPECT_TRUE(mig["history"][0]["utilization"].is_null());

  const json status = Get("/status");
  EXPECT_EQ(status["total_gpus"], 12);  // 6 whole GPUs and 6 MIG devices.
  EXPECT_EQ(status["mig_devices"], 6);
  bool listed = false;
  for (const json& row : status["available_nodes"]) {
    if (row["gpu_type"] != "H100 MIG 1g.10gb") continue;
    listed = true;
    EXPECT_EQ(row["available_gpus"], 2);
    EXPECT_TRUE(row["utilization"].is_null());
  }
  EXPECT_TRUE(listed) << status.dump();

  // 8 GB: the best-fitting free MIG device (the 1g.10gb whose outside process
  // leaves 8947 MiB), made visible to CUDA by its uuid.
  const auto [small_status, small] = Allocate({{"gpu_count", 1}, {"memory_gb", 8}});
  ASSERT_EQ(small_status, 200) << small.dump();
  ASSERT_EQ(small["gpus"].size(), 1u);
  const std::string small_uuid = small["gpus"][0]["gpu_uuid"];
  EXPECT_EQ(small_uuid, "MIG-00000005-0000-4000-8000-000000000001");
  EXPECT_EQ(small["gpus"][0]["gpu_index"], 5);
  EXPECT_EQ(small["gpu_config"]["environment"]["CUDA_VISIBLE_DEVICES"], small_uuid);
  EXPECT_EQ(small["gpu_config"]["environment"]["GPURM_CUDA_MEMORY_LIMITS_MB"], "8947");
  EXPECT_EQ(small["gpu_config"]["gpu_type"], "H100 MIG 1g.10gb");

  // By profile.
  const auto [profile_status, profile] = Allocate({{"gpu_count", 1}, {"gpu_type", "3g.40gb"}});
  ASSERT_EQ(profile_status, 200) << profile.dump();
  EXPECT_EQ(profile["gpu_config"]["gpu_type"], "H100 MIG 3g.40gb");
  EXPECT_THAT(profile["gpu_config"]["environment"]["CUDA_VISIBLE_DEVICES"].get<std::string>(),
              ::testing::StartsWith("MIG-"));

  // Eight whole H100s: never, two are in MIG mode.
  const auto [eight_status, eight] = Allocate({{"gpu_count", 8}, {"gpu_type", "H100"}});
  EXPECT_EQ(eight_status, 409) << eight.dump();
  EXPECT_THAT(eight.dump(), HasSubstr("in MIG mode"));

  // Monitoring shows who holds the MIG device.
  const json after = Get("/monitoring")["nodes"][0]["gpus"][5]["mig_devices"];
  bool held = false;
  for (const json& device : after) {
    if (device["uuid"] != small_uuid) continue;
    held = true;
    EXPECT_EQ(device["state"], "allocated");
    EXPECT_EQ(device["allocations"].size(), 1u);
  }
  EXPECT_TRUE(held);

  auto metrics = daemon_->Client().Get("/metrics");
  ASSERT_TRUE(metrics.ok());
  const std::string text = metrics->raw_body;
  EXPECT_THAT(text, HasSubstr("gpurm_gpu_mig_mode{node="));
  EXPECT_THAT(text, HasSubstr("mig_profile=\"1g.10gb\""));
  // No utilization sample for MIG devices nor for the GPUs in MIG mode.
  for (size_t at = text.find("gpurm_gpu_utilization_ratio{"); at != std::string::npos;
       at = text.find("gpurm_gpu_utilization_ratio{", at + 1)) {
    const std::string line = text.substr(at, text.find('\n', at) - at);
    EXPECT_THAT(line, ::testing::Not(HasSubstr("MIG-"))) << line;
    EXPECT_THAT(line, ::testing::Not(HasSubstr("gpu=\"4\""))) << line;
  }
}

TEST_F(LocalDiscoveryE2eTest, MonitoringTellsWhoseProcessRunsOnEachGpu) {
  // The H100 node without processes: allocate two GPUs, release one.
  dir_ = testing::MakeTempDir("gpurm-local-e2e");
  json machine;
  {
    std::ifstream in(std::string(GPURM_FAKE_MACHINES) + "/nvml_h100x8.json");
    machine = json::parse(in);
  }
  for (json& gpu : machine["gpus"]) gpu["processes"] = json::array();
  std::ofstream(dir_ + "/nvml.json") << machine.dump();
  StartDaemon(dir_ + "/nvml.json");
  const auto [status_a, kept] = Allocate({{"gpu_count", 1}, {"gpu_type", "H100"}});
  ASSERT_EQ(status_a, 200) << kept.dump();
  const auto [status_b, ended] = Allocate({{"gpu_count", 1}, {"gpu_type", "H100"}});
  ASSERT_EQ(status_b, 200) << ended.dump();
  const std::string kept_id = kept["allocation_id"];
  const std::string ended_id = ended["allocation_id"];
  auto released =
      daemon_->Client("e2e").Post("/api/v1/gpu/release", json{{"allocation_id", ended_id}});
  ASSERT_TRUE(released.ok());
  ASSERT_EQ(released->status, 200) << released->raw_body;
  const int kept_gpu = kept["gpus"][0]["gpu_index"];
  const int ended_gpu = ended["gpus"][0]["gpu_index"];
  const int other_gpu =
      kept_gpu == 7 || ended_gpu == 7 ? (kept_gpu == 6 || ended_gpu == 6 ? 5 : 6) : 7;
  daemon_.reset();

  // Real processes: the allocation's job, someone's notebook, a job left
  // over from the released allocation, and the kept allocation's job on a
  // GPU it was not granted.
  SleepingChild job({"GPURM_ALLOCATION_ID=" + kept_id});
  SleepingChild notebook({"HOME=/tmp"});
  SleepingChild leftover({"GPURM_ALLOCATION_ID=" + ended_id});
  SleepingChild stray({"GPURM_ALLOCATION_ID=" + kept_id});
  machine["gpus"][kept_gpu]["processes"] = {{{"pid", job.pid()}, {"used_mib", 2048}},
                                            {{"pid", notebook.pid()}, {"used_mib", 1024}}};
  machine["gpus"][ended_gpu]["processes"] = {{{"pid", leftover.pid()}, {"used_mib", 512}}};
  machine["gpus"][other_gpu]["processes"] = {{{"pid", stray.pid()}, {"used_mib", 256}}};
  std::ofstream(dir_ + "/nvml.json") << machine.dump();
  StartDaemon(dir_ + "/nvml.json");

  const json gpus = RefreshedGpus();
  auto process_of = [&](int gpu, int64_t pid) {
    for (const json& process : gpus[gpu]["processes"]) {
      if (process["pid"] == pid) return process;
    }
    ADD_FAILURE() << "no process " << pid << " on GPU " << gpu << ": " << gpus[gpu].dump();
    return json();
  };
  const json job_entry = process_of(kept_gpu, job.pid());
  EXPECT_EQ(job_entry["class"], "within_grant") << job_entry.dump();
  EXPECT_EQ(job_entry["allocation_id"], kept_id);
  EXPECT_EQ(job_entry["owner"], "e2e");
  EXPECT_EQ(job_entry["command"], "sleep");
  EXPECT_DOUBLE_EQ(job_entry["memory_used_gb"].get<double>(), 2.0);
  const json notebook_entry = process_of(kept_gpu, notebook.pid());
  EXPECT_EQ(notebook_entry["class"], "foreign") << notebook_entry.dump();
  EXPECT_TRUE(notebook_entry["allocation_id"].is_null());
  EXPECT_EQ(process_of(ended_gpu, leftover.pid())["class"], "ended");
  EXPECT_EQ(process_of(other_gpu, stray.pid())["class"], "foreign");
  EXPECT_EQ(gpus[kept_gpu]["foreign_processes"], 1);
  EXPECT_EQ(gpus[other_gpu]["foreign_processes"], 1);
  ASSERT_EQ(gpus[kept_gpu]["allocation_usage"].size(), 1u) << gpus[kept_gpu].dump();
  EXPECT_EQ(gpus[kept_gpu]["allocation_usage"][0]["allocation_id"], kept_id);
  EXPECT_DOUBLE_EQ(gpus[kept_gpu]["allocation_usage"][0]["used_gb"].get<double>(), 2.0);
  EXPECT_EQ(gpus[kept_gpu]["allocation_usage"][0]["over_grant"], false);

  auto metrics = daemon_->Client().Get("/metrics");
  ASSERT_TRUE(metrics.ok());
  const std::string& text = metrics->raw_body;
  const std::string kept_uuid = kept["gpus"][0]["gpu_uuid"];
  bool counted = false;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("gpurm_gpu_foreign_processes{", 0) == 0 &&
        line.find("uuid=\"" + kept_uuid + "\"") != std::string::npos) {
      counted = true;
      EXPECT_EQ(line.substr(line.rfind(' ') + 1), "1") << line;
    }
    if (line.rfind("gpurm_allocation_gpu_memory_used_bytes{", 0) == 0 &&
        line.find("allocation=\"" + kept_id + "\"") != std::string::npos &&
        line.find("uuid=\"" + kept_uuid + "\"") != std::string::npos) {
      EXPECT_NE(line.find("owner=\"e2e\""), std::string::npos) << line;
      EXPECT_EQ(std::stod(line.substr(line.rfind(' ') + 1)), 2048.0 * 1024 * 1024) << line;
    }
  }
  EXPECT_TRUE(counted) << text;

  // The job ends; the driver still lists it: an event says it left
  // within_grant (it is no longer visible to the daemon).
  testing::StreamReader stream(daemon_->base_url(), "/api/v1/gpu/events");
  ASSERT_TRUE(stream.sent());
  ASSERT_TRUE(stream.ReadUntil(": gpurm GPU events\n\n")) << stream.received();
  job.Kill();
  RefreshedGpus();
  ASSERT_TRUE(stream.ReadUntil("event: process\n")) << stream.received();
  const size_t at = stream.received().find("event: process\n");
  ASSERT_TRUE(stream.ReadUntil("\n\n", at)) << stream.received();
  const std::string data_prefix = "data: ";
  const size_t data = stream.received().find(data_prefix, at) + data_prefix.size();
  const json event =
      json::parse(stream.received().substr(data, stream.received().find('\n', data) - data));
  EXPECT_EQ(event["type"], "process");
  EXPECT_EQ(event["uuid"], kept_uuid);
  EXPECT_EQ(event["process"]["allocation_id"], kept_id);
  EXPECT_EQ(event["process"]["previous_class"], "within_grant");
  EXPECT_EQ(event["process"]["class"], "unknown");
}

// server.enforcement with terminate: a process left over from a released
// allocation that ignores SIGTERM is killed once the grace period is over,
// someone's process outside gpurm gets SIGTERM, and the allocation's own job
// runs on; each action is an audit-log line.
TEST_F(LocalDiscoveryE2eTest, EnforcementTerminatesLeftoversAndOutsidersAndSparesTheJob) {
  dir_ = testing::MakeTempDir("gpurm-local-e2e");
  const std::string config = dir_ + "/enforcing.yaml";
  std::ofstream(config) << "monitor_update_interval: 0.2\nserver:\n  enforcement:\n"
                        << "    foreign_process: terminate\n    ended_allocation: terminate\n"
                        << "    grace_s: 0.5\n";
  json machine;
  {
    std::ifstream in(std::string(GPURM_FAKE_MACHINES) + "/nvml_h100x8.json");
    machine = json::parse(in);
  }
  for (json& gpu : machine["gpus"]) gpu["processes"] = json::array();
  std::ofstream(dir_ + "/nvml.json") << machine.dump();
  StartDaemon(dir_ + "/nvml.json", config);
  const auto [status_a, kept] = Allocate({{"gpu_count", 1}, {"gpu_type", "H100"}});
  ASSERT_EQ(status_a, 200) << kept.dump();
  const auto [status_b, ended] = Allocate({{"gpu_count", 1}, {"gpu_type", "H100"}});
  ASSERT_EQ(status_b, 200) << ended.dump();
  const std::string ended_id = ended["allocation_id"];
  auto released =
      daemon_->Client("e2e").Post("/api/v1/gpu/release", json{{"allocation_id", ended_id}});
  ASSERT_TRUE(released.ok());
  daemon_.reset();

  SleepingChild job({"GPURM_ALLOCATION_ID=" + kept["allocation_id"].get<std::string>()});
  SleepingChild notebook({"HOME=/tmp"});
  SleepingChild leftover({"GPURM_ALLOCATION_ID=" + ended_id}, /*ignore_sigterm=*/true);
  const int kept_gpu = kept["gpus"][0]["gpu_index"];
  const int ended_gpu = ended["gpus"][0]["gpu_index"];
  machine["gpus"][kept_gpu]["processes"] = {{{"pid", job.pid()}, {"used_mib", 2048}},
                                            {{"pid", notebook.pid()}, {"used_mib", 1024}}};
  machine["gpus"][ended_gpu]["processes"] = {{{"pid", leftover.pid()}, {"used_mib", 512}}};
  std::ofstream(dir_ + "/nvml.json") << machine.dump();
  StartDaemon(dir_ + "/nvml.json", config);

  EXPECT_TRUE(testing::Eventually([&] { return notebook.EndedBySignal().has_value(); }));
  EXPECT_EQ(notebook.EndedBySignal(), SIGTERM);
  EXPECT_TRUE(testing::Eventually([&] { return leftover.EndedBySignal().has_value(); }));
  EXPECT_EQ(leftover.EndedBySignal(), SIGKILL) << "it ignores SIGTERM";
  EXPECT_EQ(job.EndedBySignal(), std::nullopt) << "within its grant: left alone";

  std::ifstream audit_in(dir_ + "/logs/audit.log");
  std::stringstream audit;
  audit << audit_in.rdbuf();
  const std::string leftover_pid = " pid=" + std::to_string(leftover.pid()) + " ";
  EXPECT_THAT(audit.str(), HasSubstr("event=enforcement action=sigterm" + leftover_pid));
  EXPECT_THAT(audit.str(), HasSubstr("event=enforcement action=sigkill" + leftover_pid));
  EXPECT_THAT(
      audit.str(),
      HasSubstr("event=enforcement action=sigterm pid=" + std::to_string(notebook.pid()) + " "));
  EXPECT_THAT(audit.str(), ::testing::Not(HasSubstr("pid=" + std::to_string(job.pid()) + " ")));
}

}  // namespace
}  // namespace gpurm
