#!/usr/bin/env bash
# Records real kube-apiserver answers into tests/kube/recorded/, the shapes
# fake_apiserver.py reproduces: a node list, a watch stream with a bookmark,
# the 410 of a too-old watch, 409 Conflict and AlreadyExists, 404, a Lease.
# Needs etcd (etcd-server) and a kube-apiserver (build-apiserver.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/recorded"
mkdir -p "$out"
source "$here/local-apiserver.sh"
k -X POST "$api/api/v1/nodes" -d '{"apiVersion":"v1","kind":"Node","metadata":{"name":"gpu-a","labels":{"nvidia.com/gpu.product":"NVIDIA-A100-SXM4-80GB","nvidia.com/gpu.memory":"81920"}}}' >/dev/null
k "$api/api/v1/nodes?limit=500" | python3 -m json.tool >"$out/node-list.json"
k -X POST "$api/apis/coordination.k8s.io/v1/namespaces/default/leases" \
  -d '{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"gpurm-leader"},"spec":{"holderIdentity":"gpurm-0","leaseDurationSeconds":15}}' \
  | python3 -m json.tool >"$out/lease-created.json"
k -X POST "$api/apis/coordination.k8s.io/v1/namespaces/default/leases" \
  -d '{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"gpurm-leader"},"spec":{}}' \
  | python3 -m json.tool >"$out/lease-already-exists.json"
k -X PUT "$api/apis/coordination.k8s.io/v1/namespaces/default/leases/gpurm-leader" \
  -d '{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"gpurm-leader","resourceVersion":"1"},"spec":{"holderIdentity":"gpurm-1"}}' \
  | python3 -m json.tool >"$out/lease-conflict.json"
k "$api/api/v1/nodes/missing" | python3 -m json.tool >"$out/node-not-found.json"
k "$api/api/v1/nodes?watch=1&resourceVersion=1&allowWatchBookmarks=true" >"$out/watch-too-old.jsonl" || true
rv=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metadata"]["resourceVersion"])' "$out/node-list.json")
# The cacher sends a bookmark shortly before a watch's timeout.
(sleep 1; k -X PUT "$api/api/v1/nodes/gpu-a" -d "$(k "$api/api/v1/nodes/gpu-a" | python3 -c 'import json,sys; n=json.load(sys.stdin); n["metadata"]["labels"]["nvidia.com/gpu.count"]="8"; print(json.dumps(n))')" >/dev/null) &
k "$api/api/v1/nodes?watch=1&resourceVersion=$rv&allowWatchBookmarks=true&timeoutSeconds=70" >"$out/watch-with-bookmark.jsonl" || true
echo "kube-apiserver of k8s.io/kubernetes $(sed -n "s/^require k8s.io\/kubernetes //p" "$here/apiserver/go.mod"), recorded $(date -u +%F)" >"$out/VERSION"
echo "recorded into $out"
