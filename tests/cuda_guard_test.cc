// The CUDA guard (src/guard, libgpurm_cuda_guard.so) preloaded into test
// programs that drive the fake libcuda.so.1 (tests/fakes/cuda): one linked
// against it, one that dlopens it and resolves every function through
// cuGetProcAddress. Each test runs both.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "support/run_command.h"

namespace gpurm {
namespace {

using testing::CommandResult;
using testing::RunCommand;

struct ProbeVariant {
  const char* name;
  const char* path;
};

void PrintTo(const ProbeVariant& variant, std::ostream* out) { *out << variant.name; }

// A fresh allocation id per test, so tests never share a ledger.
std::string NewAllocationId() {
  static std::atomic<int> counter{0};
  return "guard-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

class CudaGuardTest : public ::testing::TestWithParam<ProbeVariant> {
 protected:
  void TearDown() override {
    for (const std::string& id : ids_) {
      std::filesystem::remove("/dev/shm/gpurm-cuda-guard-" + id);
    }
  }

  // An allocation id whose ledger TearDown removes.
  std::string AllocationId() {
    ids_.push_back(NewAllocationId());
    return ids_.back();
  }

  // The probe's argv under /usr/bin/env: the guard preloaded, the fake
  // driver found as libcuda.so.1, two 16 GiB devices, and `variables`
  // (NAME=VALUE) on an environment without the guard's own variables.
  std::vector<std::string> ProbeArgv(const std::vector<std::string>& variables,
                                     const std::vector<std::string>& commands) const {
    std::vector<std::string> argv = {"/usr/bin/env",
                                     "-u",
                                     "GPURM_ALLOCATION_ID",
                                     "-u",
                                     "GPURM_CUDA_MEMORY_LIMITS_MB",
                                     std::string("LD_PRELOAD=") + GPURM_CUDA_GUARD,
                                     std::string("LD_LIBRARY_PATH=") + GPURM_FAKE_CUDA_DIR,
                                     "FAKE_CUDA_DEVICE_MEMORY_MB=16384,16384"};
    argv.insert(argv.end(), variables.begin(), variables.end());
    argv.emplace_back(GetParam().path);
    argv.insert(argv.end(), commands.begin(), commands.end());
    return argv;
  }

  CommandResult Probe(const std::vector<std::string>& variables,
                      const std::vector<std::string>& commands) const {
    return RunCommand(ProbeArgv(variables, commands));
  }

  // Starts the probe with `commands` followed by "hold" and returns its pid
  // once it has printed "holding" (every command before it has run).
  pid_t StartHolder(const std::vector<std::string>& variables, std::vector<std::string> commands,
                    std::string* output) {
    commands.emplace_back("hold");
    const std::vector<std::string> argv = ProbeArgv(variables, commands);
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    int fds[2];
    if (::pipe(fds) != 0) return -1;
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      ::execv(args[0], args.data());
      std::_Exit(127);
    }
    ::close(fds[1]);
    char buffer[256];
    while (output->find("holding\n") == std::string::npos) {
      const ssize_t n = ::read(fds[0], buffer, sizeof(buffer));
      if (n <= 0) break;
      output->append(buffer, static_cast<size_t>(n));
    }
    ::close(fds[0]);
    return pid;
  }

  static void Kill(pid_t pid) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }

  std::vector<std::string> Guarded(const std::string& limits) {
    return {"GPURM_ALLOCATION_ID=" + AllocationId(), "GPURM_CUDA_MEMORY_LIMITS_MB=" + limits};
  }

 private:
  std::vector<std::string> ids_;
};

TEST_P(CudaGuardTest, CapsEachDeviceAtItsOwnGrant) {
  const CommandResult result = Probe(
      Guarded("1024,2048"),
      {"ctx", "0", "alloc", "1000", "alloc", "100", "ctx", "1", "alloc", "2000", "alloc", "100"});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output,
            "alloc ok\nalloc error 2\n"
            "alloc ok\nalloc error 2\n");
}

TEST_P(CudaGuardTest, CountsEveryKindOfAllocationAndItsFree) {
  // 1024 MiB of grant: each kind first takes 1000 MiB, is refused 100 more,
  // and gets them once its allocation is freed.
  const std::vector<std::vector<std::string>> kinds = {
      {"alloc", "1000"},
      {"managed", "1000"},
      {"async", "1000"},
      {"pool", "1000"},
      {"create", "0", "1000"},
      {"pitch", "1024000", "1024"},  // 1000 MiB of rows.
      {"array", "256000", "1024"},   // 4-byte floats: 1000 MiB.
      {"array3d", "256000", "512", "2"}};
  for (const std::vector<std::string>& kind : kinds) {
    std::vector<std::string> commands = {"ctx", "0"};
    commands.insert(commands.end(), kind.begin(), kind.end());
    commands.insert(commands.end(), {"alloc", "100", "free", "alloc", "100"});
    const CommandResult result = Probe(Guarded("1024"), commands);
    EXPECT_EQ(result.output, kind[0] + " ok\nalloc error 2\nfree ok\nalloc ok\n") << kind[0];
  }
}

