#!/usr/bin/env bash
# The Helm chart deploy/helm/gpurm: `helm lint` and `helm template` with the
# default values and with every optional part on (TLS and token Secrets,
# ServiceMonitor, another release name and namespace), and the plain
# manifests in deploy/kubernetes equal to the chart's rendering
# (scripts/render-manifests.sh). Their validity as Kubernetes objects is
# checked by tests/kube/validate-manifests.sh against a real API server.
#
# helm: $HELM, else the binary scripts/build-helm.sh builds from its Go module
# (cached in ~/.cache/gpurm-helm). Without both helm and Go, exits 77, which
# ctest reports as skipped.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
chart="$root/deploy/helm/gpurm"

if [ -z "${HELM:-}" ]; then
  if ! command -v go >/dev/null && ! ls "$HOME"/.cache/gpurm-helm/bin/helm-* >/dev/null 2>&1; then
    echo "SKIP: neither helm (\$HELM) nor Go (to build helm, scripts/build-helm.sh) is available"
    exit 77
  fi
  HELM="$(bash "$root/scripts/build-helm.sh" | tail -n1)"
fi
export HELM
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail=0
expect() {  # expect DESCRIPTION FILE PATTERN: the rendering contains PATTERN (grep -E).
  if grep -Eq -- "$3" "$2"; then echo "ok: $1"; else echo "FAIL: $1 (no /$3/ in $2)"; fail=1; fi
}
expect_not() {
  if grep -Eq -- "$3" "$2"; then echo "FAIL: $1 (/$3/ in $2)"; fail=1; else echo "ok: $1"; fi
}

everything=(--set tls.secretName=gpurm-tls --set auth.tokensSecretName=gpurm-tokens
            --set auth.agentTokenSecretKey=agent-token
            --set serviceMonitor.enabled=true --set config.dcgmCompatibleMetrics=true
            --set image.tag=9.9.9)
"$HELM" lint --strict "$chart"
"$HELM" lint --strict "$chart" "${everything[@]}"

"$HELM" template gpurm "$chart" --namespace gpurm > "$work/default.yaml"
expect "defaults: a Deployment" "$work/default.yaml" '^kind: Deployment$'
expect "defaults: a DaemonSet" "$work/default.yaml" '^kind: DaemonSet$'
expect "defaults: the image tag is the chart's appVersion" "$work/default.yaml" \
  "image: \"gpurm:$(sed -n 's/^appVersion: "\(.*\)"/\1/p' "$chart/Chart.yaml")\""
expect "defaults: open without a token Secret" "$work/default.yaml" 'allow_unauthenticated: true'
expect_not "defaults: no ServiceMonitor" "$work/default.yaml" '^kind: ServiceMonitor$'
expect_not "defaults: plain HTTP" "$work/default.yaml" 'cert_file'
expect "defaults: the manager pulls the node agents" "$work/default.yaml" \
  'node_agent_selector: "app.kubernetes.io/name=gpurm,app.kubernetes.io/instance=gpurm,app.kubernetes.io/component=node-monitor"'
expect "defaults: node agents see host PIDs" "$work/default.yaml" 'hostPID: true'
expect "defaults: node agents may read other users' environ" "$work/default.yaml" \
  'add: \["SYS_PTRACE"\]'

"$HELM" template lab "$chart" --namespace ml-infra "${everything[@]}" > "$work/everything.yaml"
expect "release name: objects named <release>-gpurm" "$work/everything.yaml" '^  name: lab-gpurm$'
expect "namespace: the release's" "$work/everything.yaml" '^  namespace: ml-infra$'
expect "service account subject in the release namespace" "$work/everything.yaml" \
  '^    namespace: ml-infra$'
expect "TLS: the Secret is mounted" "$work/everything.yaml" 'secretName: gpurm-tls'
expect "TLS: the config names its files" "$work/everything.yaml" 'cert_file: /etc/gpurm-tls/tls.crt'
expect "TLS: probes speak HTTPS" "$work/everything.yaml" 'scheme: HTTPS'
expect "tokens: the Secret is mounted" "$work/everything.yaml" 'secretName: gpurm-tokens'
expect "tokens: the config names the file" "$work/everything.yaml" \
  'tokens_file: /etc/gpurm-tokens/tokens.yaml'
expect_not "tokens: not open" "$work/everything.yaml" 'allow_unauthenticated'
expect "node agents: over HTTPS" "$work/everything.yaml" 'node_agent_scheme: https'
expect "node agents: verified with the TLS Secret" "$work/everything.yaml" \
  'ca_file: /etc/gpurm-tls/tls.crt'
expect "node agents: the manager's agent token" "$work/everything.yaml" \
  'token_file: /etc/gpurm-tokens/agent-token'
"$HELM" template gpurm "$chart" --set nodeMonitor.enabled=false > "$work/no-node.yaml"
expect_not "no node monitor: no node agents to pull" "$work/no-node.yaml" 'node_agent_selector'
expect "ServiceMonitor behind its flag" "$work/everything.yaml" '^kind: ServiceMonitor$'
expect "DCGM-compatible metrics switch" "$work/everything.yaml" 'dcgm_compatible_metrics: true'
expect "image tag from values" "$work/everything.yaml" 'image: "gpurm:9.9.9"'

mkdir -p "$work/rendered"
bash "$root/scripts/render-manifests.sh" "$work/rendered"
if diff -r -x Dockerfile "$work/rendered" "$root/deploy/kubernetes"; then
  echo "ok: deploy/kubernetes is the chart's rendering"
else
  echo "FAIL: deploy/kubernetes differs from the chart's rendering; run scripts/render-manifests.sh"
  fail=1
fi
exit "$fail"
