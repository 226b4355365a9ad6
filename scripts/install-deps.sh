#!/usr/bin/env bash
# Installs every system package the C++ build, the tests and the tools need.
# Idempotent: packages already present are skipped by apt itself, and the
# apt index is refreshed only when a package is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libboost-dev libboost-system-dev
  nlohmann-json3-dev libyaml-cpp-dev libsqlite3-dev sqlite3
  libspdlog-dev libfmt-dev libcli11-dev libcurl4-openssl-dev
  libssl-dev openssl  # TLS on the listener (Boost.Asio SSL); tests make their certificates with openssl
  zlib1g-dev  # gpurm simulate --plot writes PNGs (zlib deflate)
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-format clang-tidy
  clang libclang-rt-14-dev python3-venv  # scripts/fuzz.sh (libFuzzer), scripts/schemathesis.sh
  curl procps
  ccache  # rebuilds on a warm machine reuse unchanged objects (CMakeLists.txt)
  librocm-smi-dev libze-dev  # Headers of the AMD and Intel providers (libraries are dlopened).
  # promtool: tests check /metrics with Prometheus' own parser. Where systemd
  # runs, Debian also starts the Prometheus server (systemctl disable --now prometheus).
  prometheus
  # Packaging and its tests (scripts/make-deb.sh, tests/packaging): dpkg-shlibdeps,
  # lintian, `systemd-analyze verify` on the unit, `man --warnings` on the man
  # page, `zsh -n` on the zsh completion.
  dpkg-dev lintian systemd man-db zsh
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# NVML's header comes from PyPI (NVIDIA ships no Debian package of it); CMake
# runs this too, so the call only warms the shared cache.
bash "$(dirname "$0")/fetch-nvml-header.sh"

# helm for the chart tests (tests/helm/chart_test.sh), built once from its Go
# module into ~/.cache/gpurm-helm (scripts/build-helm.sh: seconds when cached,
# about 10 minutes cold on two cores). Without Go the chart test is skipped.
if command -v go >/dev/null; then
  bash "$(dirname "$0")/build-helm.sh" > /dev/null
fi
