#!/usr/bin/env bash
# The one entry point of tailcast's benchmark (issue 6). Builds tailcast and this harness
# (release), installs frontail 4.9.2 and socket.io-client 2.3.0 with npm (pinned by
# bench/frontail/package-lock.json, into bench/frontail/node_modules, gitignored), then runs
# every scenario against `tail -n0 -F` into a pipe, tailcast and frontail, and prints one table.
#
#   bench/run.sh                 # full: 3 runs per cell, medians (~4 minutes on 2 cores)
#   bench/run.sh --quick         # smoke test: 1 run, smaller sizes (~40 s)
#   bench/run.sh --runs 5 --scenarios abc --servers tailcast,frontail --frontail-client node
#
# The table also goes to bench/target/results.md (and every run's figures to results.json).
# It only ever stops processes it started, by pid.
set -euo pipefail
bench=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$bench")

for tool in cargo node npm tail md5sum; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is needed" >&2; exit 1; }
done

echo "bench: building tailcast (release)" >&2
(cd "$root" && cargo build --release --quiet --bin tailcast)
echo "bench: building tailcast-bench (release)" >&2
(cd "$bench" && cargo build --release --quiet)

if [ ! -f "$bench/frontail/node_modules/frontail/package.json" ] ||
   [ ! -f "$bench/frontail/node_modules/socket.io-client/package.json" ]; then
  echo "bench: installing frontail with npm (bench/frontail)" >&2
  (cd "$bench/frontail" && npm ci --no-audit --no-fund --loglevel=error)
fi

# 10 000 clients: raise the open-files limit as far as allowed (client processes raise theirs too).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cd "$root"
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || rev="$rev + uncommitted changes"
exec "$bench/target/release/tailcast-bench" suite \
  --tailcast "$root/target/release/tailcast" \
  --frontail-dir "$bench/frontail" \
  --out "$bench/target/results.md" --json "$bench/target/results.json" \
  --revision "$rev" "$@"
