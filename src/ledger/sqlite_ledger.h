// SqliteLedger: the Ledger on an embedded SQLite database in WAL mode with
// synchronous=FULL, so each committed transaction is fsync'd.
#ifndef GPURM_LEDGER_SQLITE_LEDGER_H_
#define GPURM_LEDGER_SQLITE_LEDGER_H_

#include <memory>
#include <string>

#include "ledger/ledger.h"

namespace gpurm {

class SqliteLedger;

// Opens (creating if absent) the ledger at `path`. A file that is not a
// gpurm ledger, or is corrupt, is an error (kFailedPrecondition) — never
// silently reset.
Result<std::unique_ptr<Ledger>> OpenSqliteLedger(const std::string& path);

}  // namespace gpurm

#endif  // GPURM_LEDGER_SQLITE_LEDGER_H_
