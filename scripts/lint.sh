#!/usr/bin/env bash
# clang-tidy over every C++ source of the project with the repo's .clang-tidy
# (warnings are errors). Needs a configured build dir for compile_commands.json.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build}"
[ -f "$build_dir/compile_commands.json" ] || { echo "lint: configure $build_dir first" >&2; exit 2; }
files=$(git ls-files 'src/*.cc' 'tests/*.cc' 'bench/*.cc')
# shellcheck disable=SC2086
printf '%s\n' $files | xargs -P "$(nproc)" -n 4 clang-tidy -p "$build_dir" --quiet 2>/dev/null \
  | tee "$build_dir/clang-tidy.log" | grep -E "(warning|error):" && {
  echo "lint: clang-tidy found problems (see $build_dir/clang-tidy.log)" >&2
  exit 1
}
echo "lint: clang-tidy clean ($(echo "$files" | wc -w) files)"
