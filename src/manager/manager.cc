#include "manager/manager.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

namespace gpurm {

GpuManager::GpuManager(Inventory* inventory, Ledger* ledger, const Clock* clock,
                       std::string_view default_policy)
    : inventory_(inventory),
      ledger_(ledger),
      clock_(clock),
      scheduler_(default_policy),
      id_random_(std::random_device{}()) {}

Status GpuManager::Readiness() const {
  if (inventory_->Snapshot()) return Status::Ok();
  const Status error = inventory_->LastError();
  if (!error.ok()) {
    return Unavailable("inventory not loaded: " + error.message());
  }
  return Unavailable("inventory not loaded yet (provider \"" + inventory_->provider_name() +
                     "\" has not answered)");
}

Status GpuManager::EnsureState() const {
  std::shared_ptr<const InventorySnapshot> snapshot = inventory_->Snapshot();
  if (!snapshot) return Readiness();
  if (!state_ || state_->snapshot_ptr() != snapshot) {
    // A new snapshot (GPUs, health, memory used outside gpurm changed):
    // start again from the ledger, the source of truth.
    state_.emplace(std::move(snapshot), ledger_->ActiveGrants());
    ++rebuilds_;
    Changed();
  }
  return Status::Ok();
}

std::string GpuManager::NewId(const char* prefix) {
  char buffer[48];
  std::snprintf(buffer, sizeof(buffer), "%s-%016llx", prefix,
                static_cast<unsigned long long>(id_random_()));
  return buffer;
}

ScheduleOptions GpuManager::OptionsFor() const {
  ScheduleOptions options;
  options.workload = &workload_;
  options.random_seed = decisions_++;
  return options;
}

Result<std::shared_ptr<const ClusterState>> GpuManager::CurrentState() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (Status status = EnsureState(); !status.ok()) return status;
  if (!published_) published_ = std::make_shared<const ClusterState>(*state_);
  return published_;
}

ScheduleResult GpuManager::ScheduleAroundQueue(const GpuRequest& request, int priority) {
  const std::optional<int> head_priority = queue_.HeadPriority();
  if (!head_priority || priority > *head_priority) {
    return scheduler_.Schedule(request, *state_, OptionsFor());
  }
  const QueueEntry& head = *queue_.Find(queue_.WaitingIds().front());
  const std::vector<GpuGrant> hold = scheduler_.HoldFor(head.request, *state_, OptionsFor());
  state_->AddGrants(hold);
  ScheduleResult result = scheduler_.Schedule(request, *state_, OptionsFor());
  state_->RemoveGrants(hold);
  if (!result.placement && !hold.empty()) {
    result.diagnosis.message += " (" + std::to_string(hold.size()) + " GPU(s) are held for the " +
                                std::to_string(queue_.waiting()) +
                                " queued request(s) of equal or higher priority)";
  }
  return result;
}

Result<Allocation> GpuManager::Record(const GpuRequest& request, const std::string& owner,
                                      const std::string& idempotency_key,
                                      const Placement& placement) {
  Allocation allocation;
  allocation.id = NewId("alloc");
  allocation.owner = owner;
  allocation.request = request;
  allocation.grants = placement.grants;
  allocation.created_unix_ms = clock_->NowUnixMs();
  if (request.lease_ttl_s > 0) {
    allocation.lease_expires_unix_ms = allocation.created_unix_ms + request.lease_ttl_s * 1000;
  }
  allocation.idempotency_key = idempotency_key;
  const Status inserted = ledger_->Insert(allocation);
  if (!inserted.ok()) return inserted;
  if (!scheduler_.Reserve(placement, *state_).ok()) {
    // The free state disagreed with the ledger, which accepted the grant:
    // believe the ledger.
    state_.reset();
    if (Status status = EnsureState(); !status.ok()) return status;
  }
  Changed();
  return allocation;
}

