#!/usr/bin/env bash
# Quick start, command 1: install dependencies, build, run the demo on embedded SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
  -DEVENTSOURCED_BUILD_TESTS=OFF -DEVENTSOURCED_BUILD_BENCH=OFF >/dev/null
cmake --build build -j"$(nproc)" --target quickstart user_management cqrs_quickstart game_player game_sync
cd build && ./examples/quickstart
echo
echo "== The seeds' user-management flow: mapper, relay, handlers (examples/user_management.cpp)"
./examples/user_management
echo
echo "== CQRS quick start: commands, a user aggregate, a UserCreated greeting (examples/cqrs_quickstart.cpp)"
./examples/cqrs_quickstart
echo
echo "== A game player aggregate: level-ups, snapshots, retries, time travel (examples/game_player.cpp)"
./examples/game_player
echo
echo "== Event sync: a game state, a client that disconnects and catches up (examples/game_sync.cpp)"
./examples/game_sync
