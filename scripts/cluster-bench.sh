#!/usr/bin/env bash
# A throwaway local cluster for the benchmarks in BENCHMARKS.md: one PostgreSQL (Debian binaries, default fsync on),
# one Redis (no persistence) and N release `server` processes sharing one address through SO_REUSEPORT.
#
#   scripts/cluster-bench.sh start N [server flags…]   fresh database and Redis, N nodes (e.g. --bench-topics)
#   scripts/cluster-bench.sh pids                      the nodes' pids, comma separated (for bench --server-pid)
#   scripts/cluster-bench.sh status                    what is running
#   scripts/cluster-bench.sh stats                     RSS and CPU seconds per process, the kernel's socket memory
#   scripts/cluster-bench.sh stop                      stops every process this script started
#
# Environment: CLUSTER_DIR (default /tmp/parley-cluster: data, logs and the pid file), CLUSTER_ADDR (127.0.0.1:4200),
# CLUSTER_PG_PORT (5547), CLUSTER_REDIS_PORT (6390), SERVER_BIN (target/release/server).
# Every process started is listed in $CLUSTER_DIR/pids ("role pid" lines); `stop` ends exactly those.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${CLUSTER_DIR:-/tmp/parley-cluster}"
ADDR="${CLUSTER_ADDR:-127.0.0.1:4200}"
PG_PORT="${CLUSTER_PG_PORT:-5547}"
REDIS_PORT="${CLUSTER_REDIS_PORT:-6390}"
SERVER_BIN="${SERVER_BIN:-$REPO_ROOT/target/release/server}"
PIDS="$DIR/pids"
SECRET="$(printf 'x%.0s' $(seq 64))"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'cluster-bench: %s\n' "$*" >&2; exit 1; }

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin() {
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  [ -n "$bin" ] || die "no PostgreSQL binaries under /usr/lib/postgresql"
  printf '%s/%s' "$bin" "$1"
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# Waits up to $2 seconds for $1 (a command) to succeed.
wait_for() {
  local check="$1" seconds="$2" i
  for ((i = 0; i < seconds * 10; i++)); do
    if eval "$check"; then return 0; fi
    sleep 0.1
  done
  return 1
}

running_pids() {
  [ -f "$PIDS" ] || return 0
  while read -r role pid; do
    if alive "$pid"; then printf '%s %s\n' "$role" "$pid"; fi
  done <"$PIDS"
}

start_postgres() {
  mkdir -p "$DIR/pg"
  [ "$(id -u)" = 0 ] && chown postgres "$DIR/pg"
  as_postgres "$(pg_bin initdb)" -A trust -U postgres --no-sync -D "$DIR/pg/data" >"$DIR/initdb.log" 2>&1 \
    || die "initdb failed: see $DIR/initdb.log"
  # Default durability: fsync = on, synchronous_commit = on.
  local postgres
  postgres="$(pg_bin postgres)"
  (
    # exec: no shell stays behind waiting for the postmaster.
    if [ "$(id -u)" = 0 ]; then set -- runuser -u postgres --; else set --; fi
    exec "$@" "$postgres" -D "$DIR/pg/data" -p "$PG_PORT" -k "$DIR/pg" \
      -c listen_addresses=127.0.0.1 -c max_connections=200
  ) >"$DIR/postgres.log" 2>&1 &
  wait_for "[ -s '$DIR/pg/data/postmaster.pid' ] && '$(pg_bin pg_isready)' -q -h 127.0.0.1 -p $PG_PORT" 30 \
    || die "postgres did not start: see $DIR/postgres.log"
  printf 'postgres %s\n' "$(head -n1 "$DIR/pg/data/postmaster.pid")" >>"$PIDS"
}

start_redis() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" \
    >"$DIR/redis.log" 2>&1 &
  printf 'redis %s\n' "$!" >>"$PIDS"
  wait_for "redis-cli -p $REDIS_PORT ping >/dev/null 2>&1" 10 || die "redis did not start: see $DIR/redis.log"
}

