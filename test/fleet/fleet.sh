#!/usr/bin/env bash
# opsflow test fleet: N independent sshd "hosts" on loopback.
#
# Host i (1-based) is named h<i>, listens on 127.0.K.<i>:PORT (K=10 unless --net) and has its own
# host key, sshd config, pid file, log, boot id file and "host root" directory
# under DIR/hosts/h<i>/. Every host accepts the same client key for the OS user
# opsflow-fleet (passwordless sudo, no shell startup files), whose one home
# directory all hosts share, as NFS homes do; sshd gives sessions no per-host
# environment.
#
# Usage: fleet.sh help (and test/fleet/README.md).
#
# Performance note: fork+exec is slow on small VMs (several ms each), so the
# common paths (start of an already running fleet, status) avoid external
# commands and the per-host work of a real start runs in parallel.
set -euo pipefail

readonly FLEET_USER=opsflow-fleet
readonly SSHD_BIN=/usr/sbin/sshd
readonly MAX_HOSTS=250
readonly DEFAULT_COUNT=5
readonly DEFAULT_DIR=/tmp/opsflow-fleet
readonly DEFAULT_PORT=2222
readonly DEFAULT_NET=10 # third octet of the hosts' loopback addresses
readonly START_TIMEOUT=${OPSFLOW_FLEET_START_TIMEOUT:-20} # seconds, for all hosts together
readonly STOP_TIMEOUT=10                                  # seconds
readonly LOCK_TIMEOUT=300                                 # seconds
readonly PARALLEL=${OPSFLOW_FLEET_PARALLEL:-32}           # concurrent host set-ups
readonly SUDOERS_FILE=/etc/sudoers.d/opsflow-fleet
readonly SUDOERS_LINE="$FLEET_USER ALL=(ALL) NOPASSWD: ALL"
readonly SYSTEM_LOCK=/run/opsflow-fleet.lock

die() { printf 'fleet.sh: error: %s\n' "$*" >&2; exit 1; }
note() { printf 'fleet.sh: %s\n' "$*" >&2; }

usage() {
  cat <<EOF
usage: fleet.sh COMMAND [options]

  start [--count N] [--dir DIR] [--port P] [--net K]
                                             start hosts h1..hN on 127.0.K.1..N and wait until they accept connections
                                             (idempotent; defaults N=$DEFAULT_COUNT, P=$DEFAULT_PORT, K=$DEFAULT_NET; hosts beyond N are stopped)
  stop [--dir DIR]                           stop every host of the fleet (and what runs in its sessions)
  status [--dir DIR]                         one line per host: NAME ADDRESS:PORT running|stopped
  stop-host NAME [--dir DIR]                 stop one host (like a power-off: its sessions are killed too)
  start-host NAME [--dir DIR]                start one host and wait until it accepts connections
  restart-host NAME [--dir DIR] [--down-seconds S]
                                             simulate a reboot: stop, write a new boot_id, start again after
                                             S seconds (default 0; with S>0 the start happens in the background)

DIR defaults to $DEFAULT_DIR. Host h<i> listens on 127.0.K.<i> (at most $MAX_HOSTS hosts); K is the start's --net.
EOF
}

now_ms() { local t=${EPOCHREALTIME/[.,]/}; REPLY=$((t / 1000)); }
new_uuid() { local u; read -r u </proc/sys/kernel/random/uuid; REPLY=$u; }
# read_file FILE: whole content in REPLY (no fork); status 1 if unreadable.
read_file() {
  REPLY=''
  [[ -f $1 && -r $1 ]] || return 1
  IFS= read -r -d '' REPLY <"$1" || true
}
# write_atomic FILE CONTENT
write_atomic() { printf '%s' "$2" >"$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"; }

# ---------------------------------------------------------------- arguments
CMD=${1:-}
[[ $# -gt 0 ]] && shift
COUNT='' PORT='' NET='' DIR=$DEFAULT_DIR DOWN_SECONDS='' TOKEN='' NAME=''
while [[ $# -gt 0 ]]; do
  opt=$1
  case $opt in
    --*=*) set -- "${opt%%=*}" "${opt#*=}" "${@:2}"; continue ;;
    --count | --dir | --port | --net | --down-seconds | --token)
      [[ $# -ge 2 ]] || die "$opt needs a value"
      case $opt in
        --count) COUNT=$2 ;;
        --dir) DIR=$2 ;;
        --port) PORT=$2 ;;
        --net) NET=$2 ;;
        --down-seconds) DOWN_SECONDS=$2 ;;
        --token) TOKEN=$2 ;;
      esac
      shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option '$opt' (see: fleet.sh help)" ;;
    *)
      [[ -z $NAME ]] || die "unexpected argument '$opt'"
      NAME=$opt; shift ;;
  esac
done

