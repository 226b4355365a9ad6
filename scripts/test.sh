#!/usr/bin/env bash
# Runs every test: C++ unit, cross-module and end-to-end tests (ctest, which
# includes the packaging, Helm chart and DCGM dashboard tests), the
# dashboard's browser tests (Playwright + Chromium), then the Python package's
# tests against the real daemon and real TF/PyTorch, and its sdist and wheel
# (python -m build, twine check).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build}"
(cd "$build_dir" && ctest --output-on-failure -j "$(nproc)" --timeout 600)
bash scripts/test-ui.sh "$build_dir"
if [ -x scripts/test-python.sh ]; then
  GPURM_BIN="$PWD/$build_dir/gpurm" bash scripts/test-python.sh
fi
bash scripts/test-python-dist.sh
