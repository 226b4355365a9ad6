// The files a test's agents and their controller (or Kubernetes leader)
// share, written by the real `gpurm token create`.
#ifndef GPURM_TESTS_SUPPORT_AGENT_FILES_H_
#define GPURM_TESTS_SUPPORT_AGENT_FILES_H_

#include <fstream>
#include <string>

#include "support/daemon_process.h"
#include "support/run_command.h"

namespace gpurm::testing {

// Writes to `dir`: `tokens` (a token file with one identity `name` of role
// agent), `agent.token` (its token: the controller's token_file) and
// `agent.yaml` (an agent's config: tokens required, sampling every 0.2 s).
// Returns "" on success, else what `gpurm token create` printed.
inline std::string WriteAgentFiles(const std::string& dir, const std::string& name) {
  const CommandResult created = RunCommand({GpurmBinary(), "token", "create", "--name", name,
                                            "--role", "agent", "--file", dir + "/tokens"});
  if (created.exit_code != 0)
    return created.output.empty() ? "token create failed" : created.output;
  std::ofstream(dir + "/agent.token")
      << created.output.substr(0, created.output.find('\n')) << "\n";
  std::ofstream(dir + "/agent.yaml")
      << "monitor_update_interval: 0.2\nserver:\n  auth:\n    tokens_file: " << dir << "/tokens\n";
  return "";
}

}  // namespace gpurm::testing

#endif  // GPURM_TESTS_SUPPORT_AGENT_FILES_H_
