// `gpurm token`: the daemon's token file (server.auth.tokens_file), edited
// locally -- no daemon involved; the daemon picks changes up with its next
// request.
//
//   gpurm token create --name NAME --role agent|viewer|user|admin --file PATH
//       prints a new random token once on stdout (and nothing else there,
//       for scripts); the file keeps only its salted hash
//   gpurm token list --file PATH      names and roles
//   gpurm token revoke NAME --file PATH
//
// Exit codes: 0 done, 1 refused (name taken, unknown name, bad file),
// 2 usage error.
#ifndef GPURM_CLI_TOKEN_COMMAND_H_
#define GPURM_CLI_TOKEN_COMMAND_H_

#include <CLI/CLI.hpp>
#include <ostream>

namespace gpurm::cli {

void RegisterTokenCommand(CLI::App& app, int* exit_code, std::ostream& out, std::ostream& err);

}  // namespace gpurm::cli

#endif  // GPURM_CLI_TOKEN_COMMAND_H_
