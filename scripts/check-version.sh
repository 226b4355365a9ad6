#!/usr/bin/env bash
# VERSION (root of the source tree) is the one version of gpurm. CMake reads
# it (`gpurm --version`, the Debian package); the Python package and the Helm
# chart carry copies, which this script checks: python/pyproject.toml's
# version, gpurm.__version__, and Chart.yaml's version and appVersion. With a
# binary as argument, also its `--version` line. Exits 1 naming each file
# that disagrees.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="$(head -n1 "$root/VERSION")"
fail=0
check() {  # check WHAT FOUND
  if [ "$2" = "$version" ]; then
    echo "ok: $1 = $2"
  else
    echo "FAIL: $1 = '$2', VERSION = '$version'"
    fail=1
  fi
}
check "python/pyproject.toml version" \
  "$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/python/pyproject.toml")"
check "python/gpurm/__init__.py __version__" \
  "$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$root/python/gpurm/__init__.py")"
check "deploy/helm/gpurm/Chart.yaml version" \
  "$(sed -n 's/^version: \(.*\)$/\1/p' "$root/deploy/helm/gpurm/Chart.yaml")"
check "deploy/helm/gpurm/Chart.yaml appVersion" \
  "$(sed -n 's/^appVersion: "\(.*\)"$/\1/p' "$root/deploy/helm/gpurm/Chart.yaml")"
if [ $# -ge 1 ]; then
  line="$("$1" --version)"
  # "gpurm 0.1.0 (commit 2d4f8d4a1b2c, built 2026-12-07)"
  if [[ $line =~ ^gpurm\ ([^ ]+)\ \(commit\ ([0-9a-f]{7,}(-dirty)?|unknown),\ built\ [0-9]{4}-[0-9]{2}-[0-9]{2}\)$ ]]; then
    check "$1 --version" "${BASH_REMATCH[1]}"
  else
    echo "FAIL: $1 --version printed '$line', want 'gpurm VERSION (commit HASH, built YYYY-MM-DD)'"
    fail=1
  fi
fi
exit "$fail"