allow_opts() { # option names valid for this command (besides --dir)
  local o var
  for o in count port net down-seconds token; do
    var=${o^^}; var=${var//-/_}
    if [[ -n ${!var} && " $* " != *" $o "* ]]; then die "option --$o is not valid for '$CMD'"; fi
  done
}
need_name() {
  [[ -n $NAME ]] || die "$CMD needs a host NAME (h1, h2, ...)"
  [[ $NAME =~ ^h([1-9][0-9]{0,2})$ ]] || die "bad host name '$NAME' (expected h<i>, e.g. h2)"
  HOST_INDEX=${BASH_REMATCH[1]}
}
no_name() { [[ -z $NAME ]] || die "unexpected argument '$NAME' for '$CMD'"; }

# DIR must be absolute and free of characters that sshd_config or JSON would
# need quoting for ('%' would also be expanded by sshd in AuthorizedKeysFile).
[[ $DIR == /* && $DIR != *//* && $DIR != */. && $DIR != */./* && $DIR != *..* ]] ||
  DIR=$(realpath -m -- "$DIR")
DIR=${DIR%/}
[[ -n $DIR ]] || die "--dir must not be /"
[[ $DIR =~ ^/[A-Za-z0-9._/+-]*$ ]] || die "--dir '$DIR' may only contain the characters A-Za-z0-9._/+-"
readonly DIR
readonly HOSTS_DIR=$DIR/hosts KEYS_DIR=$DIR/keys
readonly FLEET_ENV=$DIR/fleet.env LOCK_FILE=$DIR/.lock

# ---------------------------------------------------------------- fleet.env
FLEET_COUNT='' FLEET_PORT='' FLEET_NET=$DEFAULT_NET
load_fleet_env() {
  [[ -r $FLEET_ENV ]] || return 1
  local k v
  while IFS='=' read -r k v; do
    case $k in COUNT) FLEET_COUNT=$v ;; PORT) FLEET_PORT=$v ;; NET) FLEET_NET=$v ;; esac
  done <"$FLEET_ENV"
  [[ $FLEET_COUNT =~ ^[0-9]+$ && $FLEET_PORT =~ ^[0-9]+$ && $FLEET_NET =~ ^[0-9]+$ ]]
}
require_fleet() {
  load_fleet_env || die "no fleet in $DIR (run: fleet.sh start --dir $DIR)"
}
require_root() { [[ $EUID -eq 0 ]] || die "$CMD must run as root"; }
take_lock() {
  exec 9>>"$LOCK_FILE"
  flock -w "$LOCK_TIMEOUT" 9 || die "timed out waiting for the fleet lock $LOCK_FILE"
}

# ---------------------------------------------------------------- processes
# is_alive PID: the process exists and is not a zombie.
is_alive() {
  local line
  { read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
  line=${line##*) }
  [[ ${line:0:1} != Z ]]
}

# host_pid I: REPLY=pid of the running sshd of host i (pid file + live process
# whose command line names this host's config); status 1 if there is none.
host_pid() {
  local pid='' cfg=$HOSTS_DIR/h$1/sshd_config
  local -a argv
  REPLY=''
  { read -r pid <"$HOSTS_DIR/h$1/sshd.pid"; } 2>/dev/null || [[ -n $pid ]] || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  { mapfile -d '' argv <"/proc/$pid/cmdline"; } 2>/dev/null || return 1
  # Once up, sshd's title is "sshd: /usr/sbin/sshd -f CFG -E LOG [listener] ...".
  [[ " ${argv[*]} " == *" -f $cfg "* ]] || return 1
  is_alive "$pid" || return 1
  REPLY=$pid
}

# Parent -> children map of all processes (pure bash).
declare -A CHILDREN=()
scan_processes() {
  CHILDREN=()
  local f line pid rest
  for f in /proc/[0-9]*/stat; do
    { read -r line <"$f"; } 2>/dev/null || continue
    pid=${f#/proc/}; pid=${pid%/stat}
    rest=${line##*) }  # "STATE PPID ..."
    rest=${rest#* }
    CHILDREN[${rest%% *}]+=" $pid"
  done
}
descendants() { # PID: append its descendants to DESC
  local c
  for c in ${CHILDREN[$1]:-}; do
    DESC+=("$c")
    descendants "$c"
  done
}
# Never kill ourselves or our ancestors.
declare -A PROTECTED=()
protect_self() {
  local pid=$$ line
  PROTECTED=([$$]=1 [$BASHPID]=1)
  while [[ $pid -gt 1 ]]; do
    { read -r line <"/proc/$pid/stat"; } 2>/dev/null || break
    line=${line##*) }; line=${line#* }; pid=${line%% *}
    PROTECTED[$pid]=1
  done
}
kill_list() {
  local p keep=()
  for p in "$@"; do [[ -n ${PROTECTED[$p]:-} ]] || keep+=("$p"); done
  if [[ ${#keep[@]} -gt 0 ]]; then kill -KILL "${keep[@]}" 2>/dev/null || true; fi
}

# Listening TCP sockets, from /proc/net/tcp (keys like "010A007F:08AE").
declare -A LISTENING=()
scan_listening() {
  LISTENING=()
  local line _sl local_addr _rem st _rest
  local -a lines
  # One read of the whole file: line-by-line reads of /proc files are slow.
  mapfile -t lines </proc/net/tcp
  for line in "${lines[@]:1}"; do
    read -r _sl local_addr _rem st _rest <<<"$line"
    if [[ $st == 0A ]]; then LISTENING[$local_addr]=1; fi
  done
}
listen_key() { printf -v REPLY '%02X%02X007F:%04X' "$1" "$FLEET_NET" "$2"; } # I PORT (127.0.NET.I, little-endian)

# probe ADDR PORT: connect and read the SSH banner. Sends an identification
# string before closing, so that sshd does not log an error.
probe() {
  local fd line=''
  { exec {fd}<>"/dev/tcp/$1/$2"; } 2>/dev/null || return 1
  { read -r -t 3 -u "$fd" line; printf 'SSH-2.0-opsflow-fleet-probe\r\n' >&"$fd"; } 2>/dev/null || true
  exec {fd}>&-
  [[ $line == SSH-* ]]
}

# ---------------------------------------------------------------- system set-up
read_user() { # sets FLEET_UID FLEET_GID FLEET_HOME FLEET_SHELL; status 1 if no such user
  local name _x uid gid _gecos home shell
  while IFS=: read -r name _x uid gid _gecos home shell; do
    if [[ $name == "$FLEET_USER" ]]; then
      FLEET_UID=$uid FLEET_GID=$gid FLEET_HOME=$home FLEET_SHELL=$shell
      return 0
    fi
  done </etc/passwd
  return 1
}

ensure_system() {
  # System-wide set-up, serialized between fleets in different DIRs.
  exec 8>>"$SYSTEM_LOCK"
  flock -w "$LOCK_TIMEOUT" 8 || die "timed out waiting for $SYSTEM_LOCK"
  ensure_system_locked
  flock -u 8
  exec 8>&-
}
ensure_system_locked() {
  local need=()
  [[ -x $SSHD_BIN ]] || need+=(openssh-server)
  command -v ssh-keygen >/dev/null || need+=(openssh-client)
  command -v sudo >/dev/null || need+=(sudo)
  if [[ ${#need[@]} -gt 0 ]]; then
    command -v apt-get >/dev/null || die "missing ${need[*]} and no apt-get to install them"
    note "installing ${need[*]} ..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null ||
      die "apt-get install ${need[*]} failed"
  fi
  # sshd refuses to start without its privilege separation directory.
  if [[ ! -d /run/sshd ]]; then mkdir -p /run/sshd && chmod 755 /run/sshd; fi

  # The remote OS user: a clean non-interactive /bin/sh without startup files.
  if ! read_user; then
    useradd --system --create-home --shell /bin/sh "$FLEET_USER" || true
    read_user || die "could not create the user $FLEET_USER"
  fi
  [[ $FLEET_SHELL == /bin/sh ]] || usermod --shell /bin/sh "$FLEET_USER"
  [[ -d $FLEET_HOME ]] || install -d -o "$FLEET_UID" -g "$FLEET_GID" -m 755 "$FLEET_HOME"
  local f
  for f in .profile .bashrc .bash_profile .bash_login .bash_logout .shrc .kshrc .mkshrc \
    .zshenv .zprofile .zshrc .zlogin .zlogout .cshrc .tcshrc .login .logout \
    .ssh/rc .ssh/environment; do
    if [[ -e $FLEET_HOME/$f || -L $FLEET_HOME/$f ]]; then rm -f -- "${FLEET_HOME:?}/$f"; fi
  done
  # useradd leaves the password field "!" (locked). With UsePAM no, sshd then
  # refuses every login ("User ... not allowed because account is locked"),
  # public key included. "*" = no password can match, but not locked.
  local name pw _rest
  while IFS=: read -r name pw _rest; do
    if [[ $name == "$FLEET_USER" ]]; then
      [[ $pw != '!'* ]] || usermod -p '*' "$FLEET_USER"
      break
    fi
  done </etc/shadow

  # Passwordless sudo.
  if ! read_file "$SUDOERS_FILE" || [[ $REPLY != "$SUDOERS_LINE"$'\n' ]]; then
    # sudo ignores files in sudoers.d whose name contains a dot.
    local tmp=/etc/sudoers.d/.opsflow-fleet.tmp
    printf '%s\n' "$SUDOERS_LINE" >"$tmp"
    chmod 440 "$tmp"
    visudo -cqf "$tmp" >/dev/null || { rm -f "$tmp"; die "visudo rejected the sudoers entry"; }
    mv -f "$tmp" "$SUDOERS_FILE"
  fi
}

# Fleet directories, client key, authorized_keys; decides StrictModes.
ensure_fleet_dirs() {
  (umask 022 && mkdir -p -- "$HOSTS_DIR" "$KEYS_DIR")
  if [[ ! -s $KEYS_DIR/id_ed25519 || ! -s $KEYS_DIR/id_ed25519.pub ]]; then
    rm -f "$KEYS_DIR/id_ed25519" "$KEYS_DIR/id_ed25519.pub"
    ssh-keygen -q -t ed25519 -N '' -C opsflow-fleet-client -f "$KEYS_DIR/id_ed25519" </dev/null
  fi
  local pub
  read_file "$KEYS_DIR/id_ed25519.pub"; pub=$REPLY
  if ! read_file "$KEYS_DIR/authorized_keys" || [[ $REPLY != "$pub" ]]; then
    write_atomic "$KEYS_DIR/authorized_keys" "$pub"
  fi

  # One stat for all modes/owners we care about, fixed only when wrong.
  # sshd StrictModes: authorized_keys and every directory above it must be
  # owned by root (or the user) and not group/world-writable.
  local -a paths=("$KEYS_DIR/authorized_keys" "$KEYS_DIR/id_ed25519")
  local d=$KEYS_DIR
  while [[ -n $d ]]; do paths+=("$d"); d=${d%/*}; done
  paths+=(/ "$HOSTS_DIR")
  local p mode uid gid
  STRICT_MODES=yes STRICT_BAD=''
  while read -r mode uid gid p; do
    case $p in
      "$KEYS_DIR/authorized_keys")
        [[ $mode == 644 && $uid == 0 ]] || { chown 0:0 "$p"; chmod 644 "$p"; } ;;
      "$KEYS_DIR/id_ed25519")
        [[ $mode == 600 ]] || chmod 600 "$p" ;;
      "$DIR" | "$KEYS_DIR" | "$HOSTS_DIR")
        # Ours: make them 755 (a pre-existing DIR may have been created 777/700).
        [[ $mode == 755 ]] || chmod 755 "$p"
        [[ $uid == 0 ]] || chown 0:0 "$p" ;;
      *)
        if [[ -z $STRICT_BAD ]]; then
          if [[ $uid != 0 && $uid != "$FLEET_UID" ]]; then STRICT_BAD="$p (owner uid $uid)"
          elif ((8#$mode & 8#022)); then STRICT_BAD="$p (mode $mode)"
          fi
        fi ;;
    esac
  done < <(stat -c '%a %u %g %n' -- "${paths[@]}")
  [[ -z $STRICT_BAD ]] || STRICT_MODES=no
}

# ---------------------------------------------------------------- one host
# host_config I PORT: the sshd_config text of host i, in REPLY.
host_config() {
  local i=$1 port=$2 hd=$HOSTS_DIR/h$1
  REPLY="# Generated by test/fleet/fleet.sh for host h$i of the opsflow test fleet.
# Do not edit: 'fleet.sh start' rewrites it (and restarts the host) when it differs.
ListenAddress 127.0.$FLEET_NET.$i:$port
HostKey $hd/ssh_host_ed25519_key
PidFile $hd/sshd.pid
AuthorizedKeysFile $KEYS_DIR/authorized_keys $KEYS_DIR/authorized_keys.extra
AllowUsers $FLEET_USER
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
PermitRootLogin no
AllowTcpForwarding yes
Subsystem sftp internal-sftp
LogLevel ERROR
"
  if [[ $STRICT_MODES == no ]]; then
    REPLY+="# StrictModes would make sshd refuse $KEYS_DIR/authorized_keys
# because of $STRICT_BAD. A --dir whose every parent is
# root-owned and not group/world-writable (e.g. under /srv or /opt) keeps it on.
StrictModes no
"
  fi
}

# host_is_current I PORT: everything of host i exists, its config is current
# and its sshd runs (no forks: this is the path of every idempotent start).
host_is_current() {
  local i=$1 hd=$HOSTS_DIR/h$1 cfg
  [[ -s $hd/ssh_host_ed25519_key && -s $hd/ssh_host_ed25519_key.pub && -s $hd/boot_id ]] || return 1
  [[ -d $hd/root && ! -O $hd/root ]] || return 1
  host_config "$i" "$2"; cfg=$REPLY
  read_file "$hd/sshd_config" && [[ $REPLY == "$cfg" ]] || return 1
  host_pid "$i"
}

# prepare_host I PORT: create whatever host i is missing. Sets CONFIG_CHANGED.
prepare_host() {
  local i=$1 port=$2 hd=$HOSTS_DIR/h$1 key=$HOSTS_DIR/h$1/ssh_host_ed25519_key cfg
  CONFIG_CHANGED=0
  [[ -d $hd ]] || (umask 022 && mkdir -p -- "$hd")
  if [[ ! -s $key || ! -s $key.pub ]]; then
    rm -f -- "$key" "$key.pub"
    ssh-keygen -q -t ed25519 -N '' -C "opsflow-fleet-h$i" -f "$key" </dev/null # mode 600
  fi
  if [[ ! -s $hd/boot_id ]]; then
    new_uuid; printf '%s\n' "$REPLY" >"$hd/boot_id"
  fi
  if [[ ! -d $hd/root ]]; then
    install -d -o "$FLEET_UID" -g "$FLEET_GID" -m 755 "$hd/root"
  elif [[ -O $hd/root ]]; then # owned by root: hand it to the fleet user
    chown "$FLEET_UID:$FLEET_GID" "$hd/root"
  fi
  host_config "$i" "$port"; cfg=$REPLY
  if ! read_file "$hd/sshd_config" || [[ $REPLY != "$cfg" ]]; then
    printf '%s' "$cfg" >"$hd/sshd_config.tmp"
    local err
    err=$("$SSHD_BIN" -t -f "$hd/sshd_config.tmp" 2>&1) ||
      die "h$i: sshd -t rejects the generated config: $err"
    mv -f "$hd/sshd_config.tmp" "$hd/sshd_config"
    CONFIG_CHANGED=1
  fi
}

# launch_host I: start sshd; it daemonizes. A marker line in the log lets the
# wait loop tell "not up yet" from "died with an error" (sshd logs only errors).
launch_host() {
  local hd=$HOSTS_DIR/h$1 ts boot=''
  if [[ -e $hd/sshd.pid ]]; then rm -f -- "$hd/sshd.pid"; fi
  printf -v ts '%(%Y-%m-%dT%H:%M:%S%z)T' -1
  { read -r boot <"$hd/boot_id"; } 2>/dev/null || true
  printf '%s fleet.sh: starting sshd for h%s (boot_id %s)\n' "$ts" "$1" "$boot" >>"$hd/sshd.log"
  # No stdio, no lock fds for sshd: callers such as execFileSync wait for EOF.
  "$SSHD_BIN" -f "$hd/sshd_config" -E "$hd/sshd.log" </dev/null >>"$hd/sshd.log" 2>&1 8>&- 9>&-
}

# start_one I PORT (in a subshell). Exit 0 = launched, 10 = already running and
# left alone, 11 = restarted because its config changed.
start_one() {
  local i=$1 port=$2
  prepare_host "$i" "$port"
  if host_pid "$i"; then
    [[ $CONFIG_CHANGED == 1 ]] || exit 10
    stop_hosts "$i" >/dev/null
    launch_host "$i" || die "h$i: sshd exited with an error (see $HOSTS_DIR/h$i/sshd.log)"
    exit 11
  fi
  launch_host "$i" || die "h$i: sshd exited with an error: $(tail -n 5 "$HOSTS_DIR/h$i/sshd.log")"
  exit 0
}

# wait_up PORT I...: wait (bounded) until the sshd of every host runs and its
# port accepts connections (LISTEN socket in /proc/net/tcp: the kernel accepts
# connections into the backlog; sshd writes its pid file only after listen());
# then one real SSH banner exchange with the first host as an end-to-end check.
# Dies naming the hosts that did not come up, with the tail of their logs.
wait_up() {
  local port=$1; shift
  local -a pending=("$@") still failed=() died=()
  local -A suspect=()
  local i t0 deadline last use_proc=1
  [[ -r /proc/net/tcp ]] || use_proc=0
  now_ms; t0=$REPLY deadline=$((REPLY + START_TIMEOUT * 1000))
  while :; do
    now_ms; local elapsed=$((REPLY - t0))
    ((use_proc)) && scan_listening
    still=()
    for i in "${pending[@]}"; do
      if host_pid "$i"; then
        if ((use_proc)); then
          listen_key "$i" "$port"
          [[ -n ${LISTENING[$REPLY]:-} ]] && continue
        else
          probe "127.0.$FLEET_NET.$i" "$port" && continue
        fi
      elif ((elapsed >= 300)); then
        # Still not running: did sshd log something after our marker line?
        # Then it died (give it one more round to be sure).
        last=$(tail -n 1 "$HOSTS_DIR/h$i/sshd.log" 2>/dev/null || true)
        if [[ $last != *' fleet.sh: starting sshd for '* ]]; then
          if [[ -n ${suspect[$i]:-} ]]; then failed+=("$i") died+=("h$i"); continue; fi
          suspect[$i]=1
        fi
      fi
      still+=("$i")
    done
    pending=("${still[@]}")
    [[ ${#pending[@]} -gt 0 ]] || break
    now_ms
    if [[ $REPLY -ge $deadline ]]; then failed+=("${pending[@]}"); break; fi
    sleep 0.05
  done
  if [[ ${#failed[@]} -eq 0 && $# -gt 0 ]]; then
    probe "127.0.$FLEET_NET.$1" "$port" || failed+=("$1")
  fi
  if [[ ${#failed[@]} -gt 0 ]]; then
    local names=() msg
    for i in "${failed[@]}"; do names+=("h$i"); done
    msg="${#failed[@]} host(s) did not come up on port $port: ${names[*]}"
    if [[ ${#died[@]} -gt 0 ]]; then msg+=" (sshd exited: ${died[*]}; the others: not up after ${START_TIMEOUT}s)"
    else msg+=" (not up after ${START_TIMEOUT}s)"; fi
    for i in "${failed[@]:0:5}"; do
      msg+=$'\n'"--- h$i (127.0.$FLEET_NET.$i:$port), tail of $HOSTS_DIR/h$i/sshd.log:"$'\n'
      msg+=$(tail -n 15 "$HOSTS_DIR/h$i/sshd.log" 2>/dev/null || echo '(no log)')
    done
    [[ ${#failed[@]} -le 5 ]] || msg+=$'\n'"(logs of $((${#failed[@]} - 5)) more host(s) not shown)"
    die "$msg"
  fi
}

# stop_hosts I...: stop the sshd of each host and kill what runs "on" it: the
# listener's descendants (sessions, their commands, sudo children) and the
# daemonized leftovers that left that tree, found by what ties them to the
# host: a working directory in, or a command line naming, the host's
# directory (hosts get no per-host environment to find them by). What a
# power-off does to a real machine. Prints how many sshd listeners were
# stopped.
stop_hosts() {
  local i pid f
  local -a listeners=() victims=() greps=() cwds=() DESC=()
  scan_processes
  protect_self
  for i in "$@"; do
    if host_pid "$i"; then
      listeners+=("$REPLY")
      PROTECTED[$REPLY]=1 # it gets TERM below, and time to exit
      DESC=(); descendants "$REPLY"; victims+=("${DESC[@]}")
    fi
    greps+=(-e "$HOSTS_DIR/h$i/")
    cwds+=(${cwds[0]+-o} -lname "$HOSTS_DIR/h$i/*")
  done
  if [[ ${#listeners[@]} -gt 0 ]]; then kill -TERM "${listeners[@]}" 2>/dev/null || true; fi
  kill_list "${victims[@]}"
  victims=()
  # One grep and one find for all the hosts: a fork per host would make stopping 200 slow.
  while IFS= read -r f; do
    pid=${f#/proc/}; victims+=("${pid%%/*}")
  done < <(grep -lzF "${greps[@]}" /proc/[0-9]*/cmdline 2>/dev/null
    find /proc -mindepth 2 -maxdepth 2 -name cwd \( "${cwds[@]}" \) 2>/dev/null || true)
  kill_list "${victims[@]}"
  local deadline left
  now_ms; deadline=$((REPLY + STOP_TIMEOUT * 1000))
  while :; do
    left=()
    for pid in "${listeners[@]}"; do is_alive "$pid" && left+=("$pid"); done
    [[ ${#left[@]} -gt 0 ]] || break
    now_ms
    if [[ $REPLY -ge $deadline ]]; then
      note "sshd pid(s) ${left[*]} ignored SIGTERM for ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "${left[@]}" 2>/dev/null || true
      sleep 0.2
      break
    fi
    sleep 0.02
  done
  for i in "$@"; do
    if [[ -e $HOSTS_DIR/h$i/sshd.pid ]]; then rm -f -- "$HOSTS_DIR/h$i/sshd.pid"; fi
  done
  printf '%s\n' "${#listeners[@]}"
}

# A pending delayed start (restart-host --down-seconds) is the file
# DIR/hosts/hI/pending_start holding "TOKEN [PID]".
cancel_pending() { # I (lock held)
  local f=$HOSTS_DIR/h$1/pending_start token='' pid=''
  [[ -f $f ]] || return 0
  read -r token pid <"$f" || true
  if [[ $pid =~ ^[0-9]+$ && -n $token ]]; then
    local -a argv=()
    { mapfile -d '' argv <"/proc/$pid/cmdline"; } 2>/dev/null || true
    [[ " ${argv[*]} " == *" $token "* ]] && kill -TERM "$pid" 2>/dev/null || true
  fi
  rm -f -- "$f"
}

host_dirs() { # HOST_DIRS = indices of existing DIR/hosts/h<i>, ascending
  local d n
  local -a idx=()
  HOST_DIRS=()
  for d in "$HOSTS_DIR"/h*; do
    n=${d##*/h}
    if [[ $n =~ ^[1-9][0-9]*$ && -d $d ]]; then idx[n]=$n; fi
  done
  HOST_DIRS=("${idx[@]}") # indexed array: ascending by index
}

# ---------------------------------------------------------------- outputs
write_known_hosts_and_json() { # COUNT PORT
  local n=$1 port=$2 i type key _ hostspec
  local kh='' json='['
  for ((i = 1; i <= n; i++)); do
    read -r type key _ <"$HOSTS_DIR/h$i/ssh_host_ed25519_key.pub"
    if [[ $port == 22 ]]; then hostspec=127.0.$FLEET_NET.$i; else hostspec="[127.0.$FLEET_NET.$i]:$port"; fi
    kh+="$hostspec $type $key"$'\n'
    [[ $i -gt 1 ]] && json+=','
    json+=$'\n'"  {\"name\":\"h$i\",\"address\":\"127.0.$FLEET_NET.$i\",\"port\":$port,\"dir\":\"$HOSTS_DIR/h$i\"}"
  done
  json+=$'\n]\n'
  if ! read_file "$DIR/known_hosts" || [[ $REPLY != "$kh" ]]; then write_atomic "$DIR/known_hosts" "$kh"; fi
  if ! read_file "$DIR/hosts.json" || [[ $REPLY != "$json" ]]; then write_atomic "$DIR/hosts.json" "$json"; fi
}

# check_ports_free N PORT: die if 127.0.NET.i:PORT is listened on by anything
# but host i's own sshd, naming the other fleet's directory when it is one.
check_ports_free() {
  local n=$1 port=$2 i f other
  local -a busy=() argv
  [[ -r /proc/net/tcp ]] || return 0
  scan_listening
  for ((i = 1; i <= n; i++)); do
    listen_key "$i" "$port"
    [[ -n ${LISTENING[$REPLY]:-} ]] || continue
    host_pid "$i" && continue
    busy+=("$i")
  done
  [[ ${#busy[@]} -gt 0 ]] || return 0
  local msg="port $port is already in use on the address of ${#busy[@]} host(s):"
  for i in "${busy[@]:0:5}"; do
    other=''
    for f in /proc/[0-9]*/cmdline; do
      { mapfile -d '' argv <"$f"; } 2>/dev/null || continue
      if [[ " ${argv[*]} " =~ \ -f\ (/[^ ]*)/hosts/h$i/sshd_config\  ]]; then other=${BASH_REMATCH[1]}; break; fi
    done
    if [[ -n $other ]]; then
      msg+=$'\n'"  127.0.$FLEET_NET.$i:$port is h$i of the fleet in $other (stop it: fleet.sh stop --dir $other, or use another --port)"
    else
      msg+=$'\n'"  127.0.$FLEET_NET.$i:$port is taken by another process (see: ss -ltnp 'sport = :$port')"
    fi
  done
  [[ ${#busy[@]} -le 5 ]] || msg+=$'\n'"  (and $((${#busy[@]} - 5)) more)"
  die "$msg"
}

# ---------------------------------------------------------------- commands
cmd_start() {
  allow_opts count port net; no_name
  require_root
  local n=${COUNT:-$DEFAULT_COUNT} port=${PORT:-$DEFAULT_PORT} net=${NET:-$DEFAULT_NET}
  [[ $n =~ ^[0-9]+$ ]] || die "--count must be a positive integer, got '$n'"
  [[ $port =~ ^[0-9]+$ ]] || die "--port must be a number, got '$port'"
  [[ $net =~ ^[0-9]+$ ]] && ((10#$net >= 1 && 10#$net <= 254)) || die "--net must be 1..254 (the K of 127.0.K.i), got '$net'"
  n=$((10#$n)) port=$((10#$port))
  ((n >= 1)) || die "--count must be at least 1"
  ((n <= MAX_HOSTS)) || die "--count $n is too many: the fleet has at most $MAX_HOSTS hosts (127.0.$net.1 .. 127.0.$net.$MAX_HOSTS)"
  ((port >= 1 && port <= 65535)) || die "--port must be 1..65535, got $port"
  local t0; now_ms; t0=$REPLY

  [[ -d $DIR ]] || (umask 022 && mkdir -p -- "$DIR")
  take_lock
  ensure_system
  ensure_fleet_dirs
  if ! load_fleet_env || [[ $FLEET_COUNT != "$n" || $FLEET_PORT != "$port" || $FLEET_NET != "$((10#$net))" ]]; then
    write_atomic "$FLEET_ENV" "COUNT=$n"$'\n'"PORT=$port"$'\n'"NET=$((10#$net))"$'\n'
  fi
  FLEET_NET=$((10#$net))

  # Hosts beyond the requested count (from an earlier, larger fleet) are stopped.
  local i
  local -a extra=()
  host_dirs
  for i in "${HOST_DIRS[@]}"; do
    if ((i > n)); then
      cancel_pending "$i"
      host_pid "$i" && extra+=("$i")
    fi
  done
  if [[ ${#extra[@]} -gt 0 ]]; then
    note "stopping ${#extra[@]} running host(s) beyond --count $n (h${extra[0]}..h${extra[-1]})"
    stop_hosts "${extra[@]}" >/dev/null
  fi

  # Hosts that are complete and running are left alone (no forks); the others
  # are set up and launched in parallel, at most $PARALLEL at a time.
  # A port already taken by someone else (typically the same host of another
  # fleet, in another --dir, on the same port) would make sshd fail to bind.
  check_ports_free "$n" "$port"

  local -A job_host=()
  local started=0 running=0 restarted=0 active=0
  local -a failed=() all=()
  reap_one() {
    local done_pid='' rc=0
    wait -n -p done_pid || rc=$?
    [[ -n $done_pid ]] || { active=0; return 0; }
    active=$((active - 1))
    case $rc in
      0) started=$((started + 1)) ;;
      10) running=$((running + 1)) ;;
      11) restarted=$((restarted + 1)) ;;
      *) failed+=("h${job_host[$done_pid]}") ;;
    esac
  }
  for ((i = 1; i <= n; i++)); do
    all+=("$i")
    cancel_pending "$i"
    if host_is_current "$i" "$port"; then running=$((running + 1)); continue; fi
    while ((active >= PARALLEL)); do reap_one; done
    (start_one "$i" "$port") &
    job_host[$!]=$i
    active=$((active + 1))
  done
  while ((active > 0)); do reap_one; done
  [[ ${#failed[@]} -eq 0 ]] || die "could not start: ${failed[*]}"

  write_known_hosts_and_json "$n" "$port"
  wait_up "$port" "${all[@]}"
  now_ms
  local msg="fleet up: $n host(s) at 127.0.$FLEET_NET.1..$n port $port ($started started, $running already running"
  [[ $restarted -eq 0 ]] || msg+=", $restarted restarted for a changed config"
  msg+=") in $((REPLY - t0)) ms; dir $DIR"
  [[ $STRICT_MODES == yes ]] || msg+=" (sshd StrictModes off: $STRICT_BAD)"
  note "$msg"
}

cmd_stop() {
  allow_opts; no_name
  require_root
  [[ -d $HOSTS_DIR ]] || { note "no fleet in $DIR: nothing to stop"; return 0; }
  take_lock
  local i n=0 t0
  now_ms; t0=$REPLY
  host_dirs
  for i in "${HOST_DIRS[@]}"; do cancel_pending "$i"; done
  [[ ${#HOST_DIRS[@]} -eq 0 ]] || n=$(stop_hosts "${HOST_DIRS[@]}")
  now_ms
  note "fleet stopped: $n sshd process(es) stopped in $((REPLY - t0)) ms; dir $DIR"
}

cmd_status() {
  allow_opts; no_name
  if [[ ! -d $HOSTS_DIR ]] || ! load_fleet_env; then note "no fleet in $DIR"; return 0; fi
  local i state
  host_dirs
  for i in "${HOST_DIRS[@]}"; do
    if host_pid "$i"; then
      state=running
      ((i <= FLEET_COUNT)) || state+=" (beyond the fleet's $FLEET_COUNT hosts)"
    else
      ((i <= FLEET_COUNT)) || continue
      state=stopped
      [[ ! -f $HOSTS_DIR/h$i/pending_start ]] || state+=" (restart pending)"
    fi
    printf 'h%s 127.0.%s.%s:%s %s\n' "$i" "$FLEET_NET" "$i" "$FLEET_PORT" "$state"
  done
}

host_in_fleet() {
  need_name
  require_fleet
  ((HOST_INDEX <= FLEET_COUNT)) || die "$NAME is not part of the fleet in $DIR (it has $FLEET_COUNT host(s))"
}

start_host_now() { # I (lock held)
  local i=$1 rc=0
  ensure_system
  ensure_fleet_dirs
  (start_one "$i" "$FLEET_PORT") || rc=$?
  [[ $rc == 0 || $rc == 10 || $rc == 11 ]] || die "could not start h$i"
  wait_up "$FLEET_PORT" "$i"
  if [[ $rc == 10 ]]; then note "h$i already running"; else note "h$i up at 127.0.$FLEET_NET.$i:$FLEET_PORT"; fi
}

cmd_stop_host() {
  allow_opts
  require_root
  host_in_fleet
  take_lock
  cancel_pending "$HOST_INDEX"
  local n
  n=$(stop_hosts "$HOST_INDEX")
  if [[ $n == 0 ]]; then note "$NAME was not running"; else note "$NAME stopped"; fi
}

cmd_start_host() {
  allow_opts
  require_root
  host_in_fleet
  take_lock
  cancel_pending "$HOST_INDEX"
  start_host_now "$HOST_INDEX"
}

cmd_restart_host() {
  allow_opts down-seconds
  require_root
  host_in_fleet
  local s=${DOWN_SECONDS:-0}
  [[ $s =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--down-seconds must be a number of seconds, got '$s'"
  take_lock
  cancel_pending "$HOST_INDEX"
  local hd=$HOSTS_DIR/h$HOST_INDEX boot
  stop_hosts "$HOST_INDEX" >/dev/null
  new_uuid; boot=$REPLY
  printf '%s\n' "$boot" >"$hd/boot_id"
  if [[ $s =~ ^0+([.]0*)?$ ]]; then
    start_host_now "$HOST_INDEX"
    note "$NAME rebooted (boot_id $boot)"
    return 0
  fi
  new_uuid
  local token=$REPLY self
  printf '%s\n' "$token" >"$hd/pending_start"
  self=$(readlink -f -- "${BASH_SOURCE[0]}")
  # Detached from our stdio (execFileSync would wait for EOF), our process
  # group and our lock fd. `stop`, `start`, `stop-host`, `start-host` and a
  # new `restart-host` cancel it.
  setsid bash "$self" __delayed-start "$NAME" --dir "$DIR" --down-seconds "$s" --token "$token" \
    </dev/null >>"$hd/restart.log" 2>&1 9>&- &
  note "$NAME is down (new boot_id $boot); it comes back in ${s}s (log: $hd/restart.log)"
}

# Internal: the background half of `restart-host NAME --down-seconds S`.
cmd_delayed_start() {
  allow_opts down-seconds token
  require_root
  host_in_fleet
  local f=$HOSTS_DIR/h$HOST_INDEX/pending_start cur='' ts
  take_lock
  { read -r cur _ <"$f"; } 2>/dev/null || true
  [[ $cur == "$TOKEN" ]] || exit 0
  printf '%s %s\n' "$TOKEN" "$$" >"$f" # lets cancel_pending kill us while we sleep
  flock -u 9
  sleep "$DOWN_SECONDS"
  take_lock
  cur=''
  { read -r cur _ <"$f"; } 2>/dev/null || true
  printf -v ts '%(%Y-%m-%dT%H:%M:%S%z)T' -1
  [[ $cur == "$TOKEN" ]] || { echo "$ts $NAME: delayed start cancelled"; exit 0; }
  rm -f -- "$f"
  start_host_now "$HOST_INDEX"
  echo "$ts $NAME: started after ${DOWN_SECONDS}s down"
}

case $CMD in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  stop-host) cmd_stop_host ;;
  start-host) cmd_start_host ;;
  restart-host) cmd_restart_host ;;
  __delayed-start) cmd_delayed_start ;;
  help | -h | --help) usage ;;
  '') usage >&2; exit 2 ;;
  *) die "unknown command '$CMD' (see: fleet.sh help)" ;;
esac
