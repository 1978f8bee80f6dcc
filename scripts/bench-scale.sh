#!/usr/bin/env bash
# Scale benchmark: generate policies of N groups (3 CIDRs each) and 3N contracts (every 10th
# with a deny), compile them to nftables and Kubernetes, and print compile times, peak memory,
# output sizes, object counts, nft rule and element counts and the time `nft -c -f` (and a real
# load) takes in a throwaway namespace.
#
# Usage: scripts/bench-scale.sh [N ...]     (default: 100 1000 10000; run as root for nft)
# Environment: GBPC=path/to/gbpc to measure another binary (default: a release build of this
# tree); RUNS=k runs per timing, the median is printed (default 3; hyperfine when installed);
# NFT_LAYOUT=addresses|marks the nft layout (default: the compiler's, addresses).
# Figures are printed, never asserted: targets are N=10,000 compiled in < 1 s and < 300 MB,
# its script loaded in < 1 s, rule count flat in N.
#
# Columns: k8s_s / k8s_KB / k8s_obj are the default Kubernetes output (denies compiled away
# into NetworkPolicies); cnp_s / cnp_obj the same with --k8s-deny cluster (NetworkPolicies plus
# ClusterNetworkPolicies; "err" when the cluster tier runs out of priorities, as it does past
# about 990 groups that enforce denies).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${GBPC:-}" ]; then
  cargo build --release --quiet
  bin=target/release/gbpc
else
  bin=$(realpath "$GBPC")
fi
runs=${RUNS:-3}
layout=()
[ -z "${NFT_LAYOUT:-}" ] || layout=(--nft-layout "$NFT_LAYOUT")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 1000 10000)

# median_time CMD...: the median wall time of $runs runs, in seconds; "err" if it fails.
median_time() {
  if command -v hyperfine >/dev/null; then
    if hyperfine -N -i --runs "$runs" --export-json "$work/h.json" "$*" >/dev/null 2>&1; then
      python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["results"][0]["median"])' "$work/h.json"
    else
      echo err
    fi
  else
    if /usr/bin/time -f '%e' -o "$work/t" "$@" >/dev/null 2>&1; then cat "$work/t"; else echo err; fi
  fi
}

printf '%-6s %-7s %-9s %-7s %-7s %-7s %-7s %-7s %-7s %-7s %-6s %-8s %-8s %-8s\n' \
  N policy nft_s peak_MB nft_KB k8s_s k8s_KB k8s_obj cnp_s cnp_obj rules elements nft_chk_s nft_load_s
for n in "${sizes[@]}"; do
  python3 scripts/gen-policy.py "$n" > "$work/p.gbp"
  pol_kb=$(( $(stat -c %s "$work/p.gbp") / 1024 ))
  secs=$(median_time "$bin" compile "$work/p.gbp" --target nft "${layout[@]}" -o "$work/p.nft" --color never)
  /usr/bin/time -f '%M' -o "$work/m" "$bin" compile "$work/p.gbp" --target nft "${layout[@]}" -o "$work/p.nft" --color never >/dev/null 2>&1
  kb=$(cat "$work/m")
  ksecs=$(median_time "$bin" compile "$work/p.gbp" --target k8s -o "$work/p.json" --color never)
  rm -f "$work/p.json"
  "$bin" compile "$work/p.gbp" --target k8s -o "$work/p.json" --color never >/dev/null 2>&1 || true
  k8s_kb=$(( $( [ -f "$work/p.json" ] && stat -c %s "$work/p.json" || echo 0) / 1024 ))
  k8s_obj=$( [ -f "$work/p.json" ] && grep -c '"kind": "NetworkPolicy"' "$work/p.json" || echo 0)
  csecs=$(median_time "$bin" compile "$work/p.gbp" --target k8s --k8s-deny cluster -o "$work/c.json" --color never)
  rm -f "$work/c.json"
  "$bin" compile "$work/p.gbp" --target k8s --k8s-deny cluster -o "$work/c.json" --color never >/dev/null 2>&1 || true
  cnp_obj=$( [ -f "$work/c.json" ] && grep -c '"kind": "ClusterNetworkPolicy"' "$work/c.json" || echo err)
  nft_kb=$(( $(stat -c %s "$work/p.nft") / 1024 ))
  # Rules: lines inside chain blocks that are not the hook declaration.
  rules=$(awk '/^\tchain /{c=1;next} c&&/^\t}/{c=0} c&&!/type filter hook/&&NF{r++} END{print r}' "$work/p.nft")
  # Elements: the lines of `add element ... {` blocks (and of inline `elements = {` blocks).
  elements=$(awk '/^add element .*\{$/||/elements = \{/{e=1;next} e&&/^\t*}/{e=0} e{n++} END{print n+0}' "$work/p.nft")
  if command -v nft >/dev/null && [ "$(id -u)" = 0 ]; then
    check=$( { /usr/bin/time -f '%e' unshare --net nft -c -f "$work/p.nft" >/dev/null; } 2>&1 | tail -1)
    load=$( { /usr/bin/time -f '%e' unshare --net nft -f "$work/p.nft" >/dev/null; } 2>&1 | tail -1)
  else
    check=n/a; load=n/a
  fi
  printf '%-6s %-7s %-9s %-7s %-7s %-7s %-7s %-7s %-7s %-7s %-6s %-8s %-8s %-8s\n' \
    "$n" "${pol_kb}K" "$secs" "$((kb / 1024))" "$nft_kb" "$ksecs" "$k8s_kb" "$k8s_obj" \
    "$csecs" "$cnp_obj" "$rules" "$elements" "$check" "$load"
done
