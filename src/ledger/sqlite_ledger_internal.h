// The SQLite ledger's parts, shared by its source files (sqlite_ledger.cc:
// the index, writes and reads; sqlite_ledger_open.cc: opening, schema and
// upgrades; sqlite_statements.cc: prepared statements and rows <-> values;
// sqlite_integrity.cc: CheckIntegrity). Not for use outside src/ledger:
// everyone else sees only sqlite_ledger.h.
#ifndef GPURM_LEDGER_SQLITE_LEDGER_INTERNAL_H_
#define GPURM_LEDGER_SQLITE_LEDGER_INTERNAL_H_

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ledger/allocation_rules.h"
#include "ledger/sqlite_ledger.h"

namespace gpurm {
namespace sqlite_ledger_internal {

inline constexpr int32_t kApplicationId = 0x4750524D;  // "GPRM"
inline constexpr int kSchemaVersion = 2;
inline constexpr std::string_view kFormatName = "gpurm-ledger";

inline constexpr const char* kAllocationColumns =
    "id, owner, state, request, created_unix_ms, ended_unix_ms, lease_expires_unix_ms, "
    "idempotency_key, request_digest";

inline Status FailedPrecondition(std::string message) {
  return {StatusCode::kFailedPrecondition, std::move(message)};
}
inline Status AlreadyExists(std::string message) {
  return {StatusCode::kAlreadyExists, std::move(message)};
}

// --- RAII for the SQLite C API ---------------------------------------------

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// Resets a (cached) statement and clears its bindings when the scope ends, so
// no statement is left mid-iteration holding a read transaction open.
class StmtUse {
 public:
  explicit StmtUse(const StmtPtr& stmt) : stmt_(stmt.get()) {}
  ~StmtUse() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  StmtUse(const StmtUse&) = delete;
  StmtUse& operator=(const StmtUse&) = delete;
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_;
};

inline int BindOne(sqlite3_stmt* stmt, int index, std::string_view value) {
  return sqlite3_bind_text64(stmt, index, value.data() != nullptr ? value.data() : "", value.size(),
                             SQLITE_TRANSIENT, SQLITE_UTF8);
}
inline int BindOne(sqlite3_stmt* stmt, int index, int64_t value) {
  return sqlite3_bind_int64(stmt, index, value);
}

// Binds `args` to parameters 1..N; returns the first failure's code.
template <typename... Args>
int Bind(sqlite3_stmt* stmt, const Args&... args) {
  int index = 0;
  int rc = SQLITE_OK;
  ((rc = rc == SQLITE_OK ? BindOne(stmt, ++index, args) : rc), ...);
  return rc;
}

inline std::string ColumnText(sqlite3_stmt* stmt, int column) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
  if (text == nullptr) return "";
  return std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt, column)));
}

}  // namespace sqlite_ledger_internal

using sqlite_ledger_internal::DbPtr;
using sqlite_ledger_internal::StmtPtr;

class SqliteLedger final : public Ledger {
 public:
  static Result<std::unique_ptr<Ledger>> Open(const std::string& path,
                                              const SqliteLedgerOptions& options);

  // Insert, End and RenewLease each cost one WAL fsync, so alone their
  // throughput is bounded by 1/fsync; Apply of a batch shares one fsync
  // (bench/ledger_bench.cc measures both). Reads of active allocations are
  // in-memory and do not depend on the ledger's history size.
  Status Insert(const Allocation& allocation) override;
  Result<Allocation> End(const std::string& id, AllocationState state,
                         int64_t now_unix_ms) override;
  Result<Allocation> RenewLease(const std::string& id, int64_t expires_unix_ms) override;
  // Group commit: all of `changes` in one BEGIN IMMEDIATE ... COMMIT, so one
  // WAL fsync covers them. A change refused on its own (duplicate, unknown
  // or ended id, a GPU already held) fails alone; a storage failure fails
  // every change and records none.
  std::vector<Result<Allocation>> Apply(const std::vector<LedgerChange>& changes) override;

  Result<Allocation> Get(const std::string& id) const override;
  // When reading the ended history fails, answers nullopt (the interface has
  // no error channel); Insert then still refuses the key through the
  // database's UNIQUE constraint.
  std::optional<Allocation> FindByIdempotencyKey(const std::string& owner,
                                                 const std::string& key) const override;
  // filter.limit <= 0 returns nothing. With include_ended, when reading the
  // database fails the rows read before the failure are returned (the
  // interface has no error channel).
  std::vector<Allocation> List(const AllocationFilter& filter) const override;
  // Oldest allocation first, each allocation's grants in grant order.
  size_t CountActive() const override;
  std::vector<GpuGrant> ActiveGrants() const override;
  // Earliest expiry first.
  std::vector<Allocation> ExpiredLeases(int64_t now_unix_ms) const override;
  // kFailedPrecondition when the database file is corrupt, kInternal when the
  // stored allocations break an invariant (or the index disagrees with them).
  // Reads the whole database; writers wait meanwhile. Not for the hot path.
  Status CheckIntegrity() const override;

