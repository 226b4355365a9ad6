// SqliteLedger: see sqlite_ledger.h. This file: the index, writes and reads.
//
// Durability: the database runs in WAL mode with synchronous=FULL, and every
// Apply call (Insert, End and RenewLease are Apply of one change) is one
// BEGIN IMMEDIATE ... COMMIT transaction, so the WAL is fsync'd before the
// call returns. An allocation answered "success" survives kill -9 (and power
// loss, as far as fsync does). Apply of many changes is group commit: one
// fsync for all of them, and a failed commit records none of them.
//
// Identity: a ledger carries PRAGMA application_id = kApplicationId, PRAGMA
// user_version = kSchemaVersion and a `meta` table naming the format. Open
// inspects these before it writes anything, so a file that is not a ledger is
// refused without being modified.
//
// Schema (version 2, all tables STRICT):
//   meta(key TEXT PK, value TEXT)         -- format = gpurm-ledger, schema_version = 2
//   allocations(id TEXT PK, owner, state ('active'|'released'|'expired'),
//               request (GpuRequest as JSON), created_unix_ms, ended_unix_ms,
//               lease_expires_unix_ms, idempotency_key,
//               request_digest (Allocation::request_digest; '' in rows of version 1))
//     UNIQUE (owner, idempotency_key) WHERE idempotency_key <> ''
//   grants(allocation_id -> allocations.id, ordinal, node_name, gpu_index,
//          gpu_uuid, memory_mib, exclusive (0|1); PK (allocation_id, ordinal))
// Ended allocations and their grants stay as history.
//
// Upgrades: Open brings a ledger of an older schema version to the current
// one in one transaction (kUpgradeSql), before anything else reads it; a
// newer version is refused. Version 1 -> 2 added request_digest.
//
// Reads: active allocations live in an in-memory index loaded at open and
// updated only after a commit succeeded, so the hot-path reads (List of
// active allocations, ActiveGrants, ExpiredLeases, Get and
// FindByIdempotencyKey of active allocations) never touch the disk. Only
// questions about ended allocations read the database.
//
// Thread-safety: all methods may be called concurrently. `db_mutex_`
// serialises use of the connection and its cached statements (writers hold it
// across their commit); `index_mutex_` (shared) guards the index, which
// writers change only while holding both. Readers of the index therefore never
// wait for an fsync. Lock order: db_mutex_, then index_mutex_.
#include "ledger/sqlite_ledger.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstddef>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "ledger/allocation_rules.h"
#include "ledger/sqlite_ledger_internal.h"

