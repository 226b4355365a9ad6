// The CLI binary against the real daemon: output and the exit codes scripts
// rely on (0 ok, 1 refused, 2 usage, 3 unreachable).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "support/daemon_process.h"

namespace gpurm {
namespace {

struct CommandResult {
  int exit_code = -1;
  std::string output;
};

// `environment`: assignments put before the command ("NAME=value ").
CommandResult RunCli(const std::string& url, const std::string& args,
                     const std::string& environment = "") {
  const std::string command =
      environment + testing::GpurmBinary() + " " + args + " --url " + url + " 2>&1";
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.output.append(buffer.data(), n);
  }
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

class CliE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<testing::DaemonProcess>(testing::MakeTempDir("gpurm-cli"),
                                                       testing::ExampleInventoryArgs());
    std::string error;
    ASSERT_TRUE(daemon_->Start(&error)) << error;
  }
  std::unique_ptr<testing::DaemonProcess> daemon_;
};

TEST_F(CliE2eTest, AllocateListReleaseWithTrustworthyExitCodes) {
  const std::string url = daemon_->base_url();
  CommandResult status = RunCli(url, "status");
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_NE(status.output.find("gpu-node-2"), std::string::npos) << status.output;

  CommandResult allocated = RunCli(url, "allocate --gpus 2 --type A100 --memory-gb 40 -o json");
  ASSERT_EQ(allocated.exit_code, 0) << allocated.output;
  const nlohmann::json answer = nlohmann::json::parse(allocated.output);
  const std::string id = answer["allocation_id"];

  CommandResult listed = RunCli(url, "allocations");
  EXPECT_EQ(listed.exit_code, 0);
  EXPECT_NE(listed.output.find(id), std::string::npos) << listed.output;

  CommandResult refused = RunCli(url, "allocate --gpus 1 --type H100");
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  CommandResult validate = RunCli(url, "validate --gpus 9 --type A100");
  EXPECT_EQ(validate.exit_code, 1) << validate.output;

  EXPECT_EQ(RunCli(url, "release " + id).exit_code, 0);
  EXPECT_EQ(RunCli(url, "release alloc-does-not-exist").exit_code, 1);
  EXPECT_EQ(RunCli(url, "allocate --gpus many").exit_code, 2);
}

TEST_F(CliE2eTest, PoliciesAreTheDaemonsAndAnUnknownOneIsRefusedByIt) {
  const std::string url = daemon_->base_url();
  CommandResult listed = RunCli(url, "policies -o json");
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  const nlohmann::json answer = nlohmann::json::parse(listed.output);
  EXPECT_EQ(answer["default"], "binpack");
  CommandResult table = RunCli(url, "policies");
  EXPECT_EQ(table.exit_code, 0) << table.output;
  for (const nlohmann::json& policy : answer["policies"]) {
    const std::string name = policy["name"];
    EXPECT_NE(table.output.find(name), std::string::npos) << table.output;
    EXPECT_EQ(RunCli(url, "validate --gpus 1 --policy " + name).exit_code, 0) << name;
  }
  EXPECT_NE(table.output.find("binpack (default)"), std::string::npos) << table.output;
  CommandResult unknown = RunCli(url, "validate --gpus 1 --policy fastest");
  EXPECT_EQ(unknown.exit_code, 1) << unknown.output;
  EXPECT_NE(unknown.output.find("(field: policy)"), std::string::npos) << unknown.output;
}

