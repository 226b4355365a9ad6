#!/usr/bin/env bash
# Fails when a C++ file differs from clang-format's output (Google base, .clang-format).
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.cc' '*.h')
[ -n "$files" ] || exit 0
# shellcheck disable=SC2086
if ! clang-format --dry-run --Werror $files; then
  echo "check-format: run 'make format'" >&2
  exit 1
fi
echo "check-format: $(echo "$files" | wc -w) files clean"
