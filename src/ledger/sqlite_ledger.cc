// SqliteLedger: see sqlite_ledger.h.
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

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <shared_mutex>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "codec/request_codec.h"
#include "ledger/allocation_rules.h"

namespace gpurm {
namespace {

constexpr int32_t kApplicationId = 0x4750524D;  // "GPRM"
constexpr int kSchemaVersion = 2;
constexpr std::string_view kFormatName = "gpurm-ledger";

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

constexpr const char* kAllocationColumns =
    "id, owner, state, request, created_unix_ms, ended_unix_ms, lease_expires_unix_ms, "
    "idempotency_key, request_digest";

Status FailedPrecondition(std::string message) {
  return {StatusCode::kFailedPrecondition, std::move(message)};
}
Status AlreadyExists(std::string message) {
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

int BindOne(sqlite3_stmt* stmt, int index, std::string_view value) {
  return sqlite3_bind_text64(stmt, index, value.data() != nullptr ? value.data() : "", value.size(),
                             SQLITE_TRANSIENT, SQLITE_UTF8);
}
int BindOne(sqlite3_stmt* stmt, int index, int64_t value) {
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

std::string ColumnText(sqlite3_stmt* stmt, int column) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
  if (text == nullptr) return "";
  return std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt, column)));
}

// --- Values <-> columns ------------------------------------------------------

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
