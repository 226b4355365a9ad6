#include "integrations/launchers/process_runner.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace gpurm {
namespace {

// Blocks what Wait() watches, as a launcher does before starting threads.
class ProcessRunnerTest : public ::testing::Test {
 protected:
  SignalBlock block_{{SIGCHLD, SIGINT, SIGTERM, SIGHUP}};
};

struct Captured {
  std::string out;
  std::string err;
  std::string all;  // Both streams in arrival order.

  OutputSink Sink() {
    return [this](OutputStream stream, std::string_view chunk) {
      (stream == OutputStream::kStdout ? out : err).append(chunk);
      all.append(chunk);
    };
  }
};

ProcessSpec Shell(const std::string& script) {
  ProcessSpec spec;
  spec.argv = {"sh", "-c", script};
  spec.inherit_stdin = false;
  return spec;
}

TEST_F(ProcessRunnerTest, PassesTheExitCodeAndBothStreams) {
  auto child = ChildProcess::Spawn(Shell("echo out; echo err >&2; exit 3"));
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  Captured captured;
  Result<ProcessExit> exit = (*child)->Wait(captured.Sink(), WaitOptions{});
  ASSERT_TRUE(exit.ok()) << exit.status().ToString();
  EXPECT_EQ(exit->exit_code, 3);
  EXPECT_EQ(exit->signal, 0);
  EXPECT_EQ(exit->ShellCode(), 3);
  EXPECT_EQ(captured.out, "out\n");
  EXPECT_EQ(captured.err, "err\n");
}

TEST_F(ProcessRunnerTest, LosesNoOutputWhenTheCommandWritesMuchAndExitsAtOnce) {
  auto child =
      ChildProcess::Spawn(Shell("i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done; "
                                "head -c 1000000 /dev/zero | tr '\\0' x >&2"));
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  Captured captured;
  ASSERT_TRUE((*child)->Wait(captured.Sink(), WaitOptions{}).ok());
  EXPECT_EQ(captured.err, std::string(1000000, 'x'));
  std::string expected;
  for (int i = 0; i < 2000; ++i) expected += "line-" + std::to_string(i) + "\n";
  EXPECT_EQ(captured.out, expected);
}

// A temporary output log, opened as launchers open it (O_APPEND).
class OutputLog {
 public:
  OutputLog()
      : path_((std::filesystem::temp_directory_path() /
               ("gpurm-relay-" + std::to_string(::getpid()) + ".log"))
                  .string()),
        fd_(::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644)) {}
  ~OutputLog() {
    ::close(fd_);
    std::filesystem::remove(path_);
  }
  int fd() const { return fd_; }
  std::vector<std::string> Lines() const {
    std::ifstream in(path_);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

 private:
  std::string path_;
  int fd_;
};

// Through the relay: every line of both streams is in the log with the time
// and the tag, the last one too though it has no newline, and the launcher
// still gets the output unchanged.
TEST_F(ProcessRunnerTest, OutputLogGetsEveryLineTaggedAndWaitStillGetsTheOutput) {
  OutputLog log;
  ProcessSpec spec = Shell("echo one; echo oops >&2; echo two; printf three");
  spec.output_log_fd = log.fd();
  spec.output_log_tag = "pid=7 alloc=alloc-1";
  auto child = ChildProcess::Spawn(spec);
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  Captured captured;
  ASSERT_TRUE((*child)->Wait(captured.Sink(), WaitOptions{}).ok());
  EXPECT_EQ(captured.out, "one\ntwo\nthree");
  EXPECT_EQ(captured.err, "oops\n");
  const std::vector<std::string> lines = log.Lines();
  ASSERT_EQ(lines.size(), 4u);
  const std::string time = "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z";
  std::vector<std::string> out_lines;
  for (const std::string& line : lines) {
    EXPECT_THAT(line, ::testing::MatchesRegex(time + " pid=7 alloc=alloc-1 (out|err)[|] .*"));
    if (line.find(" out| ") != std::string::npos)
      out_lines.push_back(line.substr(line.find("| ") + 2));
  }
  EXPECT_EQ(out_lines, (std::vector<std::string>{"one", "two", "three"}));
}

TEST_F(ProcessRunnerTest, OutputLogLosesNothingOfMuchOutput) {
  OutputLog log;
  ProcessSpec spec = Shell(
      "i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done; "
      "head -c 1000000 /dev/zero | tr '\\0' x >&2");
  spec.output_log_fd = log.fd();
  spec.output_log_tag = "t";
  auto child = ChildProcess::Spawn(spec);
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  Captured captured;
  ASSERT_TRUE((*child)->Wait(captured.Sink(), WaitOptions{}).ok());
  EXPECT_EQ(captured.err, std::string(1000000, 'x'));
  std::string expected;
  for (int i = 0; i < 2000; ++i) expected += "line-" + std::to_string(i) + "\n";
  EXPECT_EQ(captured.out, expected);
  // 2000 lines, and the 1,000,000 x's as records of at most 16,384 bytes.
  EXPECT_EQ(log.Lines().size(), 2000u + (1000000 + 16383) / 16384);
}

TEST_F(ProcessRunnerTest, ReportsDeathBySignalAs128PlusSignal) {
  auto child = ChildProcess::Spawn(Shell("kill -KILL $$"));
  ASSERT_TRUE(child.ok());
  Captured captured;
  Result<ProcessExit> exit = (*child)->Wait(captured.Sink(), WaitOptions{});
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->signal, SIGKILL);
  EXPECT_EQ(exit->ShellCode(), 137);
}

