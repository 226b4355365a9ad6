// Process accounting: which gpurm allocation each GPU process belongs to,
// and whether it keeps within its grant.
//
// NVML reports host PIDs (also for processes inside containers). A process
// belongs to the allocation named by GPURM_ALLOCATION_ID in its environment
// (/proc/<pid>/environ; `gpurm run`, the Python package and the Jobs gpurm
// creates set it), else in its nearest ancestor's, else -- in Kubernetes
// mode -- to the allocation of the pod its cgroup names (/proc/<pid>/cgroup,
// world-readable, so this works without CAP_SYS_PTRACE too). Environments do not change
// after exec, so what was found is remembered per (pid, start time): a PID
// reused by a new process (another start time) is looked up afresh, never
// taken for the old one.
//
// Classes, per process on a GPU:
//   within_grant  its allocation is active, was granted this GPU, and the
//                 memory of all its processes on the GPU is within the grant;
//   over_grant    the same, above the grant;
//   foreign       no allocation (or one this daemon does not know), or an
//                 allocation that was not granted this GPU;
//   ended         its allocation was released or expired;
//   unknown       could not be told, with the reason: the process is gone,
//                 or its environment cannot be read -- reading another
//                 user's /proc/<pid>/environ needs CAP_SYS_PTRACE (ptrace
//                 access mode PTRACE_MODE_READ).
//
// Pure apart from the ProcReader seam (the real one reads /proc); not
// thread-safe: one accountant per sampling thread.
#ifndef GPURM_MONITOR_PROCESS_ACCOUNTING_H_
#define GPURM_MONITOR_PROCESS_ACCOUNTING_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "monitor/events.h"

namespace gpurm {

inline constexpr char kAllocationIdVariable[] = "GPURM_ALLOCATION_ID";

// What /proc says of one process.
struct ProcStat {
  int64_t parent_pid = 0;
  // Start time in clock ticks after boot (field 22 of /proc/<pid>/stat).
  uint64_t start_ticks = 0;
  std::string command;  // comm (field 2).
  int64_t uid = -1;     // Effective uid (owner of /proc/<pid>), -1 when unknown.
};

class ProcReader {
 public:
  virtual ~ProcReader() = default;
  // kNotFound when the process does not exist (any more).
  virtual Result<ProcStat> Stat(int64_t pid) const = 0;
  // The raw environment (NUL-separated NAME=value entries). kPermissionDenied
  // when the daemon may not read it.
  virtual Result<std::string> Environ(int64_t pid) const = 0;
  // /proc/<pid>/cgroup as it is.
  virtual Result<std::string> Cgroup(int64_t pid) const = 0;
};

// Reads `root` (default "/proc").
class LinuxProcReader final : public ProcReader {
 public:
  explicit LinuxProcReader(std::string root = "/proc") : root_(std::move(root)) {}
  Result<ProcStat> Stat(int64_t pid) const override;
  Result<std::string> Environ(int64_t pid) const override;
  Result<std::string> Cgroup(int64_t pid) const override;

 private:
  std::string root_;
};

// The UID of the Kubernetes pod a /proc/<pid>/cgroup names, if any, for
// both cgroup drivers: ".../kubepods/burstable/pod<uid>/<container>"
// (cgroupfs) and ".../kubepods-burstable-pod<uid with _ for ->.slice/..."
// (systemd).
std::optional<std::string> PodUidFromCgroup(const std::string& cgroup);

// The allocation of the pod with a UID (Kubernetes mode: the label gpurm
// puts on its Jobs' pods), or nullopt.
using PodAllocationLookup = std::function<std::optional<std::string>(const std::string& pod_uid)>;

// The value of `name` in a raw environment, if set.
std::optional<std::string> EnvironValue(const std::string& environ, const std::string& name);

enum class ProcessClass { kWithinGrant, kOverGrant, kForeign, kEnded, kUnknown };
// "within_grant", "over_grant", "foreign", "ended", "unknown".
const char* ProcessClassName(ProcessClass value);

// An allocation as the accountant needs it (active ones, and ended ones so
// that their leftover processes read "ended").
struct AccountedAllocation {
  std::string id;
  std::string owner;
  bool active = true;
  std::map<std::string, int64_t> granted_mib;  // GPU uuid -> memory granted there.
  // Node name -> the most memory granted on one GPU there. Read for nodes
  // whose device plugin picks the GPUs (Node::device_plugin_assigns_gpus),
  // where a grant holds for any GPU of the node.
  std::map<std::string, int64_t> granted_mib_per_gpu_on_node;

