#include "cli/completion.h"

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace gpurm::cli {
namespace {

// One command of the tree: its words from the program name ("gpurm token
// create"), its subcommands and options.
struct CommandNode {
  std::string path;
  const CLI::App* app;
};

// Every command depth-first, the root first.
void Collect(const CLI::App* app, const std::string& path, std::vector<CommandNode>* nodes) {
  nodes->push_back({path, app});
  for (const CLI::App* sub : app->get_subcommands([](const CLI::App*) { return true; })) {
    Collect(sub, path + " " + sub->get_name(), nodes);
  }
}

std::vector<CommandNode> CommandTree(const CLI::App& app, const std::string& program) {
  std::vector<CommandNode> nodes;
  Collect(&app, program, &nodes);
  return nodes;
}

std::vector<const CLI::Option*> NamedOptions(const CLI::App* app) {
  return app->get_options([](const CLI::Option* option) { return option->nonpositional(); });
}

std::vector<const CLI::App*> Subcommands(const CLI::App* app) {
  return app->get_subcommands([](const CLI::App*) { return true; });
}

// "-o", "--output": every name an option is spelled with.
std::vector<std::string> Spellings(const CLI::Option* option) {
  std::vector<std::string> spellings;
  for (const std::string& name : option->get_snames()) spellings.push_back("-" + name);
  for (const std::string& name : option->get_lnames()) spellings.push_back("--" + name);
  return spellings;
}

// Flags (--help, --insecure) expect no value.
bool TakesValue(const CLI::Option* option) { return option->get_expected_max() > 0; }

// The values an option or positional accepts when it is checked against a
// set: CLI11 writes an IsMember check's choices into the type name
// ("TEXT:{table,json}"). Empty when any value goes.
std::vector<std::string> Choices(const CLI::Option* option) {
  const std::string type = option->get_type_name();
  const size_t open = type.find(":{");
  const size_t close = type.find('}', open == std::string::npos ? 0 : open);
  if (open == std::string::npos || close == std::string::npos) return {};
  std::vector<std::string> choices;
  std::string choice;
  for (char c : type.substr(open + 2, close - open - 2)) {
    if (c == ',') {
      if (!choice.empty()) choices.push_back(choice);
      choice.clear();
    } else if (c != ' ') {
      choice += c;
    }
  }
  if (!choice.empty()) choices.push_back(choice);
  return choices;
}

std::vector<const CLI::Option*> Positionals(const CLI::App* app) {
  return app->get_options([](const CLI::Option* option) { return option->get_positional(); });
}

std::string Join(const std::vector<std::string>& words, const std::string& separator) {
  std::string joined;
  for (const std::string& word : words) {
    if (!joined.empty()) joined += separator;
    joined += word;
  }
  return joined;
}

// One `case` branch per option of `node` that takes a value from a set:
// after it, the set is offered. `offer` turns the words into the shell's
// command ("COMPREPLY=(...); return").
std::string ChoiceBranches(const CommandNode& node, const std::string& indent,
                           std::string (*offer)(const std::string& words)) {
  std::string branches;
  for (const CLI::Option* option : NamedOptions(node.app)) {
    const std::vector<std::string> choices = Choices(option);
    if (!TakesValue(option) || choices.empty()) continue;
    branches += indent + Join(Spellings(option), "|") + ") " + offer(Join(choices, " ")) + " ;;\n";
  }
  return branches;
}

// The words completing after `node`: its subcommands, then its options.
std::string Words(const CommandNode& node) {
  std::string words;
  auto append = [&words](const std::string& word) {
    if (!words.empty()) words += ' ';
    words += word;
  };
  for (const CLI::App* sub : Subcommands(node.app)) append(sub->get_name());
  // The values of a positional checked against a set ("completion bash").
  for (const CLI::Option* positional : Positionals(node.app)) {
    for (const std::string& choice : Choices(positional)) append(choice);
  }
  for (const CLI::Option* option : NamedOptions(node.app)) {
    for (const std::string& spelling : Spellings(option)) append(spelling);
  }
  return words;
}

// The options of `node` that take a value, as a case pattern ("--url|-o|--output").
std::string ValueOptionPattern(const CommandNode& node) {
  std::string pattern;
  for (const CLI::Option* option : NamedOptions(node.app)) {
    if (!TakesValue(option)) continue;
    for (const std::string& spelling : Spellings(option)) {
      if (!pattern.empty()) pattern += '|';
      pattern += spelling;
    }
  }
  return pattern;
}

// Every command path but the root, as a case pattern of quoted words
// ("gpurm status"|"gpurm token"|...): a word extends the path when it names
// a subcommand of the path so far.
std::string SubcommandPathPattern(const std::vector<CommandNode>& nodes) {
  std::string pattern;
  for (size_t i = 1; i < nodes.size(); ++i) {
    if (!pattern.empty()) pattern += '|';
    pattern += '"' + nodes[i].path + '"';
  }
  return pattern;
}

// zsh _describe entries are "word:description" inside single quotes.
std::string ZshEntry(const std::string& word, const std::string& description) {
  std::string entry = word + ":" + description;
  std::string quoted = "'";
  for (char c : entry) {
    if (c == '\'') {
      quoted += "'\\''";
    } else if (c == '\n') {
      quoted += ' ';
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

// Text safe inside roff: backslashes escaped, hyphens as \-, no line starting
// with a control character.
std::string Roff(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
  return out;
}

// Help texts are phrases ("Output format"); in the man page's running text
// each ends with a full stop.
std::string Sentence(std::string text) {
  if (!text.empty() && std::string(".!?").find(text.back()) == std::string::npos) text += '.';
  return text;
}

// The NAME line's summary: the description without a leading "gpurm: ".
std::string Summary(const std::string& description, const std::string& program) {
  const std::string prefix = program + ": ";
  return description.rfind(prefix, 0) == 0 ? description.substr(prefix.size()) : description;
}

std::string Upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

// ".TP\n\fB\-o\fR, \fB\-\-output\fR \fIFORMAT\fR\nOutput format\n"
void ManOption(std::ostream& page, const CLI::Option* option) {
  page << ".TP\n";
  const std::vector<std::string> spellings = Spellings(option);
  for (size_t i = 0; i < spellings.size(); ++i) {
    page << (i == 0 ? "" : ", ") << "\\fB" << Roff(spellings[i]) << "\\fR";
  }
  if (TakesValue(option)) {
    // CLI11's type name: TEXT, INT, FLOAT, or with its choices, TEXT:{table,json}.
    const std::string value = option->get_type_name();
    page << " \\fI" << Roff(value.empty() ? "VALUE" : value) << "\\fR";
  }
  page << "\n" << Roff(Sentence(option->get_description())) << "\n";
  if (!option->get_envname().empty()) {
    page << "Environment: \\fB" << Roff(option->get_envname()) << "\\fR.\n";
  }
}

}  // namespace

std::string BashCompletion(const CLI::App& app, const std::string& program) {
  const std::vector<CommandNode> nodes = CommandTree(app, program);
  std::ostringstream script;
  script << "# bash completion for " << program << "; generated by `" << program
         << " completion bash`.\n"
         << "_" << program << "() {\n"
         << "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
         << "  local command_path=" << program << " word i\n"
         << "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
         << "    word=${COMP_WORDS[i]}\n"
         << "    case \"$command_path $word\" in\n"
         << "      " << SubcommandPathPattern(nodes)
         << ") command_path=\"$command_path $word\" ;;\n"
         << "    esac\n"
         << "  done\n"
         << "  local words=\"\" value_options=\"\"\n"
         << "  case $command_path in\n";
  for (const CommandNode& node : nodes) {
    script << "    \"" << node.path << "\")\n";
    const std::string choices = ChoiceBranches(node, "        ", [](const std::string& words) {
      return "COMPREPLY=($(compgen -W \"" + words + "\" -- \"$cur\")); return";
    });
    if (!choices.empty()) script << "      case $prev in\n" << choices << "      esac\n";
    script << "      words=\"" << Words(node) << "\"\n"
           << "      value_options=\"" << ValueOptionPattern(node) << "\" ;;\n";
  }
  script << "  esac\n"
         << "  # After an option that takes a value, offer file names (most values are paths).\n"
         << "  case \"|$value_options|\" in\n"
         << "    *\"|$prev|\"*)\n"
         << "      if [[ -n $prev && $prev == -* ]]; then\n"
         << "        COMPREPLY=($(compgen -f -- \"$cur\"))\n"
         << "        return\n"
         << "      fi ;;\n"
         << "  esac\n"
         << "  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
         << "}\n"
         << "complete -F _" << program << " " << program << "\n";
  return script.str();
}

std::string ZshCompletion(const CLI::App& app, const std::string& program) {
  const std::vector<CommandNode> nodes = CommandTree(app, program);
  std::ostringstream script;
  // `path` is special in zsh (tied to PATH), hence command_path.
  script << "#compdef " << program << "\n"
         << "# zsh completion for " << program << "; generated by `" << program
         << " completion zsh`.\n"
         << "_" << program << "() {\n"
         << "  local command_path=" << program << " i\n"
         << "  for ((i = 2; i < CURRENT; i++)); do\n"
         << "    case \"$command_path ${words[i]}\" in\n"
         << "      " << SubcommandPathPattern(nodes)
         << ") command_path=\"$command_path ${words[i]}\" ;;\n"
         << "    esac\n"
         << "  done\n"
         << "  local -a value_options entries\n"
         << "  case $command_path in\n";
  for (const CommandNode& node : nodes) {
    script << "    \"" << node.path << "\")\n";
    const std::string choices = ChoiceBranches(node, "        ", [](const std::string& words) {
      return "compadd -- " + words + "; return";
    });
    if (!choices.empty()) {
      script << "      case ${words[CURRENT-1]} in\n" << choices << "      esac\n";
    }
    script << "      value_options=(";
    std::string pattern = ValueOptionPattern(node);
    for (char& c : pattern) {
      if (c == '|') c = ' ';
    }
    script << pattern << ")\n      entries=(";
    for (const CLI::App* sub : Subcommands(node.app)) {
      script << "\n        " << ZshEntry(sub->get_name(), sub->get_description());
    }
    for (const CLI::Option* positional : Positionals(node.app)) {
      for (const std::string& choice : Choices(positional)) {
        script << "\n        " << ZshEntry(choice, positional->get_description());
      }
    }
    for (const CLI::Option* option : NamedOptions(node.app)) {
      for (const std::string& spelling : Spellings(option)) {
        script << "\n        " << ZshEntry(spelling, option->get_description());
      }
    }
    script << ") ;;\n";
  }
  script << "  esac\n"
         << "  if (( ${value_options[(Ie)${words[CURRENT-1]}]} )); then\n"
         << "    _files\n"
         << "  else\n"
         << "    _describe -t commands '" << program << "' entries\n"
         << "  fi\n"
         << "}\n"
         << "if [[ ${funcstack[1]} == _" << program << " ]]; then\n"
         << "  _" << program << " \"$@\"\n"
         << "else\n"
         << "  compdef _" << program << " " << program << "\n"
         << "fi\n";
  return script.str();
}

std::string ManPage(const CLI::App& app, const std::string& program, const std::string& version,
                    const std::string& date) {
  std::ostringstream page;
  page << ".\\\" Generated by `" << program << " man` from the command's help; do not edit.\n"
       << ".TH " << Upper(program) << " 1 \"" << date << "\" \"" << program << " " << version
       << "\" \"User Commands\"\n"
       << ".SH NAME\n"
       << program << " \\- " << Roff(Summary(app.get_description(), program)) << "\n"
       << ".SH SYNOPSIS\n"
       << ".B " << program << "\n"
       << "[\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]\n"
       << ".SH DESCRIPTION\n"
       << "One binary for the daemon (\\fB" << program
       << " serve\\fR, which answers the REST API under /api/v1/gpu) and the client commands "
          "that talk to it.\n"
       << "Every command prints its own help with \\fB\\-\\-help\\fR.\n"
       << ".SH OPTIONS\n";
  for (const CLI::Option* option : NamedOptions(&app)) ManOption(page, option);
  page << ".SH COMMANDS\n";
  const std::vector<CommandNode> nodes = CommandTree(app, program);
  for (size_t i = 1; i < nodes.size(); ++i) {
    const CLI::App* command = nodes[i].app;
    page << ".SS \"" << Roff(nodes[i].path) << "\"\n"
         << Roff(Sentence(command->get_description())) << "\n";
    for (const CLI::Option* positional :
         command->get_options([](const CLI::Option* option) { return option->get_positional(); })) {
      page << ".TP\n\\fI" << Roff(Upper(positional->get_name())) << "\\fR\n"
           << Roff(Sentence(positional->get_description())) << "\n";
    }
    for (const CLI::Option* option : NamedOptions(command)) {
      if (option == command->get_help_ptr()) continue;
      ManOption(page, option);
    }
  }
  page << ".SH EXIT STATUS\n"
       << ".TP\n"
       << kExitOk << "\nSuccess (validate: the request can be met now).\n"
       << ".TP\n"
       << kExitRefused
       << "\nThe daemon refused the request (any 4xx: nothing fits, unknown allocation, invalid "
          "value); validate: it cannot be met now.\n"
       << ".TP\n"
       << kExitUsage << "\nUsage error: bad or missing arguments; nothing was sent.\n"
       << ".TP\n"
       << kExitUnavailable
       << "\nThe daemon is unreachable, timed out or answered 5xx (503: not initialized).\n"
       << ".SH FILES\n"
       << ".TP\n/etc/gpurm/gpu_config.yaml\n"
       << "The daemon's configuration as installed by the package (\\fB" << program
       << " serve \\-\\-config\\fR).\n"
       << ".TP\n/var/lib/gpurm\nThe allocation ledger of the packaged service.\n"
       << ".TP\n/var/log/gpurm\nThe logs of the packaged service (gpu_resource_manager.log, "
          "training.log, audit.log).\n";
  return page.str();
}

void RegisterCompletionCommands(CLI::App& app, const std::string& version, const std::string& date,
                                int* exit_code, std::ostream& out) {
  const std::string program = app.get_name().empty() ? "gpurm" : app.get_name();
  auto shell = std::make_shared<std::string>();
  CLI::App* completion =
      app.add_subcommand("completion", "Print the shell completion script (bash or zsh)");
  completion->add_option("shell", *shell, "bash or zsh")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh"}));
  completion->callback([&app, &out, program, shell, exit_code] {
    out << (*shell == "bash" ? BashCompletion(app, program) : ZshCompletion(app, program));
    *exit_code = kExitOk;
  });
  app.add_subcommand("man", "Print the man page (roff), generated from this help")
      ->callback([&app, &out, program, version, date, exit_code] {
        out << ManPage(app, program, version, date);
        *exit_code = kExitOk;
      });
}

}  // namespace gpurm::cli
