#!/usr/bin/env bash
# Runs the Python package's tests: installs the Python environment (idempotent,
# fast when already installed), then pytest against real TensorFlow and PyTorch
# on the CPU and the real daemon binary (build/gpurm, or $GPURM_BIN), which the
# tests start themselves. The daemon must be built first (scripts/build.sh):
# GPURM_REQUIRE_DAEMON=1 makes a missing binary a failure, not a skip.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install-python.sh
export GPURM_REQUIRE_DAEMON="${GPURM_REQUIRE_DAEMON:-1}"
exec .venv/bin/python -m pytest python/tests -q "$@"
