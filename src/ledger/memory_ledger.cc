#include "ledger/memory_ledger.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "ledger/allocation_rules.h"

namespace gpurm {
namespace {

class MemoryLedger final : public Ledger {
 public:
  Status Insert(const Allocation& allocation) override {
    if (Status status = ValidateNewAllocation(allocation); !status.ok()) return status;
    if (Status storable = StorableRequestJson(allocation.request).status(); !storable.ok()) {
      return storable;
    }
    std::lock_guard lock(mutex_);
    if (allocations_.contains(allocation.id)) {
      return {StatusCode::kAlreadyExists, "allocation " + allocation.id + " already exists"};
    }
    if (!allocation.idempotency_key.empty()) {
      const auto used = by_owner_key_.find({allocation.owner, allocation.idempotency_key});
      if (used != by_owner_key_.end()) {
        return {StatusCode::kAlreadyExists, "idempotency key " + allocation.idempotency_key +
                                                " of owner " + allocation.owner +
                                                " is already used by allocation " + used->second};
      }
    }
    for (const GpuGrant& grant : allocation.grants) {
      if (Status fits = CheckGrantFits(grant, UseOf(grant.gpu_uuid)); !fits.ok()) return fits;
    }
    allocations_.emplace(allocation.id, allocation);
    if (!allocation.idempotency_key.empty()) {
      by_owner_key_.emplace(std::make_pair(allocation.owner, allocation.idempotency_key),
                            allocation.id);
    }
    return Status::Ok();
  }

  Result<Allocation> End(const std::string& id, AllocationState state,
                         int64_t now_unix_ms) override {
    if (state == AllocationState::kActive) {
      return InvalidArgument("an allocation ends released or expired", "state");
    }
    std::lock_guard lock(mutex_);
    const auto it = allocations_.find(id);
    if (it == allocations_.end()) return NotFound("no allocation " + id);
    Allocation& allocation = it->second;
    if (allocation.state == AllocationState::kActive) {
      allocation.state = state;
      allocation.ended_unix_ms = now_unix_ms;
    }
    return allocation;
  }

  Result<Allocation> RenewLease(const std::string& id, int64_t expires_unix_ms) override {
    if (expires_unix_ms < 0) return InvalidArgument("must be >= 0", "lease_expires_unix_ms");
    std::lock_guard lock(mutex_);
    const auto it = allocations_.find(id);
    if (it == allocations_.end()) return NotFound("no allocation " + id);
    Allocation& allocation = it->second;
    if (allocation.state != AllocationState::kActive) {
      return Status(StatusCode::kFailedPrecondition,
                    "allocation " + id + " is " + AllocationStateName(allocation.state) +
                        "; only an active allocation's lease can be renewed");
    }
    allocation.lease_expires_unix_ms = expires_unix_ms;
    return allocation;
  }

  Result<Allocation> Get(const std::string& id) const override {
    std::lock_guard lock(mutex_);
    const auto it = allocations_.find(id);
    if (it == allocations_.end()) return NotFound("no allocation " + id);
    return it->second;
  }

  std::optional<Allocation> FindByIdempotencyKey(const std::string& owner,
                                                 const std::string& key) const override {
    if (key.empty()) return std::nullopt;
    std::lock_guard lock(mutex_);
    const auto used = by_owner_key_.find({owner, key});
    if (used == by_owner_key_.end()) return std::nullopt;
    return allocations_.at(used->second);
  }

  std::vector<Allocation> List(const AllocationFilter& filter) const override {
    std::vector<Allocation> out;
    if (filter.limit <= 0) return out;
    std::lock_guard lock(mutex_);
    for (const auto& [id, allocation] : allocations_) {
      if ((filter.include_ended || allocation.state == AllocationState::kActive) &&
          (filter.owner.empty() || allocation.owner == filter.owner) &&
          filter.AfterCursor(allocation)) {
        out.push_back(allocation);
      }
    }
    std::sort(out.begin(), out.end(), NewerFirst);
    if (out.size() > static_cast<size_t>(filter.limit)) out.resize(filter.limit);
    return out;
  }

