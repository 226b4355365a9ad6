// Inventory: the current snapshot of nodes and GPUs, refreshed from one
// provider, plus a bounded per-GPU history of samples for monitoring.
#ifndef GPURM_INVENTORY_INVENTORY_H_
#define GPURM_INVENTORY_INVENTORY_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "core/types.h"
#include "inventory/provider.h"

namespace gpurm {

struct GpuSample {
  int64_t unix_ms = 0;
  double utilization = 0;
  int64_t memory_used_mib = 0;
  std::optional<double> temperature_c;
  std::optional<double> power_w;
  // False for devices without utilization (MIG devices, GPUs in MIG mode):
  // `utilization` is then meaningless.
  bool utilization_available = true;
};

// Thread-safe. Refresh calls are serialised; readers never wait on a
// provider: they get the last published snapshot.
class Inventory {
 public:
  // `history_capacity` bounds the samples kept per GPU (the oldest go first).
  Inventory(std::unique_ptr<InventoryProvider> provider, const Clock* clock,
            size_t history_capacity);

  // Asks the provider; on success publishes a new snapshot (generation + 1)
  // and appends one history sample per GPU whose values are fresh (not for
  // the provider's stale GPUs). On failure keeps the previous snapshot and
  // returns the provider's error.
  Status Refresh();

  // Records how much of each GPU's used memory belongs to processes of
  // gpurm's own allocations (process accounting's finding, by GPU uuid;
  // GPUs absent have none) and, when that changes a GPU, publishes the
  // current snapshot again with Gpu::memory_used_by_managed_mib set
  // (generation + 1), so that placement
  // does not count an allocation's own job as outside use. Later refreshes
  // carry the values over until the next call: accounting runs after each
  // sampling pass, and a job's memory must not flicker into outside use in
  // between. No-op before the first snapshot.
  void SetManagedUse(std::unordered_map<std::string, int64_t> managed_mib_by_uuid);

  // The last published snapshot; nullptr until a Refresh has succeeded.
  std::shared_ptr<const InventorySnapshot> Snapshot() const;
  // The provider's notes from the last successful Refresh.
  std::vector<std::string> Notes() const;
  // UUIDs of the GPUs whose values the last successful Refresh did not
  // renew (DiscoveryReport::stale_gpus).
  std::vector<std::string> StaleGpus() const;
  // OK, or the error of the last Refresh when it failed.
  Status LastError() const;
  // Increases whenever the snapshot, the notes or the last error may have
  // changed (each Refresh, each snapshot SetManagedUse publishes). A
  // lock-free read for caches of views of them: read it before reading
  // them, and an unchanged value means none of them has changed since.
  uint64_t Changes() const { return changes_.load(std::memory_order_acquire); }
  std::string provider_name() const { return provider_name_; }
  // CPU time the provider's own threads (sampling workers) spent, summed
  // over refreshes; the refreshing thread's CPU clock does not see it.
  double ProviderCpuSeconds() const;
  // Samples of one GPU taken at or after `since_unix_ms`, oldest first.
  std::vector<GpuSample> History(const std::string& gpu_uuid, int64_t since_unix_ms) const;

 private:
  std::mutex refresh_mutex_;  // Serialises Refresh (providers are thread-compatible).
  std::unique_ptr<InventoryProvider> provider_;
  const std::string provider_name_;
  const Clock* clock_;
  const size_t history_capacity_;

  mutable std::mutex mutex_;  // Guards the members below.
  std::shared_ptr<const InventorySnapshot> snapshot_;
  std::vector<std::string> notes_;
  std::vector<std::string> stale_gpus_;
  std::unordered_map<std::string, int64_t> managed_mib_by_uuid_;
  Status last_error_;
  double provider_cpu_seconds_ = 0;
  std::atomic<uint64_t> changes_{0};  // Changes(); increased under mutex_.
  std::unordered_map<std::string, std::deque<GpuSample>> history_;
};

}  // namespace gpurm

#endif  // GPURM_INVENTORY_INVENTORY_H_
