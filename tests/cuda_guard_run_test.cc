// `gpurm run` with the CUDA guard, end to end: the real daemon (static
// inventory of NVIDIA GPUs), the real gpurm binary, and the guard's probe on
// the fake libcuda.so.1 (tests/fakes/cuda) as the job.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "support/daemon_process.h"
#include "support/run_command.h"

namespace gpurm {
namespace {

using Strings = std::vector<std::string>;

// The text in `output` between the first `before` and the next `until` after
// it; empty when `before` is absent. (Plain search, not std::regex: GCC 12's
// <regex> trips -Wmaybe-uninitialized in sanitizer builds.)
std::string Between(const std::string& output, const std::string& before,
                    const std::string& until) {
  const std::size_t start = output.find(before);
  if (start == std::string::npos) return "";
  const std::size_t from = start + before.size();
  const std::size_t end = output.find_first_of(until, from);
  return output.substr(from, end == std::string::npos ? std::string::npos : end - from);
}

class CudaGuardRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    work_dir_ = testing::MakeTempDir("gpurm-guard-run");
    daemon_ = std::make_unique<testing::DaemonProcess>(work_dir_, testing::ExampleInventoryArgs());
    std::string error;
    ASSERT_TRUE(daemon_->Start(&error)) << error;
  }
  void TearDown() override {
    daemon_.reset();
    std::filesystem::remove_all(work_dir_);
  }

  // gpurm run RUN_ARGS -- probe PROBE_ARGS, with the fake driver as
  // libcuda.so.1 (80 GiB devices) on the demo cluster's A100 node, and
  // `variables` (NAME=VALUE) set.
  testing::CommandResult Run(const Strings& run_args, const Strings& probe_args,
                             const Strings& variables = {}) const {
    Strings argv = {"/usr/bin/env",
                    "-u",
                    "LD_PRELOAD",
                    std::string("LD_LIBRARY_PATH=") + GPURM_FAKE_CUDA_DIR,
                    "FAKE_CUDA_DEVICE_MEMORY_MB=81920,81920",
                    "GPURM_NODE_NAME=gpu-node-2"};
    argv.insert(argv.end(), variables.begin(), variables.end());
    argv.insert(argv.end(), {testing::GpurmBinary(), "--url", daemon_->base_url(), "run",
                             "--log-dir", work_dir_ + "/logs", "--no-cpu-fallback"});
    argv.insert(argv.end(), run_args.begin(), run_args.end());
    argv.insert(argv.end(), {"--", GPURM_CUDA_PROBE_RESOLVED});
    argv.insert(argv.end(), probe_args.begin(), probe_args.end());
    return testing::RunCommand(argv);
  }

  int ActiveAllocations() const {
    Result<cli::HttpResponse> response = daemon_->Client().Get("/api/v1/gpu/allocations");
    return response.ok() ? static_cast<int>(response->body["allocations"].size()) : -1;
  }

  std::string work_dir_;
  std::unique_ptr<testing::DaemonProcess> daemon_;
};

TEST_F(CudaGuardRunTest, HoldsTheCommandToItsGrant) {
  const testing::CommandResult result = Run({"--gpus", "1", "--memory-gb", "4", "--shared"},
                                            {"ctx", "0", "info", "alloc", "4000", "alloc", "1000"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  // "info free=<MiB> total=<MiB>": a 4 GB slice, rounded up to whole
  // thousandths of the GPU.
  const std::string info = Between(result.output, "info free=", "\n");
  const std::string total = Between(info, " total=", " \n");
  ASSERT_FALSE(total.empty()) << result.output;
  EXPECT_GE(std::stoi(total), 4096) << result.output;
  EXPECT_LE(std::stoi(total), 4300) << result.output;
  EXPECT_NE(result.output.find("alloc ok\nalloc error 2\n"), std::string::npos) << result.output;
  EXPECT_EQ(ActiveAllocations(), 0);
  const std::string id = Between(result.output, "allocated ", " (");
  ASSERT_FALSE(id.empty()) << result.output;
  EXPECT_FALSE(std::filesystem::exists("/dev/shm/gpurm-cuda-guard-" + id));
}

TEST_F(CudaGuardRunTest, NoGuardSaysSoAndLeavesTheDeviceWhole) {
  const testing::CommandResult result =
      Run({"--gpus", "1", "--memory-gb", "4", "--shared", "--no-guard"},
          {"ctx", "0", "info", "alloc", "5000"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("--no-guard: the CUDA guard is not loaded"), std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("info free=81920 total=81920\nalloc ok\n"), std::string::npos)
      << result.output;
}

TEST_F(CudaGuardRunTest, AGuardThatCannotLoadStopsTheRunBeforeTheCommand) {
  const testing::CommandResult result =
      Run({"--gpus", "1"}, {"ctx", "0", "info"},
          {"GPURM_CUDA_GUARD_LIBRARY=/nonexistent/libgpurm_cuda_guard.so"});
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("GPURM_CUDA_GUARD_LIBRARY=/nonexistent"), std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("the command was not run"), std::string::npos) << result.output;
  EXPECT_EQ(result.output.find("info free="), std::string::npos) << result.output;
  EXPECT_EQ(ActiveAllocations(), 0);
}

}  // namespace
}  // namespace gpurm
