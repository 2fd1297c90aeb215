#!/bin/sh
# Restarts a test service: stops the instance whose pid is in $1/app.pid, starts the given command detached (log
# in $1/app.log), and waits until it listens on $2:$3. Usage: restart.sh DIR ADDRESS PORT PROGRAM [ARGS...]
dir=$1 addr=$2 port=$3
shift 3
if [ -s "$dir/app.pid" ]; then
  pid=$(cat "$dir/app.pid")
  kill "$pid" 2>/dev/null
  n=0; while kill -0 "$pid" 2>/dev/null && [ $n -lt 50 ]; do n=$((n+1)); sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
fi
setsid "$@" </dev/null >"$dir/app.log" 2>&1 &
echo $! >"$dir/app.pid"
n=0
until python3 -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 0.2).close()' "$addr" "$port" 2>/dev/null; do
  n=$((n+1)); [ $n -lt 100 ] || { echo "app did not start listening on $addr:$port" >&2; cat "$dir/app.log" >&2; exit 1; }
  sleep 0.1
done
