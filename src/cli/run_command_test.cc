#include "cli/run_command.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "integrations/launchers/local_node.h"

namespace gpurm::cli {
namespace {

using nlohmann::json;
using Strings = std::vector<std::string>;

// An /allocate answer as the daemon gives it (fields gpurm run reads).
json AllocateAnswer(int gpus) {
  json indices = json::array();
  for (int i = 0; i < gpus; ++i) indices.push_back(i + 2);
  return json{
      {"success", true},
      {"allocation_id", "alloc-0123"},
      {"node_name", "gpu-node-1"},
      {"gpus", json::array({{{"node_name", "gpu-node-1"}, {"gpu_index", 2}}})},
      {"gpu_config",
       {{"device", "gpu"},
        {"vendor", "nvidia"},
        {"memory_limit_mb", 22118},
        {"environment", {{"CUDA_VISIBLE_DEVICES", "2,3"}, {"CUDA_DEVICE_ORDER", "PCI_BUS_ID"}}},
        {"distributed", {{"nproc_per_node", gpus}, {"nnodes", 1}}},
        {"warnings", json::array()},
        {"nodes", json::array({{{"node_name", "gpu-node-1"},
                                {"gpu_indices", indices},
                                {"environment",
                                 {{"CUDA_VISIBLE_DEVICES", "2,3"},
                                  {"CUDA_DEVICE_ORDER", "PCI_BUS_ID"},
                                  {"NCCL_DEBUG", "WARN"}}}}})}}}};
}

// Sets (or, with nullopt, removes) an environment variable for the life of
// the object, and then puts back what was there.
class ScopedEnvironmentVariable {
 public:
  ScopedEnvironmentVariable(std::string name, const std::optional<std::string>& value)
      : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str()); old != nullptr) saved_ = old;
    Set(value);
  }
  ~ScopedEnvironmentVariable() { Set(saved_); }
  ScopedEnvironmentVariable(const ScopedEnvironmentVariable&) = delete;
  ScopedEnvironmentVariable& operator=(const ScopedEnvironmentVariable&) = delete;

 private:
  void Set(const std::optional<std::string>& value) {
    if (value) {
      ::setenv(name_.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

  std::string name_;
  std::optional<std::string> saved_;
};

RunFlags Flags(Strings command, bool distributed = false) {
  RunFlags flags;
  flags.command = std::move(command);
  flags.request.distributed = distributed;
  return flags;
}

TEST(RunCommandTest, RecognizesPythonScriptCommands) {
  EXPECT_TRUE(IsPythonScriptCommand({"python", "train.py"}));
  EXPECT_TRUE(IsPythonScriptCommand({"python3", "train.py", "--lr", "0.1"}));
  EXPECT_TRUE(IsPythonScriptCommand({"/opt/venv/bin/python3.11", "dir/train.py"}));
  EXPECT_TRUE(IsPythonScriptCommand({"python", "-m", "my.trainer"}));
  EXPECT_FALSE(IsPythonScriptCommand({"python"}));
  EXPECT_FALSE(IsPythonScriptCommand({"python", "-c", "print(1)"}));
  EXPECT_FALSE(IsPythonScriptCommand({"python", "-u", "train.py"}));
  EXPECT_FALSE(IsPythonScriptCommand({"python", "-m"}));
  EXPECT_FALSE(IsPythonScriptCommand({"python", "-m", "torch.distributed.run", "train.py"}));
  EXPECT_FALSE(IsPythonScriptCommand({"torchrun", "train.py"}));
  EXPECT_FALSE(IsPythonScriptCommand({"pythonic", "train.py"}));
  EXPECT_FALSE(IsPythonScriptCommand({"sh", "-c", "python train.py"}));
}

TEST(RunCommandTest, TorchrunKeepsTheInterpreterAndTheScriptArguments) {
  EXPECT_EQ(TorchrunCommand({"/venv/bin/python", "train.py", "--epochs", "3"}, 4),
            (Strings{"/venv/bin/python", "-c", kTorchrunLauncher, "--standalone", "--nnodes=1",
                     "--nproc_per_node=4", "train.py", "--epochs", "3"}));
}

TEST(RunCommandTest, GpuLaunchExportsTheNodeEnvironmentAndGpurmVariables) {
  Result<LaunchPlan> plan = PlanGpuLaunch(AllocateAnswer(2), Flags({"python", "train.py"}),
                                          "http://h:1", "alice", "gpu-node-1");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->allocation_id, "alloc-0123");
  EXPECT_EQ(plan->node_name, "gpu-node-1");
  EXPECT_EQ(plan->argv, (Strings{"python", "train.py"}));
  const auto& env = plan->environment;
  EXPECT_EQ(env.at("CUDA_VISIBLE_DEVICES"), "2,3");
  EXPECT_EQ(env.at("CUDA_DEVICE_ORDER"), "PCI_BUS_ID");
  EXPECT_EQ(env.at("NCCL_DEBUG"), "WARN");  // From the node's environment.
  EXPECT_EQ(env.at("GPURM_ALLOCATION_ID"), "alloc-0123");
  EXPECT_EQ(env.at("GPURM_URL"), "http://h:1");
  EXPECT_EQ(env.at("GPURM_NODE_NAME"), "gpu-node-1");
  EXPECT_EQ(env.at("GPURM_OWNER"), "alice");
  EXPECT_EQ(env.at("GPURM_MEMORY_LIMIT_MB"), "22118");
}

TEST(RunCommandTest, DistributedPythonRunsThroughTorchrunWithOneProcessPerGpu) {
  Result<LaunchPlan> plan = PlanGpuLaunch(
      AllocateAnswer(2), Flags({"python3", "train.py", "--x"}, true), "u", "", "gpu-node-1");
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->argv, (Strings{"python3", "-c", kTorchrunLauncher, "--standalone", "--nnodes=1",
                                 "--nproc_per_node=2", "train.py", "--x"}));
  EXPECT_EQ(plan->environment.count("GPURM_OWNER"), 0u);

  // Anything else runs as given, distributed or not.
  Result<LaunchPlan> shell =
      PlanGpuLaunch(AllocateAnswer(2), Flags({"sh", "-c", "exit 0"}, true), "u", "", "gpu-node-1");
  ASSERT_TRUE(shell.ok());
  EXPECT_EQ(shell->argv, (Strings{"sh", "-c", "exit 0"}));
}

