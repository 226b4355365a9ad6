// `gpurm run` end to end: the real daemon, the real gpurm binary, small shell
// commands as the training job. Shows that the allocation is released however
// the command ends (exit code, SIGKILL of the command, SIGTERM to gpurm run),
// that a SIGKILLed gpurm run is cleaned up by the lease and leaves the
// command able to print and checkpoint, that output reaches training.log
// tagged with time and allocation, when it falls back to the CPU, and that
// the command runs only on the machine its GPUs are on. This machine is made
// a node of the demo cluster (GPURM_NODE_NAME) as each test needs: gpurm run
// asks for the GPUs of the machine it runs on.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integrations/launchers/process_runner.h"
#include "support/daemon_process.h"
#include "support/eventually.h"

namespace gpurm {
namespace {

using nlohmann::json;
using Strings = std::vector<std::string>;

struct Launch {
  ProcessExit exit;
  std::string out;  // gpurm run's stdout: the command's stdout.
  std::string err;  // gpurm run's stderr: its messages and the command's stderr.
};

// "key=value" from the command's output, up to the next blank.
std::string Field(const std::string& text, const std::string& key) {
  const size_t at = text.find(key + "=");
  if (at == std::string::npos) return "";
  const size_t start = at + key.size() + 1;
  return text.substr(start, text.find_first_of(" \n", start) - start);
}

class RunLauncherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    work_dir_ = testing::MakeTempDir("gpurm-run");
    daemon_ = std::make_unique<testing::DaemonProcess>(work_dir_, testing::ExampleInventoryArgs());
    std::string error;
    ASSERT_TRUE(daemon_->Start(&error)) << error;
    job_dir_ = work_dir_ + "/job";
    std::filesystem::create_directories(job_dir_);
    environment_["GPURM_LOG_DIR"] = job_dir_ + "/logs";
    environment_["GPURM_NODE_NAME"] = "gpu-node-2";  // The A100s.
  }
  void TearDown() override {
    daemon_.reset();
    std::filesystem::remove_all(work_dir_);
  }

  // Runs `gpurm run ARGS -- sh -c SCRIPT` from job_dir_ (so logs/ lands
  // there). `on_output` sees everything gpurm run has printed so far, after
  // each chunk, with gpurm run's pid: tests act on what the job says.
  Launch RunGpurm(const Strings& args, const std::string& script,
                  const std::function<void(const Launch&, pid_t)>& on_output = nullptr) {
    ProcessSpec spec;
    spec.argv = {"sh",  "-c",     "cd \"$1\" && shift && exec \"$@\"",
                 "sh",  job_dir_, testing::GpurmBinary(),
                 "run", "--url",  daemon_->base_url()};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.argv.insert(spec.argv.end(), {"--", "sh", "-c", script});
    spec.inherit_stdin = false;
    spec.parent_death_signal = SIGKILL;  // Should the test die first.
    spec.environment = environment_;
    Launch launch;
    auto child = ChildProcess::Spawn(spec);
    EXPECT_TRUE(child.ok()) << child.status().ToString();
    if (!child.ok()) return launch;
    const pid_t pid = (*child)->pid();
    Result<ProcessExit> exit = (*child)->Wait(
        [&](OutputStream stream, std::string_view chunk) {
          (stream == OutputStream::kStdout ? launch.out : launch.err).append(chunk);
          if (on_output) on_output(launch, pid);
        },
        WaitOptions{});
    EXPECT_TRUE(exit.ok()) << exit.status().ToString();
    if (exit.ok()) launch.exit = *exit;
    return launch;
  }

  json Allocation(const std::string& id) const {
    Result<cli::HttpResponse> response = daemon_->Client().Get("/api/v1/gpu/allocations/" + id);
    EXPECT_TRUE(response.ok());
    return response.ok() ? response->body : json();
  }

  std::string State(const std::string& id) const {
    const json allocation = Allocation(id);
    return allocation.contains("state") ? allocation["state"].get<std::string>() : "";
  }

  int ActiveAllocations() const {
    Result<cli::HttpResponse> response = daemon_->Client().Get("/api/v1/gpu/allocations");
    return response.ok() ? static_cast<int>(response->body["allocations"].size()) : -1;
  }

  // Every allocation ever made, ended ones too.
  json AllAllocations() const {
    Result<cli::HttpResponse> response = daemon_->Client().Get("/api/v1/gpu/allocations?all=true");
    return response.ok() ? response->body["allocations"] : json();
  }

