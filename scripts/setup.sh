#!/usr/bin/env bash
# Everything `npm start` (setup.sh start) or `npm test` (setup.sh test) needs on a fresh Debian machine,
# installed only when missing, so running it again costs well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-start}

say() { printf 'opsflow setup: %s\n' "$*" >&2; }

# Node dependencies: installed when node_modules is missing or older than the lockfile.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The Temporal CLI (dev server + Web UI), found as the project finds it: TEMPORAL_CLI_PATH, PATH, $(go env GOPATH)/bin,
# else built there once (a few minutes). Without it and without Go, `npm start` falls back to the SDK's own
# download, which needs the internet.
source scripts/go-binary.sh
if command -v go >/dev/null; then
  go_binary temporal TEMPORAL_CLI_PATH github.com/temporalio/cli/cmd/temporal@v1.5.1 >/dev/null
fi

# The CLI as JavaScript (bin/opsflow.js runs dist/ when bin/built.js finds it current, else the sources through
# tsx): compiled only when a source changed since the last build, incrementally, then bundled into one file
# (scripts/bundle-cli.js) whose V8 code cache the first command writes. The stamp goes first and comes back, dated
# from before tsc started, only after a clean build: until then the CLI runs the sources.
if ! node -e "process.exit(require('./bin/built').distCurrent() ? 0 : 1)"; then
  say "compiling the CLI to dist/ (tsc -p tsconfig.build.json, then esbuild)"
  mkdir -p dist
  rm -f dist/.built dist/src/cli/main.bundle.js.cache
  touch dist/.building
  if npx tsc -p tsconfig.build.json && node scripts/bundle-cli.js; then
    mv dist/.building dist/.built
  else
    say "the build failed (above): the CLI runs from the TypeScript sources through tsx until it is fixed"
  fi
fi

[[ "$mode" == test ]] || exit 0

# The test suite drives real servers on loopback: sshd hosts (with sudo for the sudo tests), HAProxy in front
# of a small Python service, a git daemon serving its releases, memcached, PostgreSQL clusters, and rclone;
# openssl makes the test Kubernetes control plane's certificates; chromium is the browser playwright-core drives
# through the Temporal Web UI (never a downloaded one); socat carries HAProxy's runtime API over SSH (`haproxy.via`).
packages=(openssh-server openssh-client sudo procps haproxy socat git python3 python3-pip memcached postgresql rclone openssl chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    say "the tests need these Debian packages: ${missing[*]} (and root, to run the sshd test fleet)"
    exit 1
  fi
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [[ $(id -u) -ne 0 ]]; then
  say "the tests start sshd hosts and create their user: run them as root (or in a container/VM)"
  exit 1
fi

# The AWS API emulator the S3/Route53/EC2 tests point the SDK at.
if ! command -v moto_server >/dev/null; then
  say "pip install moto[server] (the AWS API emulator for the tests)"
  pip3 install --quiet --disable-pip-version-check 'moto[server]==5.2.1' 2>/dev/null ||
    pip3 install --quiet --disable-pip-version-check --break-system-packages 'moto[server]==5.2.1'
fi

# The Kubernetes control plane of the k8sDeploy tests, built from the Go module proxy once (tens of minutes),
# then found in its cache at once.
bash scripts/k8s-binaries.sh

# The Temporal server, its SQL tool and the Web UI server for the tests on a Temporal cluster (scripts/cluster.sh,
# OPSFLOW_TEST_TEMPORAL=cluster): built from the Go module proxy once (several minutes), then found at once.
bash scripts/cluster.sh build >/dev/null
