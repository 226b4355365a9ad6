// Live monitoring through the real daemon: /metrics parsed by Prometheus'
// own promtool, the SSE event stream (changes beyond the threshold, health
// transitions, closed properly on shutdown), /status and /monitoring fed by
// the sampler, and `gpurm top`.
//
// The inventory is a static file the test rewrites; POST
// /monitoring/refresh makes the sampler read it at once instead of waiting
// for monitor_update_interval.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/daemon_process.h"
#include "support/stream_reader.h"

namespace gpurm {
namespace {

using nlohmann::json;

struct GpuScript {
  double utilization = 0.0;
  bool healthy = true;
};

// One node, "dgx-1", with eight H100s described by `gpus`.
std::string InventoryYaml(const std::vector<GpuScript>& gpus) {
  std::string yaml = "nodes:\n  - name: dgx-1\n    gpus:\n";
  for (size_t i = 0; i < gpus.size(); ++i) {
    yaml += "      - name: \"NVIDIA H100 80GB HBM3\"\n";
    yaml += "        uuid: \"GPU-" + std::to_string(i) + "\"\n";
    yaml += "        memory_total_mb: 81559\n";
    yaml += "        memory_used_mb: 1024\n";
    yaml += "        utilization: " + std::to_string(gpus[i].utilization) + "\n";
    yaml += "        temperature_c: 40\n";
    yaml += "        power_w: 120\n";
    yaml += "        power_limit_w: 700\n";
    if (!gpus[i].healthy) yaml += "        healthy: false\n        health_reason: \"XID 79\"\n";
  }
  return yaml;
}

struct CommandResult {
  int exit_code = -1;
  std::string output;
};

CommandResult Shell(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.output.append(buffer.data(), n);
  }
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

class MonitoringE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    work_dir_ = testing::MakeTempDir("gpurm-monitoring");
    inventory_ = work_dir_ + "/inventory.yaml";
    WriteInventory();
    daemon_ = std::make_unique<testing::DaemonProcess>(
        work_dir_, std::vector<std::string>{"--inventory", inventory_});
    std::string error;
    ASSERT_TRUE(daemon_->Start(&error)) << error;
  }
  void TearDown() override {
    daemon_.reset();
    std::filesystem::remove_all(work_dir_);
  }

  // Replaces the file in one step, so the provider never reads half of it.
  void WriteInventory() {
    const std::string temporary = inventory_ + ".tmp";
    std::ofstream(temporary) << InventoryYaml(gpus_);
    std::filesystem::rename(temporary, inventory_);
  }

  void Refresh() {
    auto answer = daemon_->Client().Post("/api/v1/gpu/monitoring/refresh", json::object());
    ASSERT_TRUE(answer.ok()) << answer.status().ToString();
    ASSERT_EQ(answer->status, 200) << answer->raw_body;
  }

  json GetJson(const std::string& path) {
    auto answer = daemon_->Client().Get(path);
    EXPECT_TRUE(answer.ok());
    if (!answer.ok()) return json();
    EXPECT_EQ(answer->status, 200) << path << ": " << answer->raw_body;
    return answer->body;
  }

  std::string Metrics() {
    auto answer = daemon_->Client().Get("/metrics");
    EXPECT_TRUE(answer.ok());
    return answer.ok() ? answer->raw_body : "";
  }

  std::string Cli(const std::string& args) {
    return testing::GpurmBinary() + " " + args + " --url " + daemon_->base_url();
  }

  std::string work_dir_;
  std::string inventory_;
  std::vector<GpuScript> gpus_ = std::vector<GpuScript>(8);
  std::unique_ptr<testing::DaemonProcess> daemon_;
};

