// SqliteLedger::CheckIntegrity: the database's own checks, the ledger's
// invariants, and the index against the rows.
#include <sqlite3.h>

#include <mutex>
#include <shared_mutex>
#include <string>

#include "ledger/sqlite_ledger_internal.h"

namespace gpurm {

// The ledger's own parts (sqlite_ledger_internal.h).
using namespace sqlite_ledger_internal;  // NOLINT(google-build-using-namespace)

Status SqliteLedger::CheckIntegrity() const {
  std::lock_guard db_lock(db_mutex_);
  // Each query answers one problem per row, as text; none = that check passed.
  struct Check {
    const char* sql;
    bool corruption;  // A damaged file rather than a broken invariant.
  };
  static constexpr Check kChecks[] = {
      {"SELECT * FROM pragma_integrity_check WHERE integrity_check <> 'ok'", true},
      {"SELECT 'a row of ' || \"table\" || ' references a missing row of ' || parent "
       "FROM pragma_foreign_key_check",
       true},
      {"SELECT 'GPU ' || g.gpu_uuid || ' is held by active allocations ' || "
       "group_concat(g.allocation_id, ', ') || ' and at least one holds it exclusively' "
       "FROM grants g JOIN allocations a ON a.id = g.allocation_id WHERE a.state = 'active' "
       "GROUP BY g.gpu_uuid HAVING count(*) > 1 AND max(g.exclusive) = 1",
       false},
      {"SELECT 'active allocation ' || a.id || ' has no grant' FROM allocations a "
       "WHERE a.state = 'active' AND NOT EXISTS "
       "(SELECT 1 FROM grants g WHERE g.allocation_id = a.id)",
       false},
  };
  std::string corruption;
  std::string violations;
  for (const Check& check : kChecks) {
    StmtPtr stmt;
    if (Status status = Prepare(check.sql, &stmt, 0); !status.ok()) return status;
    int rc;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      std::string& problems = check.corruption ? corruption : violations;
      problems += (problems.empty() ? "" : "; ") + ColumnText(stmt.get(), 0);
    }
    if ((rc & 0xff) == SQLITE_CORRUPT) {
      corruption += (corruption.empty() ? "" : "; ") + std::string(sqlite3_errmsg(db_.get()));
    } else if (rc != SQLITE_DONE) {
      return StorageError(rc, "checking integrity");
    }
  }
  if (!corruption.empty()) {
    return FailedPrecondition("ledger " + path_ + " is corrupt: " + corruption);
  }

  // The index must mirror the active rows.
  StmtPtr active;
  if (Status status = Prepare(
          "SELECT id, lease_expires_unix_ms FROM allocations WHERE state = 'active'", &active, 0);
      !status.ok()) {
    return status;
  }
  std::shared_lock index_lock(index_mutex_);
  size_t active_rows = 0;
  int rc;
  while ((rc = sqlite3_step(active.get())) == SQLITE_ROW) {
    ++active_rows;
    const std::string id = ColumnText(active.get(), 0);
    const auto it = index_.by_id.find(id);
    if (it == index_.by_id.end() ||
        it->second.lease_expires_unix_ms != sqlite3_column_int64(active.get(), 1)) {
      violations += (violations.empty() ? "" : "; ") + ("index disagrees on allocation " + id);
    }
  }
  if (rc != SQLITE_DONE) return StorageError(rc, "checking integrity");
  if (active_rows != index_.by_id.size()) {
    violations += (violations.empty() ? "" : "; ") + std::string("index holds ") +
                  std::to_string(index_.by_id.size()) + " active allocations, the database " +
                  std::to_string(active_rows);
  }
  if (!violations.empty()) {
    return Internal("ledger " + path_ + " breaks its invariants: " + violations);
  }
  return Status::Ok();
}

}  // namespace gpurm
