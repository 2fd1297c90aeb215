#!/usr/bin/env bash
# blueGreenDeploy's runbook as a plain script over ssh, for the deploy part to compare with: the same steps
# in the same order — install on every node (in parallel), smoke test on the blue node, then node by node:
# drain in HAProxy, wait for no sessions, maintenance, switch the live symlink (ln -s + mv -T), restart, wait
# for health, ready, wait until HAProxy says UP; then prune old releases. None of the durability: no retries,
# no record of where it stopped, no gates, a new ssh connection per step as a script would make.
#
# env:  SSH_OPTS (words), SSH_USER, SOCKET, BACKEND, REPO, REF, RELEASE, PORT, CTL, KEEP, TIMEOUT (seconds)
# args: NODE... as name:address:haproxy-server:dir, the blue node first
set -euo pipefail
read -r -a ssh_opts <<<"$SSH_OPTS"

on() { local addr=$1; shift; ssh "${ssh_opts[@]}" "$SSH_USER@$addr" "$@"; }
hap() { printf '%s\n' "$1" | socat -t 5 - "UNIX-CONNECT:$SOCKET"; }
# stat SERVER COLUMN: a column of HAProxy's `show stat` CSV for BACKEND/SERVER, found by its header name.
stat() {
  hap 'show stat' | awk -F, -v b="$BACKEND" -v s="$1" -v col="$2" '
    NR == 1 { sub(/^# /, ""); for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
    $1 == b && $2 == s { print $c }'
}
drained() { [ "$(stat "$1" scur)" = 0 ]; }
up() { case $(stat "$1" status) in UP*) return 0 ;; *) return 1 ;; esac; }
healthy() { curl -fsS -o /dev/null -m 5 "http://$1:$PORT/health"; }
# wait_for WHAT COMMAND...: polls every 100 ms, at most TIMEOUT seconds.
wait_for() {
  local what=$1 deadline=$((SECONDS + TIMEOUT)); shift
  until "$@"; do
    ((SECONDS < deadline)) || { echo "timed out waiting for $what" >&2; exit 1; }
    sleep 0.1
  done
}

install() { # ADDRESS DIR
  on "$1" "set -e; root='$2/deploys'; d=\"\$root/$RELEASE\"
    [ -e \"\$d/.opsflow-release\" ] && exit 0
    mkdir -p \"\$root\"; t=\$(mktemp -d \"\$root/.plain-$RELEASE.XXXXXX\")
    git clone -q -- '$REPO' \"\$t\"
    git -C \"\$t\" -c advice.detachedHead=false checkout -q --detach '$REF'
    (cd \"\$t\" && sh -c 'echo built > BUILT')
    echo '$RELEASE' >\"\$t/.opsflow-release\"; chmod 755 \"\$t\"; mv -T \"\$t\" \"\$d\""
}

switch_node() { # ADDRESS SERVER DIR
  local addr=$1 server=$2 dir=$3
  hap "set server $BACKEND/$server state drain" >/dev/null
  wait_for "$server to drain" drained "$server"
  hap "set server $BACKEND/$server state maint" >/dev/null
  on "$addr" "ln -s -- '$dir/deploys/$RELEASE' '$dir/current.tmp' && mv -T -- '$dir/current.tmp' '$dir/current'"
  on "$addr" "sh '$CTL' '$dir/current' '$addr' '$PORT' '$dir'"
  wait_for "$addr to be healthy" healthy "$addr"
  hap "set server $BACKEND/$server state ready" >/dev/null
  wait_for "$server to be UP" up "$server"
}

prune() { # ADDRESS DIR PREVIOUS: keep KEEP releases, the live and the previous one among them
  on "$1" "cd '$2/deploys' && ls -t | grep -vx -e '$RELEASE' -e '$3' | tail -n +$((KEEP - 1)) | xargs -r rm -rf --"
}

nodes=("$@")
pids=()
for n in "${nodes[@]}"; do
  IFS=: read -r _ addr _ dir <<<"$n"
  install "$addr" "$dir" & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

declare -A previous
for n in "${nodes[@]}"; do
  IFS=: read -r name addr _ dir <<<"$n"
  previous[$name]=$(on "$addr" "basename \"\$(readlink '$dir/current')\"")
done

IFS=: read -r _ addr _ dir <<<"${nodes[0]}"
on "$addr" "cd '$dir/deploys/$RELEASE' && python3 -c 'import ast; ast.parse(open(\"app.py\").read())'"

for n in "${nodes[@]}"; do
  IFS=: read -r _ addr server dir <<<"$n"
  switch_node "$addr" "$server" "$dir"
done

for n in "${nodes[@]}"; do
  IFS=: read -r name addr _ dir <<<"$n"
  prune "$addr" "$dir" "${previous[$name]}"
done
echo "deployed $RELEASE"
