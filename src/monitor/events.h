// GPU change events: what the sampler reports when a GPU's readings move by
// more than resource_change_threshold, its health changes, or it appears or
// disappears. Plain values, shared read-only between subscribers.
#ifndef GPURM_MONITOR_EVENTS_H_
#define GPURM_MONITOR_EVENTS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gpurm {

enum class GpuEventType {
  kChange,       // One or more readings moved by more than the threshold.
  kHealth,       // Healthy flag or health reason changed (always reported).
  kAdded,        // The GPU appeared in the inventory.
  kRemoved,      // The GPU is no longer in the inventory.
  kProcess,      // A process on the GPU entered or left a class (process accounting).
  kEnforcement,  // server.enforcement warned about, signalled or spared a process.
};
// "change", "health", "gpu_added", "gpu_removed", "process", "enforcement".
const char* GpuEventTypeName(GpuEventType type);

// The readings a change is judged on.
struct GpuReading {
  double utilization = 0.0;  // 0..1
  int64_t memory_used_mib = 0;
  int64_t memory_total_mib = 0;
  std::optional<double> temperature_c;
  std::optional<double> power_w;
  std::optional<double> power_limit_w;
  bool healthy = true;
  std::string health_reason;
  // False for MIG devices and GPUs in MIG mode (NVML gives them no
  // utilization): `utilization` is then meaningless and reported as null.
  bool utilization_available = true;

  // memory_used_mib / memory_total_mib, 0 when the total is unknown.
  double memory_used_ratio() const {
    return memory_total_mib > 0
               ? static_cast<double>(memory_used_mib) / static_cast<double>(memory_total_mib)
               : 0.0;
  }
};

// kProcess: which process, and the class it left and entered
// (monitor/process_accounting.h: "within_grant", "over_grant", "foreign",
// "ended", "unknown"); an empty class = not on the GPU (it appeared, or
// is gone).
struct ProcessTransition {
  int64_t pid = 0;
  std::string command;
  std::string allocation_id;  // Empty when none.
  std::string owner;
  int64_t memory_used_mib = 0;
  std::string process_class;
  std::string previous_class;
  std::string reason;
  // kEnforcement only: "warn", "sigterm", "sigkill" or "spared"
  // (monitor/enforcer.h); `reason` then says why.
  std::string action;
};

struct GpuEvent {
  uint64_t sequence = 0;  // Assigned by the EventHub: 1, 2, 3... per hub.
  int64_t unix_ms = 0;    // When the sample was taken.
  GpuEventType type = GpuEventType::kChange;
  std::string node_name;
  int gpu_index = 0;
  std::string gpu_uuid;
  std::string model;  // The driver's name for the GPU.
  // What moved: "utilization", "memory", "temperature", "power", "health".
  // Empty for kAdded / kRemoved.
  std::vector<std::string> changed;
  GpuReading current;  // For kRemoved: the values last reported.
  // The values last reported for this GPU (each field as of the event that
  // last reported it); empty for kAdded.
  std::optional<GpuReading> previous;
  std::optional<ProcessTransition> process;  // Set for kProcess only.
};

}  // namespace gpurm

#endif  // GPURM_MONITOR_EVENTS_H_
