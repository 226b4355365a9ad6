// `gpurm serve`: the daemon. The only place concrete types are wired together.
#ifndef GPURM_DAEMON_SERVE_H_
#define GPURM_DAEMON_SERVE_H_

#include <string>

namespace gpurm {

// Command-line overrides; empty strings keep the config file's values.
struct ServeOptions {
  std::string config_path;     // Default: ./gpu_config.yaml when it exists.
  std::string inventory_path;  // Static inventory; empty = local discovery.
  std::string listen;          // HOST:PORT
  std::string data_dir;
  std::string log_dir;
};

// Runs until SIGTERM/SIGINT, then drains and returns 0. Returns 2 for
// configuration errors and 1 when the daemon cannot start (port in use,
// ledger unreadable). Must be called before any other thread is started.
int RunServe(const ServeOptions& options);

}  // namespace gpurm

#endif  // GPURM_DAEMON_SERVE_H_