namespace gpurm {

// The ledger's own parts (sqlite_ledger_internal.h).
using namespace sqlite_ledger_internal;  // NOLINT(google-build-using-namespace)

// --- The index of active allocations ---------------------------------------

void SqliteLedger::IndexAdd(const Allocation& allocation) {
  for (const GpuGrant& grant : allocation.grants) {
    GpuUse& use = index_.by_gpu[grant.gpu_uuid];
    ++(grant.exclusive ? use.exclusive : use.shared);
  }
  if (!allocation.idempotency_key.empty()) {
    index_.by_owner_key[{allocation.owner, allocation.idempotency_key}] = allocation.id;
  }
  index_.by_id[allocation.id] = allocation;
}

void SqliteLedger::IndexRemove(const std::string& id) {
  const auto it = index_.by_id.find(id);
  if (it == index_.by_id.end()) return;
  const Allocation& allocation = it->second;
  for (const GpuGrant& grant : allocation.grants) {
    const auto use = index_.by_gpu.find(grant.gpu_uuid);
    if (use == index_.by_gpu.end()) continue;
    --(grant.exclusive ? use->second.exclusive : use->second.shared);
    if (use->second.exclusive <= 0 && use->second.shared <= 0) index_.by_gpu.erase(use);
  }
  if (!allocation.idempotency_key.empty()) {
    index_.by_owner_key.erase({allocation.owner, allocation.idempotency_key});
  }
  index_.by_id.erase(it);
}

// The ledger refuses to record a GPU held twice incompatibly: such a state
// would break CheckIntegrity's invariant, and refusing (the allocation fails)
// is safe where recording it (two jobs on one GPU) is not. The manager's own
// placement should never get here.
Status SqliteLedger::ConflictWithActive(const Allocation& allocation, const Batch& batch) const {
  if (index_.by_id.contains(allocation.id) || batch.touched.contains(allocation.id)) {
    return AlreadyExists("allocation " + allocation.id + " already exists");
  }
  if (!allocation.idempotency_key.empty()) {
    const std::pair<std::string, std::string> key{allocation.owner, allocation.idempotency_key};
    const auto it = index_.by_owner_key.find(key);
    if (it != index_.by_owner_key.end() || batch.keys.contains(key)) {
      return AlreadyExists("idempotency key " + allocation.idempotency_key + " of owner " +
                           allocation.owner + " is already used by allocation " +
                           (it != index_.by_owner_key.end() ? it->second : "of the same batch"));
    }
  }
  for (const GpuGrant& grant : allocation.grants) {
    // Ends in the same batch are not subtracted: a GPU is reused only once
    // its release is committed.
    GpuUse use;
    if (const auto held = index_.by_gpu.find(grant.gpu_uuid); held != index_.by_gpu.end()) {
      use = held->second;
    }
    if (const auto held = batch.inserted_use.find(grant.gpu_uuid);
        held != batch.inserted_use.end()) {
      use.exclusive += held->second.exclusive;
      use.shared += held->second.shared;
    }
    if (Status fits = CheckGrantFits(grant, use); !fits.ok()) return fits;
  }
  return Status::Ok();
}

// --- Writes ------------------------------------------------------------------

Status SqliteLedger::Insert(const Allocation& allocation) {
  return Apply({LedgerChange::Insert(allocation)}).front().status();
}

Result<Allocation> SqliteLedger::End(const std::string& id, AllocationState state,
                                     int64_t now_unix_ms) {
  return std::move(Apply({LedgerChange::End(id, state, now_unix_ms)}).front());
}

Result<Allocation> SqliteLedger::RenewLease(const std::string& id, int64_t expires_unix_ms) {
  return std::move(Apply({LedgerChange::RenewLease(id, expires_unix_ms)}).front());
}

std::vector<Result<Allocation>> SqliteLedger::Apply(const std::vector<LedgerChange>& changes) {
  // New allocations are checked and encoded before any lock is taken.
  std::vector<Result<std::string>> requests;
  requests.reserve(changes.size());
  for (const LedgerChange& change : changes) {
    if (change.kind != LedgerChange::Kind::kInsert) {
      requests.emplace_back(std::string());
    } else if (Status status = ValidateNewAllocation(change.allocation); !status.ok()) {
      requests.emplace_back(std::move(status));
    } else {
      requests.push_back(StorableRequestJson(change.allocation.request));
    }
  }

  std::vector<Result<Allocation>> results;
  results.reserve(changes.size());
  std::lock_guard db_lock(db_mutex_);
  Batch batch;
  Status fatal;  // A storage failure: it fails the whole batch.
  {
    // Only holders of db_mutex_ change the index, so a shared lock suffices
    // to read it while the batch is written.
    std::shared_lock index_lock(index_mutex_);
    for (size_t i = 0; i < changes.size() && fatal.ok(); ++i) {
      const LedgerChange& change = changes[i];
      switch (change.kind) {
        case LedgerChange::Kind::kInsert:
          results.push_back(requests[i].ok()
                                ? ApplyInsert(change.allocation, *requests[i], &batch, &fatal)
                                : Result<Allocation>(requests[i].status()));
          break;
        case LedgerChange::Kind::kEnd:
          results.push_back(ApplyEnd(change.id, change.end_state, change.unix_ms, &batch, &fatal));
          break;
        case LedgerChange::Kind::kRenewLease:
          results.push_back(ApplyRenewLease(change.id, change.unix_ms, &batch, &fatal));
          break;
      }
    }
  }
  if (fatal.ok() && batch.open) {
    if (const int rc = StepDone(stmts_.commit); rc != SQLITE_DONE) {
      fatal = StorageError(rc, batch.what.size() == 1
                                   ? batch.what.front()
                                   : "committing " + std::to_string(batch.what.size()) +
                                         " changes (" + batch.what.front() + ", ...)");
    }
  }
  if (!fatal.ok()) {
    // SQLite may already have rolled back (e.g. on some I/O errors); if not,
    // do it. A failed COMMIT is reported as "nothing recorded" although, as
    // with any failed fsync, its WAL frames may still reach the disk and a
    // ledger reopened after a crash may show the changes. That is safe: a
    // ghost insert holds GPUs until released or its lease ends, a ghost end
    // releases what the caller was releasing anyway, a ghost renewal holds a
    // lease longer.
    if (sqlite3_get_autocommit(db_.get()) == 0) StepDone(stmts_.rollback);
    results.assign(changes.size(), Result<Allocation>(fatal));
    return results;
  }
  // Committed: only now do readers of the index see the changes.
  std::unique_lock index_lock(index_mutex_);
  for (const auto& [id, allocation] : batch.touched) {
    IndexRemove(id);
    if (allocation.state == AllocationState::kActive) IndexAdd(allocation);
  }
  return results;
}

Status SqliteLedger::Begin(Batch* batch, std::string what) {
  if (!batch->open) {
    if (const int rc = StepDone(stmts_.begin); rc != SQLITE_DONE) return StorageError(rc, what);
    batch->open = true;
  }
  batch->what.push_back(std::move(what));
  return Status::Ok();
}

Result<Allocation> SqliteLedger::Current(const std::string& id, const Batch& batch) const {
  if (const auto it = batch.touched.find(id); it != batch.touched.end()) return it->second;
  if (const auto it = index_.by_id.find(id); it != index_.by_id.end()) return it->second;
  return ReadById(id);  // Ended before this batch, or kNotFound.
}

Result<Allocation> SqliteLedger::ApplyInsert(const Allocation& allocation,
                                             const std::string& request, Batch* batch,
                                             Status* fatal) {
  if (Status status = ConflictWithActive(allocation, *batch); !status.ok()) return status;
  const std::string what = "inserting allocation " + allocation.id;
  if (Status status = Begin(batch, what); !status.ok()) return *fatal = status;
  StmtUse insert(stmts_.insert_allocation);
  int rc = Bind(insert.get(), std::string_view(allocation.id), std::string_view(allocation.owner),
                std::string_view(AllocationStateName(allocation.state)), std::string_view(request),
                allocation.created_unix_ms, allocation.ended_unix_ms,
                allocation.lease_expires_unix_ms, std::string_view(allocation.idempotency_key),
                std::string_view(allocation.request_digest));
  if (rc == SQLITE_OK) rc = sqlite3_step(insert.get());
  // Ended allocations are not in the index: their id and key collide here. A
  // constraint failure undoes only this statement; the batch goes on.
  if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
    return AlreadyExists("allocation " + allocation.id + " already exists");
  }
  if (rc == SQLITE_CONSTRAINT_UNIQUE) {
    return AlreadyExists("idempotency key " + allocation.idempotency_key + " of owner " +
                         allocation.owner + " is already used");
  }
  if (rc != SQLITE_DONE) return *fatal = StorageError(rc, what);
  for (size_t i = 0; i < allocation.grants.size(); ++i) {
    const GpuGrant& grant = allocation.grants[i];
    StmtUse insert_grant(stmts_.insert_grant);
    rc = Bind(insert_grant.get(), std::string_view(allocation.id), static_cast<int64_t>(i),
              std::string_view(grant.node_name), static_cast<int64_t>(grant.gpu_index),
              std::string_view(grant.gpu_uuid), grant.memory_mib,
              static_cast<int64_t>(grant.exclusive ? 1 : 0));
    if (rc == SQLITE_OK) rc = sqlite3_step(insert_grant.get());
    if (rc != SQLITE_DONE) return *fatal = StorageError(rc, what);
  }
  batch->touched[allocation.id] = allocation;
  if (!allocation.idempotency_key.empty()) {
    batch->keys.emplace(allocation.owner, allocation.idempotency_key);
  }
  for (const GpuGrant& grant : allocation.grants) {
    GpuUse& use = batch->inserted_use[grant.gpu_uuid];
    ++(grant.exclusive ? use.exclusive : use.shared);
  }
  return allocation;
}

