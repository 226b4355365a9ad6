#!/usr/bin/env bash
# Creates (or refreshes) the FastAPI peer's virtual environment: install.sh VENV_DIR.
# Idempotent and quick when nothing changed: pip runs only when the venv is
# missing, requirements.txt changed since the last successful install (a
# checksum stamp in the venv) or an import check fails. Needs Debian's
# python3-venv (installed by bench/install-deps.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:?usage: install.sh VENV_DIR}"
requirements="$here/requirements.txt"
stamp="$venv/.peer-requirements.sha256"

[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv"
wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] &&
   "$venv/bin/python" -c "import fastapi, uvicorn, uvloop, httptools, prometheus_client, yaml" 2>/dev/null; then
  exit 0
fi
echo "fastapi_peer: installing $requirements into $venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
echo "$wanted" > "$stamp"