TEST(RunCommandTest, RefusesAllocationsOverSeveralNodes) {
  json answer = AllocateAnswer(1);
  json second = answer["gpu_config"]["nodes"][0];
  second["node_name"] = "gpu-node-2";
  answer["gpu_config"]["nodes"].push_back(second);
  Result<LaunchPlan> plan =
      PlanGpuLaunch(answer, Flags({"python", "train.py"}, true), "u", "", "gpu-node-1");
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(plan.status().message().find("gpu-node-1 gpu-node-2"), std::string::npos);
}

TEST(RunCommandTest, RefusesAGrantOnAnotherNode) {
  Result<LaunchPlan> plan = PlanGpuLaunch(AllocateAnswer(1), Flags({"true"}), "u", "", "vm");
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(plan.status().message().find("on node gpu-node-1, not on this machine (vm)"),
            std::string::npos)
      << plan.status().message();
  EXPECT_NE(plan.status().message().find("not supported by gpurm run"), std::string::npos);
}

TEST(RunCommandTest, HidesGpusWhenThePlanNamesNoDeviceVariables) {
  json answer = AllocateAnswer(1);
  answer["gpu_config"]["nodes"][0]["environment"] = json::object();
  answer["gpu_config"]["warnings"] = {"the vendor of the allocated GPUs is unknown"};
  Result<LaunchPlan> plan = PlanGpuLaunch(answer, Flags({"true"}), "u", "", "gpu-node-1");
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->environment.at("CUDA_VISIBLE_DEVICES"), "");
  EXPECT_EQ(plan->environment.at("HIP_VISIBLE_DEVICES"), "");
  EXPECT_EQ(plan->warnings.size(), 2u);
}

TEST(RunCommandTest, RejectsAnAnswerWithoutAllocation) {
  EXPECT_FALSE(PlanGpuLaunch(json{{"success", true}}, Flags({"true"}), "u", "", "vm").ok());
}