Result<Allocation> SqliteLedger::ApplyEnd(const std::string& id, AllocationState state,
                                          int64_t now_unix_ms, Batch* batch, Status* fatal) {
  if (state == AllocationState::kActive) {
    return InvalidArgument("an allocation ends released or expired", "state");
  }
  Result<Allocation> ended = Current(id, *batch);
  // Already ended (returned unchanged), or kNotFound.
  if (!ended.ok() || ended->state != AllocationState::kActive) return ended;

  const std::string what = "ending allocation " + id;
  if (Status status = Begin(batch, what); !status.ok()) return *fatal = status;
  StmtUse update(stmts_.end_allocation);
  int rc = Bind(update.get(), std::string_view(id), std::string_view(AllocationStateName(state)),
                now_unix_ms);
  if (rc == SQLITE_OK) rc = sqlite3_step(update.get());
  if (rc != SQLITE_DONE) return *fatal = StorageError(rc, what);
  if (sqlite3_changes(db_.get()) != 1) {
    return *fatal = Internal("ledger " + path_ + ": allocation " + id +
                             " is active in the index but not in the database");
  }
  ended->state = state;
  ended->ended_unix_ms = now_unix_ms;
  batch->touched[id] = *ended;
  return ended;
}

Result<Allocation> SqliteLedger::ApplyRenewLease(const std::string& id, int64_t expires_unix_ms,
                                                 Batch* batch, Status* fatal) {
  if (expires_unix_ms < 0) return InvalidArgument("must be >= 0", "lease_expires_unix_ms");
  Result<Allocation> renewed = Current(id, *batch);
  if (!renewed.ok()) return renewed.status();
  if (renewed->state != AllocationState::kActive) {
    return FailedPrecondition("allocation " + id + " is " + AllocationStateName(renewed->state) +
                              "; only an active allocation's lease can be renewed");
  }

  const std::string what = "renewing the lease of allocation " + id;
  if (Status status = Begin(batch, what); !status.ok()) return *fatal = status;
  StmtUse update(stmts_.renew_lease);
  int rc = Bind(update.get(), std::string_view(id), expires_unix_ms);
  if (rc == SQLITE_OK) rc = sqlite3_step(update.get());
  if (rc != SQLITE_DONE) return *fatal = StorageError(rc, what);
  if (sqlite3_changes(db_.get()) != 1) {
    return *fatal = Internal("ledger " + path_ + ": allocation " + id +
                             " is active in the index but not in the database");
  }
  renewed->lease_expires_unix_ms = expires_unix_ms;
  batch->touched[id] = *renewed;
  return renewed;
}

