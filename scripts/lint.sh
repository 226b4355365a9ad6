#!/usr/bin/env bash
# clang-tidy over every C++ source of the project with the repo's .clang-tidy
# (warnings are errors). Needs a configured build dir for compile_commands.json.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build}"
[ -f "$build_dir/compile_commands.json" ] || { echo "lint: configure $build_dir first" >&2; exit 2; }
files=$(git ls-files 'src/*.cc' 'tests/*.cc' 'bench/*.cc')
log="$build_dir/clang-tidy.log"
# clang-tidy exits non-zero on findings; the log decides, so xargs' status is ignored.
# shellcheck disable=SC2086
printf '%s\n' $files | xargs -P "$(nproc)" -n 4 clang-tidy -p "$build_dir" --quiet >"$log" 2>/dev/null || true
if grep -qE "(warning|error):" "$log"; then
  grep -E "(warning|error):" "$log" | sort -u >&2
  echo "lint: clang-tidy found $(grep -cE "(warning|error):" "$log") problem(s)" >&2
  exit 1
fi
echo "lint: clang-tidy clean ($(echo "$files" | wc -w) files)"
