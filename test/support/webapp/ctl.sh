#!/bin/sh
# The test service's restart command: the live release's app, listening on $2:$3.
# $1 live symlink, $2 address, $3 port, $4 the node's own directory (pid file, log, fault switches).
live=$1 addr=$2 port=$3 dir=$4
[ -e "$dir/fail-restart" ] && { echo "restart refused: $dir/fail-restart exists" >&2; exit 1; }
[ -e "$dir/slow-restart" ] && sleep 3
exec sh "$(dirname "$0")/../restart.sh" "$dir" "$addr" "$port" python3 "$live/app.py" "$addr" "$port"
