#!/bin/bash
# A/B of two tailcast binaries on scenario a (bursts of 1 M and 2 M lines to one client, beside
# the `tail -F` pipe), alternating which binary goes first in each round; prints the medians of
# the server's CPU per line and of the per-run ratios to the pipe.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY [ROUNDS]     # from the repository's root, bench built
#
# AB_LINES sets the burst sizes (default "1000000 2000000"), AB_ARGS adds harness arguments, e.g.
#   AB_LINES=32 AB_ARGS="--line-bytes 1000000 --tailcast-args '--max-line-bytes 2MiB'"
set -euo pipefail
OLD=$1 NEW=$2 ROUNDS=${3:-7}
LINES=${AB_LINES:-1000000 2000000}
eval "EXTRA=(${AB_ARGS:-})"
ulimit -n "$(ulimit -Hn)"
OUT=$(mktemp -d)
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="old new"; else order="new old"; fi
  for b in $order; do
    if [ "$b" = old ]; then bin=$OLD; else bin=$NEW; fi
    for n in $LINES; do
      bench/target/release/tailcast-bench suite --tailcast "$bin" --frontail-dir bench/frontail \
        --scenarios a --servers pipe,tailcast --runs 1 --lines "$n" "${EXTRA[@]}" \
        --json "$OUT/r$r-$b-$n.json" > /dev/null 2> "$OUT/r$r-$b-$n.log"
    done
  done
done
python3 - "$OUT" <<'PY'
import glob, json, re, statistics as st, sys
res = {}
for f in glob.glob(sys.argv[1] + '/r*-*-*.json'):
    r, b, n = re.match(r'.*/r(\d+)-(\w+)-(\d+)\.json', f).groups()
    d = json.load(open(f))
    if 'a/tailcast' not in d or 'a/pipe: tail -n0 -F' not in d:
        print('a run failed, see', f[:-5] + '.log')
        continue
    p, t = d['a/pipe: tail -n0 -F'][0], d['a/tailcast'][0]
    if t['complete'] != 1 or t['dups'] or t['gaps'] or t['ooo']:
        print('lost, repeated or out of order:', f)
    res.setdefault((n, b), []).append((t['srv_cpu_s'] / int(n) * 1e9, p['srv_cpu_s'] / int(n) * 1e9,
                                       t['srv_cpu_s'] / p['srv_cpu_s'], t['rate'] / p['rate']))
for (n, b), v in sorted(res.items()):
    print(f"{n} lines, {b}: {len(v)} runs, tailcast {st.median(x[0] for x in v):.1f} ns a line, "
          f"pipe {st.median(x[1] for x in v):.1f}, CPU vs pipe {st.median(x[2] for x in v):.2f}x "
          f"(runs {' '.join(f'{x[2]:.2f}' for x in v)}), lines/s {100 * st.median(x[3] for x in v):.0f} % of the pipe's")
PY
