// GpuManager: the allocation service. Ties the inventory snapshot, the
// scheduler and the ledger together; the API, CLI and integrations talk to
// it and to nothing below it for state changes.
//
// Free state: one incremental ClusterState, built from the inventory
// snapshot and the ledger's active grants and rebuilt from them whenever the
// inventory publishes a new snapshot (every monitor interval), so the ledger
// stays the source of truth; between rebuilds each recorded grant and
// release updates it in place, which keeps a decision independent of the
// cluster's size (no 80,000-GPU rebuild per request).
//
// Queue: a request that cannot be met now may wait (WaitOptions). Waiting
// requests are served highest priority first, first come first served
// within a priority; when the head cannot be placed, the GPUs it is closest
// to getting are held for it and requests behind it (and new requests of no
// higher priority) are placed only around them -- backfill that does not
// delay the head. Every release, expiry and inventory refresh retries the
// queue, so a waiting request is granted as soon as GPUs free up. Nothing
// blocks while waiting: the caller gets a queue entry and polls it.
//
// Group commit: a decision is made and its GPUs reserved in memory under the
// mutex, then the ledger write is staged and the mutex released while the
// caller waits. One committer thread takes everything staged meanwhile and
// records it with one Ledger::Apply (one transaction, one fsync on SQLite),
// then, under the mutex, applies the in-memory effects and answers every
// waiter of the batch. So concurrent allocations share an fsync, and a
// request is answered only after the fsync that covers it. When the batch
// fails (disk full, I/O error) the committer undoes the reservation of every
// insert in it and each waiter gets the ledger's error; a release frees its
// GPUs only once it is committed, so it has nothing to undo. Writes staged
// but not yet committed are visible to nobody: the ledger (all reads) has
// not seen them, a second request with the same idempotency key waits for
// the first's outcome, and a second release of the same allocation shares
// the first's.
#ifndef GPURM_MANAGER_MANAGER_H_
#define GPURM_MANAGER_MANAGER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "core/types.h"
#include "inventory/inventory.h"
#include "ledger/ledger.h"
#include "manager/queue.h"
#include "scheduler/cluster_state.h"
#include "scheduler/scheduler.h"
#include "scheduler/workload.h"

namespace gpurm {

// Bounds of WaitOptions.
inline constexpr double kMaxWaitSeconds = 86'400;
inline constexpr int kMinPriority = -1000;
inline constexpr int kMaxPriority = 1000;

// How a request that cannot be met now is handled.
struct WaitOptions {
  bool wait = false;       // Queue it instead of refusing.
  double timeout_s = 300;  // How long it may wait (0 < timeout <= kMaxWaitSeconds).
  int priority = 0;        // Higher is served first (kMinPriority..kMaxPriority).
};

struct AllocationResult {
  Status status;  // OK, or why not (kUnschedulableNow/Never, ...).
  std::optional<Allocation> allocation;
  bool replayed = false;  // An earlier allocation with the same idempotency key.
  Diagnosis diagnosis;    // Reasons and what would fit, when unschedulable.
  // Set (with status OK and no allocation) when the request waits in the queue.
  std::optional<QueueEntry> queued;
  size_t queue_position = 0;  // 1-based, with `queued`.
};

// The Status field of a refusal by the per-owner cap (the config key's name).
inline constexpr char kOwnerCapField[] = "max_allocations_per_owner";

// The Status field of a refused idempotent retry (the HTTP header's name):
// kInvalidArgument when the key was used with another request,
// kFailedPrecondition when its allocation is no longer active.
inline constexpr char kIdempotencyKeyField[] = "Idempotency-Key";

// The Status fields of refusals by the per-owner queue caps (the config keys' names).
inline constexpr char kQueuedCapField[] = "max_queued_per_owner";
inline constexpr char kQueuedGpuHoursCapField[] = "max_queued_gpu_hours_per_owner";

// A canonical digest of everything a request asks for ("fnv1a64:" and 16 hex
// digits over the request codec's JSON of every field plus the wait options,
// keys sorted, numbers in shortest round-trip form), stored with an allocation or queue entry to
// tell a retry of the same request from another request reusing its idempotency key. Not a security
// boundary: a collision could only replay the owner's own allocation.
std::string RequestDigest(const GpuRequest& request, const WaitOptions& wait);

struct PreviewResult {
  Status status;  // kInvalidArgument / kUnavailable; OK even when nothing fits.
  ScheduleResult schedule;
  std::shared_ptr<const InventorySnapshot> snapshot;
};

// Thread-safe. Decisions are serialised under one mutex from reading the
// free state to recording the grant, so concurrent clients can never be
// granted the same GPU or more of a shared GPU than it has; the ledger makes
// each decision durable before it is answered (group commit, above).
class GpuManager {
 public:
  // Starts the committer thread; `ledger` must outlive the manager.
  GpuManager(Inventory* inventory, Ledger* ledger, const Clock* clock,
             std::string_view default_policy);
  // Stops the committer. No call may be in progress.
  ~GpuManager();
  GpuManager(const GpuManager&) = delete;
  GpuManager& operator=(const GpuManager&) = delete;

