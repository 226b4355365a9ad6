// SqliteLedger: the Ledger on an embedded SQLite database in WAL mode with
// synchronous=FULL, so each committed transaction is fsync'd.
//
// An open ledger holds an exclusive lock on its file for as long as it is
// open: a second process (a second daemon) cannot open it, and the sqlite3
// shell can inspect it only while gpurm is stopped. That keeps the ledger's
// in-memory index of active allocations the truth.
#ifndef GPURM_LEDGER_SQLITE_LEDGER_H_
#define GPURM_LEDGER_SQLITE_LEDGER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "ledger/ledger.h"

namespace gpurm {

class SqliteLedger;

// How OpenSqliteLedger opens the file. The defaults suit the daemon.
struct SqliteLedgerOptions {
  // How long opening waits for another process that holds the ledger before
  // failing with kUnavailable.
  int busy_timeout_ms = 5000;
  // Caps the database file at this many pages (SQLite's PRAGMA max_page_count;
  // SQLite's default page size, 4 KiB on Debian); 0 = no cap of gpurm's own. A
  // change that would grow the file past the cap fails with
  // kResourceExhausted, exactly as on a full disk.
  int64_t max_page_count = 0;
};

// Opens (creating if absent, with its parent directory) the ledger at `path`.
// A file that is not a gpurm ledger (another SQLite database, any other file,
// a ledger of a newer schema), or is corrupt, is an error
// (kFailedPrecondition naming the path) and is left untouched — never
// silently reset. kUnavailable when the file cannot be opened or another
// process holds it.
Result<std::unique_ptr<Ledger>> OpenSqliteLedger(const std::string& path,
                                                 const SqliteLedgerOptions& options = {});

}  // namespace gpurm

#endif  // GPURM_LEDGER_SQLITE_LEDGER_H_
