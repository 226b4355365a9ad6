// The daemon's access control (docs/SECURITY.md): the listen-address check,
// the token file and the audit log, wired into the router.
#ifndef GPURM_DAEMON_ACCESS_CONTROL_H_
#define GPURM_DAEMON_ACCESS_CONTROL_H_

#include <spdlog/logger.h>

#include <memory>
#include <string>

#include "api/router.h"
#include "auth/token_store.h"
#include "config/config.h"
#include "core/status.h"

namespace gpurm {

// 127.0.0.0/8, ::1 and "localhost": only this machine can connect.
bool IsLoopbackHost(const std::string& host);

class AccessControl {
 public:
  // Refuses (kInvalidArgument naming the key) to serve `listen_host` when it
  // is not loopback and server.auth has no tokens_file, unless
  // allow_unauthenticated (then warns on `log`). Opens the token file (its
  // errors name the line) and the audit log (server.auth.audit_log, else
  // <log_dir>/audit.log; rotated, 10 MiB x 5).
  static Result<std::unique_ptr<AccessControl>> Open(const Config& config,
                                                     const std::string& listen_host,
                                                     spdlog::logger* log);

  // Requires tokens on the router's non-public routes (when a token file is
  // configured) and sends every state change to the audit log.
  void Install(Router& router);
  // SIGHUP: re-reads the token file (a bad one keeps the old tokens).
  void Reload();
  bool tokens_required() const { return tokens_ != nullptr; }
  // One line in the audit log for something the daemon did by itself
  // ("event=enforcement ..."). Thread-safe.
  void Audit(const std::string& line) { audit_->info("{}", line); }

 private:
  AccessControl(std::shared_ptr<spdlog::logger> audit, spdlog::logger* log)
      : audit_(std::move(audit)), log_(log) {}
  // Logs a reload of the token file, in the daemon log and the audit log.
  void OnReload(const Status& result, size_t identities);

  std::shared_ptr<spdlog::logger> audit_;
  spdlog::logger* log_;
  std::unique_ptr<TokenStore> tokens_;  // Null: access control off.
};

}  // namespace gpurm

#endif  // GPURM_DAEMON_ACCESS_CONTROL_H_