TEST_F(MonitoringE2eTest, MetricsPassPromtoolAndFollowTheInventoryAndAllocations) {
  gpus_[3].healthy = false;
  gpus_[0].utilization = 0.75;
  WriteInventory();
  Refresh();
  auto allocated = daemon_->Client("alice").Post("/api/v1/gpu/allocate", {{"gpu_count", 2}});
  ASSERT_TRUE(allocated.ok());
  ASSERT_EQ(allocated->status, 200) << allocated->raw_body;

  const std::string text = Metrics();
  const std::string file = work_dir_ + "/metrics.txt";
  std::ofstream(file) << text;
  const CommandResult promtool = Shell("promtool check metrics < " + file);
  EXPECT_EQ(promtool.exit_code, 0)
      << "promtool (scripts/install-deps.sh installs it): " << promtool.output << "\n"
      << text;

  const std::string labels =
      "{node=\"dgx-1\",gpu=\"0\",uuid=\"GPU-0\",model=\"NVIDIA H100 80GB HBM3\"}";
  EXPECT_NE(text.find("gpurm_gpu_utilization_ratio" + labels + " 0.75\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("gpurm_gpu_memory_total_bytes" + labels + " 85520809984\n"),
            std::string::npos);
  EXPECT_NE(text.find("gpurm_gpu_memory_used_bytes" + labels + " 1073741824\n"), std::string::npos);
  EXPECT_NE(text.find("gpurm_gpu_temperature_celsius" + labels + " 40\n"), std::string::npos);
  EXPECT_NE(text.find("gpurm_gpu_power_watts" + labels + " 120\n"), std::string::npos);
  EXPECT_NE(text.find("gpurm_gpu_healthy{node=\"dgx-1\",gpu=\"3\",uuid=\"GPU-3\",model=\"NVIDIA "
                      "H100 80GB HBM3\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("gpurm_allocations_active 1\n"), std::string::npos);
  size_t allocated_gpus = 0;
  for (size_t at = text.find("\ngpurm_gpu_allocated{"); at != std::string::npos;
       at = text.find("\ngpurm_gpu_allocated{", at + 1)) {
    if (text.substr(at, text.find('\n', at + 1) - at).ends_with("} 1")) ++allocated_gpus;
  }
  EXPECT_EQ(allocated_gpus, 2u);
  EXPECT_NE(text.find("gpurm_http_requests_total{method=\"POST\",route=\"/api/v1/gpu/allocate\","
                      "code=\"200\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("gpurm_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/"
                      "v1/gpu/allocate\",le=\"+Inf\"} 1\n"),
            std::string::npos);
}

TEST_F(MonitoringE2eTest, EventsStreamReportsChangesAndHealthAndEndOnShutdown) {
  testing::StreamReader stream(daemon_->base_url(), "/api/v1/gpu/events");
  ASSERT_TRUE(stream.sent());
  ASSERT_TRUE(stream.ReadUntil(": gpurm GPU events\n\n")) << stream.received();
  EXPECT_NE(stream.received().find("Content-Type: text/event-stream"), std::string::npos);

  gpus_[0].utilization = 0.5;   // Beyond the 0.05 threshold: an event.
  gpus_[1].utilization = 0.03;  // Within it: none.
  gpus_[5].healthy = false;     // Always an event.
  WriteInventory();
  Refresh();
  ASSERT_TRUE(stream.ReadUntil("event: health\n")) << stream.received();
  ASSERT_TRUE(stream.ReadUntil("\n\n", stream.received().find("event: health\n")));
  const std::string& events = stream.received();
  EXPECT_NE(events.find("event: change\ndata: "), std::string::npos) << events;
  EXPECT_NE(events.find("\"uuid\":\"GPU-0\""), std::string::npos) << events;
  EXPECT_NE(events.find("\"uuid\":\"GPU-5\""), std::string::npos) << events;
  EXPECT_EQ(events.find("\"uuid\":\"GPU-1\""), std::string::npos) << events;
  EXPECT_NE(events.find("\"health_reason\":\"XID 79\""), std::string::npos) << events;

  // A graceful shutdown ends the stream with the last chunk, not a reset.
  EXPECT_EQ(daemon_->Terminate(), 0);
  stream.ReadToEnd();
  EXPECT_TRUE(stream.received().ends_with("\r\n0\r\n\r\n")) << stream.received();
}

TEST_F(MonitoringE2eTest, StatusAndMonitoringServeTheLatestSample) {
  gpus_[0].utilization = 0.8;
  gpus_[7].healthy = false;
  WriteInventory();
  Refresh();
  const json status = GetJson("/api/v1/gpu/status");
  EXPECT_DOUBLE_EQ(status["utilization"]["gpu_utilization"].get<double>(), 0.1);
  EXPECT_EQ(status["available_gpus"], 7);
  const json monitoring = GetJson("/api/v1/gpu/monitoring");
  const json& gpus = monitoring["nodes"][0]["gpus"];
  ASSERT_EQ(gpus.size(), 8u);
  EXPECT_DOUBLE_EQ(gpus[0]["utilization"].get<double>(), 0.8);
  EXPECT_GE(gpus[0]["history"].size(), 2u);  // The first sample and the refresh.
  EXPECT_DOUBLE_EQ(gpus[0]["history"].back()["utilization"].get<double>(), 0.8);
  EXPECT_EQ(gpus[7]["healthy"], false);
  EXPECT_EQ(gpus[7]["state"], "unhealthy");
  // The unhealthy GPU is not offered.
  auto refused = daemon_->Client().Post("/api/v1/gpu/allocate", {{"gpu_count", 8}});
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 409) << refused->raw_body;
}

TEST_F(MonitoringE2eTest, TopPrintsAFrameAndStatusJsonParses) {
  gpus_[2].healthy = false;
  WriteInventory();
  Refresh();
  const CommandResult frame = Shell(Cli("top --once --sort util"));
  EXPECT_EQ(frame.exit_code, 0) << frame.output;
  EXPECT_NE(frame.output.find("dgx-1  8 GPU(s)"), std::string::npos) << frame.output;
  EXPECT_NE(frame.output.find("UNHEALTHY: XID 79"), std::string::npos) << frame.output;
  EXPECT_NE(frame.output.find("NVIDIA H100 80GB HBM3"), std::string::npos);

  EXPECT_EQ(Shell(Cli("top --once --node elsewhere")).exit_code, 1);
  EXPECT_EQ(Shell(Cli("top --once --sort bogus")).exit_code, 2);
  const CommandResult as_json = Shell(Cli("top --once -o json"));
  ASSERT_EQ(as_json.exit_code, 0) << as_json.output;
  EXPECT_EQ(json::parse(as_json.output)["nodes"][0]["gpus"].size(), 8u);
  const CommandResult status = Shell(Cli("status -o json"));
  ASSERT_EQ(status.exit_code, 0) << status.output;
  EXPECT_TRUE(json::parse(status.output)["utilization"].contains("gpu_utilization"));
}

TEST_F(MonitoringE2eTest, TopRefreshesUntilInterrupted) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const std::string binary = testing::GpurmBinary();
  const std::string url = daemon_->base_url();
  std::vector<std::string> args = {binary, "top", "--interval", "0.2", "--url", url};
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::close(pipe_fds[0]);
    ::execv(argv[0], argv.data());
    std::_Exit(127);
  }
  ::close(pipe_fds[1]);
  // Two frames show that it refreshes; then Ctrl-C ends it cleanly.
  std::string output;
  char buffer[4096];
  while (output.find("gpurm top -") == output.rfind("gpurm top -")) {
    const ssize_t n = ::read(pipe_fds[0], buffer, sizeof(buffer));
    if (n <= 0) break;
    output.append(buffer, static_cast<size_t>(n));
  }
  ::kill(pid, SIGINT);
  while (::read(pipe_fds[0], buffer, sizeof(buffer)) > 0) {
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_NE(output.find("dgx-1  8 GPU(s)"), std::string::npos) << output;
}

}  // namespace
}  // namespace gpurm
