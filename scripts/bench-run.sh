#!/usr/bin/env bash
# Time `gbpc run` phase by phase on generated policies of N endpoints (scripts/gen-policy.py N:
# one endpoint per group, 3N contracts), in both enforcement modes and both proofs (the class
# proof, and --exhaustive: one probe per cell), as the median of R runs. Needs root and nftables.
# Prints a Markdown table; "report" is the wall time left after the run's own phases (comparing,
# the tables, writing the JSON report). The machine's load average is printed with every row:
# figures taken while other work runs are noisy.
#
# Usage: scripts/bench-run.sh [N ...]            (default: 50 200 1000)
#   R=5                       runs per row (default 3)
#   EXHAUSTIVE_MAX=200        largest N probed with --exhaustive (default 200)
#   ENDPOINT_MAX=200          largest N run with --enforce endpoint (default 200: every endpoint
#                             loads the script with its own nft, about 1 s each at 1,000)
#   scripts/bench-run.sh --stall [K]   K runs (default 30) of examples/three-tier.gbp: the
#                             boot+wire times, to see whether any run stalls
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/gbpc
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
R=${R:-3}

if [ "${1:-}" = "--stall" ]; then
  k=${2:-30}
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
  for i in $(seq "$k"); do
    "$bin" run examples/three-tier.gbp --format json > "$dir/out.json"
    python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["timings_ms"]; print(t["boot"]+t["wire"])' "$dir/out.json"
  done | python3 -c '
import sys, statistics
v = sorted(int(x) for x in sys.stdin)
print(f"boot+wire over {len(v)} runs: median {statistics.median(v)} ms, max {v[-1]} ms, "
      f"{sum(1 for x in v if x >= 800)} runs at 800 ms or more")'
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
  exit 0
fi

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(50 200 1000)
printf '| endpoints | enforce | proof | probes | cells | plan | boot | wire | load | classify | probe | report | total | result | load avg |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n'
for n in "${sizes[@]}"; do
  python3 scripts/gen-policy.py "$n" > "$dir/p$n.gbp"
  for mode in fabric endpoint; do
    [ "$mode" = endpoint ] && [ "$n" -gt "${ENDPOINT_MAX:-200}" ] && continue
    for proof in classes exhaustive; do
      [ "$proof" = exhaustive ] && [ "$n" -gt "${EXHAUSTIVE_MAX:-200}" ] && continue
      flag=""
      [ "$proof" = exhaustive ] && flag="--exhaustive"
      : > "$dir/runs"
      result=ok
      for _ in $(seq "$R"); do
        load=$(cut -d' ' -f1 /proc/loadavg)
        start=$(date +%s%N)
        set +e
        # shellcheck disable=SC2086
        "$bin" run "$dir/p$n.gbp" --enforce "$mode" $flag --format json > "$dir/out.json" 2> "$dir/err.txt"
        rc=$?
        set -e
        wall=$(( ($(date +%s%N) - start) / 1000000 ))
        if [ "$rc" -ne 0 ]; then
          result="exit $rc: $(tail -1 "$dir/err.txt")"
          break
        fi
        python3 - "$dir/out.json" "$wall" "$load" >> "$dir/runs" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["timings_ms"]
print(r["probes"]["probed"], r["probes"]["cells"], t["plan"], t["boot"], t["wire"], t["load"],
      t["classify"], t["probe"], int(sys.argv[2]) - t["total"], int(sys.argv[2]), sys.argv[3],
      "ok" if r["ok"] else "DISAGREES")
PY
      done
      if [ ! -s "$dir/runs" ]; then
        echo "| $n | $mode | $proof | | | | | | | | | | | $result | |"
        continue
      fi
      python3 - "$dir/runs" "$n" "$mode" "$proof" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
col = lambda i: statistics.median(float(r[i]) for r in rows)
s = lambda ms: f"{ms / 1000:.2f} s"
loads = [r[10] for r in rows]
res = "ok" if all(r[11] == "ok" for r in rows) else "DISAGREES"
print(f"| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {int(col(0)):,} | {int(col(1)):,} | "
      + " | ".join(s(col(i)) for i in range(2, 10))
      + f" | {res} ({len(rows)} runs) | {'/'.join(loads)} |")
PY
    done
  done
done
