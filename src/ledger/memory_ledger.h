// MemoryLedger: a Ledger that keeps everything in memory, for unit tests of
// the manager and the API (as leveldb's in-memory Env is for its tests). It
// applies the same rules as SqliteLedger (ledger/allocation_rules.h) and
// passes the same contract test (ledger_contract_test.cc), but nothing it
// records survives the process: never use it where an answer is durable.
#ifndef GPURM_LEDGER_MEMORY_LEDGER_H_
#define GPURM_LEDGER_MEMORY_LEDGER_H_

#include <memory>

#include "ledger/ledger.h"

namespace gpurm {

// Thread-safe, as every Ledger. Apply records changes one by one (the
// Ledger default): there is no storage that could fail half way.
std::unique_ptr<Ledger> NewMemoryLedger();

}  // namespace gpurm

#endif  // GPURM_LEDGER_MEMORY_LEDGER_H_
