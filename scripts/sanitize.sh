#!/usr/bin/env bash
# Builds gpurm under sanitizers and runs the C++ unit and end-to-end tests
# (everything ctest knows, the real daemon included, but the packaging
# tests: the Debian package, the Helm chart, the manifests) under them:
#   asan  AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer), in build-asan/
#   tsan  ThreadSanitizer, in build-tsan/
#
# Usage: scripts/sanitize.sh [asan|tsan|all]   (default: all)
# Environment:
#   GPURM_SANITIZE_DIR    where the build directories go (default: the repository root)
#   GPURM_STRESS_SECONDS  length of the stress tests (default here: 10; 60 in `make test`)
#   GPURM_STRESS_CLIENTS  clients of the 200-client stress test (default 200)
#   GPURM_CRASH_KILLS     kill -9 rounds of the crash test (default here: 20; 60 in `make test`)
#
# Any sanitizer report from any process (a test, or a daemon or CLI that a
# test started) fails the run: the runtimes write reports to files under
# BUILD/sanitizer-reports/, which must stay empty, so a report from a daemon
# that a test killed with SIGKILL still counts.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
bash scripts/install-deps.sh

kinds=("${1:-all}")
[ "${kinds[0]}" = all ] && kinds=(asan tsan)

export GPURM_STRESS_SECONDS="${GPURM_STRESS_SECONDS:-10}"
export GPURM_CRASH_KILLS="${GPURM_CRASH_KILLS:-20}"

failed=()
for kind in "${kinds[@]}"; do
  case "$kind" in
    asan) flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" ;;
    # -Wno-tsan: GCC warns that TSan cannot see std::atomic_thread_fence,
    # which Boost.Asio's SSL stream uses; the warning is about TSan, not a race.
    tsan) flags="-fsanitize=thread -Wno-tsan" ;;
    *)
      echo "usage: $0 [asan|tsan|all]" >&2
      exit 2
      ;;
  esac
  dir="${GPURM_SANITIZE_DIR:-$root}/build-$kind"
  start=$(date +%s)
  if [ ! -f "$dir/build.ninja" ]; then
    # -O1 -g1: sanitizer builds are for finding bugs, not speed; line tables
    # are all a report's stack needs, and the build takes far less time
    # than at -O2 with full debug info.
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGPURM_BUILD_BENCH=OFF \
      -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
      -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
      -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags"
  fi
  cmake --build "$dir" -j "$(nproc)"
  built=$(date +%s)

  reports="$dir/sanitizer-reports"
  rm -rf "$reports"
  mkdir -p "$reports"
  common="log_path=$reports/$kind:print_stacktrace=1"
  status=0
  (
    cd "$dir"
    export ASAN_OPTIONS="$common:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
    export UBSAN_OPTIONS="$common:halt_on_error=1"
    export TSAN_OPTIONS="$common:second_deadlock_stack=1"
    # Label packaging: the Debian package, the Helm chart and the manifests
    # (tests/CMakeLists.txt), artifacts rather than code; not run here.
    ctest --output-on-failure -j "$(nproc)" --timeout 1200 -LE packaging
  ) || status=1
  if [ -n "$(ls -A "$reports")" ]; then
    echo "== $kind: sanitizer reports ==" >&2
    for report in "$reports"/*; do
      echo "--- $report" >&2
      head -c 20000 "$report" >&2
    done
    status=1
  fi
  echo "== $kind: build $((built - start)) s, tests $(($(date +%s) - built)) s, $([ $status = 0 ] && echo clean || echo FAILED)"
  [ $status = 0 ] || failed+=("$kind")
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "sanitizer runs failed: ${failed[*]}" >&2
  exit 1
fi
