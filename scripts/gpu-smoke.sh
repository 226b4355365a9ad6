#!/usr/bin/env bash
# gpu-smoke: gpurm against a real NVIDIA driver, in one command.
#
#   scripts/gpu-smoke.sh [--build-dir DIR]
#
# Skips (exit 0, "SKIPPED" and why) where no NVIDIA driver is found
# (libnvidia-ml.so.1, libcuda.so.1, nvidia-smi). Otherwise, with nothing
# beyond what scripts/install-deps.sh installs (no CUDA toolkit):
#   1. builds gpurm, the CUDA guard and its driver-API probe into DIR
#      (default: build);
#   2. starts the daemon on local discovery (NVML) on a free port and checks
#      that /health and /status answer;
#   3. compares the GPUs the NVML provider reports (GET /monitoring) with
#      nvidia-smi: count, names, UUIDs, memory within 1%; and its MIG devices
#      (UUIDs, profiles) with nvidia-smi -L, where GPUs are in MIG mode;
#   4. allocates one GPU through POST /allocate and releases it;
#   5. runs the probe (tests/cuda_guard/cuda_guard_probe.c: dlopens
#      libcuda.so.1, resolves through cuGetProcAddress) under
#      `gpurm run --gpus 1 --memory-gb 4 --shared`: cuMemGetInfo must report
#      the 4 GB grant as the device's total (at most 5% more: slices are
#      whole thousandths of the GPU), 4000 MiB must fit, and 1000 MiB more
#      must be refused with CUDA_ERROR_OUT_OF_MEMORY.
# Reads the GPUs' configuration and changes nothing on them (MIG included).
# Exit 0 when every check passed (or skipped), 1 when one failed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

build_dir="build"
if [ "${1:-}" = "--build-dir" ]; then
  build_dir="${2:?--build-dir needs a directory}"
fi

say() { echo "gpu-smoke: $*"; }
fail() {
  say "FAILED: $*"
  exit 1
}

library_found() {
  ldconfig -p 2>/dev/null | grep -q "$1" && return 0
  local dir
  local -a extra=()
  IFS=: read -r -a extra <<<"${LD_LIBRARY_PATH:-}"
  for dir in "${extra[@]}" /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib \
    /usr/local/nvidia/lib64 /usr/lib/wsl/lib; do
    [ -e "$dir/$1" ] && return 0
  done
  return 1
}

missing=()
library_found libnvidia-ml.so.1 || missing+=(libnvidia-ml.so.1)
library_found libcuda.so.1 || missing+=(libcuda.so.1)
command -v nvidia-smi >/dev/null 2>&1 || missing+=(nvidia-smi)
if [ "${#missing[@]}" -gt 0 ]; then
  say "SKIPPED: no NVIDIA driver on this machine (not found: ${missing[*]})"
  exit 0
fi
say "driver $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)"

# 1. Build.
if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build_dir" --target gpurm gpurm_cuda_guard cuda_guard_probe_resolved >/dev/null
gpurm="$build_dir/gpurm"
probe="$build_dir/tests/cuda_guard_probe_resolved"

# 2. The daemon on local discovery.
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
"$gpurm" serve --config gpu_config.yaml --listen "127.0.0.1:$port" --data-dir "$work/data" \
  --log-dir "$work/logs" >"$work/daemon.out" 2>&1 &