 private:
  // The cached prepared statements; all prepared once at open.
  struct Statements {
    StmtPtr begin;
    StmtPtr commit;
    StmtPtr rollback;
    StmtPtr insert_allocation;
    StmtPtr insert_grant;
    StmtPtr end_allocation;
    StmtPtr renew_lease;
    StmtPtr select_by_id;
    StmtPtr select_by_key;
    StmtPtr select_grants;
    StmtPtr list_all;
    StmtPtr list_by_owner;
  };

  // How many active allocations hold a GPU, and how.
  // Active allocations only. Mirrors what is committed.
  struct Index {
    std::unordered_map<std::string, Allocation> by_id;
    std::map<std::pair<std::string, std::string>, std::string> by_owner_key;  // -> id
    std::unordered_map<std::string, GpuUse> by_gpu;                           // uuid ->
  };

  SqliteLedger(std::string path, DbPtr db) : path_(std::move(path)), db_(std::move(db)) {}

  // Open's steps.
  Status Identify(bool* fresh, int64_t* schema_version);
  Status Configure(const SqliteLedgerOptions& options);
  Status CreateSchema();
  // Runs kUpgradeSql from `from_version` up to kSchemaVersion, atomically.
  Status Upgrade(int64_t from_version);
  Status QuickCheck();
  Status PrepareStatements();
  Status LoadActive();

  // Maps a failed SQLite call to a Status naming the ledger and `what` was
  // being done: disk full -> kResourceExhausted, I/O and corruption ->
  // kUnavailable, anything else -> kInternal.
  Status StorageError(int rc, std::string_view what) const;
  Status Prepare(const char* sql, StmtPtr* out, unsigned flags) const;
  // Steps a statement that returns no rows; the result code of the step.
  int StepDone(const StmtPtr& stmt) const;
  // What an Apply call has changed so far. The index is updated only after
  // the batch is committed, so until then the changes live here.
  struct Batch {
    std::unordered_map<std::string, Allocation> touched;   // id -> as the batch leaves it.
    std::set<std::pair<std::string, std::string>> keys;    // (owner, key) of its inserts.
    std::unordered_map<std::string, GpuUse> inserted_use;  // uuid -> held by its inserts.
    std::vector<std::string> what;                         // Each write, for messages.
    bool open = false;                                     // BEGIN IMMEDIATE was run.
  };
  // Begins the batch's transaction unless it already has; notes `what`.
  Status Begin(Batch* batch, std::string what);
  // The allocation as `batch` leaves it: changed by it, active in the index,
  // or read from the database. Requires db_mutex_ and index_mutex_.
  Result<Allocation> Current(const std::string& id, const Batch& batch) const;
  // Apply's steps, one per change kind; each returns the change's result. A
  // failure that fails the whole batch (storage) is also stored in *fatal.
  // Require db_mutex_ and index_mutex_ (shared).
  Result<Allocation> ApplyInsert(const Allocation& allocation, const std::string& request,
                                 Batch* batch, Status* fatal);
  Result<Allocation> ApplyEnd(const std::string& id, AllocationState state, int64_t now_unix_ms,
                              Batch* batch, Status* fatal);
  Result<Allocation> ApplyRenewLease(const std::string& id, int64_t expires_unix_ms, Batch* batch,
                                     Status* fatal);

  // Reads allocations from the database. Require db_mutex_.
  Result<Allocation> ReadRow(sqlite3_stmt* row) const;
  Result<Allocation> ReadById(const std::string& id) const;

  // Index maintenance. Require db_mutex_ and index_mutex_ held exclusively.
  void IndexAdd(const Allocation& allocation);
  void IndexRemove(const std::string& id);
  // Why `allocation` cannot join the active ones and those `batch` inserted
  // (duplicate id or key, a GPU already held incompatibly); OK if it can.
  // Requires index_mutex_.
  Status ConflictWithActive(const Allocation& allocation, const Batch& batch) const;

  const std::string path_;
  mutable std::mutex db_mutex_;
  DbPtr db_;          // Guarded by db_mutex_. Declared before the statements:
  Statements stmts_;  // these are finalized first. Guarded by db_mutex_.
  mutable std::shared_mutex index_mutex_;
  Index index_;  // Guarded by index_mutex_ (writes also need db_mutex_).
};

}  // namespace gpurm

#endif  // GPURM_LEDGER_SQLITE_LEDGER_INTERNAL_H_
