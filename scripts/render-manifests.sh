#!/usr/bin/env bash
# Renders the plain manifests of deploy/kubernetes from the Helm chart
# deploy/helm/gpurm (the one source of both): release "gpurm" in namespace
# "gpurm" with the chart's default values, plus the Namespace and the CRD,
# one file per template; the ServiceMonitor goes to monitoring/ so that
# `kubectl apply -f deploy/kubernetes/` works without the Prometheus Operator.
#   scripts/render-manifests.sh [OUT_DIR]     (default: deploy/kubernetes)
# helm comes from scripts/build-helm.sh (or $HELM). tests/helm/chart_test.sh
# fails when the committed files differ from the rendering.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/deploy/kubernetes}"
helm="${HELM:-$(bash "$root/scripts/build-helm.sh" | tail -n1)}"

rendered="$(mktemp)"
trap 'rm -f "$rendered"' EXIT
"$helm" template gpurm "$root/deploy/helm/gpurm" --namespace gpurm --include-crds \
  --set namespace.create=true --set serviceMonitor.enabled=true > "$rendered"

# helm separates documents with "---" and names each one's template in a
# "# Source: gpurm/<dir>/<file>" line; documents of one template are adjacent.
mkdir -p "$out/monitoring"
python3 - "$rendered" "$out" <<'PY'
import os
import sys

rendered, out = sys.argv[1], sys.argv[2]
targets = {"crds/gpuallocation.yaml": "crd.yaml",
           "templates/servicemonitor.yaml": "monitoring/servicemonitor.yaml"}
header = ("# Rendered from the Helm chart deploy/helm/gpurm by scripts/render-manifests.sh:\n"
          "# edit the chart, then rerun the script.\n")
files = {}
for document in open(rendered).read().split("\n---\n"):
    lines = document.strip("\n").split("\n")
    if lines and lines[0] == "---":
        lines = lines[1:]
    if not lines or not lines[0].startswith("# Source: gpurm/"):
        continue
    source = lines[0][len("# Source: gpurm/"):]
    name = targets.get(source, source.removeprefix("templates/"))
    body = "\n".join(lines[1:]).rstrip() + "\n"
    files.setdefault(name, []).append(body)
for name, documents in files.items():
    with open(os.path.join(out, name), "w") as f:
        f.write(header + "---\n".join(documents))
PY
