// `gpurm queue`: the daemon's wait queue (requests made with "wait": true).
//
//   gpurm queue [--all]        waiting requests in service order (--all: and
//                              recently granted/expired/cancelled ones)
//   gpurm queue show ID        one entry; once granted, its allocation
//   gpurm queue cancel ID      stop waiting
//
// -o json prints the daemon's JSON. Exit codes as the other client commands:
// 0 done, 1 refused (unknown entry), 3 daemon unreachable.
#ifndef GPURM_CLI_QUEUE_COMMAND_H_
#define GPURM_CLI_QUEUE_COMMAND_H_

#include <CLI/CLI.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

namespace gpurm::cli {

// The global options the command needs, read when it runs.
struct QueueGlobals {
  std::string url;
  double timeout_s = 10.0;
  std::string output = "table";  // "table" or "json".
};

void RegisterQueueCommand(CLI::App& app, int* exit_code,
                          const std::function<QueueGlobals()>& globals, std::ostream& out,
                          std::ostream& err);

// The table of a GET /queue answer, and one entry of GET /queue/{id}. Pure.
std::string RenderQueue(const nlohmann::json& queue);
std::string RenderQueueEntry(const nlohmann::json& entry);

}  // namespace gpurm::cli

#endif  // GPURM_CLI_QUEUE_COMMAND_H_
