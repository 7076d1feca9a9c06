#!/usr/bin/env bash
# Soak test for issue 7:  bench/soak.sh DURATION   (e.g. 2m, 10m, 90s; default 10m)
#
# tailcast follows a temp log; a writer appends 500 lines/s and rotates it (rename + create)
# every 5 s, writing on to the old descriptor for 300 ms first; 50 WebSocket clients reconnect
# at random (every ~3 s) and resume with `after` = last seq; 3 long-poll followers (Rust) and
# one curl loop exactly as in the README follow along. At the end: lines written, delivered,
# lost, duplicated (per client, by seq and line content), server RSS at start, after warm-up
# and at the end. Exit status 1 when any client lost, duplicated or garbled a line.
# Extra options go to `tailcast-bench soak` (e.g. --rate 2000 --ws 100 --server-args "--history 50000").
set -euo pipefail
bench=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$bench")
dur=${1:-10m}
[ $# -gt 0 ] && shift
case "$dur" in
  *h) secs=$(( ${dur%h} * 3600 )) ;;
  *m) secs=$(( ${dur%m} * 60 )) ;;
  *s) secs=${dur%s} ;;
  *) secs=$dur ;;
esac

(cd "$root" && cargo build --release --quiet --bin tailcast)
(cd "$bench" && cargo build --release --quiet)
command -v curl >/dev/null || { echo "soak: curl is needed" >&2; exit 1; }

tmp=$(mktemp -d)
curl_pid=
cleanup() {
  if [ -n "$curl_pid" ]; then kill "$curl_pid" 2>/dev/null || true; wait "$curl_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

"$bench/target/release/tailcast-bench" soak --seconds "$secs" \
  --tailcast "$root/target/release/tailcast" \
  --port-file "$tmp/port" --ready-file "$tmp/ready" --written-file "$tmp/written" "$@" &
soak_pid=$!

# The README's curl loop, once the clients are in place (before the first line).
while [ ! -f "$tmp/ready" ]; do
  kill -0 "$soak_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -f "$tmp/ready" ]; then
  port=$(cat "$tmp/port")
  (
    url="http://127.0.0.1:$port/poll?file=bench.log&format=text&timeout=30" after=0 h=$(mktemp -p "$tmp")
    while curl -sf -D "$h" "$url&after=$after"; do
      after=$(tr -d '\r' < "$h" | awk -F': ' 'tolower($1) == "x-tailcast-cursor" {print $2}'); done
  ) > "$tmp/curl.out" &
  curl_pid=$!
fi

status=0
wait "$soak_pid" || status=$?
if [ -n "$curl_pid" ]; then kill "$curl_pid" 2>/dev/null || true; wait "$curl_pid" 2>/dev/null || true; curl_pid=; fi
if [ -f "$tmp/written" ] && [ -f "$tmp/curl.out" ]; then
  written=$(cat "$tmp/written")
  awk -v written="$written" '
    { n++; seq = $1 + 0
      if (length($0) != 99 || substr($0, 99, 1) != "x") corrupt++
      if (seen[seq]++) dup++; else distinct++
      if (seq < max) ooo++; else max = seq }
    END { lost = written - distinct
          printf "soak: curl loop (README): 1 client; delivered %d; lost %d; duplicated %d; out of order %d; corrupt %d\n", distinct, lost, dup, ooo, corrupt
          exit (lost > 0 || dup > 0 || corrupt > 0 || ooo > 0) }' "$tmp/curl.out" || status=1
fi
exit "$status"
