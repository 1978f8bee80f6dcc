#!/usr/bin/env bash
# Time `gbpc run` (boot, load, the full probe matrix) on generated policies of N endpoints
# (scripts/gen-policy.py N: one endpoint per group). Needs root and nftables.
# Usage: scripts/bench-run.sh [N ...]   (default: 50 200)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/gbpc
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(50 200)
printf '%-6s %-9s %10s %8s %8s %8s %8s %s\n' endpoints enforce probes boot load probe total result
for n in "${sizes[@]}"; do
  python3 scripts/gen-policy.py "$n" > "$dir/p$n.gbp"
  for mode in fabric endpoint; do
    start=$(date +%s.%N)
    set +e
    "$bin" run "$dir/p$n.gbp" --enforce "$mode" --format json > "$dir/out.json" 2> "$dir/err.txt"
    rc=$?
    set -e
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    if [ "$rc" -ne 0 ]; then
      echo "$n $mode: exit $rc"; tail -5 "$dir/err.txt"; continue
    fi
    python3 - "$dir/out.json" "$n" "$mode" "$wall" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["timings_ms"]
print(f'{sys.argv[2]:<9} {sys.argv[3]:<9} {r["probes"]["probed"]:>10} {t["boot"]/1e3:>7.2f}s {t["load"]/1e3:>7.2f}s '
      f'{t["probe"]/1e3:>7.2f}s {float(sys.argv[4]):>7.2f}s {"ok" if r["ok"] else "DISAGREES"}')
PY
  done
done