  // The memory granted on `gpu` of `node`; nullopt when none is.
  std::optional<int64_t> GrantedOn(const Node& node, const Gpu& gpu) const;
};

// The accountant's view of an allocation from the ledger's record.
AccountedAllocation AccountedFrom(const Allocation& allocation);

struct ProcessAccount {
  int64_t pid = 0;
  int64_t memory_used_mib = 0;
  std::string command;
  int64_t uid = -1;
  std::string allocation_id;  // Empty when none was found.
  // The Kubernetes pod its cgroup names, when no allocation id was found
  // in its environment; empty otherwise.
  std::string pod_uid;
  std::string owner;  // The allocation's owner, when this daemon knows the allocation.
  // Its start time as read from this machine's /proc; 0 when it was not
  // (the process runs on another server, identified by its agent).
  uint64_t start_ticks = 0;
  ProcessClass process_class = ProcessClass::kUnknown;
  std::string reason;  // Why this class, in words (always set).
};

struct GpuAccount {
  std::string node_name;
  std::string gpu_uuid;
  int gpu_index = 0;
  std::vector<ProcessAccount> processes;  // In the order the driver listed them.
  int foreign_processes = 0;
  // Per allocation with processes here: memory they use and memory granted
  // here (0 when not granted this GPU).
  struct AllocationUse {
    std::string allocation_id;
    std::string owner;
    int64_t used_mib = 0;
    int64_t granted_mib = 0;
  };
  std::vector<AllocationUse> allocations;
};

// The allocation with an id (active or ended), or nullopt when unknown.
using AllocationLookup = std::function<std::optional<AccountedAllocation>(const std::string& id)>;

class ProcessAccountant {
 public:
  // `pod_allocation`: Kubernetes mode's pod -> allocation map; empty
  // elsewhere.
  explicit ProcessAccountant(const ProcReader* reader, PodAllocationLookup pod_allocation = {})
      : reader_(reader), pod_allocation_(std::move(pod_allocation)) {}

  // One pass over the GPUs of `snapshot` that report processes; `lookup`
  // is asked at most once per allocation id.
  std::vector<GpuAccount> Account(const InventorySnapshot& snapshot,
                                  const AllocationLookup& lookup);
  // The same over a list of allocations.
  std::vector<GpuAccount> Account(const InventorySnapshot& snapshot,
                                  const std::vector<AccountedAllocation>& allocations);

 private:
  struct Found {
    uint64_t start_ticks = 0;
    std::string allocation_id;  // Empty: none.
    std::string pod_uid;        // Read from the cgroup when allocation_id is empty.
    std::string error;          // Set when it could not be told.
  };
  Found Resolve(int64_t pid, uint64_t start_ticks, int64_t parent_pid);
  std::optional<std::string> AllocationOfPod(const std::string& pod_uid) const;

  const ProcReader* reader_;
  PodAllocationLookup pod_allocation_;
  std::unordered_map<int64_t, Found> cache_;  // By pid; valid while the start time matches.
};

// Memory of gpurm's own allocations on each GPU (by uuid), from one pass:
// per allocation granted the GPU, what its processes use up to the grant.
// What a job uses beyond its grant, and every other process, stays outside
// use (Inventory::SetManagedUse): the grant is all that is set aside for it.
std::unordered_map<std::string, int64_t> ManagedUseByGpu(const std::vector<GpuAccount>& accounts);

// kProcess events between two passes: a process (by GPU and pid) that
// appeared, changed class or is gone. Fields of the GPU (node, index, model,
// readings) come from `snapshot` (for a GPU no longer there, from nothing
// but the account); a process that changed class but can no longer be told
// (unknown) keeps the allocation and command it had. Pure; sequence
// numbers are left to the EventHub.
std::vector<GpuEvent> ProcessEvents(const std::vector<GpuAccount>& before,
                                    const std::vector<GpuAccount>& after,
                                    const InventorySnapshot& snapshot, int64_t unix_ms);

// The latest accounting pass, for readers on other threads (the API).
// Thread-safe.
class ProcessAccountBook {
 public:
  struct Entry {
    int64_t unix_ms = 0;
    std::vector<GpuAccount> gpus;
    // The account of a GPU by uuid; nullptr when it reported no process.
    const GpuAccount* Find(const std::string& uuid) const;
  };
  void Publish(std::vector<GpuAccount> gpus, int64_t unix_ms);
  // nullptr before the first pass.
  std::shared_ptr<const Entry> Latest() const;

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const Entry> latest_;
};

}  // namespace gpurm

#endif  // GPURM_MONITOR_PROCESS_ACCOUNTING_H_
