// Ledger: the only owner of durable state. Every state change is on stable
// storage before the call returns, so an allocation answered "success"
// survives a crash of the daemon. Apply records several changes at once,
// which lets a ledger cover them all with one fsync (group commit).
#ifndef GPURM_LEDGER_LEDGER_H_
#define GPURM_LEDGER_LEDGER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace gpurm {

struct AllocationFilter {
  bool include_ended = false;  // Also released/expired allocations (newest first).
  std::string owner;           // Empty = any owner.
  int limit = 1000;
  // A page's cursor: only allocations after (created_unix_ms, id) in List's
  // order (newest first, so older ones). Empty after_id = from the newest.
  int64_t after_created_unix_ms = 0;
  std::string after_id;

  // Whether `allocation` comes after the cursor (true when there is none).
  bool AfterCursor(const Allocation& allocation) const {
    if (after_id.empty()) return true;
    if (allocation.created_unix_ms != after_created_unix_ms) {
      return allocation.created_unix_ms < after_created_unix_ms;
    }
    return allocation.id < after_id;
  }
};

// One state change, for Ledger::Apply.
struct LedgerChange {
  enum class Kind { kInsert, kEnd, kRenewLease };
  Kind kind = Kind::kInsert;
  Allocation allocation;  // kInsert: the new allocation.
  std::string id;         // kEnd, kRenewLease: the allocation changed.
  AllocationState end_state = AllocationState::kReleased;  // kEnd.
  int64_t unix_ms = 0;  // kEnd: when it ended; kRenewLease: the new lease expiry.

  static LedgerChange Insert(Allocation allocation) {
    LedgerChange change;
    change.allocation = std::move(allocation);
    return change;
  }
  static LedgerChange End(std::string id, AllocationState state, int64_t now_unix_ms) {
    LedgerChange change;
    change.kind = Kind::kEnd;
    change.id = std::move(id);
    change.end_state = state;
    change.unix_ms = now_unix_ms;
    return change;
  }
  static LedgerChange RenewLease(std::string id, int64_t expires_unix_ms) {
    LedgerChange change;
    change.kind = Kind::kRenewLease;
    change.id = std::move(id);
    change.unix_ms = expires_unix_ms;
    return change;
  }
};

// Thread-safe: every method may be called from any thread. The caller (the
// manager) serialises place-then-insert decisions; the ledger itself only
// guarantees each call is atomic and durable.
class Ledger {
 public:
  virtual ~Ledger() = default;

  // Durably records a new active allocation (its id must be new).
  // kAlreadyExists if the id, or the (owner, idempotency_key) pair, exists.
  // kResourceExhausted / kUnavailable when storage fails (disk full, I/O
  // error); then nothing was recorded.
  virtual Status Insert(const Allocation& allocation) = 0;

  // Ends an allocation (state kReleased or kExpired) at `now_unix_ms`.
  // Idempotent: ending an ended allocation returns it unchanged, OK.
  // kNotFound for an unknown id.
  virtual Result<Allocation> End(const std::string& id, AllocationState state,
                                 int64_t now_unix_ms) = 0;

  // Sets the lease expiry of an active allocation. kNotFound for unknown ids,
  // kFailedPrecondition for ended ones.
  virtual Result<Allocation> RenewLease(const std::string& id, int64_t expires_unix_ms) = 0;

  // Records `changes` in order and answers one result per change, as
  // Insert (the allocation as recorded), End and RenewLease would, each
  // seeing the changes before it. Every change answered OK is on stable
  // storage when Apply returns. This default records them one by one, each
  // durable on its own; a ledger that can (SqliteLedger) records them in one
  // transaction with one fsync -- group commit -- and then a storage failure
  // (disk full, I/O error) fails every change of the call and records none.
  virtual std::vector<Result<Allocation>> Apply(const std::vector<LedgerChange>& changes) {
    std::vector<Result<Allocation>> results;
    results.reserve(changes.size());
    for (const LedgerChange& change : changes) {
      switch (change.kind) {
        case LedgerChange::Kind::kInsert:
          if (Status status = Insert(change.allocation); !status.ok()) {
            results.emplace_back(std::move(status));
          } else {
            results.emplace_back(change.allocation);
          }
          break;
        case LedgerChange::Kind::kEnd:
          results.push_back(End(change.id, change.end_state, change.unix_ms));
          break;
        case LedgerChange::Kind::kRenewLease:
          results.push_back(RenewLease(change.id, change.unix_ms));
          break;
      }
    }
    return results;
  }

  virtual Result<Allocation> Get(const std::string& id) const = 0;
  virtual std::optional<Allocation> FindByIdempotencyKey(const std::string& owner,
                                                         const std::string& key) const = 0;
  virtual std::vector<Allocation> List(const AllocationFilter& filter) const = 0;
  // How many allocations are active: what List of every active allocation
  // would return the size of, without copying them (for /status and
  // /metrics).
  virtual size_t CountActive() const = 0;
  // Grants of all active allocations: what is held against the inventory.
  virtual std::vector<GpuGrant> ActiveGrants() const = 0;
  // Active allocations whose lease expired at or before `now_unix_ms`.
  virtual std::vector<Allocation> ExpiredLeases(int64_t now_unix_ms) const = 0;

  // Verifies the stored state: the database's own integrity check, no GPU
  // held exclusively by two active allocations or both exclusively and shared.
  virtual Status CheckIntegrity() const = 0;
};

// Forwards every call to another ledger; derive from it to observe or alter
// a few calls (fault injection, counting commits) without restating the rest,
// as leveldb's EnvWrapper does for Env. `target` must outlive the wrapper.
class LedgerWrapper : public Ledger {
 public:
  explicit LedgerWrapper(Ledger* target) : target_(target) {}

  Status Insert(const Allocation& allocation) override { return target_->Insert(allocation); }
  Result<Allocation> End(const std::string& id, AllocationState state,
                         int64_t now_unix_ms) override {
    return target_->End(id, state, now_unix_ms);
  }
  Result<Allocation> RenewLease(const std::string& id, int64_t expires_unix_ms) override {
    return target_->RenewLease(id, expires_unix_ms);
  }
  std::vector<Result<Allocation>> Apply(const std::vector<LedgerChange>& changes) override {
    return target_->Apply(changes);
  }
  Result<Allocation> Get(const std::string& id) const override { return target_->Get(id); }
  std::optional<Allocation> FindByIdempotencyKey(const std::string& owner,
                                                 const std::string& key) const override {
    return target_->FindByIdempotencyKey(owner, key);
  }
  std::vector<Allocation> List(const AllocationFilter& filter) const override {
    return target_->List(filter);
  }
  size_t CountActive() const override { return target_->CountActive(); }
  std::vector<GpuGrant> ActiveGrants() const override { return target_->ActiveGrants(); }
  std::vector<Allocation> ExpiredLeases(int64_t now_unix_ms) const override {
    return target_->ExpiredLeases(now_unix_ms);
  }
  Status CheckIntegrity() const override { return target_->CheckIntegrity(); }

 protected:
  Ledger* target() const { return target_; }

 private:
  Ledger* const target_;
};

}  // namespace gpurm

#endif  // GPURM_LEDGER_LEDGER_H_