TEST_F(ProcessRunnerTest, RunsTheCommandAsLeaderOfItsOwnProcessGroup) {
  // Field 5 of /proc/PID/stat is the process group.
  auto child = ChildProcess::Spawn(Shell("cut -d' ' -f5 /proc/$$/stat"));
  ASSERT_TRUE(child.ok());
  Captured captured;
  ASSERT_TRUE((*child)->Wait(captured.Sink(), WaitOptions{}).ok());
  EXPECT_EQ(captured.out, std::to_string((*child)->pid()) + "\n");
  EXPECT_NE((*child)->pid(), ::getpgrp());
}

TEST_F(ProcessRunnerTest, ForwardsTheLaunchersSignalsToTheGroup) {
  // The trap runs once the foreground sleep (same group, so also signalled)
  // has died; exit 7 proves the shell itself got SIGTERM.
  auto child = ChildProcess::Spawn(
      Shell("trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 1; done"));
  ASSERT_TRUE(child.ok());
  Captured captured;
  OutputSink capture = captured.Sink();
  bool sent = false;
  std::vector<int> seen;
  WaitOptions options;
  options.on_forward = [&seen](int signal) { seen.push_back(signal); };
  Result<ProcessExit> exit = (*child)->Wait(
      [&](OutputStream stream, std::string_view chunk) {
        capture(stream, chunk);
        if (!sent && captured.out.find("ready\n") != std::string::npos) {
          sent = true;
          // Blocked here, so it stays pending until Wait() takes it.
          ::kill(::getpid(), SIGTERM);
        }
      },
      options);
  ASSERT_TRUE(exit.ok()) << exit.status().ToString();
  EXPECT_EQ(exit->exit_code, 7);
  EXPECT_EQ(exit->forwarded, std::vector<int>{SIGTERM});
  EXPECT_EQ(seen, std::vector<int>{SIGTERM});
  EXPECT_NE(captured.out.find("got-term"), std::string::npos);
}

TEST_F(ProcessRunnerTest, EndsWhatTheCommandLeftInItsGroup) {
  // The background sleep keeps the output pipe open after the shell exits.
  auto child = ChildProcess::Spawn(Shell("sleep 1000 & echo $!; exit 0"));
  ASSERT_TRUE(child.ok());
  Captured captured;
  WaitOptions options;
  options.leftover_grace = std::chrono::milliseconds(200);
  Result<ProcessExit> exit = (*child)->Wait(captured.Sink(), options);
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->exit_code, 0);
  const std::string leftover = captured.out.substr(0, captured.out.find('\n'));
  ASSERT_FALSE(leftover.empty());
  // Gone, or a zombie waiting for init to reap it.
  std::ifstream stat("/proc/" + leftover + "/stat");
  std::string pid, name, state;
  if (stat >> pid >> name >> state) {
    EXPECT_EQ(state, "Z");
  }
}

