#!/usr/bin/env bash
# The Kubernetes control plane the k8sDeploy tests run on loopback (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, and KWOK for fake nodes), built from the Go module proxy into a cache outside the repository.
# Idempotent: when the binaries of the pinned versions exist it does nothing.
#   scripts/k8s-binaries.sh            build what is missing
#   scripts/k8s-binaries.sh --bin-dir  print the directory the binaries live in (built or not)
set -euo pipefail

KUBERNETES_VERSION=v1.36.3 # its staging modules are published as v0.36.3
ETCD_VERSION=v3.6.8        # the etcd client version kubernetes v1.36.3 requires
KWOK_VERSION=v0.8.0

cache=${OPSFLOW_K8S_CACHE:-/opt/opsflow-k8s}
bin="$cache/kubernetes-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION/bin"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

if [[ "${1:-}" == --bin-dir ]]; then echo "$bin"; exit 0; fi

missing=()
for b in "${binaries[@]}"; do [[ -x "$bin/$b" ]] || missing+=("$b"); done
((${#missing[@]})) || exit 0

say() { printf 'k8s-binaries: %s\n' "$*" >&2; }
command -v go >/dev/null || { say "Go is needed to build ${missing[*]}"; exit 1; }
mkdir -p "$bin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The machine is shared: build at low priority.
gobuild() { nice -n 10 go build -trimpath "$@"; }
wants() { [[ " ${missing[*]} " == *" $1 "* ]]; }

# A throwaway module per upstream module: kubernetes and etcd keep replace directives in their go.mod, which
# `go install pkg@version` refuses, so the requirement and its replacements are written here instead.
module_dir() {
  local dir="$work/$1"
  mkdir -p "$dir"
  printf 'module opsflow.local/%s\n\ngo 1.26\n' "$1" >"$dir/go.mod"
  echo "$dir"
}

if wants etcd; then
  say "building etcd $ETCD_VERSION"
  dir=$(module_dir etcd)
  (cd "$dir" && go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION" && go mod download go.etcd.io/etcd/server/v3 &&
    GOFLAGS=-mod=mod gobuild -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3 && mv "$bin/etcd.tmp" "$bin/etcd")
fi

kube=(kube-apiserver kube-controller-manager kube-scheduler)
if wants kube-apiserver || wants kube-controller-manager || wants kube-scheduler; then
  say "building ${kube[*]} $KUBERNETES_VERSION (tens of minutes the first time)"
  dir=$(module_dir kubernetes)
  staging=v0.${KUBERNETES_VERSION#v1.}
  (
    cd "$dir"
    go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION"
    # Kubernetes requires its staging modules at v0.0.0 and points them at ./staging; map each to its published release.
    gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
    for m in $(awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod"); do
      grep -qE "^\s+$m v0\.0\.0$" "$gomod" && go mod edit -replace="$m=$m@$staging"
    done
    ver="-X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION"
    for b in "${kube[@]}"; do
      wants "$b" || continue
      say "go build k8s.io/kubernetes/cmd/$b"
      GOFLAGS=-mod=mod gobuild -ldflags "-s -w $ver" -o "$bin/$b.tmp" "k8s.io/kubernetes/cmd/$b"
      mv "$bin/$b.tmp" "$bin/$b"
    done
  )
fi

if wants kwok; then
  say "building kwok $KWOK_VERSION"
  GOBIN="$work/gobin" nice -n 10 go install -trimpath "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  mv "$work/gobin/kwok" "$bin/kwok"
fi
say "built into $bin"
