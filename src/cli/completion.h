// Shell completion scripts and the man page, generated from the command tree
// of a CLI::App (its subcommands, options and help texts), so they describe
// exactly the commands the binary parses:
//
//   gpurm completion bash   > /usr/share/bash-completion/completions/gpurm
//   gpurm completion zsh    > /usr/share/zsh/vendor-completions/_gpurm
//   gpurm man               > gpurm.1
//
// `cmake --install` runs these three and installs what they print
// (packaging/install_prefix_files.cmake).
#ifndef GPURM_CLI_COMPLETION_H_
#define GPURM_CLI_COMPLETION_H_

#include <CLI/CLI.hpp>
#include <ostream>
#include <string>

namespace gpurm::cli {

// A bash script defining _gpurm and `complete -F _gpurm <program>`: it
// completes the subcommands and options of the command typed so far (at any
// depth: "gpurm token cr<TAB>"), and file names after an option that takes
// a value.
std::string BashCompletion(const CLI::App& app, const std::string& program);

// A zsh completion function (#compdef <program>) with the same behaviour,
// showing each word's help text.
std::string ZshCompletion(const CLI::App& app, const std::string& program);

// The man page (roff, man(7) macros) of `app`: synopsis, description, global
// options, every subcommand with its options, exit status and files.
// `version` and `date` go into the title line.
std::string ManPage(const CLI::App& app, const std::string& program, const std::string& version,
                    const std::string& date);

// Adds `completion bash|zsh` and `man` to `app`; they print the script or
// page of `app` itself (all of its subcommands, including those added after
// this call) to `out`.
void RegisterCompletionCommands(CLI::App& app, const std::string& version, const std::string& date,
                                int* exit_code, std::ostream& out = std::cout);

}  // namespace gpurm::cli

#endif  // GPURM_CLI_COMPLETION_H_
