// SqliteLedger: its prepared statements, how SQLite failures map to
// Status, and rows <-> values.
#include <sqlite3.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "codec/request_codec.h"
#include "ledger/sqlite_ledger_internal.h"

namespace gpurm {

// The ledger's own parts (sqlite_ledger_internal.h).
using namespace sqlite_ledger_internal;  // NOLINT(google-build-using-namespace)

namespace {

std::optional<AllocationState> ParseState(std::string_view text) {
  for (AllocationState state :
       {AllocationState::kActive, AllocationState::kReleased, AllocationState::kExpired}) {
    if (text == AllocationStateName(state)) return state;
  }
  return std::nullopt;
}

// The inverse of StorableRequestJson. A missing field keeps GpuRequest's default (so
// rows written before a field existed still read); a field of the wrong type
// or one this build does not know is an error, never silently dropped. Rows
// written before the codec was shared spell the lease "lease_ttl_s".
Result<GpuRequest> RequestFromJson(std::string_view text) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return InvalidArgument("request is not valid JSON", "request");
  if (json.is_object() && json.contains("lease_ttl_s") && !json.contains("lease_ttl_seconds")) {
    json["lease_ttl_seconds"] = std::move(json["lease_ttl_s"]);
    json.erase("lease_ttl_s");
  }
  return DecodeGpuRequest(json, FieldCase::kSnake, "request.");
}

}  // namespace

Status SqliteLedger::PrepareStatements() {
  const std::string select = std::string("SELECT ") + kAllocationColumns + " FROM allocations ";
  const std::pair<const char*, StmtPtr*> statements[] = {
      {"BEGIN IMMEDIATE", &stmts_.begin},
      {"COMMIT", &stmts_.commit},
      {"ROLLBACK", &stmts_.rollback},
      {"INSERT INTO allocations (id, owner, state, request, created_unix_ms, ended_unix_ms, "
       "lease_expires_unix_ms, idempotency_key, request_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
       &stmts_.insert_allocation},
      {"INSERT INTO grants (allocation_id, ordinal, node_name, gpu_index, gpu_uuid, memory_mib, "
       "exclusive) VALUES (?, ?, ?, ?, ?, ?, ?)",
       &stmts_.insert_grant},
      {"UPDATE allocations SET state = ?2, ended_unix_ms = ?3 WHERE id = ?1 AND state = 'active'",
       &stmts_.end_allocation},
      {"UPDATE allocations SET lease_expires_unix_ms = ?2 WHERE id = ?1 AND state = 'active'",
       &stmts_.renew_lease},
      {"SELECT node_name, gpu_index, gpu_uuid, memory_mib, exclusive FROM grants "
       "WHERE allocation_id = ? ORDER BY ordinal",
       &stmts_.select_grants},
  };
  for (const auto& [sql, out] : statements) {
    if (Status status = Prepare(sql, out, SQLITE_PREPARE_PERSISTENT); !status.ok()) return status;
  }
  const std::pair<std::string, StmtPtr*> selects[] = {
      {select + "WHERE id = ?", &stmts_.select_by_id},
      // Repeats the partial index's condition so the index can serve it.
      {select + "WHERE owner = ?1 AND idempotency_key = ?2 AND idempotency_key <> ''",
       &stmts_.select_by_key},
      // ?1, ?2: the cursor (AllocationFilter::after_*), INT64_MAX and '' for
      // none; the index on (created_unix_ms, id) serves the row-value range.
      {select + "WHERE (created_unix_ms, id) < (?1, ?2) ORDER BY created_unix_ms DESC, id DESC "
                "LIMIT ?3",
       &stmts_.list_all},
      {select + "WHERE owner = ?4 AND (created_unix_ms, id) < (?1, ?2) "
                "ORDER BY created_unix_ms DESC, id DESC LIMIT ?3",
       &stmts_.list_by_owner},
  };
  for (const auto& [sql, out] : selects) {
    if (Status status = Prepare(sql.c_str(), out, SQLITE_PREPARE_PERSISTENT); !status.ok()) {
      return status;
    }
  }
  return Status::Ok();
}

