// SqliteLedger: opening a ledger -- identifying the file, creating the
// schema, upgrading older versions, loading the index of active allocations.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "ledger/sqlite_ledger_internal.h"

namespace gpurm {

// The ledger's own parts (sqlite_ledger_internal.h).
using namespace sqlite_ledger_internal;  // NOLINT(google-build-using-namespace)

namespace {

// Applied in one transaction together with application_id and user_version,
// so a file either is a complete ledger or still looks fresh.
constexpr const char* kSchemaSql = R"sql(
CREATE TABLE meta (
  key TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('format', 'gpurm-ledger'), ('schema_version', '2');
CREATE TABLE allocations (
  id TEXT PRIMARY KEY NOT NULL,
  owner TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('active', 'released', 'expired')),
  request TEXT NOT NULL CHECK (json_valid(request)),
  created_unix_ms INTEGER NOT NULL,
  ended_unix_ms INTEGER NOT NULL,
  lease_expires_unix_ms INTEGER NOT NULL,
  idempotency_key TEXT NOT NULL,
  request_digest TEXT NOT NULL DEFAULT ''
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX allocations_by_owner_key ON allocations (owner, idempotency_key)
  WHERE idempotency_key <> '';
CREATE INDEX allocations_by_created ON allocations (created_unix_ms, id);
CREATE INDEX allocations_by_owner_created ON allocations (owner, created_unix_ms, id);
CREATE INDEX allocations_active ON allocations (id) WHERE state = 'active';
CREATE TABLE grants (
  allocation_id TEXT NOT NULL REFERENCES allocations (id),
  ordinal INTEGER NOT NULL,
  node_name TEXT NOT NULL,
  gpu_index INTEGER NOT NULL,
  gpu_uuid TEXT NOT NULL,
  memory_mib INTEGER NOT NULL,
  exclusive INTEGER NOT NULL CHECK (exclusive IN (0, 1)),
  PRIMARY KEY (allocation_id, ordinal)
) STRICT, WITHOUT ROWID;
PRAGMA application_id = 1196446285;
PRAGMA user_version = 2;
)sql";

// kUpgradeSql[v] takes a ledger of schema version v to v + 1; applied in
// order, all in one transaction, so a crash leaves the old version intact.
constexpr const char* kUpgradeSql[kSchemaVersion] = {
    nullptr,  // Version 0 is a fresh file: kSchemaSql creates it.
    R"sql(
ALTER TABLE allocations ADD COLUMN request_digest TEXT NOT NULL DEFAULT '';
UPDATE meta SET value = '2' WHERE key = 'schema_version';
PRAGMA user_version = 2;
)sql",
};
static_assert(kApplicationId == 1196446285, "kSchemaSql spells kApplicationId out");

// fsync of a directory, so a file created in it survives power loss.
Status SyncDirectory(const std::filesystem::path& dir) {
  const std::string name = dir.empty() ? "." : dir.string();
  const int fd = ::open(name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Unavailable("cannot open directory " + name + ": " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int fsync_errno = errno;
  ::close(fd);
  if (rc != 0) {
    return Unavailable("cannot sync directory " + name + ": " + std::strerror(fsync_errno));
  }
  return Status::Ok();
}

// Refuses, before SQLite opens it, a non-empty file that does not start with
// SQLite's magic header. SQLite would refuse it too; this names the problem
// plainly and guarantees SQLite never writes to it.
Status CheckSqliteHeader(const std::string& path) {
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (ec || status.type() == std::filesystem::file_type::not_found) return Status::Ok();
  if (status.type() != std::filesystem::file_type::regular) {
    return FailedPrecondition("ledger " + path + " is not a regular file");
  }
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec || size == 0) return Status::Ok();            // SQLite reports what it cannot open.
  static constexpr char kMagic[] = "SQLite format 3";  // 16 bytes with the NUL.
  char header[sizeof(kMagic)] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(header, sizeof(header));
  if (in.gcount() != static_cast<std::streamsize>(sizeof(header)) ||
      std::memcmp(header, kMagic, sizeof(kMagic)) != 0) {
    return FailedPrecondition("ledger " + path +
                              " is not a gpurm ledger: not a SQLite database; refusing to use it");
  }
  return Status::Ok();
}

}  // namespace

// --- Opening -----------------------------------------------------------------

Result<std::unique_ptr<Ledger>> OpenSqliteLedger(const std::string& path,
                                                 const SqliteLedgerOptions& options) {
  return SqliteLedger::Open(path, options);
}

Result<std::unique_ptr<Ledger>> SqliteLedger::Open(const std::string& path,
                                                   const SqliteLedgerOptions& options) {
  if (path.empty()) return InvalidArgument("must not be empty", "ledger path");

  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    if (std::filesystem::create_directories(parent, ec)) {
      // Make the new directory's entry durable too.
      if (Status status = SyncDirectory(parent.parent_path()); !status.ok()) return status;
    } else if (ec) {
      return Unavailable("cannot create the directory of ledger " + path + ": " + ec.message());
    }
  }
  if (Status status = CheckSqliteHeader(path); !status.ok()) return status;
  std::error_code wal_ec;
  const bool wal_existed = std::filesystem::exists(path + "-wal", wal_ec);

  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &raw,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
      nullptr);
  DbPtr db(raw);  // sqlite3_open_v2 hands out a handle to close even on failure.
  if (rc != SQLITE_OK) {
    return Unavailable("cannot open ledger " + path + ": " +
                       (raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  std::unique_ptr<SqliteLedger> ledger(new SqliteLedger(path, std::move(db)));
  sqlite3_busy_timeout(ledger->db_.get(), std::max(options.busy_timeout_ms, 0));

  bool fresh = false;
  int64_t schema_version = 0;
  if (Status status = ledger->Identify(&fresh, &schema_version); !status.ok()) {
    // Leave a refused file as found. Its own WAL must not be checkpointed
    // into it on close; a WAL that reading it created is empty, and closing
    // normally removes it again.
    if (wal_existed) {
      sqlite3_db_config(ledger->db_.get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    }
    return status;
  }
  if (sqlite3_db_readonly(ledger->db_.get(), "main") == 1) {
    return Unavailable("ledger " + path + " is read-only");
  }
  if (Status status = ledger->Configure(options); !status.ok()) return status;
  if (fresh) {
    if (Status status = ledger->CreateSchema(); !status.ok()) return status;
    if (Status status = SyncDirectory(parent); !status.ok()) return status;
  } else if (Status status = ledger->QuickCheck(); !status.ok()) {
    return status;
  } else if (schema_version < kSchemaVersion) {
    if (Status upgraded = ledger->Upgrade(schema_version); !upgraded.ok()) return upgraded;
  }
  if (Status status = ledger->PrepareStatements(); !status.ok()) return status;
  if (Status status = ledger->LoadActive(); !status.ok()) return status;
  return std::unique_ptr<Ledger>(std::move(ledger));
}

// Decides, by reading only, whether the file is a ledger of our schema, a
// fresh (empty) database to initialise, or something to refuse. Exclusive
// locking mode is set first so the connection keeps the file to itself from
// its first read on (and WAL needs no shared memory).
Status SqliteLedger::Identify(bool* fresh, int64_t* schema_version) {
  sqlite3* db = db_.get();
  const auto refuse = [&](const std::string& why) {
    return FailedPrecondition("ledger " + path_ + " is not a gpurm ledger: " + why +
                              "; refusing to use it");
  };
  const auto read_error = [&](int rc) {
    switch (rc & 0xff) {
      case SQLITE_NOTADB:
        return refuse("not a SQLite database");
      case SQLITE_CORRUPT:
        return FailedPrecondition("ledger " + path_ + " is corrupt: " + sqlite3_errmsg(db));
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        return Unavailable("ledger " + path_ +
                           " is held open by another process (another gpurm daemon?)");
      default:
        return StorageError(rc, "reading the ledger's identity");
    }
  };
  // Preparing reads the schema, so it can meet a foreign file's damage too.
  const auto read_int = [&](const char* sql, int64_t* out) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(db, sql, -1, 0, &raw, nullptr);
    const StmtPtr stmt(raw);
    if (rc != SQLITE_OK) return read_error(rc);
    rc = sqlite3_step(stmt.get());
    if (rc != SQLITE_ROW) return read_error(rc);
    *out = sqlite3_column_int64(stmt.get(), 0);
    return Status::Ok();
  };

  int64_t ignored = 0;
  // PRAGMA locking_mode answers a row ("exclusive") and reads nothing.
  if (Status status = read_int("PRAGMA locking_mode = EXCLUSIVE", &ignored); !status.ok()) {
    return status;
  }
  int64_t application_id = 0;
  int64_t user_version = 0;
  int64_t schema_objects = 0;
  if (Status status = read_int("PRAGMA application_id", &application_id); !status.ok()) {
    return status;
  }
  if (Status status = read_int("PRAGMA user_version", &user_version); !status.ok()) return status;
  if (Status status = read_int("SELECT count(*) FROM sqlite_schema", &schema_objects);
      !status.ok()) {
    return status;
  }

  if (application_id == 0 && user_version == 0 && schema_objects == 0) {
    *fresh = true;  // A new or empty file: nothing in it to lose.
    return Status::Ok();
  }
  if (application_id != kApplicationId) {
    return refuse("a SQLite database of another application (application_id " +
                  std::to_string(application_id) + ", " + std::to_string(schema_objects) +
                  " schema objects)");
  }
  if (user_version > kSchemaVersion) {
    return FailedPrecondition("ledger " + path_ + " has schema version " +
                              std::to_string(user_version) + ", newer than this gpurm supports (" +
                              std::to_string(kSchemaVersion) + "); refusing to use it");
  }
  if (user_version < 1) return refuse("unknown schema version " + std::to_string(user_version));

  StmtPtr meta;
  if (Status status = Prepare("SELECT key, value FROM meta", &meta, 0); !status.ok()) {
    return refuse("it has no meta table");
  }
  std::map<std::string, std::string> values;
  int rc;
  while ((rc = sqlite3_step(meta.get())) == SQLITE_ROW) {
    values[ColumnText(meta.get(), 0)] = ColumnText(meta.get(), 1);
  }
  if (rc != SQLITE_DONE) return read_error(rc);
  if (values["format"] != kFormatName) return refuse("its meta table names another format");
  if (values["schema_version"] != std::to_string(user_version)) {
    return refuse("its meta table's schema version " + values["schema_version"] +
                  " disagrees with user_version " + std::to_string(user_version));
  }
  *fresh = false;
  *schema_version = user_version;
  return Status::Ok();
}

Status SqliteLedger::Configure(const SqliteLedgerOptions& options) {
  StmtPtr stmt;
  if (Status status = Prepare("PRAGMA journal_mode = WAL", &stmt, 0); !status.ok()) return status;
  const int rc = sqlite3_step(stmt.get());
  if (rc != SQLITE_ROW) return StorageError(rc, "switching to WAL mode");
  if (ColumnText(stmt.get(), 0) != "wal") {
    return Unavailable("ledger " + path_ + ": cannot use WAL mode (journal mode stays " +
                       ColumnText(stmt.get(), 0) + ")");
  }
  stmt.reset();

  std::string pragmas = "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;";
  if (options.max_page_count > 0) {
    pragmas += "PRAGMA max_page_count = " + std::to_string(options.max_page_count) + ";";
  }
  if (const int exec_rc = sqlite3_exec(db_.get(), pragmas.c_str(), nullptr, nullptr, nullptr);
      exec_rc != SQLITE_OK) {
    return StorageError(exec_rc, "configuring the connection");
  }
  return Status::Ok();
}

Status SqliteLedger::CreateSchema() {
  std::string sql = "BEGIN IMMEDIATE;";
  sql += kSchemaSql;
  sql += "COMMIT;";
  if (const int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, nullptr);
      rc != SQLITE_OK) {
    Status status = StorageError(rc, "creating the schema");
    if (sqlite3_get_autocommit(db_.get()) == 0) {
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
    return status;
  }
  return Status::Ok();
}

Status SqliteLedger::Upgrade(int64_t from_version) {
  std::string sql = "BEGIN IMMEDIATE;";
  for (int64_t version = from_version; version < kSchemaVersion; ++version) {
    sql += kUpgradeSql[version];
  }
  sql += "COMMIT;";
  if (const int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, nullptr);
      rc != SQLITE_OK) {
    Status status =
        StorageError(rc, "upgrading the schema from version " + std::to_string(from_version));
    if (sqlite3_get_autocommit(db_.get()) == 0) {
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
    return status;
  }
  return Status::Ok();
}

Status SqliteLedger::QuickCheck() {
  StmtPtr stmt;
  if (Status status = Prepare("PRAGMA quick_check", &stmt, 0); !status.ok()) return status;
  std::string problems;
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    const std::string line = ColumnText(stmt.get(), 0);
    if (line != "ok") problems += (problems.empty() ? "" : "; ") + line;
  }
  if ((rc & 0xff) == SQLITE_CORRUPT || !problems.empty()) {
    return FailedPrecondition("ledger " + path_ + " is corrupt: " +
                              (problems.empty() ? sqlite3_errmsg(db_.get()) : problems));
  }
  if (rc != SQLITE_DONE) return StorageError(rc, "checking the ledger");
  return Status::Ok();
}

Status SqliteLedger::LoadActive() {
  StmtPtr stmt;
  const std::string sql =
      std::string("SELECT ") + kAllocationColumns + " FROM allocations WHERE state = 'active'";
  if (Status status = Prepare(sql.c_str(), &stmt, 0); !status.ok()) return status;
  int rc;
  std::unique_lock index_lock(index_mutex_);
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    Result<Allocation> allocation = ReadRow(stmt.get());
    if (!allocation.ok()) return allocation.status();
    IndexAdd(*allocation);
  }
  if (rc != SQLITE_DONE) return StorageError(rc, "loading active allocations");
  return Status::Ok();
}

}  // namespace gpurm
