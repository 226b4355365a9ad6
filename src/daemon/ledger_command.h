// `gpurm ledger check`: offline verification of a daemon's ledger.
#ifndef GPURM_DAEMON_LEDGER_COMMAND_H_
#define GPURM_DAEMON_LEDGER_COMMAND_H_

#include <CLI/CLI.hpp>
#include <iostream>
#include <ostream>
#include <string>

namespace gpurm {

// Opens DATA_DIR/ledger.db (it must exist: the check never creates one) and
// runs Ledger::CheckIntegrity: SQLite's integrity and foreign-key checks, no
// GPU held twice by active allocations, and the in-memory index agreeing with
// the rows. Opening after a crash replays the WAL exactly as the daemon's
// start would, so the check sees what a restarted daemon would see.
//
// The daemon holds the ledger exclusively while it runs, so this is for a
// stopped daemon (after a crash, before a restart, in tests and backups).
//
// Exit codes (the client commands' numbering):
//   0 the ledger is sound;  1 it is corrupt, foreign or breaks an invariant;
//   2 no ledger at that path (nothing was checked);  3 it cannot be opened
//   (held by a running daemon, I/O error).
int RunLedgerCheck(const std::string& data_dir, std::ostream& out = std::cout,
                   std::ostream& err = std::cerr);

// Adds `ledger check --data-dir DIR` to `app`; the subcommand stores its
// exit code in *exit_code, which must outlive `app`.
void RegisterLedgerCommands(CLI::App& app, int* exit_code);

}  // namespace gpurm

#endif  // GPURM_DAEMON_LEDGER_COMMAND_H_
