#!/usr/bin/env bash
# Starts and stops the servers the integration tests run against: PostgreSQL, Redis and NATS
# (with JetStream), each on 127.0.0.1 only, on a port of its own (not the default, so a system
# server is never in the way), with data, logs and pid files in one state directory.
#
#   scripts/services.sh start  [postgres|redis|nats ...]   start (default: all); a running one is reused
#   scripts/services.sh stop   [postgres|redis|nats ...]   stop by pid (default: all)
#   scripts/services.sh status [postgres|redis|nats ...]   exit status 3 if any named one is not running
#   scripts/services.sh env    [postgres|redis|nats ...]   export lines for eval, for running ones only
#   scripts/services.sh clean                              stop all, delete the state directory
#
#   eval "$(scripts/services.sh env)"   sets, for the servers that are running:
#     EVENTSOURCED_TEST_POSTGRES_URI=postgresql://es_test:PASSWORD@127.0.0.1:55432/es_test
#     EVENTSOURCED_TEST_REDIS_URI=redis://default:PASSWORD@127.0.0.1:56379
#     EVENTSOURCED_TEST_NATS_URL=nats://127.0.0.1:54222
#
# Environment (defaults in brackets):
#   EVENTSOURCED_SERVICES_DIR       state directory [${TMPDIR:-/tmp}/eventsourced-services-$UID]
#   EVENTSOURCED_SERVICES_TIMEOUT   seconds to wait for a server to be ready, or to stop, before
#                                   giving up (start) or sending SIGKILL (stop) [60]
#   EVENTSOURCED_PG_PORT            [55432]
#   EVENTSOURCED_PG_PASSWORD        password of the role es_test [es_test_password]
#   EVENTSOURCED_PG_BINDIR          PostgreSQL binaries [newest /usr/lib/postgresql/*/bin]
#   EVENTSOURCED_REDIS_PORT         [56379]
#   EVENTSOURCED_REDIS_PASSWORD     requirepass, so clients exercise AUTH; set it empty for no
#                                   password [es_test_password]
#   EVENTSOURCED_NATS_PORT          [54222]
#   EVENTSOURCED_NATS_MONITOR_PORT  HTTP monitoring (/healthz) [58222]
# Passwords are limited to [A-Za-z0-9._~-] so they go into URIs unescaped.
#
# What the servers are: PostgreSQL (initdb once into the state directory; superuser "postgres"
# over the Unix socket in STATE/postgres, trusted; role es_test with CREATEDB and database
# es_test, scram-sha-256 password over TCP; fsync off, it is test data), Redis (no persistence,
# requirepass), nats-server -js (store in STATE/nats/jetstream, no authentication). Data survives
# stop/start; `clean` wipes it. Install the packages with `scripts/install-deps.sh --servers`.
# As root, PostgreSQL runs as the system user postgres (initdb refuses root); Redis and NATS run
# as the caller. As a normal user everything runs as that user (sudo is needed for apt only).
# Only pids recorded in the state directory are ever signalled, and only if the process still
# has the expected name: servers this script did not start are never touched.
set -euo pipefail

state_dir=${EVENTSOURCED_SERVICES_DIR:-${TMPDIR:-/tmp}/eventsourced-services-$(id -u)}
timeout_s=${EVENTSOURCED_SERVICES_TIMEOUT:-60}
pg_port=${EVENTSOURCED_PG_PORT:-55432}
pg_password=${EVENTSOURCED_PG_PASSWORD:-es_test_password}
pg_user=es_test
pg_db=es_test
redis_port=${EVENTSOURCED_REDIS_PORT:-56379}
redis_password=${EVENTSOURCED_REDIS_PASSWORD-es_test_password}
nats_port=${EVENTSOURCED_NATS_PORT:-54222}
nats_monitor_port=${EVENTSOURCED_NATS_MONITOR_PORT:-58222}
all_services=(postgres redis nats)

say() { echo "services: $*" >&2; }
die() { echo "services: error: $*" >&2; exit 1; }