// --- Helpers -----------------------------------------------------------------

Status SqliteLedger::StorageError(int rc, std::string_view what) const {
  std::string message = "ledger " + path_ + ": " + std::string(what) + ": ";
  const char* detail = sqlite3_errmsg(db_.get());
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return {StatusCode::kResourceExhausted, message + "disk full (" + detail + ")"};
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_CANTOPEN:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_PROTOCOL:
    case SQLITE_NOMEM:
    case SQLITE_NOLFS:
      return Unavailable(message + detail + " (sqlite code " + std::to_string(rc) + ")");
    default:
      return Internal(message + detail + " (sqlite code " + std::to_string(rc) + ")");
  }
}

Status SqliteLedger::Prepare(const char* sql, StmtPtr* out, unsigned flags) const {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_.get(), sql, -1, flags, &stmt, nullptr);
  out->reset(stmt);
  if (rc != SQLITE_OK) return StorageError(rc, std::string("preparing \"") + sql + "\"");
  return Status::Ok();
}

int SqliteLedger::StepDone(const StmtPtr& stmt) const {
  StmtUse use(stmt);
  return sqlite3_step(use.get());
}

Result<Allocation> SqliteLedger::ReadRow(sqlite3_stmt* row) const {
  Allocation allocation;
  allocation.id = ColumnText(row, 0);
  const auto malformed = [&](const std::string& why) {
    return FailedPrecondition("ledger " + path_ + " holds a malformed allocation " + allocation.id +
                              ": " + why);
  };
  allocation.owner = ColumnText(row, 1);
  const std::optional<AllocationState> state = ParseState(ColumnText(row, 2));
  if (!state) return malformed("unknown state " + ColumnText(row, 2));
  allocation.state = *state;
  Result<GpuRequest> request = RequestFromJson(ColumnText(row, 3));
  if (!request.ok()) return malformed(request.status().ToString());
  allocation.request = std::move(request).value();
  allocation.created_unix_ms = sqlite3_column_int64(row, 4);
  allocation.ended_unix_ms = sqlite3_column_int64(row, 5);
  allocation.lease_expires_unix_ms = sqlite3_column_int64(row, 6);
  allocation.idempotency_key = ColumnText(row, 7);
  allocation.request_digest = ColumnText(row, 8);

  StmtUse grants(stmts_.select_grants);
  if (const int rc = Bind(grants.get(), std::string_view(allocation.id)); rc != SQLITE_OK) {
    return StorageError(rc, "reading grants of " + allocation.id);
  }
  int rc;
  while ((rc = sqlite3_step(grants.get())) == SQLITE_ROW) {
    GpuGrant grant;
    grant.node_name = ColumnText(grants.get(), 0);
    grant.gpu_index = sqlite3_column_int(grants.get(), 1);
    grant.gpu_uuid = ColumnText(grants.get(), 2);
    grant.memory_mib = sqlite3_column_int64(grants.get(), 3);
    grant.exclusive = sqlite3_column_int(grants.get(), 4) != 0;
    allocation.grants.push_back(std::move(grant));
  }
  if (rc != SQLITE_DONE) return StorageError(rc, "reading grants of " + allocation.id);
  return allocation;
}

Result<Allocation> SqliteLedger::ReadById(const std::string& id) const {
  StmtUse stmt(stmts_.select_by_id);
  if (const int rc = Bind(stmt.get(), std::string_view(id)); rc != SQLITE_OK) {
    return StorageError(rc, "reading allocation " + id);
  }
  const int rc = sqlite3_step(stmt.get());
  if (rc == SQLITE_DONE) return NotFound("no allocation " + id);
  if (rc != SQLITE_ROW) return StorageError(rc, "reading allocation " + id);
  return ReadRow(stmt.get());
}

}  // namespace gpurm
