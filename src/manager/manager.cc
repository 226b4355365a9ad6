#include "manager/manager.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <utility>

#include "codec/request_codec.h"

namespace gpurm {
namespace {

// Why a retry under `key` may not replay `earlier` (recorded with
// `earlier_digest`, empty when unknown); OK when it may.
Status ReplayRefusal(const std::string& key, const std::string& earlier_id,
                     const std::string& earlier_digest, const std::string& digest,
                     std::optional<AllocationState> earlier_state) {
  if (!earlier_digest.empty() && earlier_digest != digest) {
    return InvalidArgument("idempotency key \"" + key + "\" was used for " + earlier_id +
                               " with another request; use a new key for a new request",
                           kIdempotencyKeyField);
  }
  if (earlier_state && *earlier_state != AllocationState::kActive) {
    return Status(StatusCode::kFailedPrecondition,
                  "idempotency key \"" + key + "\" belongs to " + earlier_id + ", which is " +
                      AllocationStateName(*earlier_state) +
                      "; its GPUs may be someone else's now: use a new key",
                  kIdempotencyKeyField);
  }
  return Status::Ok();
}

}  // namespace

std::string RequestDigest(const GpuRequest& request, const WaitOptions& wait) {
  // Every request field through the one request codec (keys sorted), so a
  // field added to GpuRequest is part of the digest without touching this.
  nlohmann::json canonical = EncodeGpuRequest(request);
  canonical["wait"] = wait.wait;
  canonical["wait_timeout_seconds"] = wait.timeout_s;
  canonical["priority"] = wait.priority;
  uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a, 64 bits.
  for (const char c : canonical.dump()) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return std::string("fnv1a64:") + hex;
}

GpuManager::GpuManager(Inventory* inventory, Ledger* ledger, const Clock* clock,
                       std::string_view default_policy)
    : inventory_(inventory),
      ledger_(ledger),
      clock_(clock),
      scheduler_(default_policy),
      id_random_(std::random_device{}()) {
  committer_ = std::thread([this] { CommitLoop(); });
}

GpuManager::~GpuManager() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  staged_cv_.notify_all();
  committer_.join();
}

Status GpuManager::Readiness() const {
  if (inventory_->Snapshot()) return Status::Ok();
  const Status error = inventory_->LastError();
  if (!error.ok()) {
    return Unavailable("inventory not loaded: " + error.message());
  }
  return Unavailable("inventory not loaded yet (provider \"" + inventory_->provider_name() +
                     "\" has not answered)");
}

Status GpuManager::EnsureState(std::unique_lock<std::mutex>& lock) const {
  decided_.wait(lock, [&] { return inflight_.empty() || state_.has_value(); });
  std::shared_ptr<const InventorySnapshot> snapshot = inventory_->Snapshot();
  if (!snapshot) return Readiness();
  if (inflight_.empty() && (!state_ || state_->snapshot_ptr() != snapshot)) {
    // A new snapshot (GPUs, health, memory used outside gpurm changed):
    // start again from the ledger, the source of truth, plus the GPUs of the
    // staged inserts, which it has not seen yet.
    std::vector<GpuGrant> grants = ledger_->ActiveGrants();
    for (const std::shared_ptr<PendingWrite>& write : staged_) {
      if (write->change.kind != LedgerChange::Kind::kInsert) continue;
      const std::vector<GpuGrant>& staged = write->change.allocation.grants;
      grants.insert(grants.end(), staged.begin(), staged.end());
    }
    state_.emplace(std::move(snapshot), grants);
    Changed();
  }
  return Status::Ok();
}

std::string GpuManager::NewId(const char* prefix) {
  // 44 bits of milliseconds, then 20 random bits, and always above the last
  // id: ids are unique and ascend, so the ledger's indexes keyed by id grow
  // at their right edge and a group commit writes a few pages, not one per
  // allocation.
  const uint64_t now_ms = static_cast<uint64_t>(clock_->NowUnixMs());
  const uint64_t candidate = (now_ms << 20) | (id_random_() & 0xfffff);
  last_id_ = std::max(candidate, last_id_ + 1 + (id_random_() & 0xff));
  char buffer[48];
  std::snprintf(buffer, sizeof(buffer), "%s-%016llx", prefix,
                static_cast<unsigned long long>(last_id_));
  return buffer;
}