for v in timeout_s pg_port redis_port nats_port nats_monitor_port; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done
[[ $pg_password =~ ^[A-Za-z0-9._~-]+$ ]] || die "EVENTSOURCED_PG_PASSWORD must match [A-Za-z0-9._~-]+"
[[ $redis_password =~ ^[A-Za-z0-9._~-]*$ ]] || die "EVENTSOURCED_REDIS_PASSWORD must match [A-Za-z0-9._~-]*"

now() { echo "${EPOCHREALTIME//[!0-9]/}"; }   # microseconds (the separator follows the locale)
elapsed() { local us=$(( $(now) - $1 )); printf '%d.%01ds' $((us / 1000000)) $((us / 100000 % 10)); }

is_root() { [ "$(id -u)" -eq 0 ]; }

find_bin() {  # name: print its path (PATH, then the sbin directories a normal user may lack)
  local d
  if command -v "$1" >/dev/null 2>&1; then command -v "$1"; return; fi
  for d in /usr/sbin /usr/local/sbin /sbin /usr/local/bin /usr/bin; do
    if [ -x "$d/$1" ]; then echo "$d/$1"; return; fi
  done
  die "$1 not found; install the servers with scripts/install-deps.sh --servers"
}

# True if pid runs and, given a name, is called that. A zombie counts as gone: a server that
# exited stays one until its parent (PID 1 after this script exits) reaps it, which in a container
# whose PID 1 is not an init may be never.
proc_alive() {  # pid [comm]
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }   # after "pid (comm) ": the state letter
  [ "${stat%% *}" != Z ] || return 1
  [ -z "${2:-}" ] || [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}

