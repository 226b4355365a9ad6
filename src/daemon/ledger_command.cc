#include "daemon/ledger_command.h"

#include <filesystem>
#include <limits>
#include <memory>
#include <system_error>

#include "cli/commands.h"
#include "ledger/sqlite_ledger.h"

namespace gpurm {

int RunLedgerCheck(const std::string& data_dir, std::ostream& out, std::ostream& err) {
  const std::string path = data_dir + "/ledger.db";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    err << "gpurm: no ledger at " << path << "\n";
    return cli::kExitUsage;
  }
  SqliteLedgerOptions options;
  options.busy_timeout_ms = 1000;  // A running daemon holds it for good: fail fast.
  Result<std::unique_ptr<Ledger>> ledger = OpenSqliteLedger(path, options);
  if (!ledger.ok()) {
    err << "gpurm: " << ledger.status().message() << "\n";
    return ledger.status().code() == StatusCode::kFailedPrecondition ? cli::kExitRefused
                                                                     : cli::kExitUnavailable;
  }
  const Status integrity = (*ledger)->CheckIntegrity();
  if (!integrity.ok()) {
    err << "gpurm: " << integrity.message() << "\n";
    return integrity.code() == StatusCode::kUnavailable ? cli::kExitUnavailable : cli::kExitRefused;
  }
  AllocationFilter active;
  active.limit = std::numeric_limits<int>::max();
  out << "ledger " << path << ": ok (" << (*ledger)->List(active).size()
      << " active allocations)\n";
  return cli::kExitOk;
}

void RegisterLedgerCommands(CLI::App& app, int* exit_code) {
  CLI::App* ledger = app.add_subcommand("ledger", "Inspect the daemon's ledger (daemon stopped)");
  ledger->require_subcommand(1);
  CLI::App* check = ledger->add_subcommand(
      "check", "Verify the ledger's integrity and invariants (exit 0 sound, 1 not, 3 held)");
  auto data_dir = std::make_shared<std::string>("data");
  check->add_option("--data-dir", *data_dir, "Directory of the ledger (default data)");
  check->callback([data_dir, exit_code] { *exit_code = RunLedgerCheck(*data_dir); });
}

}  // namespace gpurm