  size_t CountActive() const override {
    std::lock_guard lock(mutex_);
    return static_cast<size_t>(std::count_if(
        allocations_.begin(), allocations_.end(),
        [](const auto& entry) { return entry.second.state == AllocationState::kActive; }));
  }

  std::vector<GpuGrant> ActiveGrants() const override {
    std::vector<Allocation> active = Active();
    // Oldest first, as SqliteLedger answers.
    std::sort(active.begin(), active.end(),
              [](const Allocation& a, const Allocation& b) { return NewerFirst(b, a); });
    std::vector<GpuGrant> grants;
    for (const Allocation& allocation : active) {
      grants.insert(grants.end(), allocation.grants.begin(), allocation.grants.end());
    }
    return grants;
  }

  std::vector<Allocation> ExpiredLeases(int64_t now_unix_ms) const override {
    std::vector<Allocation> expired = Active();
    std::erase_if(expired, [now_unix_ms](const Allocation& allocation) {
      return allocation.lease_expires_unix_ms == 0 ||
             allocation.lease_expires_unix_ms > now_unix_ms;
    });
    std::sort(expired.begin(), expired.end(), ExpiredFirst);
    return expired;
  }

  // Insert keeps the invariants, so this finds a violation only if a change
  // bypassed it; it checks the same ones as SqliteLedger.
  Status CheckIntegrity() const override {
    std::lock_guard lock(mutex_);
    std::map<std::string, std::pair<GpuUse, std::string>> held;  // uuid -> use, holders.
    std::string violations;
    const auto add = [&violations](const std::string& problem) {
      violations += (violations.empty() ? "" : "; ") + problem;
    };
    for (const auto& [id, allocation] : allocations_) {
      if (allocation.state != AllocationState::kActive) continue;
      if (allocation.grants.empty()) add("active allocation " + id + " has no grant");
      for (const GpuGrant& grant : allocation.grants) {
        auto& [use, holders] = held[grant.gpu_uuid];
        ++(grant.exclusive ? use.exclusive : use.shared);
        holders += (holders.empty() ? "" : ", ") + id;
      }
    }
    for (const auto& [uuid, entry] : held) {
      const auto& [use, holders] = entry;
      if (use.exclusive + use.shared > 1 && use.exclusive > 0) {
        add("GPU " + uuid + " is held by active allocations " + holders +
            " and at least one holds it exclusively");
      }
    }
    if (violations.empty()) return Status::Ok();
    return Internal("in-memory ledger breaks its invariants: " + violations);
  }

 private:
  // Requires mutex_.
  GpuUse UseOf(const std::string& uuid) const {
    GpuUse use;
    for (const auto& [id, allocation] : allocations_) {
      if (allocation.state != AllocationState::kActive) continue;
      for (const GpuGrant& grant : allocation.grants) {
        if (grant.gpu_uuid == uuid) ++(grant.exclusive ? use.exclusive : use.shared);
      }
    }
    return use;
  }

  std::vector<Allocation> Active() const {
    std::lock_guard lock(mutex_);
    std::vector<Allocation> active;
    for (const auto& [id, allocation] : allocations_) {
      if (allocation.state == AllocationState::kActive) active.push_back(allocation);
    }
    return active;
  }

  mutable std::mutex mutex_;
  std::map<std::string, Allocation> allocations_;  // By id, ended ones too. Guarded by mutex_.
  // (owner, idempotency key) -> id, of every allocation with a key. Guarded by mutex_.
  std::map<std::pair<std::string, std::string>, std::string> by_owner_key_;
};

}  // namespace

std::unique_ptr<Ledger> NewMemoryLedger() { return std::make_unique<MemoryLedger>(); }

}  // namespace gpurm