# Starts node $1 with the remaining arguments as extra flags and waits for its `listening` line.
start_node() {
  local n="$1"
  shift
  mkdir -p "$DIR/n$n"
  (
    ulimit -n "$(ulimit -Hn)"
    cd "$REPO_ROOT"
    exec "$SERVER_BIN" --addr "$ADDR" --reuse-port --data-dir "$DIR/n$n" \
      --database-url "postgres://postgres@127.0.0.1:$PG_PORT/postgres" --redis-url "redis://127.0.0.1:$REDIS_PORT" \
      --secret-key-base "$SECRET" --max-sockets-per-ip 0 --max-connects-per-ip-per-10s 0 "$@"
  ) >"$DIR/n$n.log" 2>&1 &
  printf 'server %s\n' "$!" >>"$PIDS"
}

wait_listening() {
  local n="$1"
  wait_for "grep -q 'listening' '$DIR/n$n.log'" 60 || die "node $n did not start: see $DIR/n$n.log"
}

cmd_start() {
  local nodes="${1:-}"
  [[ "$nodes" =~ ^[0-9]+$ ]] && [ "$nodes" -ge 1 ] || die "usage: $0 start N [server flags…]"
  shift
  [ -x "$SERVER_BIN" ] || die "no $SERVER_BIN (cargo build --release -p server)"
  [ -z "$(running_pids)" ] || die "a cluster is running (scripts/cluster-bench.sh stop)"
  rm -rf "$DIR"
  mkdir -p "$DIR"
  : >"$PIDS"
  log "postgres on 127.0.0.1:$PG_PORT, redis on 127.0.0.1:$REDIS_PORT, $nodes node(s) on $ADDR ($DIR)"
  start_postgres
  start_redis
  # The first node applies the migrations; the others start together once it listens.
  start_node 1 "$@"
  wait_listening 1
  local n
  for ((n = 2; n <= nodes; n++)); do start_node "$n" "$@"; done
  for ((n = 2; n <= nodes; n++)); do wait_listening "$n"; done
  grep -h 'listening' "$DIR"/n*.log | sed 's/^/   /' >&2
  cmd_pids
}

cmd_pids() {
  running_pids | awk '$1 == "server" { printf "%s%s", sep, $2; sep = "," } END { print "" }'
}

cmd_stats() {
  local role pid
  local tick
  tick="$(getconf CLK_TCK)"
  printf '%-9s %8s %12s %10s %10s\n' role pid rss_kib user_s sys_s
  running_pids | while read -r role pid; do
    # Each role with its children (PostgreSQL's backends), RSS summed (shared pages counted once per process).
    local all rss=0 user=0 sys=0 p
    all="$pid $(pgrep -P "$pid" | tr '\n' ' ' || true)"
    for p in $all; do
      rss=$((rss + $(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)))
      read -r user sys < <(awk -v u="$user" -v s="$sys" '{ sub(/^.*\) /, ""); print u + $12, s + $13 }' "/proc/$p/stat")
    done
    printf '%-9s %8s %12s %10.1f %10.1f\n' "$role" "$pid" "$rss" "$(echo "$user / $tick" | bc -l)" "$(echo "$sys / $tick" | bc -l)"
  done
  sed 's/^/  /' /proc/net/sockstat
}

cmd_stop() {
  [ -f "$PIDS" ] || { log "nothing started"; return 0; }
  local role pid
  # Nodes first (they leave the cluster through Redis), then Redis, then PostgreSQL (fast shutdown on SIGINT).
  for wanted in server redis postgres; do
    while read -r role pid; do
      [ "$role" = "$wanted" ] && alive "$pid" || continue
      if [ "$role" = postgres ]; then kill -INT "$pid"; else kill -TERM "$pid"; fi
    done <"$PIDS"
    while read -r role pid; do
      [ "$role" = "$wanted" ] || continue
      wait_for "! kill -0 $pid 2>/dev/null" 20 || { log "$role $pid did not stop: killing it"; kill -KILL "$pid" 2>/dev/null || true; }
    done <"$PIDS"
  done
  log "stopped"
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  pids) cmd_pids ;;
  status) running_pids ;;
  stats) cmd_stats ;;
  stop) cmd_stop ;;
  *) die "usage: $0 start N [server flags…] | pids | status | stats | stop" ;;
esac