  // Ready once the inventory has published a snapshot; otherwise the reason.
  Status Readiness() const;

  // At most `cap` active allocations plus waiting queue entries per owner
  // (0 = unlimited). Checked under the decision mutex, so concurrent requests
  // of one owner cannot exceed it; a request over it gets kResourceExhausted
  // with field kOwnerCapField. Call before the manager is shared.
  void set_max_allocations_per_owner(int cap) { max_allocations_per_owner_ = cap; }
  int max_allocations_per_owner() const { return max_allocations_per_owner_; }

  // Leases for every client (server.default_lease_ttl_s, server.max_lease_ttl_s):
  // a request without lease_ttl_seconds (0) gets `default_s`, and one asking
  // for more than `max_s` is refused with kInvalidArgument naming
  // lease_ttl_seconds. 0 = no default (held until released) / no maximum.
  // Precondition: default_s <= max_s when max_s > 0 (config checks it). Call
  // before the manager is shared.
  void set_lease_limits(int64_t default_s, int64_t max_s) {
    default_lease_ttl_s_ = default_s;
    max_lease_ttl_s_ = max_s;
  }

  // Limits against one owner crowding others out (docs/SECURITY.md). Call
  // before the manager is shared.
  // A shared request's slice (memory_gb) below `mib` is kInvalidArgument
  // (field memory_gb), in Allocate and Preview alike; 0 = any size.
  void set_min_slice_mib(int64_t mib) { min_slice_mib_ = mib; }
  // At most `cap` waiting queue entries per owner (0 = no cap); beyond:
  // kResourceExhausted with field kQueuedCapField.
  void set_max_queued_per_owner(int cap) { max_queued_per_owner_ = cap; }
  int max_queued_per_owner() const { return max_queued_per_owner_; }
  // At most `cap` GPU-hours queued per owner (0 = no cap): the sum over its
  // waiting entries of gpu_count x wait timeout, the GPU time it may keep
  // the queue waiting for. Beyond: kResourceExhausted with field
  // kQueuedGpuHoursCapField.
  void set_max_queued_gpu_hours_per_owner(double cap) { max_queued_gpu_hours_per_owner_ = cap; }
  double max_queued_gpu_hours_per_owner() const { return max_queued_gpu_hours_per_owner_; }
  // GPUs are held for one queue entry (the head, or the first entry behind
  // heads whose hold ran out) for at most `ms` in all; then it waits on
  // without holding anything. So no request is kept from GPUs by one
  // entry's hold for longer than this.
  void set_queue_head_hold_ms(int64_t ms) { queue_head_hold_ms_ = ms; }

