#!/usr/bin/env bash
# DCGM-compatible metrics (server.dcgm_compatible_metrics): the daemon, on
# local discovery through the fake NVML (tests/fakes), serves dcgm-exporter's
# series, and every query of NVIDIA's DCGM Grafana dashboard
# (dcgm-exporter-dashboard-queries.tsv) returns the series its panel needs
# when Prometheus evaluates it over that exposition (promtool test rules).
# Also: the values are in dcgm-exporter's units (checked against gpurm's own
# series), the latest XID is exported, and with the switch off nothing is.
#   tests/monitoring/dcgm_dashboard_test.sh path/to/gpurm path/to/libnvidia-ml.so.1 (the fake)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/../.."
gpurm="${1:?usage: dcgm_dashboard_test.sh GPURM FAKE_NVML}"
fake_nvml="${2:?usage: dcgm_dashboard_test.sh GPURM FAKE_NVML}"
work="$(mktemp -d)"
daemon=""
stop_daemon() {
  if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
  daemon=""
}
trap 'stop_daemon; rm -rf "$work"' EXIT
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

# scrape MACHINE SWITCH OUT: /metrics of a daemon on the fake NVML machine
# tests/fakes/machines/MACHINE with server.dcgm_compatible_metrics: SWITCH.
scrape() {
  local run="$work/$1-$2"
  mkdir -p "$run/sys/bus/pci/devices"
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  printf 'server:\n  listen: "127.0.0.1:%s"\n  dcgm_compatible_metrics: %s\n' "$port" "$2" > "$run/gpu_config.yaml"
  # Only the fake NVML: an empty sysfs tree, no AMD/Intel/Ascend libraries.
  GPURM_SYSFS_ROOT="$run" GPURM_NVML_LIBRARY="$fake_nvml" \
  GPURM_FAKE_NVML_MACHINE="$root/tests/fakes/machines/$1" \
  GPURM_ROCM_SMI_LIBRARY=/nonexistent/librocm_smi64.so.1 \
  GPURM_LEVEL_ZERO_LIBRARY=/nonexistent/libze_loader.so.1 GPURM_DCMI_LIBRARY=/nonexistent/libdcmi.so \
    "$gpurm" serve --config "$run/gpu_config.yaml" --data-dir "$run/data" --log-dir "$run/logs" \
    > "$run/serve.log" 2>&1 &
  daemon=$!
  for _ in $(seq 1 300); do  # Up to 30 s for the daemon to start.
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/v1/gpu/health")" = 200 ] && break
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$port/metrics" > "$3" || { cat "$run/serve.log"; bad "GET /metrics ($1)"; }
  stop_daemon
}

scrape nvml_failing.json false "$work/off.prom"
if grep -q '^DCGM_' "$work/off.prom"; then bad "switch off: DCGM series exported"; else ok "switch off: no DCGM series"; fi

scrape nvml_h100x8.json true "$work/h100.prom"
# promtool's linter wants snake_case label names; dcgm-exporter's modelName
# is camelCase, and compatibility means keeping it: that complaint is
# accepted for the DCGM_ families only, every other problem fails.
problems="$(promtool check metrics < "$work/h100.prom" 2>&1 |
  grep -v "^DCGM_FI_[A-Z_]* label names should be written in 'snake_case' not 'camelCase'$" |
  grep -v '^$' || true)"
[ -z "$problems" ] && ok "promtool check metrics (bar dcgm-exporter's camelCase modelName)" ||
  bad "promtool check metrics: $problems"