daemon=$!
cleanup() {
  kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# GET/POST/DELETE against the daemon: prints the body, fails on a non-2xx.
api() {
  python3 - "$1" "$url/api/v1/gpu$2" "${3:-}" <<'PY'
import sys, urllib.request, urllib.error
method, address, body = sys.argv[1], sys.argv[2], sys.argv[3]
request = urllib.request.Request(address, method=method, data=body.encode() if body else None,
                                 headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(request, timeout=30) as answer:
        print(answer.read().decode())
except urllib.error.HTTPError as error:
    print(f"{method} {address}: {error.code} {error.read().decode()[:500]}", file=sys.stderr)
    sys.exit(1)
except OSError as error:
    print(f"{method} {address}: {error}", file=sys.stderr)
    sys.exit(1)
PY
}

for _ in $(seq 60); do
  api GET /health >/dev/null 2>&1 && break
  kill -0 "$daemon" 2>/dev/null || fail "the daemon exited: $(tail -5 "$work/daemon.out")"
  sleep 0.5
done
api GET /health >/dev/null || fail "the daemon did not become healthy in 30 s"
status="$(api GET /status)" || fail "GET /status"
say "/status: $(python3 -c 'import json,sys; s=json.loads(sys.argv[1]); print(s["total_nodes"], "node(s),", sum(n["available_gpus"] for n in s["available_nodes"]), "GPU(s) available")' "$status")"

# 3. The NVML provider against nvidia-smi.
monitoring="$(api GET /monitoring)" || fail "GET /monitoring"
nvidia-smi --query-gpu=index,name,uuid,memory.total --format=csv,noheader,nounits >"$work/smi.csv"
# MIG devices ("  MIG 3g.40gb Device 0: (UUID: MIG-...)"), if any GPU is in MIG mode.
nvidia-smi -L >"$work/smi-list.txt" 2>/dev/null || true
python3 - "$monitoring" "$work/smi.csv" "$work/smi-list.txt" <<'PY' || fail "the NVML provider disagrees with nvidia-smi"
import csv, json, re, sys

def gpus_in(value):
    """Every object with a uuid and a total memory, wherever /monitoring nests it."""
    if isinstance(value, dict):
        if "uuid" in value and "memory_total_gb" in value:
            yield value
        for child in value.values():
            yield from gpus_in(child)
    elif isinstance(value, list):
        for child in value:
            yield from gpus_in(child)

units = list(gpus_in(json.loads(sys.argv[1])))
provider = {g["uuid"]: g for g in units if not g.get("mig_parent_uuid")}
provider_mig = {g["uuid"]: g for g in units if g.get("mig_parent_uuid")}
with open(sys.argv[2], encoding="utf-8") as f:
    driver = {row[2].strip(): (row[1].strip(), float(row[3])) for row in csv.reader(f) if row}
with open(sys.argv[3], encoding="utf-8") as f:
    driver_mig = {m.group(2): m.group(1) for m in re.finditer(r"MIG (\S+)\s+Device\s+\d+: \(UUID: (MIG-[^)]+)\)", f.read())}
problems = []
if set(provider_mig) != set(driver_mig):
    problems.append(f"MIG devices: {sorted(provider_mig)} from NVML, {sorted(driver_mig)} from nvidia-smi -L")
for uuid, profile in driver_mig.items():
    if uuid in provider_mig and provider_mig[uuid].get("mig_profile") != profile:
        problems.append(f"{uuid}: profile {provider_mig[uuid].get('mig_profile')!r}, nvidia-smi says {profile!r}")
    elif uuid in provider_mig:
        print(f"gpu-smoke: MIG device {uuid} {profile}: matches")
if len(provider) != len(driver):
    problems.append(f"{len(provider)} GPU(s) from NVML, {len(driver)} from nvidia-smi")
for uuid, (name, total_mib) in driver.items():
    gpu = provider.get(uuid)
    if gpu is None:
        problems.append(f"{uuid} ({name}) is missing")
        continue
    if gpu.get("name") != name:
        problems.append(f"{uuid}: name {gpu.get('name')!r}, nvidia-smi says {name!r}")
    mib = float(gpu["memory_total_gb"]) * 1024
    if abs(mib - total_mib) > 0.01 * total_mib:
        problems.append(f"{uuid}: {mib:.0f} MiB, nvidia-smi says {total_mib:.0f} MiB")
    print(f"gpu-smoke: {uuid} {name} {total_mib:.0f} MiB: matches")
for problem in problems:
    print(f"gpu-smoke: {problem}")
sys.exit(1 if problems else 0)
PY

# 4. Allocate and release.
answer="$(api POST /allocate '{"gpu_count": 1, "memory_gb": 4, "shared": true}')" || fail "POST /allocate"
id="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["allocation_id"])' "$answer")"
say "allocated $id: $(python3 -c 'import json,sys; a=json.loads(sys.argv[1]); print(a["gpu_config"]["nodes"][0]["environment"])' "$answer")"
api DELETE "/allocations/$id" >/dev/null || fail "DELETE /allocations/$id"

# 5. The CUDA guard on the device.
set +e
# The daemon's local discovery names its node after the host, as gpurm run
# does unless GPURM_NODE_NAME names this machine otherwise.
run_output="$(env -u GPURM_NODE_NAME "$gpurm" --url "$url" run --gpus 1 --memory-gb 4 --shared --no-cpu-fallback \
  --log-dir "$work/logs" -- "$probe" ctx 0 info alloc 4000 alloc 1000 2>&1)"
run_code=$?
set -e
echo "$run_output" | sed 's/^/  | /'
[ "$run_code" -eq 0 ] || fail "gpurm run exited $run_code"
python3 - "$run_output" <<'PY' || fail "the CUDA guard did not hold the job to 4 GB"
import re, sys
output = sys.argv[1]
info = re.search(r"^info free=(\d+) total=(\d+)$", output, re.M)
results = re.findall(r"^alloc (ok|error \d+)$", output, re.M)
problems = []
if info is None:
    problems.append("no cuMemGetInfo answer")
elif not 4096 <= int(info.group(2)) <= 4096 * 1.05:
    problems.append(f"cuMemGetInfo total {info.group(2)} MiB, expected the 4 GB grant")
if results != ["ok", "error 2"]:
    problems.append(f"allocations of 4000 then 1000 MiB answered {results}, expected ok then error 2")
for problem in problems:
    print(f"gpu-smoke: {problem}")
sys.exit(1 if problems else 0)
PY
say "PASSED"