  // Places the request now, or -- with wait.wait and when it could ever fit
  // -- queues it (result.queued). A request of no higher priority than the
  // queue's head is placed only around the GPUs held for the head.
  // A non-empty idempotency key already used by `owner` replays that
  // allocation (or waiting queue entry) only while it is active and only for
  // the same request (RequestDigest); another request under the key is
  // kInvalidArgument, an ended allocation's key kFailedPrecondition, both
  // with field kIdempotencyKeyField -- a retry never gets GPUs it no longer
  // holds.
  AllocationResult Allocate(const GpuRequest& request, const std::string& owner,
                            const std::string& idempotency_key, const WaitOptions& wait = {});
  // Schedules without reserving anything (for /validate and framework
  // plans). Refuses what Allocate refuses before scheduling.
  PreviewResult Preview(const GpuRequest& request) const;

  // Idempotent: releasing an ended allocation returns it as it is.
  Result<Allocation> Release(const std::string& id);
  // Releases `owner`'s newest active allocation on `node_name` holding exactly
  // `gpu_count` GPUs (the Python API's cleanup_gpu_resources(node, count)).
  Result<Allocation> ReleaseOnNode(const std::string& owner, const std::string& node_name,
                                   int gpu_count);
  // Extends the lease by its TTL. kFailedPrecondition when the allocation has
  // no lease, has ended, or its lease already expired (it is then ended).
  Result<Allocation> Heartbeat(const std::string& id);
  // Ends every allocation whose lease expired and returns them; also expires
  // queue entries past their timeout and retries the queue (the daemon calls
  // this periodically, which also picks up inventory changes).
  std::vector<Allocation> ReapExpiredLeases();

  // The queue: waiting entries in service order, then (with
  // include_finished) recently finished ones, newest first.
  // Entries whose wait timed out are reported expired.
  std::vector<QueueEntry> Queue(bool include_finished);
  // One entry (waiting or recently finished) and its 1-based position
  // (0 unless waiting). kNotFound for unknown or pruned ids.
  Result<std::pair<QueueEntry, size_t>> QueueEntryById(const std::string& id);
  // Withdraws a waiting entry. Finished entries are returned unchanged.
  Result<QueueEntry> CancelQueued(const std::string& id);

  // The free state of the cluster now (an immutable copy, shared until the
  // next change); kUnavailable before the first snapshot.
  Result<std::shared_ptr<const ClusterState>> CurrentState() const;
  // Increases (under the decision mutex) with every change of the free state
  // (reservations, releases, reservations undone when a batch fails, the
  // rebuild for a new inventory snapshot) and after every write of the
  // ledger (each group-commit batch, each grant of the queue).
  // A lock-free read that never waits on placement, for caches of views of
  // CurrentState() and the active allocations: read it before reading them,
  // and an unchanged value means neither has changed since.
  uint64_t Version() const { return version_.load(std::memory_order_acquire); }

  Ledger& ledger() const { return *ledger_; }
  Inventory& inventory() const { return *inventory_; }
  const Clock& clock() const { return *clock_; }
  const Scheduler& scheduler() const { return scheduler_; }

 private:
  // A ledger change staged for the committer, and its outcome.
  struct PendingWrite {
    LedgerChange change;
    std::optional<Result<Allocation>> result;  // Set once its batch is decided.
  };

