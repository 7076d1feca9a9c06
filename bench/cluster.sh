#!/usr/bin/env bash
# The cluster benchmark (issue 17): a real redis-server started and stopped by the harness (Unix
# socket, no persistence), one publisher and two front nodes, against one plain tailcast in the
# same run. Builds tailcast and the harness (release) first.
#
#   bench/cluster.sh                 # 3 runs per cell, medians (~3 minutes on 2 cores)
#   bench/cluster.sh --quick         # smoke test: 1 run, smaller sizes
#   bench/cluster.sh --runs 5 --parts lb   # l: latency, b: burst, i: idle
#
# The table also goes to bench/target/cluster.md (every run's figures to cluster.json).
# It only ever stops processes it started, by pid.
set -euo pipefail
bench=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$bench")

for tool in cargo redis-server; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is needed (Debian: apt-get install redis-server)" >&2; exit 1; }
done

echo "bench: building tailcast (release)" >&2
(cd "$root" && cargo build --release --quiet --bin tailcast)
echo "bench: building tailcast-bench (release)" >&2
(cd "$bench" && cargo build --release --quiet)

# 10 000 viewers: raise the open-files limit as far as allowed (client processes raise theirs too).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cd "$root"
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || rev="$rev + uncommitted changes"
exec "$bench/target/release/tailcast-bench" cluster \
  --tailcast "$root/target/release/tailcast" \
  --redis-server "$(command -v redis-server)" \
  --out "$bench/target/cluster.md" --json "$bench/target/cluster.json" \
  --revision "$rev" "$@"
