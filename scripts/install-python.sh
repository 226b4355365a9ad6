#!/usr/bin/env bash
# Installs the Python side of gpurm: Debian's CPU PyTorch and venv module, the
# virtual environment .venv (which sees Debian's packages, so torch and numpy
# come from apt), the pinned packages of python/requirements-test.txt and
# python/requirements-dist.txt (build, twine) and the gpurm package itself
# (editable).
#
# Idempotent and fast when nothing changed: apt runs only for missing packages,
# the venv is created only when absent, and pip runs only when the pinned
# requirements or the package metadata changed since the last successful run
# (a checksum stamp in .venv) or an import check fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
requirements="$root/python/requirements-test.txt"
dist_requirements="$root/python/requirements-dist.txt"
stamp="$venv/.gpurm-requirements.sha256"

apt_packages=(python3-venv python3-torch python3-numpy)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  echo "install-python: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "install-python: creating $venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi

wanted="$(cat "$requirements" "$dist_requirements" "$root/python/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] &&
   "$venv/bin/python" -c "import gpurm, pytest, build, twine" 2>/dev/null; then
  echo "install-python: .venv is up to date"
  exit 0
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
echo "install-python: pip install -r python/requirements-test.txt -r python/requirements-dist.txt"
"$venv/bin/python" -m pip install -q -r "$requirements" -r "$dist_requirements"
echo "install-python: pip install -e python/"
"$venv/bin/python" -m pip install -q --no-build-isolation --no-deps -e "$root/python"
"$venv/bin/python" - <<'EOF'
import numpy, torch, tensorflow, gpurm
print(f"install-python: numpy {numpy.__version__}, torch {torch.__version__}, "
      f"tensorflow {tensorflow.__version__}, gpurm {gpurm.__version__}")
EOF
echo "$wanted" > "$stamp"
