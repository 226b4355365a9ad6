#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang, -fsanitize=fuzzer,address,undefined)
# and runs each for a while, starting from its seed corpus in fuzz/corpus/<target>/.
#
# Usage: scripts/fuzz.sh [seconds-per-target] [target...]
#   seconds-per-target  default 60 (CI's short run); hours for a real campaign
#   target              default: every *_fuzzer
# Environment: GPURM_FUZZ_DIR, the build directory (default build-fuzz).
#
# New inputs a run discovers go to BUILD/corpus/<target>/ (not into the repo:
# copy the interesting ones to fuzz/corpus/<target>/ by hand). A crash, leak,
# sanitizer report or timeout leaves its input in BUILD/artifacts/<target>/,
# prints how to reproduce it, and fails the script. Each target's executions
# are printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
bash scripts/install-deps.sh

seconds="${1:-60}"
shift || true
build="${GPURM_FUZZ_DIR:-$root/build-fuzz}"

if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S fuzz -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build" -j "$(nproc)"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for source in fuzz/*_fuzzer.cc; do targets+=("$(basename "$source" .cc)"); done
fi

summary=()
failed=()
for target in "${targets[@]}"; do
  corpus="$build/corpus/$target"
  artifacts="$build/artifacts/$target"
  log="$build/$target.log"
  mkdir -p "$corpus" "$artifacts"
  dict=()
  [ -f "fuzz/$target.dict" ] && dict=(-dict="fuzz/$target.dict")
  echo "== $target: $seconds s"
  status=0
  # The first corpus directory receives new inputs; the seeds are only read.
  "$build/$target" "$corpus" "fuzz/corpus/$target" "${dict[@]}" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ $status -ne 0 ]; then
    tail -60 "$log" >&2
    for input in "$artifacts"/*; do
      [ -e "$input" ] && echo "reproduce: $build/$target $input" >&2
    done
    failed+=("$target")
    summary+=("$target: FAILED after ${runs:-?} executions (log: $log)")
  else
    summary+=("$target: ${runs:-?} executions, corpus $(find "$corpus" -type f | wc -l) inputs, no findings")
  fi
done

printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]}" >&2
  exit 1
fi