// --- Reads -------------------------------------------------------------------

Result<Allocation> SqliteLedger::Get(const std::string& id) const {
  {
    std::shared_lock index_lock(index_mutex_);
    if (const auto it = index_.by_id.find(id); it != index_.by_id.end()) return it->second;
  }
  std::lock_guard db_lock(db_mutex_);
  return ReadById(id);
}

std::optional<Allocation> SqliteLedger::FindByIdempotencyKey(const std::string& owner,
                                                             const std::string& key) const {
  if (key.empty()) return std::nullopt;
  {
    std::shared_lock index_lock(index_mutex_);
    if (const auto it = index_.by_owner_key.find({owner, key}); it != index_.by_owner_key.end()) {
      if (const auto found = index_.by_id.find(it->second); found != index_.by_id.end()) {
        return found->second;
      }
    }
  }
  std::lock_guard db_lock(db_mutex_);
  StmtUse stmt(stmts_.select_by_key);
  if (Bind(stmt.get(), std::string_view(owner), std::string_view(key)) != SQLITE_OK ||
      sqlite3_step(stmt.get()) != SQLITE_ROW) {
    return std::nullopt;
  }
  Result<Allocation> allocation = ReadRow(stmt.get());
  if (!allocation.ok()) return std::nullopt;
  return std::move(allocation).value();
}

