#!/usr/bin/env bash
# Rebuilds the web dashboard: web/src -> web/dist (one content-hashed JS
# bundle with uPlot, one CSS bundle, index.html), with esbuild from the npm
# registry (npm ci against web/package-lock.json, skipped when node_modules
# already matches the lock file).
#
# web/dist is committed and compiled into the daemon (src/daemon/CMakeLists.txt),
# so building and running gpurm never needs Node; run this after editing
# web/src and commit web/dist with it. `scripts/build-ui.sh --check` only
# verifies that web/dist is the build of web/src (scripts/test-ui.sh runs it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# npm ci in $1 unless its node_modules was installed from the same lock file.
npm_ci() {
  local dir="$1"
  local stamp="$dir/node_modules/.gpurm-lock-sha256"
  local want
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  command -v node >/dev/null || { echo "build-ui: node is needed (apt-get install nodejs npm)" >&2; exit 1; }
  npm_ci "$root/web"
  node "$root/web/build.mjs" "$@"
fi