# A pid from a pid file, printed only if that process is alive and still called $2.
live_pid() {  # pidfile comm
  local pid
  [ -r "$1" ] || return 1
  read -r pid <"$1" || [ -n "${pid:-}" ] || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  proc_alive "$pid" "$2" || return 1
  echo "$pid"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

check_port_free() {  # port what env-var
  if port_in_use "$1"; then
    die "127.0.0.1:$1 ($2) is already in use by a process this script did not start; stop it or set $3"
  fi
}

log_tail() {  # file
  if [ -r "$1" ]; then
    echo "---- last lines of $1" >&2
    tail -n 30 "$1" >&2
    echo "----" >&2
  fi
}

# Polls `probe` every 0.1 s until it succeeds. Fails fast if the server's process is gone.
wait_ready() {  # name pid log probe...
  local name=$1 pid=$2 log=$3; shift 3
  local deadline=$(( $(now) + timeout_s * 1000000 ))
  until "$@"; do
    if ! proc_alive "$pid"; then
      log_tail "$log"
      die "$name exited while starting (pid $pid); see $log"
    fi
    if [ "$(now)" -gt "$deadline" ]; then
      log_tail "$log"
      die "$name not ready after ${timeout_s}s (pid $pid); see $log"
    fi
    sleep 0.1
  done
}

# SIGTERM (or $3), wait up to the timeout, then SIGKILL; only if the pid still has the right name.
kill_wait() {  # pid comm [first-signal]
  local pid=$1 comm=$2 sig=${3:-TERM} deadline
  proc_alive "$pid" "$comm" || return 0
  kill -s "$sig" "$pid" 2>/dev/null || return 0
  deadline=$(( $(now) + timeout_s * 1000000 ))
  while proc_alive "$pid" "$comm"; do
    if [ "$(now)" -gt "$deadline" ]; then
      say "$comm (pid $pid) still running after ${timeout_s}s: SIGKILL"
      kill -s KILL "$pid" 2>/dev/null || true
      deadline=$(( $(now) + 10000000 ))
      while proc_alive "$pid"; do
        [ "$(now)" -lt "$deadline" ] || die "$comm (pid $pid) survives SIGKILL"
        sleep 0.1
      done
      return 0
    fi
    sleep 0.1
  done
}

ensure_state_dir() {
  [ ! -L "$state_dir" ] || die "$state_dir is a symlink; refusing to use it"
  mkdir -p "$state_dir"
  [ "$(stat -c %u "$state_dir")" = "$(id -u)" ] || die "$state_dir is not owned by $(id -un)"
  chmod 0711 "$state_dir"   # traversable, not listable: as root, postgres must reach its subdirectory
}

recorded_port_matches() {  # dir port name env-var
  local recorded=""
  [ -r "$1/port" ] && read -r recorded <"$1/port"
  if [ -n "$recorded" ] && [ "$recorded" != "$2" ]; then
    die "$3 is running on port $recorded, not $2 ($4): stop it first"
  fi
}

# ---------------------------------------------------------------------------------- PostgreSQL
pg_dir=$state_dir/postgres
pg_data=$pg_dir/data
pg_log=$pg_dir/postgres.log
pg_uri() { echo "postgresql://$pg_user:$pg_password@127.0.0.1:$1/$pg_db"; }

as_pg() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_bindir() {
  local d version=""
  if [ -n "${EVENTSOURCED_PG_BINDIR:-}" ]; then echo "$EVENTSOURCED_PG_BINDIR"; return; fi
  # An existing cluster needs its own major version; otherwise the newest installed one.
  [ -r "$pg_data/PG_VERSION" ] && read -r version <"$pg_data/PG_VERSION"
  if [ -n "$version" ] && [ -x "/usr/lib/postgresql/$version/bin/initdb" ]; then
    echo "/usr/lib/postgresql/$version/bin"; return
  fi
  d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  die "PostgreSQL server binaries (initdb) not found; install them with scripts/install-deps.sh --servers"
}

postgres_pid() { live_pid "$pg_data/postmaster.pid" postgres; }

pg_init() {  # bindir
  local bin=$1 version="" major
  major=$("$bin/pg_ctl" --version | awk '{print $3}' | sed 's/^\([0-9]*\).*/\1/')
  [ -r "$pg_data/PG_VERSION" ] && read -r version <"$pg_data/PG_VERSION"
  if [ -f "$pg_dir/initdb.done" ] && [ "$version" = "$major" ]; then return 0; fi
  if [ -e "$pg_data" ]; then
    say "postgres: discarding the cluster in $pg_data (incomplete, or version ${version:-?} and binaries are $major)"
    rm -rf "$pg_data"
  fi
  rm -f "$pg_dir/initdb.done"
  say "postgres: initdb ($bin)"
  as_pg "$bin/initdb" -D "$pg_data" -U postgres -E UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 >"$pg_dir/initdb.log" 2>&1 \
    || { log_tail "$pg_dir/initdb.log"; die "initdb failed; see $pg_dir/initdb.log"; }
  # Only the socket in $pg_dir (mode 0700) and password logins on 127.0.0.1.
  as_pg tee "$pg_data/pg_hba.conf" >/dev/null <<'EOF'
# written by scripts/services.sh
local all all                trust
host  all all 127.0.0.1/32   scram-sha-256
EOF
  as_pg tee -a "$pg_data/postgresql.conf" >/dev/null <<'EOF'

# scripts/services.sh: a throw-away test server (port, socket directory and listen address
# are given on the command line at each start)
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
  as_pg touch "$pg_dir/initdb.done"
}

postgres_start() {
  local bin pid t0 f lock_pid
  t0=$(now)
  mkdir -p "$pg_dir"
  if is_root; then
    getent passwd postgres >/dev/null || die "no system user 'postgres'; install the postgresql package"
    chown postgres:postgres "$pg_dir"
  fi
  chmod 0700 "$pg_dir"
  as_pg test -w "$pg_dir" || die "$pg_dir is not reachable by user postgres (is a parent directory private?); set EVENTSOURCED_SERVICES_DIR"
  # Unix socket paths are limited to 107 bytes.
  [ ${#pg_dir} -le 90 ] || die "$pg_dir is too long for a Unix socket path; set EVENTSOURCED_SERVICES_DIR"
  [[ $pg_dir != *[[:space:]]* ]] || die "$pg_dir contains whitespace; set EVENTSOURCED_SERVICES_DIR"
  bin=$(pg_bindir)

  if pid=$(postgres_pid); then
    recorded_port_matches "$pg_dir" "$pg_port" postgres EVENTSOURCED_PG_PORT
    say "postgres: already running (pid $pid) on 127.0.0.1:$pg_port"
  else
    # Stale locks of a postmaster that died (kill -9): PostgreSQL removes them itself unless the
    # dead pid is still an unreaped zombie, which it mistakes for a live postmaster.
    if [ -e "$pg_data/postmaster.pid" ]; then
      say "postgres: removing stale $pg_data/postmaster.pid"
      rm -f "$pg_data/postmaster.pid"
    fi
    for f in "$pg_dir"/.s.PGSQL.*.lock; do
      [ -e "$f" ] || continue
      read -r lock_pid <"$f" || true
      if ! proc_alive "${lock_pid:-0}" postgres; then
        say "postgres: removing stale socket lock $f"
        rm -f "$f" "${f%.lock}"
      fi
    done
    check_port_free "$pg_port" postgres EVENTSOURCED_PG_PORT
    pg_init "$bin"
    echo "$pg_port" >"$pg_dir/port"
    as_pg "$bin/pg_ctl" -D "$pg_data" -l "$pg_log" -w -t "$timeout_s" \
      -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1" start >/dev/null 9>&- \
      || { log_tail "$pg_log"; die "postgres did not start; see $pg_log"; }
    pid=$(postgres_pid) || { log_tail "$pg_log"; die "postgres started but its postmaster.pid is unusable"; }
  fi

  # The test role and database (idempotent; re-applies the password on every start).
  as_pg "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$pg_dir" -p "$pg_port" -U postgres -d postgres \
    -v user="$pg_user" -v db="$pg_db" -v pw="$pg_password" >/dev/null <<'EOF' \
    || die "postgres: could not create role/database $pg_user/$pg_db"
SELECT format('CREATE ROLE %I LOGIN CREATEDB', :'user')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'user', :'pw') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
EOF
  # Ready means: a password login over TCP answers a query.
  wait_ready postgres "$pid" "$pg_log" pg_probe "$bin"
  say "postgres: ready (pid $pid) on 127.0.0.1:$pg_port in $(elapsed "$t0")"
}

pg_probe() { "$1/psql" -X -qAt -d "$(pg_uri "$pg_port")" -c 'SELECT 1' >/dev/null 2>&1; }

postgres_stop() {
  local pid bin
  if ! pid=$(postgres_pid); then
    if [ -e "$pg_data/postmaster.pid" ]; then rm -f "$pg_data/postmaster.pid"; say "postgres: removed stale pid file"; fi
    say "postgres: not running"; return 0
  fi
  bin=$(pg_bindir)
  if ! as_pg "$bin/pg_ctl" -D "$pg_data" -m fast -w -t "$timeout_s" stop >/dev/null 2>&1; then
    say "postgres: pg_ctl stop -m fast failed or timed out; immediate shutdown (SIGQUIT), then SIGKILL"
    kill_wait "$pid" postgres QUIT
  fi
  say "postgres: stopped (pid $pid)"
}

# --------------------------------------------------------------------------------------- Redis
redis_dir=$state_dir/redis
redis_log=$redis_dir/redis.log
redis_pidfile=$redis_dir/redis.pid
# With a password: user "default" (Redis 6+ ACL name of the requirepass user). The empty-user
# form redis://:PASSWORD@ is refused by Debian 12's redis-cli -u (it sends AUTH "" PASSWORD).
redis_uri() { echo "redis://${redis_password:+default:$redis_password@}127.0.0.1:$1"; }

redis_pid() { live_pid "$redis_pidfile" redis-server; }

# AUTH (if a password is set) and PING in raw RESP over /dev/tcp: needs no redis-cli.
# shellcheck disable=SC2016  # the $ in the printf formats are RESP bulk-string lengths
redis_probe() {
  (
    export LC_ALL=C
    exec 3<>"/dev/tcp/127.0.0.1/$redis_port"
    if [ -n "$redis_password" ]; then
      printf '*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n' "${#redis_password}" "$redis_password" >&3
      IFS= read -r -t 2 reply <&3
      [[ $reply == +OK* ]]
    fi
    printf '*1\r\n$4\r\nPING\r\n' >&3
    IFS= read -r -t 2 reply <&3
    [[ $reply == +PONG* ]]
  ) 2>/dev/null
}

redis_start() {
  local pid server t0
  t0=$(now)
  mkdir -p "$redis_dir"
  chmod 0700 "$redis_dir"
  if pid=$(redis_pid); then
    recorded_port_matches "$redis_dir" "$redis_port" redis EVENTSOURCED_REDIS_PORT
    say "redis: already running (pid $pid) on 127.0.0.1:$redis_port"
  else
    if [ -e "$redis_pidfile" ]; then say "redis: removing stale pid file"; rm -f "$redis_pidfile"; fi
    check_port_free "$redis_port" redis EVENTSOURCED_REDIS_PORT
    server=$(find_bin redis-server)
    # A config file (mode 0600) keeps the password off the command line. Logs go to stdout,
    # which is the log file; the server runs in the foreground of its own session, so $! is its pid.
    {
      echo "# written by scripts/services.sh at each start"
      echo "port $redis_port"
      echo "bind 127.0.0.1"
      echo "protected-mode yes"
      echo "daemonize no"
      echo 'logfile ""'
      echo "dir \"$redis_dir\""
      echo 'save ""'
      echo "appendonly no"
      if [ -n "$redis_password" ]; then echo "requirepass $redis_password"; fi
    } >"$redis_dir/redis.conf"
    chmod 0600 "$redis_dir/redis.conf"
    echo "$redis_port" >"$redis_dir/port"
    echo "==== $(date '+%F %T') scripts/services.sh start" >>"$redis_log"
    setsid "$server" "$redis_dir/redis.conf" </dev/null >>"$redis_log" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$redis_pidfile"
  fi
  wait_ready redis "$pid" "$redis_log" redis_probe
  say "redis: ready (pid $pid) on 127.0.0.1:$redis_port in $(elapsed "$t0")"
}

redis_stop() {
  local pid
  if ! pid=$(redis_pid); then
    if [ -e "$redis_pidfile" ]; then rm -f "$redis_pidfile"; say "redis: removed stale pid file"; fi
    say "redis: not running"; return 0
  fi
  kill_wait "$pid" redis-server
  rm -f "$redis_pidfile"
  say "redis: stopped (pid $pid)"
}

# ---------------------------------------------------------------------------------------- NATS
nats_dir=$state_dir/nats
nats_log=$nats_dir/nats.log
nats_pidfile=$nats_dir/nats.pid
nats_url() { echo "nats://127.0.0.1:$1"; }

nats_pid() { live_pid "$nats_pidfile" nats-server; }

http_ok() {  # port path: true on HTTP 200
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1"
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
    IFS= read -r -t 2 status <&3
    [[ $status == "HTTP/1."?" 200"* ]]
  ) 2>/dev/null
}

# /healthz checks the server (and, with JetStream on, its JetStream state); js-enabled-only
# fails if JetStream is off (nats-server 2.9 name; 2.7/2.8 called it js-enabled).
nats_probe() {
  http_ok "$nats_monitor_port" /healthz && http_ok "$nats_monitor_port" '/healthz?js-enabled-only=true' \
    && port_in_use "$nats_port"
}

nats_start() {
  local pid server t0
  t0=$(now)
  mkdir -p "$nats_dir"
  chmod 0700 "$nats_dir"
  if pid=$(nats_pid); then
    recorded_port_matches "$nats_dir" "$nats_port" nats EVENTSOURCED_NATS_PORT
    say "nats: already running (pid $pid) on 127.0.0.1:$nats_port"
  else
    if [ -e "$nats_pidfile" ]; then say "nats: removing stale pid file"; rm -f "$nats_pidfile"; fi
    check_port_free "$nats_port" nats EVENTSOURCED_NATS_PORT
    check_port_free "$nats_monitor_port" "nats monitoring" EVENTSOURCED_NATS_MONITOR_PORT
    server=$(find_bin nats-server)
    echo "$nats_port" >"$nats_dir/port"
    echo "==== $(date '+%F %T') scripts/services.sh start" >>"$nats_log"
    setsid "$server" -js -a 127.0.0.1 -p "$nats_port" -m "$nats_monitor_port" \
      -sd "$nats_dir/jetstream" -n eventsourced-test </dev/null >>"$nats_log" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$nats_pidfile"
  fi
  wait_ready nats "$pid" "$nats_log" nats_probe
  say "nats: ready (pid $pid) on 127.0.0.1:$nats_port (monitoring :$nats_monitor_port) in $(elapsed "$t0")"
}

nats_stop() {
  local pid
  if ! pid=$(nats_pid); then
    if [ -e "$nats_pidfile" ]; then rm -f "$nats_pidfile"; say "nats: removed stale pid file"; fi
    say "nats: not running"; return 0
  fi
  kill_wait "$pid" nats-server
  rm -f "$nats_pidfile"
  say "nats: stopped (pid $pid)"
}

# ------------------------------------------------------------------------------------ commands
services=()
services_from_args() {  # args...: sets services, validated (default: all)
  local s
  if [ $# -eq 0 ]; then set -- "${all_services[@]}"; fi
  for s in "$@"; do
    case $s in
      postgres|redis|nats) services+=("$s") ;;
      *) die "unknown service '$s' (postgres, redis, nats)" ;;
    esac
  done
}

