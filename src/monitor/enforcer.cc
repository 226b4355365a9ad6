#include "monitor/enforcer.h"

#include <signal.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "monitor/change_detector.h"

namespace gpurm {

Status KillSignaller::Signal(int64_t pid, int signal_number) {
  if (::kill(static_cast<pid_t>(pid), signal_number) == 0) return Status::Ok();
  const int error = errno;
  if (error == EPERM) {
    return Status(StatusCode::kPermissionDenied,
                  std::string("kill: ") + std::strerror(error) +
                      " (the daemon may signal only its own user's processes without "
                      "CAP_KILL)");
  }
  if (error == ESRCH) return NotFound("the process is gone");
  return Internal(std::string("kill: ") + std::strerror(error));
}

std::vector<GpuEvent> EnforcementEvents(const std::vector<EnforcementRecord>& records,
                                        const InventorySnapshot& snapshot, int64_t unix_ms) {
  std::vector<GpuEvent> events;
  for (const EnforcementRecord& record : records) {
    GpuEvent& event = events.emplace_back();
    event.unix_ms = unix_ms;
    event.type = GpuEventType::kEnforcement;
    event.node_name = record.node_name;
    event.gpu_index = record.gpu_index;
    event.gpu_uuid = record.gpu_uuid;
    for (const Node& node : snapshot.nodes) {
      for (const Gpu& gpu : node.gpus) {
        if (gpu.uuid != record.gpu_uuid) continue;
        event.model = gpu.model.raw_name;
        event.current = ReadingOf(gpu);
      }
    }
    event.changed = {"process"};
    ProcessTransition& process = event.process.emplace();
    process.pid = record.process.pid;
    process.command = record.process.command;
    process.allocation_id = record.process.allocation_id;
    process.owner = record.process.owner;
    process.memory_used_mib = record.process.memory_used_mib;
    process.process_class = ProcessClassName(record.process.process_class);
    process.previous_class = process.process_class;
    process.reason = record.reason;
    process.action = record.action;
  }
  return events;
}

std::string EnforcementLine(const EnforcementRecord& record) {
  const ProcessAccount& p = record.process;
  return "enforcement action=" + record.action + " pid=" + std::to_string(p.pid) +
         " command=" + (p.command.empty() ? "-" : p.command) +
         " class=" + ProcessClassName(p.process_class) +
         " allocation=" + (p.allocation_id.empty() ? "-" : p.allocation_id) +
         " owner=" + (p.owner.empty() ? "-" : p.owner) + " node=" + record.node_name +
         " gpu=" + std::to_string(record.gpu_index) + " uuid=" + record.gpu_uuid +
         " memory_used_mib=" + std::to_string(p.memory_used_mib) + " reason=\"" + record.reason +
         "\"";
}

Enforcer::Enforcer(EnforcementPolicy policy, const ProcReader* reader, ProcessSignaller* signaller,
                   int64_t own_pid)
    : policy_(policy), reader_(reader), signaller_(signaller), own_pid_(own_pid) {}

EnforcementAction Enforcer::ActionFor(const ProcessAccount& process) const {
  switch (process.process_class) {
    case ProcessClass::kOverGrant:
      return policy_.over_grant;
    case ProcessClass::kForeign:
      return policy_.foreign_process;
    case ProcessClass::kEnded:
      return policy_.ended_allocation;
    case ProcessClass::kWithinGrant:
    case ProcessClass::kUnknown:
      break;
  }
  return EnforcementAction::kIgnore;
}

EnforcementRecord Enforcer::Signal(const ProcessAccount& process, int signal_number,
                                   Tracked& tracked) {
  EnforcementRecord record;
  record.process = process;
  record.action = "spared";
  const auto spare = [&](std::string reason) {
    tracked.done = true;
    record.reason = std::move(reason);
    return record;
  };
  if (process.start_ticks == 0) {
    return spare("it runs on another server (identified by its agent); enforce there");
  }
  if (process.pid < 2 || process.pid == own_pid_) return spare("never signalled: PID 1 or gpurm");
  if (process.process_class == ProcessClass::kForeign && !process.allocation_id.empty() &&
      process.owner.empty()) {
    return spare("it names allocation " + process.allocation_id +
                 ", which this daemon does not know (another gpurm's?)");
  }
  Result<ProcStat> now = reader_->Stat(process.pid);
  if (!now.ok()) return spare("the process is gone");
  if (now->start_ticks != process.start_ticks) {
    return spare("PID " + std::to_string(process.pid) + " now belongs to another process");
  }
  const Status sent = signaller_->Signal(process.pid, signal_number);
  if (!sent.ok()) return spare(sent.message());
  record.action = signal_number == SIGKILL ? "sigkill" : "sigterm";
  record.reason = process.reason;
  return record;
}

std::vector<EnforcementRecord> Enforcer::Apply(const std::vector<GpuAccount>& accounts,
                                               int64_t now_unix_ms) {
  const auto grace_ms = static_cast<int64_t>(std::llround(policy_.grace_s * 1000.0));
  std::vector<EnforcementRecord> records;
  std::map<std::pair<int64_t, uint64_t>, Tracked> still_in_class;
  for (const GpuAccount& account : accounts) {
    for (const ProcessAccount& process : account.processes) {
      const EnforcementAction action = ActionFor(process);
      if (action == EnforcementAction::kIgnore) continue;
      const std::pair<int64_t, uint64_t> key{process.pid, process.start_ticks};
      if (still_in_class.count(key) > 0) continue;  // On several GPUs: acted on once.
      auto known = tracked_.find(key);
      const bool entered =
          known == tracked_.end() || known->second.process_class != process.process_class;
      Tracked tracked =
          entered ? Tracked{process.process_class, std::nullopt, false} : known->second;
      const auto add = [&](EnforcementRecord record) {
        record.node_name = account.node_name;
        record.gpu_uuid = account.gpu_uuid;
        record.gpu_index = account.gpu_index;
        records.push_back(std::move(record));
      };
      if (entered) {
        EnforcementRecord warning;
        warning.process = process;
        warning.action = "warn";
        warning.reason = process.reason;
        add(std::move(warning));
      }
      if (action == EnforcementAction::kTerminate && !tracked.done) {
        if (!tracked.sigterm_unix_ms) {
          EnforcementRecord record = Signal(process, SIGTERM, tracked);
          if (record.action == "sigterm") tracked.sigterm_unix_ms = now_unix_ms;
          add(std::move(record));
        } else if (now_unix_ms - *tracked.sigterm_unix_ms >= grace_ms) {
          add(Signal(process, SIGKILL, tracked));
          tracked.done = true;
        }
      }
      still_in_class[key] = tracked;
    }
  }
  tracked_ = std::move(still_in_class);
  return records;
}

}  // namespace gpurm
