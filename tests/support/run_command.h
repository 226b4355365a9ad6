// RunCommand: runs a program (no shell) to completion and captures its
// standard output and error together, for tests of the gpurm binary's exit
// codes and messages.
#ifndef GPURM_TESTS_SUPPORT_RUN_COMMAND_H_
#define GPURM_TESTS_SUPPORT_RUN_COMMAND_H_

#include <chrono>
#include <string>
#include <vector>

namespace gpurm::testing {

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal (the timeout included) or not started.
  bool timed_out = false;
  std::string output;  // stdout and stderr, interleaved as written.
};

// argv[0] is the program's path. Waits until the program exits, or kills it
// (SIGKILL) once `timeout` has passed, so a program that should have refused
// to start and did not cannot hang the test.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace gpurm::testing

#endif  // GPURM_TESTS_SUPPORT_RUN_COMMAND_H_