ScheduleOptions GpuManager::OptionsFor() const {
  ScheduleOptions options;
  options.workload = &workload_;
  options.random_seed = decisions_++;
  return options;
}

Result<std::shared_ptr<const ClusterState>> GpuManager::CurrentState() const {
  std::unique_lock<std::mutex> lock(mutex_);
  if (Status status = EnsureState(lock); !status.ok()) return status;
  if (!published_) published_ = std::make_shared<const ClusterState>(*state_);
  return published_;
}

Status GpuManager::CheckRequest(const GpuRequest& request) const {
  if (Status status = ValidateRequest(request); !status.ok()) return status;
  if (request.shared && request.memory_gb > 0 && MibFromGb(request.memory_gb) < min_slice_mib_) {
    char gb[32];
    std::snprintf(gb, sizeof gb, "%.2f", GbFromMib(min_slice_mib_));
    return InvalidArgument("a shared slice must be at least " + std::to_string(min_slice_mib_) +
                               " MiB (" + gb + " GB); smaller slices only fragment a GPU",
                           "memory_gb");
  }
  return Status::Ok();
}

QueueEntry* GpuManager::HoldingEntry(int64_t now) {
  for (const std::string& id : queue_.WaitingIds()) {
    QueueEntry& entry = *queue_.Find(id);
    if (entry.hold_started_unix_ms == 0) entry.hold_started_unix_ms = now;
    if (now - entry.hold_started_unix_ms < queue_head_hold_ms_) return &entry;
  }
  return nullptr;
}

ScheduleResult GpuManager::ScheduleAroundQueue(const GpuRequest& request, int priority) {
  const QueueEntry* holding = HoldingEntry(clock_->NowUnixMs());
  if (holding == nullptr || priority > holding->priority) {
    return scheduler_.Schedule(request, *state_, OptionsFor());
  }
  const QueueEntry& head = *holding;
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

Result<Allocation> GpuManager::Place(const GpuRequest& request, const std::string& owner,
                                     const std::string& idempotency_key,
                                     const Placement& placement) {
  // Fails only if the free state changed since the placement was computed
  // on it, which the mutex rules out; then nothing was reserved.
  if (Status status = scheduler_.Reserve(placement, *state_); !status.ok()) return status;
  Changed();
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
  return allocation;
}

std::shared_ptr<GpuManager::PendingWrite> GpuManager::Stage(LedgerChange change) {
  auto write = std::make_shared<PendingWrite>();
  write->change = std::move(change);
  const LedgerChange& staged = write->change;
  if (staged.kind == LedgerChange::Kind::kInsert && !staged.allocation.idempotency_key.empty()) {
    pending_keys_[{staged.allocation.owner, staged.allocation.idempotency_key}] = write;
  } else if (staged.kind == LedgerChange::Kind::kEnd) {
    pending_ends_[staged.id] = write;
  }
  staged_.push_back(write);
  staged_cv_.notify_one();
  return write;
}

void GpuManager::AwaitWrite(std::unique_lock<std::mutex>& lock, const PendingWrite& write) const {
  decided_.wait(lock, [&] { return write.result.has_value(); });
}

Result<Allocation> GpuManager::Commit(std::unique_lock<std::mutex>& lock, LedgerChange change) {
  const std::shared_ptr<PendingWrite> write = Stage(std::move(change));
  AwaitWrite(lock, *write);
  return *write->result;
}

void GpuManager::CommitLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    staged_cv_.wait(lock, [&] { return stopping_ || !staged_.empty(); });
    if (staged_.empty()) return;  // Stopping, and nothing left to commit.
    inflight_.swap(staged_);
    std::vector<LedgerChange> changes;
    changes.reserve(inflight_.size());
    for (const std::shared_ptr<PendingWrite>& write : inflight_) changes.push_back(write->change);
    lock.unlock();
    std::vector<Result<Allocation>> results = ledger_->Apply(changes);
    lock.lock();
    // The ledger's active allocations may have changed (an insert recorded,
    // an allocation ended) even where state_ has not.
    version_.fetch_add(1, std::memory_order_acq_rel);

    bool freed = false;
    for (size_t i = 0; i < inflight_.size(); ++i) {
      PendingWrite& write = *inflight_[i];
      const LedgerChange& change = write.change;
      Result<Allocation>& result = results[i];
      switch (change.kind) {
        case LedgerChange::Kind::kInsert:
          if (!change.allocation.idempotency_key.empty()) {
            pending_keys_.erase({change.allocation.owner, change.allocation.idempotency_key});
          }
          if (!result.ok()) {
            // Not recorded: give back the GPUs Place reserved.
            state_->RemoveGrants(change.allocation.grants);
            Changed();
          }
          break;
        case LedgerChange::Kind::kEnd:
          pending_ends_.erase(change.id);
          // Only ends of active allocations are staged, so an OK result
          // ended it now: its GPUs are free from here on.
          if (result.ok() && state_) {
            state_->RemoveGrants(result->grants);
            Changed();
            freed = true;
          }
          break;
        case LedgerChange::Kind::kRenewLease:
          break;
      }
      write.result = std::move(result);
    }
    inflight_.clear();
    // The ledger and state_ agree again: catch up with the inventory, and
    // give freed GPUs to the queue before the releases are answered.
    // (EnsureState cannot fail here: a snapshot exists once state_ does.)
    if (state_) static_cast<void>(EnsureState(lock));
    if (freed) ServeQueue(lock);
    decided_.notify_all();
  }
}

