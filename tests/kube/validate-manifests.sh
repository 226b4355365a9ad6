#!/usr/bin/env bash
# Validates deploy/kubernetes/ (the Helm chart's rendering, scripts/render-manifests.sh)
# against a real kube-apiserver (local-apiserver.sh): kubectl applies every
# manifest (the server checks each against its schema; the CRD must be
# structural), then checks that the gpurm service account may do what gpurm
# does and nothing of what it must not. Then the chart itself, rendered with
# every option on (another release name and namespace, TLS and token
# Secrets, DCGM metrics), is applied the same way and its service account
# checked in its namespace. (The ServiceMonitor needs the Prometheus
# Operator's CRD and is left out; helm lint checks it.)
# Offline `kubectl apply --dry-run=client` cannot do this: it needs an API
# server for discovery even with --validate=false.
# Exits 77 (skipped) where there is no real API server: kube-apiserver built
# by build-apiserver.sh, etcd (etcd-server) and kubectl.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
manifests="$root/deploy/kubernetes"
apiserver="${GPURM_KUBE_APISERVER:-$HOME/.cache/gpurm-kube/bin/kube-apiserver}"
for need in "$apiserver" etcd kubectl; do
  if ! command -v "$need" >/dev/null; then
    echo "SKIP: $need is not available (tests/kube/README.md: build-apiserver.sh, etcd-server, kubectl)"
    exit 77
  fi
done
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

# The chart with every option on, as `helm install lab ... -n ml-infra` would apply it.
helm="${HELM:-}"
if [ -z "$helm" ] && { command -v go >/dev/null || ls "$HOME"/.cache/gpurm-helm/bin/helm-* >/dev/null 2>&1; }; then
  helm="$(bash "$root/scripts/build-helm.sh" | tail -n1)"
fi
if [ -n "$helm" ]; then
  "$helm" template lab "$root/deploy/helm/gpurm" --namespace ml-infra \
    --set tls.secretName=gpurm-tls --set auth.tokensSecretName=gpurm-tokens \
    --set config.dcgmCompatibleMetrics=true --set manager.replicas=3 > "$work/chart.yaml"
  kc create namespace ml-infra
  kc apply --dry-run=server -f "$work/chart.yaml"
  kc apply -f "$work/chart.yaml"
  sa=system:serviceaccount:ml-infra:lab-gpurm
  check yes create gpuallocations.gpurm.io -n ml-infra
  check no create gpuallocations.gpurm.io -n gpurm
  check yes update leases.coordination.k8s.io/gpurm-leader -n ml-infra
  check yes list nodes
  check no get secrets -n ml-infra
  replicas="$(kc -n ml-infra get deployment lab-gpurm -o jsonpath='{.spec.replicas}')"
  if [ "$replicas" = 3 ]; then echo "ok: chart: Deployment lab-gpurm has 3 replicas"; else echo "FAIL: replicas = $replicas"; fail=1; fi
  [ "$fail" = 0 ] && echo "chart (every option on): valid; RBAC in the release namespace"
else
  echo "SKIP (part): no helm (scripts/build-helm.sh needs Go): the chart with every option on is not applied"
fi
exit "$fail"
