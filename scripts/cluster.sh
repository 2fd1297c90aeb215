#!/usr/bin/env bash
# A production-shaped Temporal on loopback, without Docker: the Temporal server (all four roles in one process)
# on a PostgreSQL cluster of its own, advanced visibility on PostgreSQL, the namespace with opsflow's search
# attributes, and the Web UI. The same server version and config as docker-compose.temporal.yml.
#
#   scripts/cluster.sh up       start what is not running (creates the cluster on first use); idempotent
#   scripts/cluster.sh down     stop the UI, the server and PostgreSQL; the data stays in the directory
#   scripts/cluster.sh status   addresses, pids and health; exit status 1 when a part is down
#   scripts/cluster.sh build    only find or build the programs (scripts/setup.sh test runs this)
#
# Settings (several clusters run side by side with different ones):
#   OPSFLOW_CLUSTER_DIR      ./data/cluster   PostgreSQL's data, the password, pid files and logs
#   OPSFLOW_CLUSTER_PORT     7333             frontend gRPC, at most 32757; the server also takes PORT+1..+10 and
#                                             PORT-300..-294
#   OPSFLOW_CLUSTER_UI_PORT  8333             Web UI
#   OPSFLOW_CLUSTER_PG_PORT  5533             PostgreSQL
#   OPSFLOW_CLUSTER_LOG_LEVEL (warn): the server log, server.log in the directory
#   TEMPORAL_NAMESPACE (default), TEMPORAL_NAMESPACE_RETENTION (720h), TEMPORAL_CODEC_ENDPOINT (UI; none)
#   TEMPORAL_SERVER_PATH, TEMPORAL_SQL_TOOL_PATH, TEMPORAL_UI_SERVER_PATH, TEMPORAL_CLI_PATH: programs to use
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=go-binary.sh
source "$root/scripts/go-binary.sh"

# docker-compose.temporal.yml runs these versions too (test/compose.test.ts checks that they agree).
TEMPORAL_SERVER_VERSION=1.29.1
TEMPORAL_UI_VERSION=2.42.1
TEMPORAL_CLI_VERSION=1.5.1
# Registered as Keyword; the same list as SEARCH_ATTRIBUTES in src/common/constants.ts (checked by the test).
SEARCH_ATTRIBUTES=(OpsEnvironment OpsService OpsRelease)

