#!/usr/bin/env bash
# Quick start, command 2: install dependencies, build, run the whole test suite.
#
# Three builds, each running ctest:
#   build-test   RelWithDebInfo, every test (engine conformance, storage, multi-process, the
#                find_package consumer test, the demo page in headless Chromium)
#   build-asan   AddressSanitizer + UndefinedBehaviorSanitizer, every test
#   build-tsan   ThreadSanitizer, the concurrency, sync, bus, relay, subscription and projection tests
#                and every PostgreSQL, Redis and NATS test
# Set EVENTSOURCED_TEST_QUICK=1 to run only the first. PostgreSQL, Redis and NATS are installed and
# started by scripts/services.sh (see below).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --servers
jobs="$(nproc)"

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
  echo "=== $dir: configure and build"
  cmake -S . -B "$dir" -DEVENTSOURCED_BUILD_BENCH=OFF "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  echo "=== $dir: test"
  (cd "$dir" && ctest --output-on-failure -j"$jobs" "${ctest_args[@]}")
}

run_build build-test -- -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "${EVENTSOURCED_TEST_QUICK:-0}" = "1" ]; then exit 0; fi
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run_build build-asan -E consumer_find_package -- -DCMAKE_BUILD_TYPE=Debug \
  -DEVENTSOURCED_SANITIZE=address_undefined -DEVENTSOURCED_BUILD_EXAMPLES=OFF
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/scripts/tsan.supp" \
  run_build build-tsan -R 'concurren|sync|conformance|transaction|cache|bus|relay|subscription|projection|watch|store_events|event_sourced|command|snapshot|aggregate|postgres|redis|nats|jetstream' -- -DCMAKE_BUILD_TYPE=Debug \
  -DEVENTSOURCED_SANITIZE=thread -DEVENTSOURCED_BUILD_EXAMPLES=OFF
echo "=== all test builds passed"
