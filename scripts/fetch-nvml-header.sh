#!/usr/bin/env bash
# Fetches NVIDIA's official nvml.h (from PyPI's nvidia-nvml-dev wheel) for the
# NVML provider, which loads libnvidia-ml at run time and only needs the header
# to compile. Idempotent: the header is kept in a cache shared by all build
# directories, so the network is needed once per machine (and pinned version).
#
#   scripts/fetch-nvml-header.sh [DEST_INCLUDE_DIR]
#
# Fills the cache, then copies nvml.h into DEST_INCLUDE_DIR when given.
# Environment: GPURM_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/gpurm),
# PYTHON (default python3).
set -euo pipefail

version="13.0.87"
cache_root="${GPURM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gpurm}"
cache_dir="$cache_root/nvml/$version"
header="$cache_dir/nvml.h"
python="${PYTHON:-python3}"

if [ ! -s "$header" ]; then
  mkdir -p "$cache_dir"
  work="$(mktemp -d "$cache_dir/download.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  if ! "$python" -m pip download --quiet --no-deps --only-binary=:all: \
      --dest "$work" "nvidia-nvml-dev==$version" >&2; then
    echo "fetch-nvml-header: cannot download nvidia-nvml-dev==$version from PyPI" \
         "(needs $python with pip and access to the package index)" >&2
    exit 1
  fi
  # The wheel holds nvidia/<cuda major>/include/nvml.h; take that one file.
  "$python" - "$work" "$work/nvml.h" <<'EOF'
import glob, sys, zipfile
wheels = glob.glob(sys.argv[1] + "/nvidia_nvml_dev-*.whl")
if len(wheels) != 1:
    sys.exit("fetch-nvml-header: expected one nvidia_nvml_dev wheel, found %d" % len(wheels))
with zipfile.ZipFile(wheels[0]) as wheel:
    names = [n for n in wheel.namelist() if n.endswith("/include/nvml.h")]
    if len(names) != 1:
        sys.exit("fetch-nvml-header: no include/nvml.h in " + wheels[0])
    with open(sys.argv[2], "wb") as out:
        out.write(wheel.read(names[0]))
EOF
  mv "$work/nvml.h" "$header"  # Atomic within the cache: readers never see half a header.
fi

if [ $# -ge 1 ]; then
  mkdir -p "$1"
  cmp -s "$header" "$1/nvml.h" || cp "$header" "$1/nvml.h"
fi