  std::string TrainingLog(const std::string& dir = "") const {
    std::ifstream in((dir.empty() ? job_dir_ + "/logs" : dir) + "/training.log");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  // What the daemon and gpurm run said, for failure messages.
  std::string Context(const Launch& launch) const {
    return "stdout:\n" + launch.out + "\nstderr:\n" + launch.err + "\ndaemon:\n" +
           daemon_->LogTail();
  }

  // Wait() watches these; blocked before any process or thread starts.
  SignalBlock block_{{SIGCHLD, SIGINT, SIGTERM, SIGHUP}};
  std::string work_dir_;
  std::string job_dir_;
  std::unique_ptr<testing::DaemonProcess> daemon_;
  // For gpurm run (ProcessSpec::environment): SetUp points its log directory
  // at the job's logs/.
  std::map<std::string, std::optional<std::string>> environment_;
};

TEST_F(RunLauncherTest, ExitCodeOfTheCommandIsKeptAndTheAllocationReleased) {
  const Launch launch =
      RunGpurm({"--gpus", "2", "--type", "A100"},
               "echo id=$GPURM_ALLOCATION_ID cvd=$CUDA_VISIBLE_DEVICES order=$CUDA_DEVICE_ORDER "
               "node=$GPURM_NODE_NAME limit=$GPURM_MEMORY_LIMIT_MB url=$GPURM_URL; exit 3");
  EXPECT_EQ(launch.exit.exit_code, 3) << Context(launch);
  const std::string id = Field(launch.out, "id");
  ASSERT_FALSE(id.empty()) << Context(launch);
  EXPECT_EQ(Field(launch.out, "cvd").size(), 3u) << launch.out;  // Two indices: "i,j".
  EXPECT_EQ(Field(launch.out, "order"), "PCI_BUS_ID");
  EXPECT_EQ(Field(launch.out, "node"), "gpu-node-2");
  EXPECT_FALSE(Field(launch.out, "limit").empty());
  EXPECT_EQ(Field(launch.out, "url"), daemon_->base_url());
  EXPECT_EQ(State(id), "released") << Allocation(id).dump();
  EXPECT_EQ(ActiveAllocations(), 0);
}

TEST_F(RunLauncherTest, CommandKilledWithSigkillIsReleased) {
  bool killed = false;
  const Launch launch =
      RunGpurm({"--gpus", "1"}, "echo id=$GPURM_ALLOCATION_ID pid=$$; while :; do sleep 1; done",
               [&](const Launch& so_far, pid_t) {
                 const std::string pid = Field(so_far.out, "pid");
                 if (!killed && !pid.empty() && so_far.out.find('\n') != std::string::npos) {
                   killed = true;
                   ::kill(std::stoi(pid), SIGKILL);
                 }
               });
  ASSERT_TRUE(killed) << Context(launch);
  EXPECT_EQ(launch.exit.exit_code, 128 + SIGKILL) << Context(launch);
  EXPECT_NE(launch.err.find("killed by SIGKILL"), std::string::npos) << launch.err;
  EXPECT_EQ(State(Field(launch.out, "id")), "released");
  EXPECT_EQ(ActiveAllocations(), 0);
}

TEST_F(RunLauncherTest, SigtermToGpurmRunIsForwardedAndTheAllocationReleased) {
  bool sent = false;
  const Launch launch =
      RunGpurm({"--gpus", "1"}, "echo id=$GPURM_ALLOCATION_ID; while :; do sleep 1; done",
               [&](const Launch& so_far, pid_t gpurm) {
                 if (!sent && so_far.out.find('\n') != std::string::npos) {
                   sent = true;
                   ::kill(gpurm, SIGTERM);
                 }
               });
  ASSERT_TRUE(sent) << Context(launch);
  EXPECT_EQ(launch.exit.signal, 0) << Context(launch);
  EXPECT_EQ(launch.exit.exit_code, 143) << Context(launch);
  EXPECT_NE(launch.err.find("forwarded SIGTERM"), std::string::npos) << launch.err;
  EXPECT_EQ(State(Field(launch.out, "id")), "released");
  EXPECT_EQ(ActiveAllocations(), 0);
}

// The request is for this machine's GPUs: the same request lands on whichever
// node this machine is.
TEST_F(RunLauncherTest, AsksForTheGpusOfThisMachine) {
  for (const std::string node : {"gpu-node-1", "gpu-node-3"}) {
    environment_["GPURM_NODE_NAME"] = node;
    const Launch launch =
        RunGpurm({"--gpus", "1"}, "echo id=$GPURM_ALLOCATION_ID node=$GPURM_NODE_NAME");
    EXPECT_EQ(launch.exit.exit_code, 0) << Context(launch);
    EXPECT_EQ(Field(launch.out, "node"), node) << Context(launch);
    EXPECT_EQ(Allocation(Field(launch.out, "id"))["node_name"], node) << Context(launch);
  }
}

TEST_F(RunLauncherTest, AMachineTheDaemonDoesNotKnowGetsNothingAndIsToldWhy) {
  environment_["GPURM_NODE_NAME"] = "workstation-7";
  const Launch launch = RunGpurm({"--gpus", "1"}, "touch ran");
  EXPECT_EQ(launch.exit.exit_code, 1) << Context(launch);
  EXPECT_NE(launch.err.find("this machine is node \"workstation-7\""), std::string::npos)
      << launch.err;
  EXPECT_NE(launch.err.find("the daemon at " + daemon_->base_url() + " has no node by that name"),
            std::string::npos)
      << launch.err;
  EXPECT_NE(launch.err.find("(its nodes: gpu-node-1, gpu-node-2, gpu-node-3)"), std::string::npos)
      << launch.err;
  EXPECT_NE(launch.err.find("set GPURM_NODE_NAME"), std::string::npos) << launch.err;
  EXPECT_FALSE(std::filesystem::exists(job_dir_ + "/ran"));
  EXPECT_EQ(AllAllocations().size(), 0u) << AllAllocations().dump();  // Not even a released one.
}

// --anywhere may be granted GPUs elsewhere: they are given back at once, and
// the command is not started here, where they are not.
TEST_F(RunLauncherTest, AnywhereGrantedElsewhereIsReleasedAndTheCommandNotRun) {
  environment_["GPURM_NODE_NAME"] = "gpu-node-1";  // The V100s; the A100s are on gpu-node-2.
  const Launch launch = RunGpurm({"--gpus", "1", "--type", "A100", "--anywhere"}, "touch ran");
  EXPECT_EQ(launch.exit.exit_code, 1) << Context(launch);
  EXPECT_NE(launch.err.find("the GPUs granted are on node gpu-node-2, not on this machine "
                            "(gpu-node-1)"),
            std::string::npos)
      << launch.err;
  EXPECT_NE(launch.err.find("not supported by gpurm run"), std::string::npos) << launch.err;
  EXPECT_FALSE(std::filesystem::exists(job_dir_ + "/ran"));
  const json allocations = AllAllocations();
  ASSERT_EQ(allocations.size(), 1u) << allocations.dump();
  EXPECT_EQ(allocations[0]["state"], "released") << allocations.dump();
}

TEST_F(RunLauncherTest, AnywhereGrantedHereRuns) {
  const Launch launch = RunGpurm({"--gpus", "1", "--type", "A100", "--anywhere"},
                                 "echo node=$GPURM_NODE_NAME cvd=$CUDA_VISIBLE_DEVICES");
  EXPECT_EQ(launch.exit.exit_code, 0) << Context(launch);
  EXPECT_EQ(Field(launch.out, "node"), "gpu-node-2") << Context(launch);
  EXPECT_EQ(Field(launch.out, "cvd").size(), 1u) << Context(launch);
  EXPECT_EQ(ActiveAllocations(), 0);
}

// Twelve GPUs: more than any node has. On this machine they can never be
// had; anywhere they span nodes, which torchrun started here cannot use.
TEST_F(RunLauncherTest, DistributedOverSeveralNodesIsRefusedWithTheirNames) {
  const Launch here = RunGpurm({"--gpus", "12", "--distributed"}, "touch ran");
  EXPECT_EQ(here.exit.exit_code, 1) << Context(here);
  EXPECT_NE(here.err.find("can never be met"), std::string::npos) << here.err;

  const Launch anywhere = RunGpurm({"--gpus", "12", "--distributed", "--anywhere"}, "touch ran");
  EXPECT_EQ(anywhere.exit.exit_code, 1) << Context(anywhere);
  EXPECT_NE(anywhere.err.find("the allocation spans 3 nodes (gpu-node-1 gpu-node-2 gpu-node-3)"),
            std::string::npos)
      << anywhere.err;
  EXPECT_FALSE(std::filesystem::exists(job_dir_ + "/ran"));
  const json allocations = AllAllocations();
  ASSERT_EQ(allocations.size(), 1u) << allocations.dump();
  EXPECT_EQ(allocations[0]["state"], "released") << allocations.dump();
}

// A request the cluster can never meet (it has no H100) is an error, not a
// job quietly trained on the CPU.
TEST_F(RunLauncherTest, RequestThatCanNeverBeMetExits1WithTheReasons) {
  const Launch launch = RunGpurm({"--gpus", "1", "--type", "H100"}, "echo ran");
  EXPECT_EQ(launch.exit.exit_code, 1) << Context(launch);
  EXPECT_EQ(launch.out, "");  // The command did not run.
  EXPECT_NE(launch.err.find("can never be met"), std::string::npos) << launch.err;
  EXPECT_NE(launch.err.find("no H100 GPUs"), std::string::npos) << launch.err;  // A node's reason.
  EXPECT_EQ(launch.err.find("running on the CPU"), std::string::npos) << launch.err;
  EXPECT_EQ(ActiveAllocations(), 0);
}

// GPUs that exist but are busy: the CPU, said so loudly, unless told not to.
TEST_F(RunLauncherTest, BusyGpusRunOnTheCpuLoudlyUnlessTold) {
  environment_["GPURM_NODE_NAME"] = "gpu-node-3";  // The T4s.
  Result<cli::HttpResponse> held =
      daemon_->Client().Post("/api/v1/gpu/allocate", json{{"gpu_count", 4}, {"gpu_type", "T4"}});
  ASSERT_TRUE(held.ok() && held->status == 200);
  const std::string script = "echo \"cvd=[${CUDA_VISIBLE_DEVICES-unset}]\"";
  const Launch fallback = RunGpurm({"--gpus", "1", "--type", "T4"}, script);
  EXPECT_EQ(fallback.exit.exit_code, 0) << Context(fallback);
  EXPECT_EQ(Field(fallback.out, "cvd"), "[]") << Context(fallback);
  EXPECT_NE(fallback.err.find("WARNING: NO GPU: the command runs on the CPU"), std::string::npos)
      << fallback.err;

  const Launch refused = RunGpurm({"--gpus", "1", "--type", "T4", "--no-cpu-fallback"}, script);
  EXPECT_EQ(refused.exit.exit_code, 1) << Context(refused);
  EXPECT_EQ(refused.out, "");         // The command did not run.
  EXPECT_EQ(ActiveAllocations(), 1);  // The holder's only.
}

TEST_F(RunLauncherTest, WaitsForBusyGpusThenRuns) {
  environment_["GPURM_NODE_NAME"] = "gpu-node-3";  // The T4s.
  // Another job holds every T4.
  Result<cli::HttpResponse> held =
      daemon_->Client().Post("/api/v1/gpu/allocate", json{{"gpu_count", 4}, {"gpu_type", "T4"}});
  ASSERT_TRUE(held.ok() && held->status == 200);
  const std::string holder = (*held).body["allocation_id"];

  // With a deadline and no fallback, it gives up.
  const Launch gave_up = RunGpurm(
      {"--gpus", "4", "--type", "T4", "--wait-timeout", "1", "--no-cpu-fallback"}, "echo ran");
  EXPECT_EQ(gave_up.exit.exit_code, 1) << Context(gave_up);
  EXPECT_EQ(gave_up.out, "");

  // Without one, it runs once the holder lets go.
  bool released = false;
  const Launch waited =
      RunGpurm({"--gpus", "4", "--type", "T4", "--wait"}, "echo cvd=$CUDA_VISIBLE_DEVICES",
               [&](const Launch& so_far, pid_t) {
                 if (!released && so_far.err.find("waiting for GPUs") != std::string::npos) {
                   released = true;
                   daemon_->Client().Delete("/api/v1/gpu/allocations/" + holder);
                 }
               });
  EXPECT_TRUE(released) << Context(waited);
  EXPECT_EQ(waited.exit.exit_code, 0) << Context(waited);
  EXPECT_EQ(Field(waited.out, "cvd"), "0,1,2,3") << Context(waited);
  EXPECT_EQ(ActiveAllocations(), 0);
}

TEST_F(RunLauncherTest, OutputGoesToTheTerminalAndToTrainingLogTaggedByLine) {
  const Launch launch = RunGpurm({"--gpus", "1"},
                                 "echo id=$GPURM_ALLOCATION_ID; echo epoch-1 loss=0.5; "
                                 "echo warning-on-stderr >&2; echo epoch-2 loss=0.25");
  EXPECT_EQ(launch.exit.exit_code, 0) << Context(launch);
  const std::string id = Field(launch.out, "id");
  ASSERT_FALSE(id.empty()) << Context(launch);
  EXPECT_EQ(launch.out, "id=" + id + "\nepoch-1 loss=0.5\nepoch-2 loss=0.25\n");
  EXPECT_NE(launch.err.find("warning-on-stderr"), std::string::npos);
  // Every line: "<time> pid=<gpurm run> alloc=<id> out| <line>" (err| for stderr).
  const std::string tag = " alloc=" + id + " ";
  const std::string log = TrainingLog();
  EXPECT_NE(log.find(tag + "out| epoch-1 loss=0.5\n"), std::string::npos) << log;
  EXPECT_NE(log.find(tag + "out| epoch-2 loss=0.25\n"), std::string::npos) << log;
  EXPECT_NE(log.find(tag + "err| warning-on-stderr\n"), std::string::npos) << log;
  EXPECT_NE(log.find(tag + "gpurm run: released"), std::string::npos) << log;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    // "2026-12-07T06:40:00.123Z pid=..."
    ASSERT_GT(line.size(), 29u) << line;
    EXPECT_EQ(line.substr(10, 1) + line.substr(23, 6), "TZ pid=") << line;
  }

