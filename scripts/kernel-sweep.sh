#!/usr/bin/env bash
# Kernel side of the differential test at scale: `gbpc run` (one container per endpoint, the
# compiled nftables rules, every flow probed) on generated policies (`gbpc __synth SEED`: up to
# 30 endpoints, 3 tenants), in both enforcement modes. Every probe must agree with the
# evaluator. Needs root. tests/differential.rs runs five small seeds on every `cargo test`;
# this is the longer sweep.
#
# Usage: scripts/kernel-sweep.sh [FIRST [LAST]]   (as root; default seeds 100..139)
#        SYNTH=--large scripts/kernel-sweep.sh ...  (denser policies, most at 30 endpoints)
#        GBPC=target/debug/gbpc sudo -E scripts/kernel-sweep.sh   (a prebuilt binary)
# A failing run's policy and report are kept in $KEEP (default target/kernel-sweep).
# Last line: "kernel sweep: P passed, F failed, N probes, E endpoints"; exit 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
first=${1:-100}
last=${2:-139}
keep=${KEEP:-target/kernel-sweep}
# A prebuilt binary in $GBPC (e.g. when run with sudo, where cargo may not be on the path).
if [ -n "${GBPC:-}" ]; then
  gbpc=$(realpath "$GBPC")
else
  cargo build --quiet --locked --bin gbpc
  gbpc=target/debug/gbpc
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0 probes=0 endpoints=0
for s in $(seq "$first" "$last"); do
  # shellcheck disable=SC2086
  "$gbpc" __synth "$s" ${SYNTH:-} > "$work/seed-$s.gbp"
  for mode in fabric endpoint; do
    out="$work/seed-$s-$mode.json"
    n="" e=""
    if "$gbpc" run "$work/seed-$s.gbp" --enforce "$mode" --format json > "$out" 2> "$work/err" &&
      read -r n e < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["probes"]["probed"], len(d["endpoints"]))' "$out" || true) &&
      [ -n "$n" ] && [ -n "$e" ]; then
      pass=$((pass + 1)); probes=$((probes + n))
      [ "$mode" = fabric ] && endpoints=$((endpoints + e))
      echo "ok   seed $s $mode: $e endpoints, $n probes"
    else
      fail=$((fail + 1))
      mkdir -p "$keep"
      cp "$work/seed-$s.gbp" "$out" "$keep/" ; cp "$work/err" "$keep/seed-$s-$mode.err"
      echo "FAIL seed $s $mode (kept in $keep)"
    fi
  done
done
echo "kernel sweep: $pass passed, $fail failed, $probes probes, $endpoints endpoints"
[ "$fail" = 0 ]
