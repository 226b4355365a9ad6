#!/usr/bin/env bash
# Validates deploy/kubernetes/ against a real kube-apiserver (local-apiserver.sh):
# kubectl applies every manifest (the server checks each against its
# schema; the CRD must be structural), then checks that the gpurm service
# account may do what gpurm does and nothing of what it must not.
# Offline `kubectl apply --dry-run=client` cannot do this: it needs an API
# server for discovery even with --validate=false.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
manifests="$here/../../deploy/kubernetes"
source "$here/local-apiserver.sh"
kc() { kubectl --kubeconfig "$work/kubeconfig" "$@"; }
kc apply -f "$manifests/namespace.yaml" -f "$manifests/crd.yaml"
kc wait --for condition=established --timeout=60s crd/gpuallocations.gpurm.io
kc apply --dry-run=server -f "$manifests/"
kc apply -f "$manifests/"
sa=system:serviceaccount:gpurm:gpurm
fail=0
check() {  # check yes|no VERB RESOURCE [flags...]
  local want="$1"; shift
  local got; got="$(kc auth can-i --as "$sa" "$@" 2>/dev/null || true)"
  if [ "$got" != "$want" ]; then echo "FAIL: can-i $* = $got, want $want"; fail=1; else echo "ok: can-i $* = $got"; fi
}
check yes list nodes
check yes watch pods --all-namespaces
check no update nodes
check no delete pods -n gpurm
check yes create gpuallocations.gpurm.io -n gpurm
check yes update gpuallocations.gpurm.io -n gpurm
check no create gpuallocations.gpurm.io -n default
check yes create leases.coordination.k8s.io -n gpurm
check yes update leases.coordination.k8s.io/gpurm-leader -n gpurm
check no update leases.coordination.k8s.io/kube-scheduler -n gpurm
check yes create jobs.batch -n gpurm
check yes watch jobs.batch -n gpurm
check no create jobs.batch -n default
check no delete jobs.batch -n gpurm
check no get secrets -n gpurm
[ "$fail" = 0 ] && echo "deploy/kubernetes: valid; RBAC as documented"
exit "$fail"
