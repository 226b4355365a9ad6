#!/usr/bin/env bash
# Builds helm from its Go module (helm.sh/helm/v3, the version below) through
# the Go module proxy into ~/.cache/gpurm-helm/bin, with the module and build
# caches beside it, so it happens once per machine. The chart tests
# (tests/helm/chart_test.sh) use that binary, or a helm on PATH of the same
# major version; without either they skip and say so.
# Prints the path of the binary on its last line.
set -euo pipefail
helm_version="v3.17.3"
cache="${GPURM_HELM_CACHE:-$HOME/.cache/gpurm-helm}"
binary="$cache/bin/helm-$helm_version"
if [ ! -x "$binary" ]; then
  command -v go >/dev/null || { echo "build-helm: go is not installed" >&2; exit 1; }
  mkdir -p "$cache/bin"
  export GOMODCACHE="$cache/gomod" GOCACHE="$cache/gobuild" GOFLAGS=-mod=mod
  GOBIN="$cache/bin.tmp" go install "helm.sh/helm/v3/cmd/helm@$helm_version"
  mv "$cache/bin.tmp/helm" "$binary"
  rmdir "$cache/bin.tmp"
fi
echo "$binary"