TEST_F(ProcessRunnerTest, AppliesEnvironmentChanges) {
  ::setenv("GPURM_RUNNER_TEST_REMOVED", "present", 1);
  ::setenv("GPURM_RUNNER_TEST_KEPT", "kept", 1);
  ProcessSpec spec = Shell(
      "echo \"${GPURM_RUNNER_TEST_SET}|${GPURM_RUNNER_TEST_REMOVED-unset}|"
      "${GPURM_RUNNER_TEST_EMPTY-unset}|${GPURM_RUNNER_TEST_KEPT}\"");
  spec.environment = {{"GPURM_RUNNER_TEST_SET", "value"},
                      {"GPURM_RUNNER_TEST_REMOVED", std::nullopt},
                      {"GPURM_RUNNER_TEST_EMPTY", ""}};
  auto child = ChildProcess::Spawn(spec);
  ASSERT_TRUE(child.ok());
  Captured captured;
  ASSERT_TRUE((*child)->Wait(captured.Sink(), WaitOptions{}).ok());
  EXPECT_EQ(captured.out, "value|unset||kept\n");
}

TEST_F(ProcessRunnerTest, GivesDevNullAsStdinWhenAsked) {
  auto child = ChildProcess::Spawn(Shell("cat; echo done"));
  ASSERT_TRUE(child.ok());
  Captured captured;
  ASSERT_TRUE((*child)->Wait(captured.Sink(), WaitOptions{}).ok());
  EXPECT_EQ(captured.out, "done\n");
}

TEST_F(ProcessRunnerTest, ReportsAMissingProgramAtSpawn) {
  ProcessSpec spec;
  spec.argv = {"gpurm-no-such-program-for-tests"};
  auto missing = ChildProcess::Spawn(spec);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("gpurm-no-such-program-for-tests"), std::string::npos);

  spec.argv = {"/dev/null"};
  auto not_executable = ChildProcess::Spawn(spec);
  ASSERT_FALSE(not_executable.ok());
  EXPECT_EQ(not_executable.status().code(), StatusCode::kPermissionDenied);

  spec.argv.clear();
  auto empty = ChildProcess::Spawn(spec);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ProcessRunnerTest, WaitsOnlyOnce) {
  auto child = ChildProcess::Spawn(Shell("exit 0"));
  ASSERT_TRUE(child.ok());
  Captured captured;
  ASSERT_TRUE((*child)->Wait(captured.Sink(), WaitOptions{}).ok());
  Result<ProcessExit> again = (*child)->Wait(captured.Sink(), WaitOptions{});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
}

TEST(ProcessRunnerWithoutBlockTest, RefusesToWaitWhenSignalsAreNotBlocked) {
  // SIGUSR1 is not blocked anywhere in this test binary.
  SignalBlock block({SIGCHLD});
  auto child = ChildProcess::Spawn(Shell("exit 0"));
  ASSERT_TRUE(child.ok());
  WaitOptions options;
  options.forward_signals = {SIGUSR1};
  Result<ProcessExit> exit = (*child)->Wait([](OutputStream, std::string_view) {}, options);
  ASSERT_FALSE(exit.ok());
  EXPECT_EQ(exit.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(ProcessRunnerTest, SignalBlockTakesPendingSignals) {
  EXPECT_EQ(block_.WaitFor(std::chrono::milliseconds(0)), 0);
  ::kill(::getpid(), SIGHUP);
  EXPECT_EQ(block_.WaitFor(std::chrono::milliseconds(0)), SIGHUP);
  EXPECT_EQ(block_.WaitFor(std::chrono::milliseconds(0)), 0);
}

}  // namespace
}  // namespace gpurm