std::vector<Allocation> SqliteLedger::List(const AllocationFilter& filter) const {
  std::vector<Allocation> out;
  if (filter.limit <= 0) return out;
  const size_t limit = static_cast<size_t>(filter.limit);

  if (!filter.include_ended) {
    std::shared_lock index_lock(index_mutex_);
    std::vector<const Allocation*> matching;
    for (const auto& [id, allocation] : index_.by_id) {
      if ((filter.owner.empty() || allocation.owner == filter.owner) &&
          filter.AfterCursor(allocation)) {
        matching.push_back(&allocation);
      }
    }
    const size_t n = std::min(limit, matching.size());
    std::partial_sort(matching.begin(), matching.begin() + static_cast<ptrdiff_t>(n),
                      matching.end(),
                      [](const Allocation* a, const Allocation* b) { return NewerFirst(*a, *b); });
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) out.push_back(*matching[i]);
    return out;
  }

  std::lock_guard db_lock(db_mutex_);
  const bool by_owner = !filter.owner.empty();
  StmtUse stmt(by_owner ? stmts_.list_by_owner : stmts_.list_all);
  const bool cursor = !filter.after_id.empty();
  const int64_t after_created = cursor ? filter.after_created_unix_ms : INT64_MAX;
  const std::string_view after_id = filter.after_id;
  const int rc =
      by_owner ? Bind(stmt.get(), after_created, after_id, static_cast<int64_t>(filter.limit),
                      std::string_view(filter.owner))
               : Bind(stmt.get(), after_created, after_id, static_cast<int64_t>(filter.limit));
  if (rc != SQLITE_OK) return out;
  while (sqlite3_step(stmt.get()) == SQLITE_ROW) {
    Result<Allocation> allocation = ReadRow(stmt.get());
    if (!allocation.ok()) break;
    out.push_back(std::move(allocation).value());
  }
  return out;
}

size_t SqliteLedger::CountActive() const {
  std::shared_lock index_lock(index_mutex_);
  return index_.by_id.size();
}

std::vector<GpuGrant> SqliteLedger::ActiveGrants() const {
  std::shared_lock index_lock(index_mutex_);
  std::vector<const Allocation*> active;
  active.reserve(index_.by_id.size());
  for (const auto& [id, allocation] : index_.by_id) active.push_back(&allocation);
  std::sort(active.begin(), active.end(),
            [](const Allocation* a, const Allocation* b) { return NewerFirst(*b, *a); });
  std::vector<GpuGrant> grants;
  for (const Allocation* allocation : active) {
    grants.insert(grants.end(), allocation->grants.begin(), allocation->grants.end());
  }
  return grants;
}

std::vector<Allocation> SqliteLedger::ExpiredLeases(int64_t now_unix_ms) const {
  std::shared_lock index_lock(index_mutex_);
  std::vector<const Allocation*> expired;
  for (const auto& [id, allocation] : index_.by_id) {
    if (allocation.lease_expires_unix_ms != 0 && allocation.lease_expires_unix_ms <= now_unix_ms) {
      expired.push_back(&allocation);
    }
  }
  std::sort(expired.begin(), expired.end(),
            [](const Allocation* a, const Allocation* b) { return ExpiredFirst(*a, *b); });
  std::vector<Allocation> out;
  out.reserve(expired.size());
  for (const Allocation* allocation : expired) out.push_back(*allocation);
  return out;
}

}  // namespace gpurm
