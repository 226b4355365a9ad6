// What the daemon does about GPU processes that break the rules
// (server.enforcement; monitor/enforcer.h acts on it). Plain values.
#ifndef GPURM_CORE_ENFORCEMENT_H_
#define GPURM_CORE_ENFORCEMENT_H_

#include <optional>
#include <string_view>

namespace gpurm {

// ignore: nothing. warn: an audit-log line and an event when a process
// enters the class. terminate: the same, SIGTERM, and SIGKILL once grace_s
// has passed with the process still there.
enum class EnforcementAction { kIgnore, kWarn, kTerminate };

const char* EnforcementActionName(EnforcementAction action);  // "ignore", "warn", "terminate"
std::optional<EnforcementAction> ParseEnforcementAction(std::string_view name);

struct EnforcementPolicy {
  // An allocation's processes use more memory on a GPU than its grant there.
  EnforcementAction over_grant = EnforcementAction::kWarn;  // warn | terminate
  // A process with no allocation, or on a GPU its allocation was not granted.
  EnforcementAction foreign_process = EnforcementAction::kWarn;  // ignore | warn | terminate
  // A process still on a GPU after its allocation was released or expired.
  EnforcementAction ended_allocation = EnforcementAction::kWarn;  // warn | terminate
  // Seconds between SIGTERM and SIGKILL.
  double grace_s = 30;
};

}  // namespace gpurm

#endif  // GPURM_CORE_ENFORCEMENT_H_