TEST(RunCommandTest, CpuLaunchHidesEveryGpuAndClearsInheritedAllocationVariables) {
  LaunchPlan plan = PlanCpuLaunch(Flags({"python", "train.py"}, true), "http://h:1", "bob", "vm");
  EXPECT_EQ(plan.environment.at("CUDA_VISIBLE_DEVICES"), "");
  EXPECT_EQ(plan.environment.at("HIP_VISIBLE_DEVICES"), "");
  EXPECT_EQ(plan.environment.at("GPURM_URL"), "http://h:1");
  EXPECT_EQ(plan.environment.at("GPURM_NODE_NAME"), "vm");
  EXPECT_EQ(plan.environment.at("GPURM_ALLOCATION_ID"), std::nullopt);
  EXPECT_EQ(plan.environment.at("GPURM_MEMORY_LIMIT_MB"), std::nullopt);
  EXPECT_TRUE(plan.allocation_id.empty());
  EXPECT_EQ(plan.argv, (Strings{"python", "-c", kTorchrunLauncher, "--standalone", "--nnodes=1",
                                "--nproc_per_node=1", "train.py"}));
}

TEST(RunCommandTest, RequestsGpusOnThisMachineUnlessAnywhere) {
  RunFlags flags = Flags({"true"});
  Result<RequestFlags> pinned = RequestFromThisNode(flags, "vm");
  ASSERT_TRUE(pinned.ok());
  EXPECT_EQ(pinned->node, "vm");

  flags.request.node = "vm";
  EXPECT_EQ(RequestFromThisNode(flags, "vm")->node, "vm");

  flags.request.node = "gpu-node-2";
  Result<RequestFlags> elsewhere = RequestFromThisNode(flags, "vm");
  ASSERT_FALSE(elsewhere.ok());
  EXPECT_EQ(elsewhere.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(elsewhere.status().message().find("--node gpu-node-2 is not this machine, which is "
                                              "node vm"),
            std::string::npos)
      << elsewhere.status().message();

  flags.anywhere = true;
  EXPECT_EQ(RequestFromThisNode(flags, "vm")->node, "gpu-node-2");
  flags.request.node.reset();
  EXPECT_EQ(RequestFromThisNode(flags, "vm")->node, std::nullopt);
}

TEST(RunCommandTest, ThisNodeIsGpurmNodeNameElseTheHostName) {
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof(host) - 1), 0);
  {
    const ScopedEnvironmentVariable named("GPURM_NODE_NAME", "gpu-node-7");
    EXPECT_EQ(LocalNodeName(), "gpu-node-7");
  }
  {
    const ScopedEnvironmentVariable empty("GPURM_NODE_NAME", "");
    EXPECT_EQ(LocalNodeName(), host);
  }
  const ScopedEnvironmentVariable unset("GPURM_NODE_NAME", std::nullopt);
  EXPECT_EQ(LocalNodeName(), host);
}

TEST(RunCommandTest, NodeNamesAreThoseOfTheMonitoringAnswer) {
  EXPECT_EQ(NodeNames(json{{"nodes",
                            {{{"node_name", "gpu-node-1"}, {"gpus", json::array()}},
                             {{"node_name", "gpu-node-2"}, {"gpus", json::array()}}}}}),
            (Strings{"gpu-node-1", "gpu-node-2"}));
  EXPECT_TRUE(NodeNames(json::object()).empty());
}

