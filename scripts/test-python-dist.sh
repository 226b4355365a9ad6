#!/usr/bin/env bash
# Builds the Python package's distributions as a release would (`python -m
# build`: an sdist and a wheel, in an isolated build environment) and checks
# them with `twine check --strict` (metadata, README rendering), then that the
# wheel carries VERSION's version and every module of python/gpurm.
#   scripts/test-python-dist.sh [OUT_DIR]    (default: a temporary directory)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install-python.sh
if [ $# -ge 1 ]; then
  out="$1"
  mkdir -p "$out"
else
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
fi
version="$(head -n1 VERSION)"
.venv/bin/python -m build --outdir "$out" python/
.venv/bin/python -m twine check --strict "$out/gpurm-$version.tar.gz" "$out/gpurm-$version-py3-none-any.whl"
.venv/bin/python - "$out/gpurm-$version-py3-none-any.whl" python/gpurm <<'PY'
import pathlib
import sys
import zipfile

wheel, package = sys.argv[1], pathlib.Path(sys.argv[2])
packed = set(zipfile.ZipFile(wheel).namelist())
wanted = {f"gpurm/{p.name}" for p in package.iterdir() if p.suffix == ".py" or p.name == "py.typed"}
missing = sorted(wanted - packed)
if missing:
    sys.exit(f"test-python-dist: the wheel lacks {missing}")
print(f"test-python-dist: {pathlib.Path(wheel).name} holds all {len(wanted)} files of python/gpurm")
PY