  // A second run appends.
  RunGpurm({"--gpus", "1"}, "echo second-run");
  EXPECT_NE(TrainingLog().find("epoch-1"), std::string::npos);
  EXPECT_NE(TrainingLog().find("out| second-run"), std::string::npos);
}

// Not relative to the directory it is started from: the user's state directory.
TEST_F(RunLauncherTest, TrainingLogDefaultsToTheUsersStateDirectory) {
  const std::string home = work_dir_ + "/home";
  environment_["GPURM_LOG_DIR"] = std::nullopt;
  environment_["XDG_STATE_HOME"] = std::nullopt;
  environment_["HOME"] = home;
  const Launch launch = RunGpurm({"--gpus", "1"}, "echo in-the-state-dir");
  EXPECT_EQ(launch.exit.exit_code, 0) << Context(launch);
  EXPECT_NE(TrainingLog(home + "/.local/state/gpurm/logs").find("out| in-the-state-dir"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(job_dir_ + "/logs"));
}

// SIGKILL of gpurm run: the command gets SIGTERM, and its handler can still
// print (its output has a reader) and save its checkpoint; what it prints
// reaches training.log.
TEST_F(RunLauncherTest, SigkilledGpurmRunLeavesTheCommandItsOutputAndCheckpoint) {
  bool killed = false;
  const Launch launch = RunGpurm(
      {"--gpus", "1"},
      "trap 'echo saving-checkpoint; echo weights > checkpoint; echo checkpoint-saved; exit 0' "
      "TERM; echo id=$GPURM_ALLOCATION_ID; while :; do sleep 0.2; done",
      [&](const Launch& so_far, pid_t gpurm) {
        if (!killed && so_far.out.find('\n') != std::string::npos) {
          killed = true;
          ::kill(gpurm, SIGKILL);
        }
      });
  ASSERT_TRUE(killed) << Context(launch);
  EXPECT_EQ(launch.exit.signal, SIGKILL);
  EXPECT_TRUE(testing::Eventually(
      [&] { return TrainingLog().find("out| checkpoint-saved") != std::string::npos; }));
  EXPECT_NE(TrainingLog().find("out| saving-checkpoint"), std::string::npos) << TrainingLog();
  EXPECT_NE(TrainingLog().find("out| checkpoint-saved"), std::string::npos) << TrainingLog();
  EXPECT_TRUE(std::filesystem::exists(job_dir_ + "/checkpoint"));
}

TEST_F(RunLauncherTest, SigkilledGpurmRunIsCleanedUpByTheLease) {
  bool killed = false;
  const Launch launch = RunGpurm({"--gpus", "1", "--lease-ttl", "2"},
                                 "echo id=$GPURM_ALLOCATION_ID pid=$$; while :; do sleep 1; done",
                                 [&](const Launch& so_far, pid_t gpurm) {
                                   if (!killed && so_far.out.find('\n') != std::string::npos) {
                                     killed = true;
                                     ::kill(gpurm, SIGKILL);
                                   }
                                 });
  ASSERT_TRUE(killed) << Context(launch);
  EXPECT_EQ(launch.exit.signal, SIGKILL);
  const std::string id = Field(launch.out, "id");
  ASSERT_FALSE(id.empty()) << Context(launch);

  testing::Eventually([&] { return State(id) != "active"; });
  EXPECT_EQ(State(id), "expired") << Allocation(id).dump();
  EXPECT_EQ(ActiveAllocations(), 0);

  // The command got the parent-death signal: gone, or a zombie for init.
  const std::string stat_path = "/proc/" + Field(launch.out, "pid") + "/stat";
  std::string state;
  testing::Eventually([&] {
    std::ifstream stat(stat_path);
    std::string pid, name;
    return !(stat >> pid >> name >> state) || state == "Z";
  });
  EXPECT_TRUE(!std::filesystem::exists(stat_path) || state == "Z") << state;
}

}  // namespace
}  // namespace gpurm