TEST_P(CudaGuardTest, MemoryInfoShowsTheGrant) {
  const CommandResult result = Probe(Guarded("4096,2048"), {"ctx", "0", "info", "alloc", "1000",
                                                            "info", "total", "0", "total", "1"});
  EXPECT_EQ(result.output,
            "info free=4096 total=4096\nalloc ok\ninfo free=3096 total=4096\n"
            "total 4096\ntotal 2048\n");
}

TEST_P(CudaGuardTest, ProcessesOfOneAllocationShareOneCap) {
  const std::vector<std::string> variables = Guarded("4096");
  std::string held;
  const pid_t holder = StartHolder(variables, {"ctx", "0", "alloc", "3000"}, &held);
  ASSERT_GT(holder, 0);
  EXPECT_EQ(held, "alloc ok\nholding\n");
  const CommandResult second =
      Probe(variables, {"ctx", "0", "info", "alloc", "2000", "alloc", "1000"});
  Kill(holder);
  EXPECT_EQ(second.output, "info free=1096 total=4096\nalloc error 2\nalloc ok\n");
}

TEST_P(CudaGuardTest, KilledProcessesBytesComeBack) {
  const std::vector<std::string> variables = Guarded("4096");
  std::string held;
  const pid_t holder = StartHolder(variables, {"ctx", "0", "alloc", "3000"}, &held);
  ASSERT_GT(holder, 0);
  Kill(holder);  // SIGKILL: no destructor, its slot still says 3000 MiB.
  const CommandResult after = Probe(variables, {"ctx", "0", "alloc", "4000", "info"});
  EXPECT_EQ(after.output, "alloc ok\ninfo free=96 total=4096\n");
}

TEST_P(CudaGuardTest, AnotherAllocationDoesNotCount) {
  std::string held;
  const pid_t holder = StartHolder(Guarded("4096"), {"ctx", "0", "alloc", "3000"}, &held);
  ASSERT_GT(holder, 0);
  const CommandResult other = Probe(Guarded("4096"), {"ctx", "0", "alloc", "4000"});
  Kill(holder);
  EXPECT_EQ(other.output, "alloc ok\n");
}

TEST_P(CudaGuardTest, ChangesNothingWithoutTheEnvironment) {
  const std::vector<std::string> commands = {"ctx", "0", "alloc", "10000", "info", "total", "1"};
  const std::string unguarded = "alloc ok\ninfo free=6384 total=16384\ntotal 16384\n";
  EXPECT_EQ(Probe({}, commands).output, unguarded);
  // An allocation id alone (a grant the guard does not cover) limits nothing.
  EXPECT_EQ(Probe({"GPURM_ALLOCATION_ID=" + AllocationId()}, commands).output, unguarded);
}

TEST_P(CudaGuardTest, RefusesAllocationsWhenTheEnvironmentIsBad) {
  const CommandResult bad_limit =
      Probe({"GPURM_ALLOCATION_ID=" + AllocationId(), "GPURM_CUDA_MEMORY_LIMITS_MB=4096,lots"},
            {"ctx", "0", "alloc", "1", "alloc", "1"});
  EXPECT_NE(bad_limit.output.find("gpurm cuda guard: GPURM_CUDA_MEMORY_LIMITS_MB=\"4096,lots\""),
            std::string::npos)
      << bad_limit.output;
  EXPECT_NE(bad_limit.output.find("alloc error 2\nalloc error 2\n"), std::string::npos)
      << bad_limit.output;

  const CommandResult no_id =
      Probe({"GPURM_CUDA_MEMORY_LIMITS_MB=4096"}, {"ctx", "0", "alloc", "1"});
  EXPECT_NE(no_id.output.find("set without GPURM_ALLOCATION_ID"), std::string::npos)
      << no_id.output;
  EXPECT_NE(no_id.output.find("alloc error 2\n"), std::string::npos) << no_id.output;
}

TEST_P(CudaGuardTest, RefusesADeviceWithoutALimit) {
  const CommandResult result = Probe(Guarded("1024"), {"ctx", "1", "alloc", "1"});
  EXPECT_NE(result.output.find("device 1 has no limit"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("alloc error 2\n"), std::string::npos) << result.output;
}

TEST_P(CudaGuardTest, DlsymOfOtherNamesAnswersAsWithoutTheGuard) {
  EXPECT_EQ(Probe(Guarded("1024"), {"next"}).output, "next ok\n");
  EXPECT_EQ(Probe({}, {"next"}).output, "next ok\n");
}

INSTANTIATE_TEST_SUITE_P(Probes, CudaGuardTest,
                         ::testing::Values(ProbeVariant{"Linked", GPURM_CUDA_PROBE_LINKED},
                                           ProbeVariant{"ResolvedAtRunTime",
                                                        GPURM_CUDA_PROBE_RESOLVED}),
                         [](const ::testing::TestParamInfo<ProbeVariant>& variant) {
                           return std::string(variant.param.name);
                         });

}  // namespace
}  // namespace gpurm
