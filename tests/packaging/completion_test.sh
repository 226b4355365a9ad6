#!/usr/bin/env bash
# `gpurm completion bash|zsh` and `gpurm man`: the bash script parses
# (bash -n) and, loaded into bash, completes subcommands at every depth,
# options, the values of options and positionals that take one of a set, and
# file names after an option that takes any value; the zsh script parses and
# offers the same words; the man page renders without warnings.
#   tests/packaging/completion_test.sh path/to/gpurm
set -euo pipefail
gpurm="${1:?usage: completion_test.sh path/to/gpurm}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

"$gpurm" completion bash > "$work/gpurm.bash"
bash -n "$work/gpurm.bash" && ok "bash -n: the bash script parses" || bad "bash -n"

# complete LINE: the candidates bash offers for LINE (words split on spaces;
# a trailing space starts a new, empty word).
complete_line() {
  bash -c '
    source "$1"
    read -r -a COMP_WORDS <<< "$2"
    [[ $2 == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    cd "$3"
    _gpurm
    [ ${#COMPREPLY[@]} -eq 0 ] || printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "
  ' _ "$work/gpurm.bash" "$1" "$work"
}
expect() {  # expect LINE WANTED...: each WANTED word is among the candidates
  local line="$1"; shift
  local got; got=" $(complete_line "$line")"
  for want in "$@"; do
    [[ $got == *" $want "* ]] || { bad "'$line<TAB>' offers '$got', lacks '$want'"; return; }
  done
  ok "'$line<TAB>' offers $*"
}
expect_exactly() {
  local got; got="$(complete_line "$1")"
  [ "$got" = "$2" ] && ok "'$1<TAB>' offers exactly '$2'" || bad "'$1<TAB>' offers '$got', want '$2'"
}
expect "gpurm " status nodes allocate release serve token queue completion man --url --version
expect_exactly "gpurm sta" "status "
expect_exactly "gpurm se" "serve "
expect_exactly "gpurm token cr" "create "
expect "gpurm token create --" --name --role --file --help
expect "gpurm serve --" --config --inventory --listen --data-dir --log-dir
expect_exactly "gpurm completion z" "zsh "  # A positional's choices.
expect_exactly "gpurm completion " "--help -h bash zsh "
expect_exactly "gpurm -o " "json table "  # An option's choices, not file names.
expect_exactly "gpurm top --sort t" "temp "
expect_exactly "gpurm token create --role ad" "admin "
expect_exactly "gpurm token create --role ag" "agent "
touch "$work/my_config.yaml"
expect_exactly "gpurm serve --config my_c" "my_config.yaml "
expect_exactly "gpurm --insecure sta" "status "  # A flag takes no value: the next word is a command.

"$gpurm" completion zsh > "$work/_gpurm"
# zsh_complete LINE: what the zsh function hands to zsh's completion system
# for LINE (_describe's words, compadd's, <files> for _files), sorted; the
# system itself filters them by the prefix typed, so every word is listed.
# compsys is replaced by functions that print their arguments.
zsh_complete() {
  zsh -f -c '
    _describe() { local e; for e in "${(@P)4}"; do print -r -- "${e%%:*}"; done; }
    compadd() { shift; print -rl -- "$@"; }
    _files() { print -r -- "<files>"; }
    compdef() { :; }
    source "$1"
    words=(${=2})
    [[ $2 == *" " ]] && words+=("")
    CURRENT=${#words}
    _gpurm
  ' _ "$work/_gpurm" "$1" | sort | tr "\n" " "
}
zsh_expect() {
  local got; got="$(zsh_complete "$1")"
  [ "$got" = "$2" ] && ok "zsh: '$1<TAB>' offers '$2'" || bad "zsh: '$1<TAB>' offers '$got', want '$2'"
}
if command -v zsh >/dev/null; then
  zsh -n "$work/_gpurm" && ok "zsh -n: the zsh script parses" || bad "zsh -n"
  zsh_expect "gpurm token " "--help -h create list revoke "
  zsh_expect "gpurm token create --name x --r" "--file --help --name --role -h "
  zsh_expect "gpurm -o " "json table "
  zsh_expect "gpurm serve --config " "<files> "
  zsh_expect "gpurm completion " "--help -h bash zsh "
else
  bad "zsh is not installed (scripts/install-deps.sh installs it)"
fi
grep -q '^#compdef gpurm$' "$work/_gpurm" && ok "zsh script starts with #compdef gpurm" || bad "#compdef"
grep -q "^ *-o|--output) compadd -- table json; return ;;$" "$work/_gpurm" &&
  ok "zsh script offers --output's choices" || bad "zsh script lacks --output's choices"

"$gpurm" man > "$work/gpurm.1"
if command -v groff >/dev/null || command -v man >/dev/null; then
  warnings="$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$work/gpurm.1" 2>&1 >/dev/null)"
  [ -z "$warnings" ] && ok "man page renders without warnings" || bad "man page warnings: $warnings"
fi
grep -qx 'gpurm \\- GPU resource manager (daemon and client)' "$work/gpurm.1" &&
  ok "man page: NAME line" || bad "man page NAME line: $(grep -A1 '^\.SH NAME' "$work/gpurm.1" | tail -n1)"
for section in NAME SYNOPSIS OPTIONS COMMANDS "EXIT STATUS" FILES; do
  grep -q "^\.SH \"\?$section\"\?$" "$work/gpurm.1" && ok "man page: section $section" || bad "man page lacks $section"
done
for command in "gpurm serve" "gpurm token create" "gpurm completion"; do
  grep -qF ".SS \"${command//-/\\-}\"" "$work/gpurm.1" && ok "man page: $command" || bad "man page lacks $command"
done
exit "$fail"
