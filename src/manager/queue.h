// AllocationQueue: requests waiting for GPUs ("wait": true on
// POST /allocate), highest priority first and first come, first served
// within a priority, plus recently finished entries so a client polling its
// entry learns the outcome. A plain data structure: the GpuManager owns one
// and guards it with its mutex; placement decisions (backfill) are the
// manager's.
//
// In memory only: a restarted daemon has an empty queue (clients polling an
// entry then get 404 and ask again). Allocations it granted are in the
// ledger like any other.
#ifndef GPURM_MANAGER_QUEUE_H_
#define GPURM_MANAGER_QUEUE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace gpurm {

enum class QueueState { kWaiting, kGranted, kExpired, kCancelled, kFailed };
// "waiting", "granted", "expired", "cancelled", "failed".
const char* QueueStateName(QueueState state);

struct QueueEntry {
  std::string id;
  std::string owner;
  GpuRequest request;
  std::string idempotency_key;  // May be empty.
  std::string request_digest;   // RequestDigest of the request, for idempotent retries.
  int priority = 0;             // Higher goes first.
  uint64_t sequence = 0;        // Arrival order (FIFO within a priority).
  int64_t enqueued_unix_ms = 0;
  int64_t deadline_unix_ms = 0;  // Expires unless granted by then.
  int64_t ended_unix_ms = 0;     // 0 while waiting.
  QueueState state = QueueState::kWaiting;
  std::string message;                   // Why it waits, or how it ended.
  std::optional<Allocation> allocation;  // Set once granted.
  // When GPUs were first held for it (0 = never); see
  // GpuManager::set_queue_head_hold_ms.
  int64_t hold_started_unix_ms = 0;
};

class AllocationQueue {
 public:
  // Bounds: waiting entries (beyond: kResourceExhausted), finished entries
  // kept for polling, and how long they are kept.
  explicit AllocationQueue(size_t max_waiting = 10'000, size_t max_finished = 1'000,
                           int64_t finished_retention_ms = 600'000);

  // Adds a waiting entry (id, sequence filled in by the queue from `id`
  // and its own counter). kResourceExhausted when the queue is full.
  Result<QueueEntry> Add(QueueEntry entry);

  // Ids of waiting entries in service order.
  std::vector<std::string> WaitingIds() const;
  // Waiting and finished entries; nullptr when unknown (or pruned).
  QueueEntry* Find(const std::string& id);
  const QueueEntry* Find(const std::string& id) const;
  // The waiting entry of (owner, idempotency_key), if any.
  const QueueEntry* FindWaiting(const std::string& owner, const std::string& key) const;
  // 1-based position among waiting entries; 0 when not waiting.
  size_t Position(const std::string& id) const;
  // Highest priority among waiting entries; nullopt when none wait.
  std::optional<int> HeadPriority() const;
  size_t waiting() const { return order_.size(); }
  // Waiting entries of `owner`.
  size_t WaitingOf(const std::string& owner) const;
  // GPU-hours the waiting entries of `owner` may wait: gpu_count x (deadline - enqueued).
  double WaitingGpuHoursOf(const std::string& owner) const;

  // Ends a waiting entry. Granted entries carry their allocation.
  void Finish(const std::string& id, QueueState state, int64_t now_unix_ms, std::string message,
              std::optional<Allocation> allocation = std::nullopt);
  // Expires waiting entries whose deadline is at or before `now`; returns them.
  std::vector<QueueEntry> ExpireDue(int64_t now_unix_ms);
  // Drops finished entries past retention or beyond max_finished (oldest first).
  void Prune(int64_t now_unix_ms);

  // All entries: waiting ones in service order, then finished ones newest first.
  std::vector<QueueEntry> List(bool include_finished) const;

 private:
  using OrderKey = std::tuple<int, uint64_t, std::string>;  // (-priority, sequence, id)
  static OrderKey KeyOf(const QueueEntry& entry);

  const size_t max_waiting_;
  const size_t max_finished_;
  const int64_t finished_retention_ms_;
  uint64_t next_sequence_ = 1;
  std::map<std::string, QueueEntry> entries_;
  std::set<OrderKey> order_;                            // Waiting entries.
  std::set<std::pair<int64_t, std::string>> finished_;  // (ended, id).
};

}  // namespace gpurm

#endif  // GPURM_MANAGER_QUEUE_H_