AllocationResult GpuManager::Allocate(const GpuRequest& request, const std::string& owner,
                                      const std::string& idempotency_key, const WaitOptions& wait) {
  AllocationResult result;
  result.status = ValidateRequest(request);
  if (!result.status.ok()) return result;
  if (wait.wait && !(wait.timeout_s > 0 && wait.timeout_s <= 86'400)) {
    result.status = InvalidArgument("must be in (0, 86400] seconds", "wait_timeout_seconds");
    return result;
  }
  if (wait.priority < -1000 || wait.priority > 1000) {
    result.status = InvalidArgument("must be between -1000 and 1000", "priority");
    return result;
  }

  std::lock_guard<std::mutex> lock(mutex_);
  if (!idempotency_key.empty()) {
    if (std::optional<Allocation> earlier = ledger_->FindByIdempotencyKey(owner, idempotency_key)) {
      result.allocation = std::move(earlier);
      result.replayed = true;
      return result;
    }
    if (const QueueEntry* waiting = queue_.FindWaiting(owner, idempotency_key)) {
      result.queued = *waiting;
      result.queue_position = queue_.Position(waiting->id);
      result.replayed = true;
      return result;
    }
  }
  result.status = EnsureState();
  if (!result.status.ok()) return result;
  queue_.ExpireDue(clock_->NowUnixMs());
  result.status = CheckOwnerCap(owner);
  if (!result.status.ok()) return result;
  workload_.Record(request);

  ScheduleResult schedule = ScheduleAroundQueue(request, wait.priority);
  if (schedule.placement) {
    Result<Allocation> recorded = Record(request, owner, idempotency_key, *schedule.placement);
    if (!recorded.ok()) {
      result.status = recorded.status();
      return result;
    }
    result.allocation = std::move(recorded).value();
    result.diagnosis = std::move(schedule.diagnosis);
    return result;
  }
  result.diagnosis = std::move(schedule.diagnosis);
  if (wait.wait && result.diagnosis.possible_ever) {
    QueueEntry entry;
    entry.id = NewId("queue");
    entry.owner = owner;
    entry.request = request;
    entry.idempotency_key = idempotency_key;
    entry.priority = wait.priority;
    entry.enqueued_unix_ms = clock_->NowUnixMs();
    entry.deadline_unix_ms =
        entry.enqueued_unix_ms + static_cast<int64_t>(std::llround(wait.timeout_s * 1000));
    entry.message = result.diagnosis.message;
    Result<QueueEntry> added = queue_.Add(std::move(entry));
    if (!added.ok()) {
      result.status = added.status();
      return result;
    }
    result.queue_position = queue_.Position(added->id);
    result.queued = std::move(added).value();
    result.status = Status::Ok();
    return result;
  }
  result.status = Status(result.diagnosis.possible_ever ? StatusCode::kUnschedulableNow
                                                        : StatusCode::kUnschedulableNever,
                         result.diagnosis.message);
  return result;
}

Status GpuManager::CheckOwnerCap(const std::string& owner) const {
  if (max_allocations_per_owner_ <= 0) return Status::Ok();
  // Waiting entries count too: the queue grants them without asking again.
  size_t held = 0;
  for (const QueueEntry& entry : queue_.List(false)) held += entry.owner == owner ? 1 : 0;
  AllocationFilter filter;
  filter.owner = owner;
  filter.limit = max_allocations_per_owner_;
  held += ledger_->List(filter).size();
  if (held < static_cast<size_t>(max_allocations_per_owner_)) return Status::Ok();
  return Status(StatusCode::kResourceExhausted,
                "owner \"" + owner + "\" already holds " + std::to_string(held) +
                    " active or queued allocation(s); the limit is " +
                    std::to_string(max_allocations_per_owner_) + " (release one first)",
                kOwnerCapField);
}

PreviewResult GpuManager::Preview(const GpuRequest& request) const {
  PreviewResult result;
  result.status = ValidateRequest(request);
  if (!result.status.ok()) return result;
  std::lock_guard<std::mutex> lock(mutex_);
  result.status = EnsureState();
  if (!result.status.ok()) return result;
  result.schedule = scheduler_.Schedule(request, *state_, OptionsFor());
  result.snapshot = state_->snapshot_ptr();
  return result;
}

void GpuManager::ServeQueue() {
  const int64_t now = clock_->NowUnixMs();
  queue_.ExpireDue(now);
  queue_.Prune(now);
  if (queue_.waiting() == 0 || !EnsureState().ok()) return;
  std::vector<GpuGrant> hold;  // Held for the first entry that does not fit.
  bool blocked = false;
  const uint64_t built = rebuilds_;
  for (const std::string& id : queue_.WaitingIds()) {
    QueueEntry& entry = *queue_.Find(id);
    ScheduleResult schedule = scheduler_.Schedule(entry.request, *state_, OptionsFor());
    if (schedule.placement) {
      Result<Allocation> recorded =
          Record(entry.request, entry.owner, entry.idempotency_key, *schedule.placement);
      if (recorded.ok()) {
        queue_.Finish(id, QueueState::kGranted, now,
                      blocked ? "granted (backfilled around the queue's head)" : "granted",
                      std::move(recorded).value());
      } else {
        entry.message = "could not record the grant: " + recorded.status().message();
      }
      continue;
    }
    if (!schedule.diagnosis.possible_ever) {
      // The inventory changed under it (a node went away).
      queue_.Finish(id, QueueState::kFailed, now, schedule.diagnosis.message);
      continue;
    }
    entry.message = schedule.diagnosis.message;
    if (!blocked) {
      blocked = true;
      hold = scheduler_.HoldFor(entry.request, *state_, OptionsFor());
      state_->AddGrants(hold);
    }
  }
  // A rebuild from the ledger (after a disagreement) dropped the hold already.
  if (rebuilds_ == built) state_->RemoveGrants(hold);
}

Result<Allocation> GpuManager::EndLocked(const std::string& id, AllocationState end_state) {
  Result<Allocation> current = ledger_->Get(id);
  if (!current.ok() || current->state != AllocationState::kActive) return current;
  if (Status status = EnsureState(); !status.ok()) {
    // No snapshot yet: nothing to update in memory.
    return ledger_->End(id, end_state, clock_->NowUnixMs());
  }
  Result<Allocation> ended = ledger_->End(id, end_state, clock_->NowUnixMs());
  if (ended.ok()) {
    state_->RemoveGrants(ended->grants);
    Changed();
    ServeQueue();
  }
  return ended;
}

Result<Allocation> GpuManager::Release(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  return EndLocked(id, AllocationState::kReleased);
}

Result<Allocation> GpuManager::ReleaseOnNode(const std::string& owner, const std::string& node_name,
                                             int gpu_count) {
  std::lock_guard<std::mutex> lock(mutex_);
  AllocationFilter filter;
  filter.owner = owner;
  std::vector<Allocation> active = ledger_->List(filter);  // Newest first.
  for (const Allocation& allocation : active) {
    const bool on_node = std::all_of(allocation.grants.begin(), allocation.grants.end(),
                                     [&](const GpuGrant& g) { return g.node_name == node_name; });
    if (on_node && static_cast<int>(allocation.grants.size()) == gpu_count) {
      return EndLocked(allocation.id, AllocationState::kReleased);
    }
  }
  return NotFound("owner \"" + owner + "\" has no active allocation of " +
                  std::to_string(gpu_count) + " GPU(s) on node \"" + node_name + "\"");
}

Result<Allocation> GpuManager::Heartbeat(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  Result<Allocation> current = ledger_->Get(id);
  if (!current.ok()) return current;
  if (current->state != AllocationState::kActive) {
    return Status(StatusCode::kFailedPrecondition,
                  std::string("allocation is ") + AllocationStateName(current->state));
  }
  if (current->request.lease_ttl_s <= 0) {
    return Status(StatusCode::kFailedPrecondition,
                  "allocation has no lease (allocate with lease_ttl_seconds > 0)");
  }
  const int64_t now = clock_->NowUnixMs();
  if (current->lease_expires_unix_ms <= now) {
    // Too late: its GPUs may already be promised elsewhere once reaped.
    Result<Allocation> ended = EndLocked(id, AllocationState::kExpired);
    if (!ended.ok()) return ended.status();
    return Status(StatusCode::kFailedPrecondition, "lease expired; the GPUs were released");
  }
  return ledger_->RenewLease(id, now + current->request.lease_ttl_s * 1000);
}

std::vector<Allocation> GpuManager::ReapExpiredLeases() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Allocation> reaped;
  const int64_t now = clock_->NowUnixMs();
  for (const Allocation& allocation : ledger_->ExpiredLeases(now)) {
    Result<Allocation> ended = EndLocked(allocation.id, AllocationState::kExpired);
    if (ended.ok()) reaped.push_back(std::move(ended).value());
  }
  ServeQueue();
  return reaped;
}

std::vector<QueueEntry> GpuManager::Queue(bool include_finished) {
  std::lock_guard<std::mutex> lock(mutex_);
  queue_.ExpireDue(clock_->NowUnixMs());
  return queue_.List(include_finished);
}

Result<std::pair<QueueEntry, size_t>> GpuManager::QueueEntryById(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  queue_.ExpireDue(clock_->NowUnixMs());
  const QueueEntry* entry = queue_.Find(id);
  if (entry == nullptr) return NotFound("no queued request \"" + id + "\"");
  return std::make_pair(*entry, queue_.Position(id));
}

Result<QueueEntry> GpuManager::CancelQueued(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  const QueueEntry* entry = queue_.Find(id);
  if (entry == nullptr) return NotFound("no queued request \"" + id + "\"");
  if (entry->state == QueueState::kWaiting) {
    queue_.Finish(id, QueueState::kCancelled, clock_->NowUnixMs(), "cancelled");
    // The head may have changed: requests behind it may fit now.
    ServeQueue();
  }
  return *queue_.Find(id);
}

}  // namespace gpurm
