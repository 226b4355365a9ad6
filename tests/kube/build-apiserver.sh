#!/usr/bin/env bash
# Builds kube-apiserver from the Go module k8s.io/kubernetes (the version in
# apiserver/go.mod, whose replace directives pin the staging modules
# k8s.io/api, k8s.io/apimachinery, ... to the matching versions) into
# ~/.cache/gpurm-kube/bin, with the module and build caches beside it, so
# a rebuild takes seconds. The Kubernetes tests use it when it is there
# (tests/kube/api_server.h); otherwise they use fake_apiserver.py.
# Needs Go >= 1.24 and the Go module proxy. Measured cold (empty caches) on
# the 2-core development machine while other builds ran: 25 min wall,
# 6 min CPU, 660 MB of modules; see tests/kube/README.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${GPURM_KUBE_CACHE:-$HOME/.cache/gpurm-kube}"
mkdir -p "$cache/bin"
export GOMODCACHE="$cache/gomod" GOCACHE="$cache/gobuild" GOFLAGS=-mod=mod
cd "$here/apiserver"
time go build -o "$cache/bin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
echo "built $cache/bin/kube-apiserver"
