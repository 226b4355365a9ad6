#!/usr/bin/env bash
# Browser tests of the web dashboard: Playwright (playwright-core from npm)
# drives Debian's Chromium, headless, against the real daemon
# ($BUILD_DIR/gpurm serving examples/cluster-3node.yaml on a free port with a
# temporary data dir), through node's built-in test runner. Screenshots go to
# $BUILD_DIR/ui-artifacts/*.png. Also checks that the committed web/dist is
# the build of web/src.
#
#   scripts/test-ui.sh [BUILD_DIR]      (default: build; gpurm must be built)
#
# Installs what it needs, idempotently: Debian's chromium (and Node.js when
# the machine has none) through apt, only when missing, and the npm packages
# of web/ and tests/ui/ (npm ci, only when node_modules does not match the
# lock file).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build_dir="${1:-build}"
case "$build_dir" in /*) ;; *) build_dir="$root/$build_dir" ;; esac

if [ ! -x "$build_dir/gpurm" ]; then
  echo "test-ui: $build_dir/gpurm is not built (scripts/build.sh $build_dir)" >&2
  exit 1
fi

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium fonts-dejavu-core)
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# shellcheck source=scripts/build-ui.sh
source "$root/scripts/build-ui.sh"
npm_ci "$root/web"
npm_ci "$root/tests/ui"
node "$root/web/build.mjs" --check

mkdir -p "$build_dir/ui-artifacts"
GPURM_BIN="$build_dir/gpurm" GPURM_UI_ARTIFACTS="$build_dir/ui-artifacts" \
  node --test "$root"/tests/ui/*.test.mjs
