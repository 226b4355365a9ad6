#!/usr/bin/env bash
# Installs what bench/run needs beyond scripts/install-deps.sh: wrk (the load
# generator), gnuplot (the PNGs), python3-venv (the FastAPI peer's venv),
# linux-perf (profiles of missed targets; see bench/README.md) and
# nginx-light (the static-file ceiling of every REST cell: bench.py starts its
# own instance on a free port; the package's service is not used).
# Idempotent: apt runs only when a package is missing.
set -euo pipefail
packages=(wrk gnuplot-nox python3-venv linux-perf nginx-light)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  echo "bench: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
