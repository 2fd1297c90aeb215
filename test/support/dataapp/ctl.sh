#!/bin/sh
# The test application's restart command: a new instance that loads $1/config.json, listening on $2:$3.
# $1 its directory (config, pid file, log), $2 address, $3 port.
dir=$1 addr=$2 port=$3
here=$(dirname "$0")
exec sh "$here/../restart.sh" "$dir" "$addr" "$port" python3 "$here/app.py" serve "$dir/config.json" "$addr" "$port"
