// DaemonProcess: runs the real `gpurm serve` binary for end-to-end tests, on
// a free loopback port with its own data and log directories.
#ifndef GPURM_TESTS_SUPPORT_DAEMON_PROCESS_H_
#define GPURM_TESTS_SUPPORT_DAEMON_PROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "cli/client.h"

namespace gpurm::testing {

// The source tree and the gpurm binary, from the environment ctest sets.
std::string SourceDir();
std::string GpurmBinary();
// The arguments that serve the example inventory (examples/cluster-3node.yaml:
// three nodes, 16 GPUs), the daemon most end-to-end tests run against.
std::vector<std::string> ExampleInventoryArgs();
// A fresh empty directory under the system temp dir.
std::string MakeTempDir(const std::string& prefix);

class DaemonProcess {
 public:
  // `work_dir` holds data/ and logs/; it survives restarts so a test can
  // kill the daemon and start it again on the same ledger.
  DaemonProcess(std::string work_dir, std::vector<std::string> extra_args);
  ~DaemonProcess();  // Kills the daemon if still running.

  // Before Start: the config file to serve with, in place of the
  // repository's gpu_config.yaml.
  void set_config(std::string config_path) { config_path_ = std::move(config_path); }
  // Before Start: the daemon serves https (its config names the
  // certificate); the health check and Client() verify it with `tls`.
  void set_tls(cli::TlsClientOptions tls) { tls_ = std::move(tls); }

  // Starts the daemon and waits (bounded) until /health answers 200. The
  // first start picks a free loopback port; restarts listen on it again.
  // Returns false with the log's tail in `error` when it does not.
  bool Start(std::string* error);
  // SIGKILL: no chance to clean up, as in a crash.
  void Kill();
  // SIGTERM and wait; returns the exit status (or -1 when killed by a signal).
  int Terminate();

  const std::string& base_url() const { return base_url_; }
  pid_t pid() const { return pid_; }
  cli::HttpClient Client(const std::string& owner = "") const;
  std::string LogTail() const;

 private:
  std::string work_dir_;
  std::vector<std::string> extra_args_;
  std::string config_path_;
  std::optional<cli::TlsClientOptions> tls_;
  std::string base_url_;
  int port_ = 0;  // Chosen by the first Start.
  pid_t pid_ = -1;
};

}  // namespace gpurm::testing

#endif  // GPURM_TESTS_SUPPORT_DAEMON_PROCESS_H_
