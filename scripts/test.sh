#!/usr/bin/env bash
# Quick start, command 2: install dependencies, build, run the whole test suite.
#
# Three builds, each running ctest, and a fuzzing stage:
#   build-test   GCC, RelWithDebInfo, every test (engine conformance, storage, multi-process, the
#                find_package consumer test, the demo page in headless Chromium)
#   build-fuzz   scripts/fuzz.sh: the libFuzzer targets of tests/fuzz (Clang, ASan + UBSan), each
#                run for 20 s over its seed corpus and the reproducers of earlier finds: about
#                2 minutes of build and 1.5 of fuzzing on 2 idle cores. A failure here is reported
#                at the end, after the sanitizer builds have run too.
#   build-asan   Clang, AddressSanitizer + UndefinedBehaviorSanitizer, every test
#   build-tsan   Clang, ThreadSanitizer, the concurrency, sync, bus, relay, subscription and
#                projection tests and every PostgreSQL, Redis and NATS test
# The sanitizer builds use Clang: it compiles them about a third faster than GCC (CI time is a
# budget), and a second compiler's warnings and sanitizers see what the first does not.
# Set EVENTSOURCED_TEST_QUICK=1 to run only the first. PostgreSQL, Redis and NATS are installed and
# started by scripts/services.sh (see below).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --servers --fuzz
jobs="$(nproc)"
# Sanitizer reports with file:line (Debian's llvm-14 installs the symbolizer under a versioned name).
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi

# The servers the integration tests need (PostgreSQL, Redis, NATS JetStream), on loopback ports
# of their own. Servers already running (a developer's) are reused and left running; those
# started here are stopped on exit. A server that does not start stops the run here.
services_started=()
for service in postgres redis nats; do
  scripts/services.sh status "$service" >/dev/null 2>&1 || services_started+=("$service")
done
stop_services() {
  if [ ${#services_started[@]} -gt 0 ]; then scripts/services.sh stop "${services_started[@]}" || true; fi
}
trap stop_services EXIT
scripts/services.sh start
eval "$(scripts/services.sh env)"
# Under CI a test whose server address is missing fails instead of skipping
# (tests/support/servers.hpp); the addresses are all set just above either way.
export CI="${CI:-true}"

run_build() {  # name, ctest args..., -- cmake args...
  local dir=$1; shift
  local ctest_args=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do ctest_args+=("$1"); shift; done
  shift
  local started=$SECONDS
  echo "=== $dir: configure and build"
  cmake -S . -B "$dir" -DEVENTSOURCED_BUILD_BENCH=OFF "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  local built=$SECONDS
  echo "=== $dir: test"
  (cd "$dir" && ctest --output-on-failure -j"$jobs" "${ctest_args[@]}")
  echo "=== $dir: build $((built - started)) s, tests $((SECONDS - built)) s"
}

run_build build-test -- -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "${EVENTSOURCED_TEST_QUICK:-0}" = "1" ]; then exit 0; fi
fuzz_status=0
scripts/fuzz.sh || fuzz_status=$?
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 CC=clang-14 CXX=clang++-14 \
  run_build build-asan -E consumer_find_package -- -DCMAKE_BUILD_TYPE=Debug \
  -DEVENTSOURCED_SANITIZE=address_undefined -DEVENTSOURCED_BUILD_EXAMPLES=OFF
# MongoDB off: without a server its tests here are BSON conversions, run by the other builds.
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/scripts/tsan.supp" \
  CC=clang-14 CXX=clang++-14 \
  run_build build-tsan -R 'concurren|sync|conformance|transaction|cache|bus|relay|subscription|projection|watch|store_events|event_sourced|command|snapshot|aggregate|postgres|redis|nats|jetstream' -- -DCMAKE_BUILD_TYPE=Debug \
  -DEVENTSOURCED_SANITIZE=thread -DEVENTSOURCED_BUILD_EXAMPLES=OFF -DEVENTSOURCED_WITH_MONGODB=OFF
if [ "$fuzz_status" -ne 0 ]; then
  echo "=== the fuzz stage failed (see its output above; build-fuzz/fuzz-runs/ has the logs)" >&2
  exit 1
fi
echo "=== all test builds passed in $SECONDS s"
