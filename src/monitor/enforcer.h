// Enforcer: acts on what process accounting found (server.enforcement,
// core/enforcement.h), after each accounting pass.
//
// For each process in a class the policy does not ignore -- over_grant,
// foreign, ended -- it reports a warning when the process enters the class,
// and with `terminate` sends SIGTERM then, once grace_s has passed with the
// process still in the class, SIGKILL. Safety rules, each reported with
// the reason instead of acted on:
//   - only processes of this machine (accounted from its own /proc), never
//     this daemon itself, PID 1 or a PID below 2;
//   - the process's start time is read again just before each signal: a PID
//     reused by another process is left alone;
//   - a foreign process that names an allocation this daemon does not know
//     (another gpurm's, a controller's) is only warned about;
//   - a signal the daemon may not send (EPERM) is reported once, not retried.
// A process that leaves the class is forgotten: entering it again starts
// over. Not thread-safe: one enforcer, on the sampling thread.
#ifndef GPURM_MONITOR_ENFORCER_H_
#define GPURM_MONITOR_ENFORCER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/enforcement.h"
#include "core/status.h"
#include "monitor/events.h"
#include "monitor/process_accounting.h"

namespace gpurm {

// Sends signals; the real one is kill(2). kPermissionDenied on EPERM,
// kNotFound when the process is gone.
class ProcessSignaller {
 public:
  virtual ~ProcessSignaller() = default;
  virtual Status Signal(int64_t pid, int signal_number) = 0;
};

class KillSignaller final : public ProcessSignaller {
 public:
  Status Signal(int64_t pid, int signal_number) override;
};

// One thing the enforcer did or decided not to do.
struct EnforcementRecord {
  std::string node_name;
  std::string gpu_uuid;
  int gpu_index = 0;
  ProcessAccount process;
  // "warn", "sigterm", "sigkill", or "spared" (a safety rule held it back;
  // `reason` says which).
  std::string action;
  std::string reason;
};

// One kEnforcement event per record, with the GPU's readings from
// `snapshot`. Pure; sequence numbers are left to the EventHub.
std::vector<GpuEvent> EnforcementEvents(const std::vector<EnforcementRecord>& records,
                                        const InventorySnapshot& snapshot, int64_t unix_ms);

// "enforcement action=sigterm pid=4242 class=ended allocation=a-1 owner=bob
// node=n1 gpu=0 uuid=GPU-... reason=..." for the daemon and audit logs.
std::string EnforcementLine(const EnforcementRecord& record);

class Enforcer {
 public:
  // `own_pid`: this daemon's, never signalled.
  Enforcer(EnforcementPolicy policy, const ProcReader* reader, ProcessSignaller* signaller,
           int64_t own_pid);

  // One pass over an accounting pass's result at `now_unix_ms`.
  std::vector<EnforcementRecord> Apply(const std::vector<GpuAccount>& accounts,
                                       int64_t now_unix_ms);

 private:
  struct Tracked {
    ProcessClass process_class = ProcessClass::kUnknown;
    std::optional<int64_t> sigterm_unix_ms;  // When SIGTERM was sent.
    bool done = false;  // SIGKILL sent, or spared for good: nothing more to do.
  };
  EnforcementAction ActionFor(const ProcessAccount& process) const;
  // Signals `process` after checking it is still the same process; the
  // record says what happened.
  EnforcementRecord Signal(const ProcessAccount& process, int signal_number, Tracked& tracked);

  const EnforcementPolicy policy_;
  const ProcReader* reader_;
  ProcessSignaller* signaller_;
  const int64_t own_pid_;
  // By (pid, start time): the processes in a class the policy acts on.
  std::map<std::pair<int64_t, uint64_t>, Tracked> tracked_;
};

}  // namespace gpurm

#endif  // GPURM_MONITOR_ENFORCER_H_