AllocationResult GpuManager::Allocate(const GpuRequest& asked, const std::string& owner,
                                      const std::string& idempotency_key, const WaitOptions& wait) {
  AllocationResult result;
  result.status = CheckRequest(asked);
  if (!result.status.ok()) return result;
  // From here on the request is as recorded: with the server's lease applied.
  GpuRequest request = asked;
  if (request.lease_ttl_s == 0) request.lease_ttl_s = default_lease_ttl_s_;
  if (max_lease_ttl_s_ > 0 && request.lease_ttl_s > max_lease_ttl_s_) {
    result.status = InvalidArgument("must be at most " + std::to_string(max_lease_ttl_s_) +
                                        " seconds (the server's max_lease_ttl_s); renew the "
                                        "lease with heartbeats to hold GPUs longer",
                                    "lease_ttl_seconds");
    return result;
  }
  if (wait.wait && !(wait.timeout_s > 0 && wait.timeout_s <= kMaxWaitSeconds)) {
    result.status = InvalidArgument("must be in (0, 86400] seconds", "wait_timeout_seconds");
    return result;
  }
  if (wait.priority < kMinPriority || wait.priority > kMaxPriority) {
    result.status = InvalidArgument("must be between -1000 and 1000", "priority");
    return result;
  }

  const std::string digest = RequestDigest(request, wait);
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    // First, as it may wait: nothing below does until the write is staged.
    result.status = EnsureState(lock);
    if (idempotency_key.empty()) break;
    if (std::optional<Allocation> earlier = ledger_->FindByIdempotencyKey(owner, idempotency_key)) {
      result.status = ReplayRefusal(idempotency_key, earlier->id, earlier->request_digest, digest,
                                    earlier->state);
      if (!result.status.ok()) return result;
      result.allocation = std::move(earlier);
      result.replayed = true;
      return result;
    }
    if (const auto pending = pending_keys_.find({owner, idempotency_key});
        pending != pending_keys_.end()) {
      // The same key is being recorded: once decided, it is either in the
      // ledger (replayed above) or failed (placed anew).
      const std::shared_ptr<PendingWrite> write = pending->second;
      AwaitWrite(lock, *write);
      continue;
    }
    if (const QueueEntry* waiting = queue_.FindWaiting(owner, idempotency_key)) {
      result.status =
          ReplayRefusal(idempotency_key, waiting->id, waiting->request_digest, digest, {});
      if (!result.status.ok()) return result;
      result.queued = *waiting;
      result.queue_position = queue_.Position(waiting->id);
      result.replayed = true;
      return result;
    }
    break;
  }
  if (!result.status.ok()) return result;
  queue_.ExpireDue(clock_->NowUnixMs());
  result.status = CheckOwnerCap(owner);
  if (!result.status.ok()) return result;
  workload_.Record(request);

  ScheduleResult schedule = ScheduleAroundQueue(request, wait.priority);
  if (schedule.placement) {
    Result<Allocation> placed = Place(request, owner, idempotency_key, *schedule.placement);
    if (!placed.ok()) {
      result.status = placed.status();
      return result;
    }
    placed->request_digest = digest;
    Result<Allocation> recorded = Commit(lock, LedgerChange::Insert(std::move(placed).value()));
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
    entry.request_digest = digest;
    entry.priority = wait.priority;
    entry.enqueued_unix_ms = clock_->NowUnixMs();
    entry.deadline_unix_ms =
        entry.enqueued_unix_ms + static_cast<int64_t>(std::llround(wait.timeout_s * 1000));
    entry.message = result.diagnosis.message;
    if (max_queued_per_owner_ > 0 &&
        queue_.WaitingOf(owner) >= static_cast<size_t>(max_queued_per_owner_)) {
      result.status =
          Status(StatusCode::kResourceExhausted,
                 "\"" + owner + "\" already has " + std::to_string(max_queued_per_owner_) +
                     " requests waiting (the most one owner may queue); cancel one or "
                     "wait for them",
                 kQueuedCapField);
      return result;
    }
    if (max_queued_gpu_hours_per_owner_ > 0) {
      const double queued_gpu_hours =
          queue_.WaitingGpuHoursOf(owner) + request.gpu_count * wait.timeout_s / 3600.0;
      if (queued_gpu_hours > max_queued_gpu_hours_per_owner_) {
        char hours[64];
        std::snprintf(hours, sizeof hours, "%.1f GPU-hours (the most one owner may queue is %.1f)",
                      queued_gpu_hours, max_queued_gpu_hours_per_owner_);
        result.status =
            Status(StatusCode::kResourceExhausted,
                   "\"" + owner + "\"'s waiting requests would ask for " + hours +
                       " (gpu_count x wait_timeout_seconds); wait less long, or cancel one",
                   kQueuedGpuHoursCapField);
        return result;
      }
    }
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
  // So do inserts not yet committed.
  for (const auto* writes : {&staged_, &inflight_}) {
    for (const std::shared_ptr<PendingWrite>& write : *writes) {
      held += write->change.kind == LedgerChange::Kind::kInsert &&
                      write->change.allocation.owner == owner
                  ? 1
                  : 0;
    }
  }
  if (held < static_cast<size_t>(max_allocations_per_owner_)) return Status::Ok();
  return Status(StatusCode::kResourceExhausted,
                "owner \"" + owner + "\" already holds " + std::to_string(held) +
                    " active or queued allocation(s); the limit is " +
                    std::to_string(max_allocations_per_owner_) + " (release one first)",
                kOwnerCapField);
}

