// The rules every Ledger applies to what it stores, kept in one place so the
// SQLite ledger and the in-memory ledger cannot drift apart.
#ifndef GPURM_LEDGER_ALLOCATION_RULES_H_
#define GPURM_LEDGER_ALLOCATION_RULES_H_

#include <cstdint>
#include <string>

#include "core/status.h"
#include "core/types.h"

namespace gpurm {

// What a new allocation can never be, whatever is stored already: an empty
// id, a state other than active, an end time, a negative lease, no grant
// (an active allocation holds at least one GPU), a grant without a GPU UUID
// or with negative memory, or one GPU granted twice. kInvalidArgument naming
// the field; OK otherwise.
Status ValidateNewAllocation(const Allocation& allocation);

// The request in the one request codec's form, as a ledger stores it. Fails
// (kInvalidArgument naming "request.<field>") on what could not be read back
// as written: non-finite numbers (JSON would write null, which reads back as
// the default), invalid UTF-8, values the codec refuses (out of bounds,
// over-long strings). A ledger records nothing it cannot read back.
Result<std::string> StorableRequestJson(const GpuRequest& request);

// List's order: newest first (created_unix_ms descending, then id descending).
bool NewerFirst(const Allocation& a, const Allocation& b);

// ExpiredLeases' order: the lease that ran out first first, then by id.
bool ExpiredFirst(const Allocation& a, const Allocation& b);

// How one GPU is held by active allocations.
struct GpuUse {
  int exclusive = 0;
  int shared = 0;
};

// Why `grant` cannot join a GPU already held as `use` (exclusively held GPUs
// take nothing more; an exclusive grant needs an unheld GPU), as a
// kFailedPrecondition; OK when it can.
Status CheckGrantFits(const GpuGrant& grant, const GpuUse& use);

}  // namespace gpurm

#endif  // GPURM_LEDGER_ALLOCATION_RULES_H_