for family in DCGM_FI_DEV_GPU_UTIL DCGM_FI_DEV_FB_USED DCGM_FI_DEV_FB_FREE DCGM_FI_DEV_GPU_TEMP \
              DCGM_FI_DEV_POWER_USAGE DCGM_FI_DEV_XID_ERRORS; do
  n=$(grep -c "^$family{gpu=\"[0-9]\",UUID=\"GPU-[^\"]*\",device=\"nvidia[0-9]\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"[^\"]*\"" "$work/h100.prom" || true)
  [ "$n" = 8 ] && ok "$family: 8 GPUs with labels gpu, UUID, device, modelName, Hostname" ||
    bad "$family: $n samples with dcgm-exporter's labels, want 8"
done

# Every dashboard query over the exposition, with the template variables at
# Grafana's "All" (.*), must return as many series as its panel shows: one
# per GPU, one for an aggregate. gpurm does not measure tensor-core activity
# (a DCGM profiling counter): that panel stays empty rather than made up.
python3 - "$work/h100.prom" "$here/dcgm-exporter-dashboard-queries.tsv" > "$work/dashboard_test.json" <<'PY'
import json
import sys

exposition, queries_file = sys.argv[1], sys.argv[2]
gpus, nodes = 8, 1
expected_series = {
    "GPU Temperature": gpus, "GPU Avg. Temp": 1, "GPU Power Usage": gpus, "GPU Power Total": 1,
    "GPU SM Clocks": gpus, "GPU Utilization": gpus, "Tensor Core Utilization": 0,
    "GPU Framebuffer Mem Used": gpus, "$Hostname": nodes, "$instance": 1, "$gpu": gpus,
}
series = []
for line in open(exposition):
    if line.startswith(("DCGM_", "gpurm_gpu_")):
        name, value = line.rstrip("\n").rsplit(" ", 1)
        # The target labels Prometheus adds to every scraped series.
        name = name.replace("{", '{instance="gpurm:8000",job="gpurm",', 1)
        series.append({"series": name, "values": f"{value}x5"})
tests = []
queries = [l.rstrip("\n").split("\t") for l in open(queries_file) if l.strip() and not l.startswith("#")]
assert all(len(q) == 3 for q in queries), "revision, title, query"
assert {title for _, title, _ in queries} == set(expected_series), "every query needs an expected count"
assert {revision for revision, _, _ in queries} == {"hostname", "instance"}
for _, title, query in queries:
    expr = query.replace("$Hostname", ".*").replace("$instance", ".*").replace("$gpu", ".*")
    want = expected_series[title]
    # count() of an empty result is empty, not 0.
    samples = [{"labels": "{}", "value": want}] if want else []
    tests.append({"expr": f"count({expr})", "eval_time": "2m", "exp_samples": samples})
# Units: dcgm-exporter's against gpurm's own series of the same GPU.
same_gpu = 'on(UUID) label_replace({}, "UUID", "$1", "uuid", "(.*)")'
for dcgm, gpurm in [
    ("DCGM_FI_DEV_FB_USED", "gpurm_gpu_memory_used_bytes / 1048576"),
    ("DCGM_FI_DEV_FB_FREE", "(gpurm_gpu_memory_total_bytes - gpurm_gpu_memory_used_bytes) / 1048576"),
    ("DCGM_FI_DEV_GPU_UTIL", "gpurm_gpu_utilization_ratio * 100"),
    ("DCGM_FI_DEV_GPU_TEMP", "gpurm_gpu_temperature_celsius"),
    ("DCGM_FI_DEV_POWER_USAGE", "gpurm_gpu_power_watts"),
]:
    tests.append({"expr": f"count(abs({dcgm} - {same_gpu.format('(' + gpurm + ')')}) < 0.001)",
                  "eval_time": "2m", "exp_samples": [{"labels": "{}", "value": gpus}]})
json.dump({"rule_files": [], "evaluation_interval": "1m",
           "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": tests}]},
          sys.stdout, indent=1)
PY
if (cd "$work" && promtool test rules dashboard_test.json); then
  ok "every query of the DCGM dashboard, and the units, over gpurm's exposition"
else
  bad "promtool test rules (above)"
fi

# The latest XID per GPU: the fake machine reports XID 13 on GPU 0 (an
# application error, the GPU stays healthy) and XID 79 on GPU 1.
scrape nvml_failing.json true "$work/failing.prom"
for want in '0 13' '1 79' '2 0'; do
  set -- $want
  grep -q "^DCGM_FI_DEV_XID_ERRORS{gpu=\"$1\",.*} $2\$" "$work/failing.prom" &&
    ok "DCGM_FI_DEV_XID_ERRORS of GPU $1 = $2" || bad "DCGM_FI_DEV_XID_ERRORS of GPU $1 is not $2"
done
exit "$fail"
