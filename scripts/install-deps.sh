#!/usr/bin/env bash
# Installs what eventsourced needs to build and test on Debian 12 (apt only).
# Skips apt entirely when everything is already installed.
#
#   scripts/install-deps.sh            the build: compiler, CMake, SQLite, nlohmann-json, GoogleTest,
#                                      the client libraries of the server targets (libpq, hiredis,
#                                      nats.c, libmongoc; Boost headers for the WebSocket server)
#   scripts/install-deps.sh --servers  also the PostgreSQL, Redis and NATS servers, and Node.js,
#                                      Chromium and ChromeDriver for the browser test
#                                      (scripts/services.sh runs the servers for the tests)
#   scripts/install-deps.sh --fuzz     also Clang 14 with libFuzzer and llvm-symbolizer, for the
#                                      fuzz targets (scripts/fuzz.sh)
# The two flags combine; scripts/fuzz.sh installs what it needs with --fuzz.
set -euo pipefail

packages=(build-essential cmake pkg-config nlohmann-json3-dev libsqlite3-dev
          libgtest-dev libgmock-dev libbenchmark-dev libpq-dev libhiredis-dev libnats-dev
          libmongoc-dev libboost-dev)
# redis-server brings redis-tools (redis-cli); postgresql brings psql.
server_packages=(postgresql redis-server nats-server nodejs chromium chromium-driver)
# libclang-rt-14-dev holds libFuzzer and the sanitizers' runtimes; llvm-14 the symbolizer that
# puts file:line into their reports.
fuzz_packages=(clang-14 libclang-rt-14-dev llvm-14)

for flag in "$@"; do
  case "$flag" in
    --servers) packages+=("${server_packages[@]}") ;;
    --fuzz) packages+=("${fuzz_packages[@]}") ;;
    *) echo "usage: $0 [--servers] [--fuzz]" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