PreviewResult GpuManager::Preview(const GpuRequest& request) const {
  PreviewResult result;
  result.status = CheckRequest(request);
  if (!result.status.ok()) return result;
  std::unique_lock<std::mutex> lock(mutex_);
  result.status = EnsureState(lock);
  if (!result.status.ok()) return result;
  result.schedule = scheduler_.Schedule(request, *state_, OptionsFor());
  result.snapshot = state_->snapshot_ptr();
  return result;
}

void GpuManager::ServeQueue(std::unique_lock<std::mutex>& lock) {
  const int64_t now = clock_->NowUnixMs();
  queue_.ExpireDue(now);
  queue_.Prune(now);
  if (queue_.waiting() == 0 || !EnsureState(lock).ok()) return;
  std::vector<GpuGrant> hold;  // Held for the first entry that does not fit.
  bool blocked = false;
  for (const std::string& id : queue_.WaitingIds()) {
    QueueEntry& entry = *queue_.Find(id);
    ScheduleResult schedule = scheduler_.Schedule(entry.request, *state_, OptionsFor());
    if (schedule.placement) {
      Result<Allocation> placed =
          Place(entry.request, entry.owner, entry.idempotency_key, *schedule.placement);
      if (placed.ok()) placed->request_digest = entry.request_digest;
      Status recorded = placed.ok() ? ledger_->Insert(*placed) : placed.status();
      if (recorded.ok()) {
        version_.fetch_add(1, std::memory_order_acq_rel);  // One more active allocation.
        queue_.Finish(id, QueueState::kGranted, now,
                      blocked ? "granted (backfilled around the queue's head)" : "granted",
                      std::move(placed).value());
      } else {
        if (placed.ok()) {
          state_->RemoveGrants(placed->grants);
          Changed();
        }
        entry.message = "could not record the grant: " + recorded.message();
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
      // The first entry that cannot be placed has GPUs held for it, unless
      // its hold ran out (set_queue_head_hold_ms): then the next one does.
      if (entry.hold_started_unix_ms == 0) entry.hold_started_unix_ms = now;
      if (now - entry.hold_started_unix_ms < queue_head_hold_ms_) {
        blocked = true;
        hold = scheduler_.HoldFor(entry.request, *state_, OptionsFor());
        state_->AddGrants(hold);
      }
    }
  }
  state_->RemoveGrants(hold);
}

Result<Allocation> GpuManager::EndLocked(std::unique_lock<std::mutex>& lock, const std::string& id,
                                         AllocationState end_state) {
  if (const auto pending = pending_ends_.find(id); pending != pending_ends_.end()) {
    // Already being ended: share that outcome.
    const std::shared_ptr<PendingWrite> write = pending->second;
    AwaitWrite(lock, *write);
    return *write->result;
  }
  Result<Allocation> current = ledger_->Get(id);
  if (!current.ok() || current->state != AllocationState::kActive) return current;
  return Commit(lock, LedgerChange::End(id, end_state, clock_->NowUnixMs()));
}

Result<Allocation> GpuManager::Release(const std::string& id) {
  std::unique_lock<std::mutex> lock(mutex_);
  return EndLocked(lock, id, AllocationState::kReleased);
}

Result<Allocation> GpuManager::ReleaseOnNode(const std::string& owner, const std::string& node_name,
                                             int gpu_count) {
  std::unique_lock<std::mutex> lock(mutex_);
  AllocationFilter filter;
  filter.owner = owner;
  std::vector<Allocation> active = ledger_->List(filter);  // Newest first.
  for (const Allocation& allocation : active) {
    if (pending_ends_.contains(allocation.id)) continue;  // Being released by another call.
    const bool on_node = std::all_of(allocation.grants.begin(), allocation.grants.end(),
                                     [&](const GpuGrant& g) { return g.node_name == node_name; });
    if (on_node && static_cast<int>(allocation.grants.size()) == gpu_count) {
      return EndLocked(lock, allocation.id, AllocationState::kReleased);
    }
  }
  return NotFound("owner \"" + owner + "\" has no active allocation of " +
                  std::to_string(gpu_count) + " GPU(s) on node \"" + node_name + "\"");
}

Result<Allocation> GpuManager::Heartbeat(const std::string& id) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (const auto pending = pending_ends_.find(id); pending != pending_ends_.end()) {
    // Answer as of after the release being recorded.
    const std::shared_ptr<PendingWrite> write = pending->second;
    AwaitWrite(lock, *write);
  }
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
    Result<Allocation> ended = EndLocked(lock, id, AllocationState::kExpired);
    if (!ended.ok()) return ended.status();
    return Status(StatusCode::kFailedPrecondition, "lease expired; the GPUs were released");
  }
  return Commit(lock, LedgerChange::RenewLease(id, now + current->request.lease_ttl_s * 1000));
}