// `gpurm allocate` with no --owner and no --lease-ttl: the user's name and
// the server's default lease, never an anonymous allocation held forever.
TEST_F(CliE2eTest, AllocateRecordsTheUserAndGetsTheServersLease) {
  const std::string url = daemon_->base_url();
  CommandResult allocated =
      RunCli(url, "allocate --gpus 1 --type T4 -o json", "GPURM_OWNER=team-member ");
  ASSERT_EQ(allocated.exit_code, 0) << allocated.output;
  const nlohmann::json answer = nlohmann::json::parse(allocated.output);
  EXPECT_EQ(answer["allocation"]["owner"], "team-member") << answer.dump();
  EXPECT_EQ(answer["allocation"]["request"]["lease_ttl_seconds"], 300) << answer.dump();
  EXPECT_TRUE(answer["allocation"]["lease_expires_at"].is_string()) << answer.dump();

  CommandResult too_long = RunCli(url, "allocate --gpus 1 --type T4 --lease-ttl 86401");
  EXPECT_EQ(too_long.exit_code, 1) << too_long.output;
  EXPECT_NE(too_long.output.find("lease_ttl_seconds"), std::string::npos) << too_long.output;
}

// A request that fits says so, with no "Would fit: up to 0 GPU(s)" after it.
TEST_F(CliE2eTest, ValidateOfAFittingRequestSaysNothingOfWhatWouldFit) {
  CommandResult validate = RunCli(daemon_->base_url(), "validate --gpus 2 --type T4");
  EXPECT_EQ(validate.exit_code, 0) << validate.output;
  EXPECT_NE(validate.output.find("Possible now:  yes"), std::string::npos) << validate.output;
  EXPECT_EQ(validate.output.find("Would fit"), std::string::npos) << validate.output;
  EXPECT_EQ(validate.output.find("0.0 GB"), std::string::npos) << validate.output;
}

TEST_F(CliE2eTest, ExclusiveGrantsLeaveTheGpuOfAnOutsideJobAloneAndSayWhenTheyCannot) {
  const std::string url = daemon_->base_url();
  // gpu-node-2 GPU 0 runs an outside job (20 GB); seven A100s are idle or nearly.
  for (const std::string policy : {"binpack", "topology", "fragmentation-aware", "spread"}) {
    CommandResult validate =
        RunCli(url, "validate --gpus 1 --type A100 --policy " + policy + " -o json");
    ASSERT_EQ(validate.exit_code, 0) << validate.output;
    const nlohmann::json answer = nlohmann::json::parse(validate.output);
    const nlohmann::json& gpu = answer["placement"]["gpus"][0];
    EXPECT_FALSE(gpu["node_name"] == "gpu-node-2" && gpu["gpu_index"] == 0) << policy << " " << gpu;
    EXPECT_EQ(gpu["access"], "exclusive") << policy << " " << gpu;
    EXPECT_EQ(gpu["outside_use_gb"], 0.0) << policy;
  }
  // Eight A100s: only by taking the GPUs others use, and the answer says so.
  CommandResult allocated = RunCli(url, "allocate --gpus 8 --type A100");
  ASSERT_EQ(allocated.exit_code, 0) << allocated.output;
  EXPECT_NE(allocated.output.find("NOT exclusive: outside use 20.0 GB"), std::string::npos)
      << allocated.output;
  EXPECT_NE(allocated.output.find("Warning: gpu-node-2 GPU 0 is used by processes outside gpurm"),
            std::string::npos)
      << allocated.output;
  // Now an A100 fits once gpurm's allocation is released -- not so 70 GB on
  // all eight, which the outside job blocks.
  CommandResult held = RunCli(url, "validate --gpus 1 --type A100 -o json");
  EXPECT_EQ(held.exit_code, 1) << held.output;
  EXPECT_EQ(nlohmann::json::parse(held.output)["blocked_by"], "gpurm_allocations") << held.output;
  CommandResult blocked = RunCli(url, "validate --gpus 8 --type A100 --memory-gb 70");
  EXPECT_EQ(blocked.exit_code, 1) << blocked.output;
  EXPECT_NE(blocked.output.find("blocked by processes outside gpurm"), std::string::npos)
      << blocked.output;
}

TEST_F(CliE2eTest, UnreachableDaemonIsExitCode3) {
  CommandResult result = RunCli("http://127.0.0.1:1", "status");
  EXPECT_EQ(result.exit_code, 3) << result.output;
}

}  // namespace
}  // namespace gpurm