HttpResponse Answer(long status, json body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

TEST(RunCommandTest, ClassifiesAllocateAnswers) {
  EXPECT_EQ(ClassifyAllocateAnswer(Answer(200, AllocateAnswer(1))), AllocateOutcome::kAllocated);
  EXPECT_EQ(ClassifyAllocateAnswer(
                Answer(409, {{"error", {{"code", "unschedulable_now"}, {"message", "busy"}}}})),
            AllocateOutcome::kBusy);
  EXPECT_EQ(ClassifyAllocateAnswer(Answer(409, {{"error", {{"code", "unschedulable_never"}}}})),
            AllocateOutcome::kNever);
  EXPECT_EQ(ClassifyAllocateAnswer(Answer(400, {{"error", {{"code", "invalid_argument"}}}})),
            AllocateOutcome::kInvalid);
  EXPECT_EQ(ClassifyAllocateAnswer(Answer(409, {{"error", {{"code", "already_exists"}}}})),
            AllocateOutcome::kRefused);
  EXPECT_EQ(ClassifyAllocateAnswer(Answer(503, {{"error", {{"code", "unavailable"}}}})),
            AllocateOutcome::kUnavailable);
  EXPECT_EQ(ClassifyAllocateAnswer(Answer(200, nullptr)), AllocateOutcome::kUnavailable);
  EXPECT_EQ(ClassifyAllocateAnswer(Answer(200, json::object())), AllocateOutcome::kUnavailable);
  EXPECT_EQ(ClassifyAllocateAnswer(Result<HttpResponse>(Unavailable("refused"))),
            AllocateOutcome::kUnavailable);
}

TEST(RunCommandTest, IdempotencyKeysDifferAndFitTheHeaderLimit) {
  const std::string a = NewIdempotencyKey();
  const std::string b = NewIdempotencyKey();
  EXPECT_NE(a, b);
  EXPECT_LE(a.size(), 256u);
  EXPECT_EQ(a.rfind("gpurm-run-", 0), 0u);
}

// The subcommand as main() wires it, against a daemon that is not there.
struct Cli {
  int exit_code = -1;
  std::ostringstream out;
  std::ostringstream err;

  int Run(const Strings& args) {
    CLI::App app{"gpurm"};
    app.require_subcommand(1);
    RegisterClientCommands(app, &exit_code, out, err);
    Strings argv = {"gpurm"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<const char*> pointers;
    for (const std::string& arg : argv) pointers.push_back(arg.c_str());
    return ParseAndRun(app, static_cast<int>(pointers.size()), pointers.data(), &exit_code);
  }
};

class RunCommandCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_dir_ = std::filesystem::temp_directory_path() /
               ("gpurm-run-test-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(log_dir_);
  }
  void TearDown() override { std::filesystem::remove_all(log_dir_); }
  std::filesystem::path log_dir_;
};

TEST_F(RunCommandCliTest, NeedsACommand) {
  Cli cli;
  EXPECT_EQ(cli.Run({"run", "--gpus", "1", "--log-dir", log_dir_.string()}), kExitUsage);
  EXPECT_NE(cli.err.str().find("no command given"), std::string::npos) << cli.err.str();
}

TEST_F(RunCommandCliTest, RejectsBadFlagsBeforeContactingTheDaemon) {
  EXPECT_EQ(Cli().Run({"run", "--lease-ttl", "0", "--", "true"}), kExitUsage);
  EXPECT_EQ(Cli().Run({"run", "--wait-timeout", "-1", "--", "true"}), kExitUsage);
  EXPECT_EQ(Cli().Run({"run", "--gpus", "0", "--", "true"}), kExitUsage);
}

TEST_F(RunCommandCliTest, UnreachableDaemonIsExitCode3AndTheCommandDoesNotRun) {
  const std::filesystem::path marker = log_dir_ / "ran";
  Cli cli;
  const int code = cli.Run({"run", "--url", "http://127.0.0.1:1", "--log-dir", log_dir_.string(),
                            "--", "sh", "-c", "touch " + marker.string()});
  EXPECT_EQ(code, kExitUnavailable) << cli.err.str();
  EXPECT_FALSE(std::filesystem::exists(marker));
  // The reason is on stderr and in training.log.
  std::ifstream log(log_dir_ / "training.log");
  std::stringstream text;
  text << log.rdbuf();
  EXPECT_NE(text.str().find("cannot allocate"), std::string::npos) << text.str();
  EXPECT_NE(cli.err.str().find("cannot allocate"), std::string::npos) << cli.err.str();
}

// Exit 1, not 3: the (absent) daemon is never asked.
TEST_F(RunCommandCliTest, NodeOfAnotherMachineIsRefusedBeforeContactingTheDaemon) {
  const ScopedEnvironmentVariable this_node("GPURM_NODE_NAME", "gpu-node-1");
  const std::filesystem::path marker = log_dir_ / "ran";
  Cli cli;
  const int code =
      cli.Run({"run", "--url", "http://127.0.0.1:1", "--node", "gpu-node-2", "--log-dir",
               log_dir_.string(), "--", "sh", "-c", "touch " + marker.string()});
  EXPECT_EQ(code, kExitRefused) << cli.err.str();
  EXPECT_NE(cli.err.str().find("--node gpu-node-2 is not this machine, which is node gpu-node-1"),
            std::string::npos)
      << cli.err.str();
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST_F(RunCommandCliTest, ArgumentsAfterTheSeparatorBelongToTheCommand) {
  // `--gpus 0` after "--" is the command's, so parsing succeeds and the run
  // fails only at the (absent) daemon.
  Cli cli;
  EXPECT_EQ(cli.Run({"run", "--url", "http://127.0.0.1:1", "--log-dir", log_dir_.string(), "--",
                     "sh", "--gpus", "0"}),
            kExitUnavailable)
      << cli.err.str();
}

}  // namespace
}  // namespace gpurm::cli
