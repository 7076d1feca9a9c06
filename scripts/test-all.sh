#!/usr/bin/env bash
# Runs tailcast's whole test suite on a fresh machine: installs what the tests need and is
# missing (Debian's logrotate, chromium, nginx, redis-server, jq, curl, ripgrep and gzip; npm's playwright-core
# and typescript; PyPI's prometheus-client), checks formatting, lints and the dashboard's types,
# then runs every test. A missing component makes the tests fail loudly, never skip.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v logrotate >/dev/null 2>&1 || [ -x /usr/sbin/logrotate ] || missing+=(logrotate)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v rg >/dev/null 2>&1 || missing+=(ripgrep)
command -v zcat >/dev/null 2>&1 || missing+=(gzip)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
# The cluster tests start their own redis-server (and use redis-cli, from redis-tools).
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-all: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"

# The metrics test parses /metrics with the Prometheus project's own parser (Python).
if ! python3 -c "import prometheus_client" >/dev/null 2>&1; then
  echo "test-all: installing prometheus-client (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check prometheus-client
fi

if [ -f tests/browser/package.json ] && { [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -x tests/browser/node_modules/.bin/tsc ]; }; then
  echo "test-all: installing playwright-core and typescript (npm)"
  (cd tests/browser && { npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error; })
fi

# The dashboard's ES modules carry JSDoc types: tsc checks them (no build, nothing emitted).
echo "test-all: tsc --checkJs (static/*.js)"
if [ ! -x tests/browser/node_modules/.bin/tsc ]; then
  echo "test-all: typescript is missing from tests/browser/node_modules (npm ci in tests/browser failed?)" >&2
  exit 1
fi
tests/browser/node_modules/.bin/tsc -p tests/browser

# Room for the build (several GiB) and the big test files (in /dev/shm when it has room): a
# run that fails with "No space left on device" is explained by this line.
echo "test-all: free space:"
df -h . "${TMPDIR:-/tmp}" /dev/shm 2>/dev/null || true

echo "test-all: cargo fmt --check"
cargo fmt --all -- --check
echo "test-all: cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "test-all: cargo test"
cargo test --all-targets
