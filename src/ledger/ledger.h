// Ledger: the only owner of durable state. Every state change is on stable
// storage before the call returns, so an allocation answered "success"
// survives a crash of the daemon.
#ifndef GPURM_LEDGER_LEDGER_H_
#define GPURM_LEDGER_LEDGER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace gpurm {

struct AllocationFilter {
  bool include_ended = false;  // Also released/expired allocations (newest first).
  std::string owner;           // Empty = any owner.
  int limit = 1000;
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

  virtual Result<Allocation> Get(const std::string& id) const = 0;
  virtual std::optional<Allocation> FindByIdempotencyKey(const std::string& owner,
                                                         const std::string& key) const = 0;
  virtual std::vector<Allocation> List(const AllocationFilter& filter) const = 0;
  // Grants of all active allocations: what is held against the inventory.
  virtual std::vector<GpuGrant> ActiveGrants() const = 0;
  // Active allocations whose lease expired at or before `now_unix_ms`.
  virtual std::vector<Allocation> ExpiredLeases(int64_t now_unix_ms) const = 0;

  // Verifies the stored state: the database's own integrity check, no GPU
  // held exclusively by two active allocations or both exclusively and shared.
  virtual Status CheckIntegrity() const = 0;
};

}  // namespace gpurm

#endif  // GPURM_LEDGER_LEDGER_H_
