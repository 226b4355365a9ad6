#include "cli/token_command.h"

#include <memory>
#include <string>

#include "auth/tokens.h"
#include "cli/commands.h"
#include "cli/table.h"

namespace gpurm::cli {
namespace {

struct TokenSession {
  std::string file;
  std::string name;
  std::string role = "user";
};

}  // namespace

void RegisterTokenCommand(CLI::App& app, int* exit_code, std::ostream& out, std::ostream& err) {
  auto session = std::make_shared<TokenSession>();
  CLI::App* token = app.add_subcommand("token", "Manage the daemon's bearer tokens (local file)");
  token->require_subcommand(1);
  auto add_file = [session](CLI::App* command) {
    command->add_option("--file", session->file, "The token file (server.auth.tokens_file)")
        ->required();
  };

  CLI::App* create = token->add_subcommand(
      "create", "Add an identity; prints its new token once (only its hash is stored)");
  create->add_option("--name", session->name, "Identity: owner of its allocations")->required();
  create->add_option("--role", session->role, "agent, viewer, user or admin")
      ->check(CLI::IsMember(RoleNames()))
      ->capture_default_str();
  add_file(create);
  create->callback([session, exit_code, &out, &err] {
    Result<std::string> secret = NewToken();
    Result<TokenEntry> entry =
        secret.ok() ? MakeTokenEntry(session->name, session->role, *secret) : secret.status();
    const Status written = entry.ok() ? AppendTokenEntry(session->file, *entry) : entry.status();
    if (!written.ok()) {
      err << "gpurm: " << written.message() << "\n";
      *exit_code = written.code() == StatusCode::kInternal ? kExitUnavailable : kExitRefused;
      return;
    }
    out << *secret << "\n";
    err << "token for \"" << session->name << "\" (" << session->role << ") added to "
        << session->file << "; it is shown only now: store it where its user can read it\n";
    *exit_code = kExitOk;
  });

  CLI::App* list = token->add_subcommand("list", "Identities and roles in the token file");
  add_file(list);
  list->callback([session, exit_code, &out, &err] {
    Result<std::vector<TokenEntry>> entries = ReadTokenFile(session->file);
    if (!entries.ok()) {
      err << "gpurm: " << entries.status().message() << "\n";
      *exit_code = kExitRefused;
      return;
    }
    Table table({"NAME", "ROLE"});
    for (const TokenEntry& entry : *entries) table.AddRow({entry.name, RoleName(entry.role)});
    out << table.Render();
    *exit_code = kExitOk;
  });

  CLI::App* revoke =
      token->add_subcommand("revoke", "Remove an identity: its token stops working at once");
  revoke->add_option("name", session->name, "Identity to remove")->required();
  add_file(revoke);
  revoke->callback([session, exit_code, &out, &err] {
    const Status removed = RemoveTokenEntry(session->file, session->name);
    if (!removed.ok()) {
      err << "gpurm: " << removed.message() << "\n";
      *exit_code = kExitRefused;
      return;
    }
    out << "revoked \"" << session->name << "\"\n";
    *exit_code = kExitOk;
  });
}

}  // namespace gpurm::cli
