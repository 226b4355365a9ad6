#include "manager/manager.h"

#include <algorithm>
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

Result<std::shared_ptr<const ClusterState>> GpuManager::CurrentState() const {
  std::shared_ptr<const InventorySnapshot> snapshot = inventory_->Snapshot();
  if (!snapshot) return Readiness();
  return std::shared_ptr<const ClusterState>(
      std::make_shared<ClusterState>(std::move(snapshot), ledger_->ActiveGrants()));
}

std::string GpuManager::NewAllocationId() {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "alloc-%016llx",
                static_cast<unsigned long long>(id_random_()));
  return buffer;
}

AllocationResult GpuManager::Allocate(const GpuRequest& request, const std::string& owner,
                                      const std::string& idempotency_key) {
  AllocationResult result;
  result.status = ValidateRequest(request);
  if (!result.status.ok()) return result;

  std::lock_guard<std::mutex> lock(allocate_mutex_);
  if (!idempotency_key.empty()) {
    if (std::optional<Allocation> earlier = ledger_->FindByIdempotencyKey(owner, idempotency_key)) {
      result.allocation = std::move(earlier);
      result.replayed = true;
      return result;
    }
  }
  Result<std::shared_ptr<const ClusterState>> state = CurrentState();
  if (!state.ok()) {
    result.status = state.status();
    return result;
  }
  ScheduleResult schedule = scheduler_.Schedule(request, **state);
  if (!schedule.placement) {
    result.diagnosis = std::move(schedule.diagnosis);
    result.status = Status(result.diagnosis.possible_ever ? StatusCode::kUnschedulableNow
                                                          : StatusCode::kUnschedulableNever,
                           result.diagnosis.message);
    return result;
  }

  Allocation allocation;
  allocation.id = NewAllocationId();
  allocation.owner = owner;
  allocation.request = request;
  allocation.grants = std::move(schedule.placement->grants);
  allocation.created_unix_ms = clock_->NowUnixMs();
  if (request.lease_ttl_s > 0) {
    allocation.lease_expires_unix_ms = allocation.created_unix_ms + request.lease_ttl_s * 1000;
  }
  allocation.idempotency_key = idempotency_key;
  result.status = ledger_->Insert(allocation);
  if (result.status.ok()) {
    result.allocation = std::move(allocation);
    result.diagnosis = std::move(schedule.diagnosis);
  }
  return result;
}

PreviewResult GpuManager::Preview(const GpuRequest& request) const {
  PreviewResult result;
  result.status = ValidateRequest(request);
  if (!result.status.ok()) return result;
  Result<std::shared_ptr<const ClusterState>> state = CurrentState();
  if (!state.ok()) {
    result.status = state.status();
    return result;
  }
  result.schedule = scheduler_.Schedule(request, **state);
  result.snapshot = std::shared_ptr<const InventorySnapshot>(*state, &(*state)->snapshot());
  return result;
}

Result<Allocation> GpuManager::Release(const std::string& id) {
  return ledger_->End(id, AllocationState::kReleased, clock_->NowUnixMs());
}

Result<Allocation> GpuManager::ReleaseOnNode(const std::string& owner, const std::string& node_name,
                                             int gpu_count) {
  AllocationFilter filter;
  filter.owner = owner;
  std::vector<Allocation> active = ledger_->List(filter);  // Newest first.
  for (const Allocation& allocation : active) {
    const bool on_node = std::all_of(allocation.grants.begin(), allocation.grants.end(),
                                     [&](const GpuGrant& g) { return g.node_name == node_name; });
    if (on_node && static_cast<int>(allocation.grants.size()) == gpu_count) {
      return Release(allocation.id);
    }
  }
  return NotFound("owner \"" + owner + "\" has no active allocation of " +
                  std::to_string(gpu_count) + " GPU(s) on node \"" + node_name + "\"");
}

Result<Allocation> GpuManager::Heartbeat(const std::string& id) {
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
    Result<Allocation> ended = ledger_->End(id, AllocationState::kExpired, now);
    if (!ended.ok()) return ended.status();
    return Status(StatusCode::kFailedPrecondition, "lease expired; the GPUs were released");
  }
  return ledger_->RenewLease(id, now + current->request.lease_ttl_s * 1000);
}

std::vector<Allocation> GpuManager::ReapExpiredLeases() {
  std::vector<Allocation> reaped;
  const int64_t now = clock_->NowUnixMs();
  for (const Allocation& allocation : ledger_->ExpiredLeases(now)) {
    Result<Allocation> ended = ledger_->End(allocation.id, AllocationState::kExpired, now);
    if (ended.ok()) reaped.push_back(std::move(ended).value());
  }
  return reaped;
}

}  // namespace gpurm
