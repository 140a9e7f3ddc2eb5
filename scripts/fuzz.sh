#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (Clang 14, AddressSanitizer + UndefinedBehaviorSanitizer)
# in build-fuzz, then runs each one for a bounded time over a scratch copy of its seed corpus
# (tests/fuzz/corpus/<target>), plus the reproducers of bugs found before
# (tests/fuzz/crashes/<target>, which must not crash any more). Nothing is written into the
# repository. Fails when any target finds a crash, a sanitizer report, a leak, a timeout or an
# out-of-memory; the target's log and the input that did it are in build-fuzz/fuzz-runs/<target>/.
#
#   scripts/fuzz.sh                     every target
#   scripts/fuzz.sh fuzz_filter ...     only these
#
#   EVENTSOURCED_FUZZ_SECONDS   how long each target runs (default 20)
#   EVENTSOURCED_FUZZ_JOBS      targets running at once (default: the number of cores)
#   EVENTSOURCED_FUZZ_BUILD     the build directory (default build-fuzz)
#   EVENTSOURCED_FUZZ_SERVER_URIS=1  also build the PostgreSQL and MongoDB engines, so that
#                               fuzz_engine_uri fuzzes their URI parsers too (off by default: the
#                               engines' other sources would take about a minute more to build)
#
# tests/fuzz/README.md says how to fuzz one target for longer, and what to do with what it finds.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${EVENTSOURCED_FUZZ_SECONDS:-20}"
jobs="${EVENTSOURCED_FUZZ_JOBS:-$(nproc)}"
build="${EVENTSOURCED_FUZZ_BUILD:-build-fuzz}"
started=$(date +%s)

scripts/install-deps.sh --fuzz
# Sanitizer reports with file:line (Debian's llvm-14 installs it under a versioned name only).
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi

server_uris=OFF
if [ "${EVENTSOURCED_FUZZ_SERVER_URIS:-0}" = "1" ]; then server_uris=ON; fi

# Only what the targets link: no tests, benchmarks, examples or other servers' clients. -O1 keeps
# the build short and the targets fast enough; line tables make the sanitizers' stack traces
# readable. Warnings are the GCC builds' business: one only Clang gives must not stop the fuzzing.
echo "=== fuzz: configure and build $build"
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" \
  -DEVENTSOURCED_SANITIZE=address_undefined -DEVENTSOURCED_BUILD_FUZZERS=ON \
  -DEVENTSOURCED_BUILD_TESTS=OFF -DEVENTSOURCED_BUILD_BENCH=OFF -DEVENTSOURCED_BUILD_EXAMPLES=OFF \
  -DEVENTSOURCED_WITH_REDIS=OFF -DEVENTSOURCED_WITH_NATS=OFF -DEVENTSOURCED_WITH_WEBSOCKET=OFF \
  -DEVENTSOURCED_WITH_POSTGRES="$server_uris" -DEVENTSOURCED_WITH_MONGODB="$server_uris" \
  -DEVENTSOURCED_WERROR=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target eventsourced_fuzzers
built=$(date +%s)

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for source in tests/fuzz/fuzz_*.cpp; do
    name=$(basename "$source" .cpp)
    [ -x "$build/tests/fuzz/$name" ] && targets+=("$name")
  done
fi

# Runs one target; its outcome goes to fuzz-runs/<target>/status and a one-line summary.
run_target() {
  local name=$1
  local dir="$build/fuzz-runs/$name"
  rm -rf "$dir"
  mkdir -p "$dir/corpus"
  cp -R "tests/fuzz/corpus/$name/." "$dir/corpus/"
  local args=(-max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -max_len=8192
              -print_final_stats=1 -artifact_prefix="$dir/")
  [ -f "tests/fuzz/dict/$name.dict" ] && args+=(-dict="tests/fuzz/dict/$name.dict")
  local corpora=("$dir/corpus")  # new inputs go to the first directory only
  [ -d "tests/fuzz/crashes/$name" ] && corpora+=("tests/fuzz/crashes/$name")
  local status=0
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/tests/fuzz/$name" "${args[@]}" "${corpora[@]}" >"$dir/log" 2>&1 || status=$?
  echo "$status" >"$dir/status"
  local runs exec_per_sec cov
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  exec_per_sec=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
  cov=$(grep -ao 'cov: [0-9]* ft: [0-9]*' "$dir/log" | tail -1 || true)
  if [ "$status" -eq 0 ]; then
    printf 'fuzz: %-24s ok      %9s runs %7s exec/s  %s\n' "$name" "${runs:-?}" "${exec_per_sec:-?}" "$cov"
  else
    printf 'fuzz: %-24s FAILED  (exit %s) %s runs; see %s/log:\n' "$name" "$status" "${runs:-?}" "$dir"
    grep -aE '^(==[0-9]+==ERROR|SUMMARY|==== fuzz invariant)|runtime error|Assertion .* failed' \
      "$dir/log" | head -5 | cut -c1-300 | sed 's/^/    /' || true
    ls "$dir" | grep -aE '^(crash|leak|timeout|oom|slow-unit)-' | sed "s|^|    reproducer: $dir/|" || true
  fi
}

echo "=== fuzz: ${#targets[@]} targets, ${seconds} s each, $jobs at a time"
running=0
for name in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  run_target "$name" &
  running=$((running + 1))
done
wait

failed=0
for name in "${targets[@]}"; do
  [ "$(cat "$build/fuzz-runs/$name/status" 2>/dev/null || echo 1)" = "0" ] || failed=1
done
finished=$(date +%s)
echo "=== fuzz: build $((built - started)) s, runs $((finished - built)) s, total $((finished - started)) s"
if [ "$failed" -ne 0 ]; then
  echo "=== fuzz: FAILED (reproduce with: $build/tests/fuzz/<target> <reproducer>)" >&2
  exit 1
fi