port_of() {  # service: the port it runs on (recorded at start), else the configured one
  local dir=$state_dir/$1 p=""
  [ -r "$dir/port" ] && read -r p <"$dir/port"
  if [ -z "$p" ]; then
    case $1 in postgres) p=$pg_port ;; redis) p=$redis_port ;; nats) p=$nats_port ;; esac
  fi
  echo "$p"
}

lock() {  # serialise start/stop/clean of concurrent callers (servers are started with fd 9 closed)
  ensure_state_dir
  exec 9>"$state_dir/.lock"
  flock -w "$timeout_s" 9 || die "another scripts/services.sh holds $state_dir/.lock"
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  start)
    services_from_args "$@"
    lock
    for s in "${services[@]}"; do "${s}_start"; done
    ;;
  stop)
    services_from_args "$@"
    if [ ! -d "$state_dir" ]; then say "nothing started (no $state_dir)"; exit 0; fi
    lock
    for s in "${services[@]}"; do "${s}_stop"; done
    ;;
  status)
    services_from_args "$@"
    rc=0
    for s in "${services[@]}"; do
      if pid=$("${s}_pid"); then
        echo "$s: running (pid $pid) on 127.0.0.1:$(port_of "$s")"
      else
        echo "$s: stopped"; rc=3
      fi
    done
    exit "$rc"
    ;;
  env)
    services_from_args "$@"
    for s in "${services[@]}"; do
      if ! "${s}_pid" >/dev/null; then echo "# $s: not running"; continue; fi
      case $s in
        postgres) echo "export EVENTSOURCED_TEST_POSTGRES_URI=$(pg_uri "$(port_of postgres)")" ;;
        redis)    echo "export EVENTSOURCED_TEST_REDIS_URI=$(redis_uri "$(port_of redis)")" ;;
        nats)     echo "export EVENTSOURCED_TEST_NATS_URL=$(nats_url "$(port_of nats)")" ;;
      esac
    done
    ;;
  clean)
    [ $# -eq 0 ] || die "clean takes no arguments"
    if [ ! -d "$state_dir" ]; then say "nothing to clean (no $state_dir)"; exit 0; fi
    lock
    for s in "${all_services[@]}"; do "${s}_stop"; done
    rm -rf "$pg_dir" "$redis_dir" "$nats_dir"
    rm -f "$state_dir/.lock"
    rmdir "$state_dir" 2>/dev/null || say "left $state_dir (it holds other files)"
    say "removed $state_dir"
    ;;
  -h|--help|help) usage ;;
  *) usage ;;
esac