  // All below require mutex_ (held by `lock` where one is passed).
  // Builds or rebuilds state_ for the latest snapshot. A rebuild reads the
  // ledger, whose view is ambiguous while a batch commits, so it waits
  // (releasing `lock`) for the batch unless state_ exists: that serves one
  // batch longer, and the committer rebuilds after the batch.
  Status EnsureState(std::unique_lock<std::mutex>& lock) const;
  void Changed() const {
    published_.reset();
    version_.fetch_add(1, std::memory_order_acq_rel);
  }
  std::string NewId(const char* prefix);
  // ValidateRequest plus this manager's own limits (min_slice_mib_).
  Status CheckRequest(const GpuRequest& request) const;
  // The first waiting entry whose hold has not run out at `now` (its hold
  // starts now if it never had one), or nullptr.
  QueueEntry* HoldingEntry(int64_t now);
  ScheduleOptions OptionsFor() const;
  // Schedules a new request: around the GPUs held for the queue's head
  // unless `priority` is higher than the head's.
  ScheduleResult ScheduleAroundQueue(const GpuRequest& request, int priority);
  // The allocation for a placement, its GPUs reserved in state_ (undone with
  // state_->RemoveGrants when it is not recorded).
  Result<Allocation> Place(const GpuRequest& request, const std::string& owner,
                           const std::string& idempotency_key, const Placement& placement);
  // Stages `change` for the committer.
  std::shared_ptr<PendingWrite> Stage(LedgerChange change);
  // Waits (releasing `lock`) until `write`'s batch is decided.
  void AwaitWrite(std::unique_lock<std::mutex>& lock, const PendingWrite& write) const;
  // Stage and AwaitWrite: the change's result, its effects applied.
  Result<Allocation> Commit(std::unique_lock<std::mutex>& lock, LedgerChange change);
  // The committer thread's loop (takes mutex_ itself).
  void CommitLoop();
  // kResourceExhausted when `owner` is at max_allocations_per_owner_.
  Status CheckOwnerCap(const std::string& owner) const;
  // Ends an allocation in the ledger; the committer frees its GPUs in state_.
  Result<Allocation> EndLocked(std::unique_lock<std::mutex>& lock, const std::string& id,
                               AllocationState end_state);
  // Expires due entries, then grants what fits, in order, with backfill.
  // Grants are recorded one by one, synchronously (the queue is not the hot
  // path).
  void ServeQueue(std::unique_lock<std::mutex>& lock);

  Inventory* const inventory_;
  Ledger* const ledger_;
  const Clock* const clock_;
  const Scheduler scheduler_;

  mutable std::mutex mutex_;  // Held from reading free state to recording the grant.
  mutable std::optional<ClusterState> state_;
  mutable std::shared_ptr<const ClusterState> published_;  // Copy of state_ for readers.
  mutable std::atomic<uint64_t> version_{0};               // Version(); written under mutex_.
  WorkloadMix workload_;            // Requests seen, for the fragmentation-aware policy.
  mutable uint64_t decisions_ = 0;  // Seeds the random policy.
  AllocationQueue queue_;
  std::mt19937_64 id_random_;
  uint64_t last_id_ = 0;  // The number of the last id NewId made.
  int max_allocations_per_owner_ = 0;
  int64_t default_lease_ttl_s_ = 0;  // set_lease_limits.
  int64_t max_lease_ttl_s_ = 0;
  int64_t min_slice_mib_ = 0;
  int max_queued_per_owner_ = 0;
  double max_queued_gpu_hours_per_owner_ = 0;
  int64_t queue_head_hold_ms_ = INT64_MAX;

  // Group commit. state_ holds the GPUs of staged and in-flight inserts;
  // a rebuild adds those of staged ones (in-flight ones defer it).
  std::vector<std::shared_ptr<PendingWrite>> staged_;    // For the next batch.
  std::vector<std::shared_ptr<PendingWrite>> inflight_;  // Being committed now.
  // Staged or in-flight inserts by (owner, idempotency key) and ends by id.
  std::map<std::pair<std::string, std::string>, std::shared_ptr<PendingWrite>> pending_keys_;
  std::unordered_map<std::string, std::shared_ptr<PendingWrite>> pending_ends_;
  mutable std::condition_variable decided_;  // A batch was decided.
  std::condition_variable staged_cv_;        // Something was staged, or stopping_.
  bool stopping_ = false;
  std::thread committer_;  // Started last, in the constructor's body.
};

}  // namespace gpurm

#endif  // GPURM_MANAGER_MANAGER_H_
