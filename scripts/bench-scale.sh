#!/usr/bin/env bash
# Scale benchmark: generate policies of N groups (3 CIDRs each) and 3N contracts, compile them
# to nftables and Kubernetes, and print compile time, peak memory, output size, nft rule and
# element counts and the time `nft -c -f` (and a real load) takes in a throwaway namespace.
#
# Usage: scripts/bench-scale.sh [N ...]     (default: 100 1000 10000; run as root for nft)
# Figures are printed, never asserted: targets are N=10,000 compiled in < 1 s and < 300 MB,
# its script loaded in < 1 s, rule count flat in N.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/gbpc
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 1000 10000)

printf '%-7s %-9s %-10s %-9s %-9s %-10s %-7s %-9s %-9s %-10s %-9s\n' \
  N policy compile_s peak_MB nft_KB k8s_compile k8s_KB rules elements nft_check_s nft_load_s
for n in "${sizes[@]}"; do
  python3 scripts/gen-policy.py "$n" > "$work/p.gbp"
  pol_kb=$(( $(stat -c %s "$work/p.gbp") / 1024 ))
  /usr/bin/time -f '%e %M' -o "$work/t" "$bin" compile "$work/p.gbp" --target nft -o "$work/p.nft" --color never
  read -r secs kb < "$work/t"
  # AdminNetworkPolicy priorities run out (0-1000) past ~490 deny contracts: the k8s figure is
  # then for denies reported as errors, which is what a user would get.
  rm -f "$work/p.json"
  if /usr/bin/time -f '%e %M' -o "$work/tk" "$bin" compile "$work/p.gbp" --target k8s --k8s-deny admin -o "$work/p.json" --color never 2>/dev/null; then
    read -r ksecs _ < "$work/tk"
  else
    read -r ksecs _ < <(tail -1 "$work/tk")
    ksecs="${ksecs}(err)"
  fi
  nft_kb=$(( $(stat -c %s "$work/p.nft") / 1024 ))
  k8s_kb=$(( $( [ -f "$work/p.json" ] && stat -c %s "$work/p.json" || echo 0) / 1024 ))
  # Rules: lines inside chain blocks that are not the hook declaration.
  rules=$(awk '/^\tchain /{c=1;next} c&&/^\t}/{c=0} c&&!/type filter hook/&&NF{r++} END{print r}' "$work/p.nft")
  elements=$(awk '/elements = \{/{e=1;next} e&&/^\t\t}/{e=0} e{n++} END{print n+0}' "$work/p.nft")
  if command -v nft >/dev/null && [ "$(id -u)" = 0 ]; then
    check=$( { /usr/bin/time -f '%e' unshare --net nft -c -f "$work/p.nft" >/dev/null; } 2>&1 | tail -1)
    load=$( { /usr/bin/time -f '%e' unshare --net nft -f "$work/p.nft" >/dev/null; } 2>&1 | tail -1)
  else
    check=n/a; load=n/a
  fi
  printf '%-7s %-9s %-10s %-9s %-9s %-10s %-7s %-9s %-9s %-10s %-9s\n' \
    "$n" "${pol_kb}K" "$secs" "$((kb / 1024))" "$nft_kb" "$ksecs" "$k8s_kb" "$rules" "$elements" "$check" "$load"
done