std::vector<Allocation> GpuManager::ReapExpiredLeases() {
  std::unique_lock<std::mutex> lock(mutex_);
  const int64_t now = clock_->NowUnixMs();
  // Staged together, so they share a commit.
  std::vector<std::shared_ptr<PendingWrite>> ends;
  for (const Allocation& allocation : ledger_->ExpiredLeases(now)) {
    if (pending_ends_.contains(allocation.id)) continue;  // Being ended already.
    ends.push_back(Stage(LedgerChange::End(allocation.id, AllocationState::kExpired, now)));
  }
  std::vector<Allocation> reaped;
  for (const std::shared_ptr<PendingWrite>& write : ends) {
    AwaitWrite(lock, *write);
    if (write->result->ok()) reaped.push_back(write->result->value());
  }
  ServeQueue(lock);
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
  std::unique_lock<std::mutex> lock(mutex_);
  const QueueEntry* entry = queue_.Find(id);
  if (entry == nullptr) return NotFound("no queued request \"" + id + "\"");
  if (entry->state == QueueState::kWaiting) {
    queue_.Finish(id, QueueState::kCancelled, clock_->NowUnixMs(), "cancelled");
    // The head may have changed: requests behind it may fit now.
    ServeQueue(lock);
  }
  return *queue_.Find(id);
}

}  // namespace gpurm
