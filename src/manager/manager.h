// GpuManager: the allocation service. Ties the inventory snapshot, the
// scheduler and the ledger together; the API, CLI and integrations talk to
// it and to nothing below it for state changes.
#ifndef GPURM_MANAGER_MANAGER_H_
#define GPURM_MANAGER_MANAGER_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "core/types.h"
#include "inventory/inventory.h"
#include "ledger/ledger.h"
#include "scheduler/cluster_state.h"
#include "scheduler/scheduler.h"

namespace gpurm {

struct AllocationResult {
  Status status;  // OK, or why not (kUnschedulableNow/Never, ...).
  std::optional<Allocation> allocation;
  bool replayed = false;  // An earlier allocation with the same idempotency key.
  Diagnosis diagnosis;    // Reasons and what would fit, when unschedulable.
};

struct PreviewResult {
  Status status;  // kInvalidArgument / kUnavailable; OK even when nothing fits.
  ScheduleResult schedule;
  std::shared_ptr<const InventorySnapshot> snapshot;
};

// Thread-safe. Allocate serialises place-then-record under one mutex, so
// concurrent clients can never be granted the same GPU or more memory than a
// shared GPU has; the ledger makes each decision durable before it is answered.
class GpuManager {
 public:
  GpuManager(Inventory* inventory, Ledger* ledger, const Clock* clock,
             std::string_view default_policy);

  // Ready once the inventory has published a snapshot; otherwise the reason.
  Status Readiness() const;

  AllocationResult Allocate(const GpuRequest& request, const std::string& owner,
                            const std::string& idempotency_key);
  // Schedules without reserving anything (for /validate and framework plans).
  PreviewResult Preview(const GpuRequest& request) const;

  // Idempotent: releasing an ended allocation returns it as it is.
  Result<Allocation> Release(const std::string& id);
  // Releases `owner`'s newest active allocation on `node_name` holding exactly
  // `gpu_count` GPUs (MISSION.md's cleanup_gpu_resources(node, count)).
  Result<Allocation> ReleaseOnNode(const std::string& owner, const std::string& node_name,
                                   int gpu_count);
  // Extends the lease by its TTL. kFailedPrecondition when the allocation has
  // no lease, has ended, or its lease already expired (it is then ended).
  Result<Allocation> Heartbeat(const std::string& id);
  // Ends every allocation whose lease expired; returns them.
  std::vector<Allocation> ReapExpiredLeases();

  // The free state of the cluster now; kUnavailable before the first snapshot.
  Result<std::shared_ptr<const ClusterState>> CurrentState() const;

  Ledger& ledger() const { return *ledger_; }
  Inventory& inventory() const { return *inventory_; }
  const Clock& clock() const { return *clock_; }
  const Scheduler& scheduler() const { return scheduler_; }

 private:
  std::string NewAllocationId();

  Inventory* const inventory_;
  Ledger* const ledger_;
  const Clock* const clock_;
  const Scheduler scheduler_;

  std::mutex allocate_mutex_;  // Held from reading free state to recording the grant.
  std::mt19937_64 id_random_;  // Guarded by allocate_mutex_.
};

}  // namespace gpurm

#endif  // GPURM_MANAGER_MANAGER_H_
