#!/usr/bin/env bash
# Builds the benchmarks in Release (build-bench/, beside the sources), starts the test servers
# (scripts/services.sh) and runs every benchmark.
# Exits non-zero when the build or any benchmark fails. Extra arguments are passed to each
# benchmark (e.g. a comparison name to run only that one).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release \
  -DEVENTSOURCED_BUILD_TESTS=OFF -DEVENTSOURCED_BUILD_EXAMPLES=OFF -DEVENTSOURCED_BUILD_BENCH=ON
cmake --build build-bench -j2

# The server benchmarks (PostgreSQL, Redis, NATS) read the servers' addresses from
# EVENTSOURCED_TEST_*_URI; start them like the tests do (reused when already running, stopped on
# exit when started here).
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

mapfile -t benchmarks < <(find build-bench/bench -maxdepth 1 -type f -perm -u+x -name '*_bench' | sort)
if [ "${#benchmarks[@]}" -eq 0 ]; then
  echo "no benchmark executables in build-bench/bench" >&2
  exit 1
fi

status=0
for bench in "${benchmarks[@]}"; do
  echo "=== $(basename "$bench")"
  if ! "$bench" "$@"; then
    echo "FAILED: $(basename "$bench")" >&2
    status=1
  fi
done
exit "$status"
