# Sourced by scripts/setup.sh and scripts/cluster.sh: the Go programs opsflow runs (the temporal CLI, the
# Temporal server, its SQL tool, the Web UI server), found or built the same way.

# go_binary NAME VAR PACKAGE@VERSION prints the path of program NAME: $VAR when set, else NAME on PATH, else
# $(go env GOPATH)/bin/NAME, else built there once with `go install` from the module proxy and renamed NAME
# (the server and the UI server both call their main package `server`). Fails when it is nowhere and Go is missing.
go_binary() {
  local name=$1 var=$2 pkg=$3 override=${!2:-}
  if [[ -n "$override" ]]; then
    [[ -x "$override" ]] || { printf '%s=%s is not an executable file\n' "$var" "$override" >&2; return 1; }
    echo "$override"
    return
  fi
  command -v "$name" 2>/dev/null && return
  command -v go >/dev/null || { printf '%s not found (set %s, or install Go to build %s)\n' "$name" "$var" "$pkg" >&2; return 1; }
  local bin tmp
  bin="$(go env GOPATH)/bin"
  if [[ ! -x "$bin/$name" ]]; then
    printf 'opsflow: building %s: go install %s (minutes on a fresh machine, once)\n' "$name" "$pkg" >&2
    tmp=$(mktemp -d)
    GOBIN="$tmp" go install "$pkg" >&2 || { rm -rf "$tmp"; return 1; }
    mkdir -p "$bin"
    # A package builds one program; the rename is what makes the name ours.
    mv "$tmp"/* "$bin/$name"
    rm -rf "$tmp"
  fi
  echo "$bin/$name"
}
