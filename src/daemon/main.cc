// gpurm: one binary for the daemon (`gpurm serve`) and the client commands.
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/completion.h"
#include "daemon/build_info.h"
#include "daemon/ledger_command.h"
#include "daemon/serve.h"
#include "simulator/command.h"

int main(int argc, char** argv) {
  // Named explicitly: CLI11 would otherwise take argv[0], a path, which the
  // help text, completion scripts and man page would then show.
  CLI::App app{"gpurm: GPU resource manager (daemon and client)", "gpurm"};
  app.set_version_flag("--version", gpurm::VersionLine(),
                       "Print the version, git commit and build date");
  app.require_subcommand(1);

  int exit_code = gpurm::cli::kExitOk;
  gpurm::cli::RegisterClientCommands(app, &exit_code);
  gpurm::RegisterLedgerCommands(app, &exit_code);
  gpurm::sim::RegisterSimulateCommand(app, &exit_code);

  gpurm::ServeOptions serve_options;
  CLI::App* serve = app.add_subcommand("serve", "Run the daemon (REST API on HOST:PORT)");
  serve->add_option("--config", serve_options.config_path,
                    "gpu_config.yaml (default: ./gpu_config.yaml if present)");
  serve->add_option("--inventory", serve_options.inventory_path,
                    "Static inventory YAML (default: discover this machine's GPUs)");
  serve->add_option("--listen", serve_options.listen, "HOST:PORT (default 127.0.0.1:8000)");
  serve->add_option("--data-dir", serve_options.data_dir, "Directory of the ledger (default data)");
  serve->add_option("--log-dir", serve_options.log_dir, "Directory of the logs (default logs)");
  // RunServe blocks until SIGTERM; running it from the callback keeps the
  // parse-then-dispatch flow identical for every subcommand.
  serve->callback([&] { exit_code = gpurm::RunServe(serve_options); });

  // Last: the completion scripts and man page cover every command above.
  gpurm::cli::RegisterCompletionCommands(app, gpurm::GetBuildInfo().version,
                                         gpurm::GetBuildInfo().date, &exit_code);

  return gpurm::cli::ParseAndRun(app, argc, argv, &exit_code);
}