say() { printf 'cluster: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

port_setting() {
  local name=$1 value=${!1:-$2}
  [[ "$value" =~ ^[0-9]+$ ]] && ((value >= 1024 && value <= 65535)) || die "$name must be a port number from 1024 to 65535, not \"$value\""
  echo "$value"
}
cmd=${1:-status}
dir=${OPSFLOW_CLUSTER_DIR:-$root/data/cluster}
[[ "$dir" == /* ]] || dir="$PWD/$dir"
port=$(port_setting OPSFLOW_CLUSTER_PORT 7333)
# Temporal keeps its ports in a smallint column of PostgreSQL (cluster_membership): 32767 at most.
((port >= 1324 && port <= 32757)) || die "OPSFLOW_CLUSTER_PORT must be from 1324 to 32757 (the server also takes PORT-300 to PORT+10), not $port"
ui_port=$(port_setting OPSFLOW_CLUSTER_UI_PORT 8333)
pg_port=$(port_setting OPSFLOW_CLUSTER_PG_PORT 5533)
namespace=${TEMPORAL_NAMESPACE:-default}
address=127.0.0.1:$port
ui_url=http://127.0.0.1:$ui_port
pg_dir=$dir/postgres
pg_data=$pg_dir/data
# How a pid file's process is recognised as ours (these arguments, whatever the programs' paths).
server_args="--config config/temporal --env opsflow start"
ui_args="--config ui --env opsflow start"

programs() {
  server=$(go_binary temporal-server TEMPORAL_SERVER_PATH "go.temporal.io/server/cmd/server@v$TEMPORAL_SERVER_VERSION")
  sql_tool=$(go_binary temporal-sql-tool TEMPORAL_SQL_TOOL_PATH "go.temporal.io/server/cmd/tools/sql@v$TEMPORAL_SERVER_VERSION")
  ui_server=$(go_binary temporal-ui-server TEMPORAL_UI_SERVER_PATH "github.com/temporalio/ui-server/v2/cmd/server@v$TEMPORAL_UI_VERSION")
  cli=$(go_binary temporal TEMPORAL_CLI_PATH "github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_CLI_VERSION")
}

# --- PostgreSQL -------------------------------------------------------------------------------------------

# Debian keeps the server's programs outside PATH; the newest installed version wins (as in the tests).
pg_bin() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin/ 2>/dev/null | sort -V | tail -n 1)
  [[ -n "$found" ]] && { echo "${found%/}"; return; }
  command -v initdb >/dev/null || die "PostgreSQL's server programs (initdb, pg_ctl) not found: install PostgreSQL (Debian: postgresql)"
  dirname "$(command -v initdb)"
}

# initdb refuses to run as root: as root, PostgreSQL runs as the `postgres` system user.
as_pg() {
  local program=$1; shift
  # From /, which the postgres user can enter (this shell's directory may be private to root).
  if [[ $(id -u) -eq 0 ]]; then (cd / && runuser -u postgres -- "$(pg_bin)/$program" "$@"); else "$(pg_bin)/$program" "$@"; fi
}

pg_running() { [[ -f "$pg_data/PG_VERSION" ]] && as_pg pg_ctl -D "$pg_data" status >/dev/null 2>&1; }

password() { cat "$dir/postgres.password"; }

pg_init() {
  [[ -f "$pg_data/PG_VERSION" ]] && return
  say "creating PostgreSQL cluster in $pg_data"
  mkdir -p "$dir"
  chmod 755 "$dir"
  (umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' > "$dir/postgres.password")
  rm -rf "$pg_dir"
  if [[ $(id -u) -eq 0 ]]; then install -d -o postgres -g postgres -m 700 "$pg_dir"; else install -d -m 700 "$pg_dir"; fi
  # The password reaches initdb in a file only its user can read, never on a command line.
  install -m 600 "$dir/postgres.password" "$pg_dir/pwfile"
  [[ $(id -u) -ne 0 ]] || chown postgres "$pg_dir/pwfile"
  as_pg initdb -D "$pg_data" -U temporal --pwfile="$pg_dir/pwfile" --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pg_dir/pwfile"
  # Loopback TCP only, no unix socket (its path length limit would tie the cluster directory's depth to it).
  # Each Temporal role opens its own persistence and visibility pools (30 connections each at most).
  printf '%s\n' "listen_addresses = '127.0.0.1'" "unix_socket_directories = ''" 'max_connections = 200' >> "$pg_data/postgresql.conf"
}

pg_start() {
  pg_running && return
  port_free "$pg_port" OPSFLOW_CLUSTER_PG_PORT
  as_pg pg_ctl -D "$pg_data" -l "$pg_dir/postgres.log" -w -t 120 -o "-p $pg_port" start >/dev/null 9>&- ||
    die "PostgreSQL did not start; its log: $pg_dir/postgres.log"
}

# The schema job of docker-compose.temporal.yml, here: create the two databases when missing, then bring each
# schema to the version this server expects (both steps skip what is already done).
pg_schemas() {
  local schemas
  schemas=$(schema_dir)
  sql() { SQL_PASSWORD=$(password) "$sql_tool" --plugin postgres12 --ep 127.0.0.1 -p "$pg_port" -u temporal "$@"; }
  local pair db kind out
  for pair in temporal:temporal temporal_visibility:visibility; do
    db=${pair%:*} kind=${pair#*:}
    out=$(sql --db "$db" create 2>&1) || [[ "$out" == *"already exists"* ]] || die "creating database $db: $out"
    out=$(sql --db "$db" setup-schema -v 0.0 2>&1) || die "schema of $db: $out"
    out=$(sql --db "$db" update-schema -d "$schemas/$kind/versioned" 2>&1) || die "schema update of $db: $out"
  done
}

# The schemas ship inside the server's Go module.
schema_dir() {
  local mod
  mod="$(go env GOMODCACHE)/go.temporal.io/server@v$TEMPORAL_SERVER_VERSION"
  [[ -d "$mod" ]] || go mod download "go.temporal.io/server@v$TEMPORAL_SERVER_VERSION" >&2
  echo "$mod/schema/postgresql/v12"
}

# --- processes --------------------------------------------------------------------------------------------

# The pid in $dir/NAME.pid, if that process is alive and still the program we started.
pid_of() {
  local pid
  pid=$(cat "$dir/$1.pid" 2>/dev/null) || return 1
  [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$2" && echo "$pid"
}

port_free() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then die "127.0.0.1:$1 is taken by another program: choose another $2"; fi
}

# start NAME LOG ARGV...: a daemon in its own session (a Ctrl-C in this shell does not reach it), its pid filed,
# without the lock (fd 9), which it would otherwise hold for as long as it runs.
start() {
  local name=$1 log=$2; shift 2
  setsid "$@" >> "$log" 2>&1 < /dev/null 9>&- &
  echo $! > "$dir/$name.pid"
}

# stop NAME PATTERN: SIGTERM, then SIGKILL after 30 s (the server hands its shards back on a clean stop).
stop() {
  local pid
  pid=$(pid_of "$1" "$2") || { rm -f "$dir/$1.pid"; return 0; }
  kill -TERM "$pid"
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { say "$1 did not stop in 30 s: SIGKILL"; kill -KILL "$pid"; }
  rm -f "$dir/$1.pid"
}

server_start() {
  pid_of server "$server_args" >/dev/null && return
  port_free "$port" OPSFLOW_CLUSTER_PORT
  # Every name config/temporal/opsflow.yaml reads is set here (test/compose.test.ts checks), so nothing from the
  # caller's environment reaches the config; exported rather than given to `env`, which would show the password
  # in the process list.
  (
    export POSTGRES_SEEDS=127.0.0.1 DB_PORT="$pg_port" POSTGRES_USER=temporal POSTGRES_PWD
    POSTGRES_PWD=$(password)
    export DBNAME=temporal VISIBILITY_DBNAME=temporal_visibility FRONTEND_GRPC_PORT="$port"
    export BIND_ON_IP=127.0.0.1 TEMPORAL_BROADCAST_ADDRESS=127.0.0.1 LOG_LEVEL="${OPSFLOW_CLUSTER_LOG_LEVEL:-warn}"
    export DYNAMIC_CONFIG_FILE_PATH="$root/config/dynamicconfig/opsflow.yaml"
    start server "$dir/server.log" "$server" --root "$root" $server_args
  )
}

healthy() { "$cli" operator cluster health --address "$address" >/dev/null 2>&1; }

# wait_for WHAT PIDFILE-NAME PATTERN LOG CHECK...: until CHECK succeeds; fails at once if the process died.
wait_for() {
  local what=$1 name=$2 pattern=$3 log=$4; shift 4
  for _ in $(seq 240); do
    "$@" && return
    pid_of "$name" "$pattern" >/dev/null || die "$what exited; the end of $log:$(printf '\n'; tail -n 20 "$log")"
    sleep 0.5
  done
  die "$what not ready after 2 minutes; see $log"
}

# What the namespace job of docker-compose.temporal.yml does, with the same commands.
register() {
  "$cli" operator namespace describe --namespace "$namespace" --address "$address" >/dev/null 2>&1 ||
    "$cli" operator namespace create --namespace "$namespace" --retention "${TEMPORAL_NAMESPACE_RETENTION:-720h}" --address "$address" >/dev/null
  local sa out
  for sa in "${SEARCH_ATTRIBUTES[@]}"; do
    out=$("$cli" operator search-attribute create --namespace "$namespace" --name "$sa" --type Keyword --address "$address" 2>&1) && continue
    [[ "$out" == *"already exists"* ]] && continue
    [[ "$out" == *"different type"* ]] && die "$out"
    return 1
  done
}

# The server's caches learn of a new namespace within seconds; a run started before would be refused.
namespace_ready() { "$cli" workflow count --namespace "$namespace" --address "$address" >/dev/null 2>&1; }

ui_start() {
  pid_of ui "$ui_args" >/dev/null && return
  port_free "$ui_port" OPSFLOW_CLUSTER_UI_PORT
  mkdir -p "$dir/ui"
  cat > "$dir/ui/opsflow.yaml" <<EOF
# Written by scripts/cluster.sh on every start; docker-compose.temporal.yml gives its UI the same settings.
temporalGrpcAddress: $address
host: 127.0.0.1
port: $ui_port
enableUi: true
defaultNamespace: $namespace
notifyOnNewVersion: false
codec:
  endpoint: "${TEMPORAL_CODEC_ENDPOINT:-}"
cors:
  allowOrigins: ["$ui_url", "http://localhost:$ui_port"]
EOF
  start ui "$dir/ui.log" "$ui_server" --root "$dir" $ui_args
}

ui_ready() { curl -sf -o /dev/null "$ui_url/healthz"; }

# --- commands ---------------------------------------------------------------------------------------------

up() {
  mkdir -p "$dir"
  exec 9> "$dir/.lock"
  flock 9
  programs
  pg_init
  pg_start
  pg_schemas
  server_start
  wait_for "temporal-server" server "$server_args" "$dir/server.log" healthy
  retry_register
  wait_for "namespace $namespace" server "$server_args" "$dir/server.log" namespace_ready
  ui_start
  wait_for "temporal-ui-server" ui "$ui_args" "$dir/ui.log" ui_ready
  status
}

# Right after the first start the frontend may refuse the new namespace's search attributes for a moment.
retry_register() {
  for _ in $(seq 30); do register && return; sleep 1; done
  register || die "could not register namespace $namespace and its search attributes"
}

down() {
  [[ -d "$dir" ]] || return 0
  exec 9> "$dir/.lock"
  flock 9
  stop ui "$ui_args"
  stop server "$server_args"
  if pg_running; then as_pg pg_ctl -D "$pg_data" -m fast -w stop >/dev/null; fi
  say "stopped; the data stays in $dir"
}

status() {
  local ok=0 pid
  printf 'Temporal cluster in %s\n' "$dir"
  if pid=$(pid_of server "$server_args"); then
    if cli=${cli:-$(go_binary temporal TEMPORAL_CLI_PATH "github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_CLI_VERSION")} && healthy; then
      printf '  server:     %s (namespace %s), pid %s, SERVING\n' "$address" "$namespace" "$pid"
    else
      printf '  server:     %s, pid %s, NOT SERVING\n' "$address" "$pid"; ok=1
    fi
  else
    printf '  server:     %s, not running\n' "$address"; ok=1
  fi
  if pid=$(pid_of ui "$ui_args"); then printf '  Web UI:     %s, pid %s\n' "$ui_url" "$pid"; else printf '  Web UI:     %s, not running\n' "$ui_url"; ok=1; fi
  if pg_running; then
    printf '  PostgreSQL: 127.0.0.1:%s, pid %s\n' "$pg_port" "$(head -n 1 "$pg_data/postmaster.pid")"
  else
    printf '  PostgreSQL: 127.0.0.1:%s, not running\n' "$pg_port"; ok=1
  fi
  return $ok
}

case "$cmd" in
  up) up ;;
  down) down ;;
  status) status ;;
  build) programs; printf '%s\n' "$server" "$sql_tool" "$ui_server" "$cli" ;;
  *) die "usage: scripts/cluster.sh up|down|status|build (not \"$cmd\")" ;;
esac
