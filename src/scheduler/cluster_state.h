// ClusterState: what is free on every GPU once the ledger's active grants are
// subtracted from an inventory snapshot. Built fresh for each decision; a pure
// function of (snapshot, grants).
#ifndef GPURM_SCHEDULER_CLUSTER_STATE_H_
#define GPURM_SCHEDULER_CLUSTER_STATE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "core/types.h"

namespace gpurm {

struct GpuAvailability {
  const Gpu* gpu = nullptr;
  // Memory a new grant may still reserve: total minus use by processes
  // outside gpurm minus shared reservations; 0 when held exclusively.
  int64_t free_mib = 0;
  bool exclusively_held = false;
  int shared_holders = 0;
  int64_t shared_reserved_mib = 0;

  // No allocation holds any part of it.
  bool untouched() const { return !exclusively_held && shared_holders == 0; }
};

struct NodeAvailability {
  const Node* node = nullptr;
  std::vector<GpuAvailability> gpus;  // Same order as node->gpus.

  int UntouchedGpuCount() const;
};

// Immutable after construction; safe to read from many threads.
class ClusterState {
 public:
  // Grants naming GPUs absent from the snapshot (a node that disappeared) are
  // ignored here; they stay in the ledger until released.
  ClusterState(std::shared_ptr<const InventorySnapshot> snapshot,
               const std::vector<GpuGrant>& active_grants);

  const InventorySnapshot& snapshot() const { return *snapshot_; }
  const std::vector<NodeAvailability>& nodes() const { return nodes_; }

 private:
  std::shared_ptr<const InventorySnapshot> snapshot_;
  std::vector<NodeAvailability> nodes_;
};

}  // namespace gpurm

#endif  // GPURM_SCHEDULER_CLUSTER_STATE_H_
