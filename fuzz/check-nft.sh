#!/usr/bin/env bash
# Load every nftables script the lower_nft target saved with `nft -c -f`, each in a fresh
# network namespace (`unshare --net`: the host ruleset is never touched). Needs root.
#
# Usage: fuzz/check-nft.sh DIR      (DIR as given to GBPC_FUZZ_NFT_DIR; *.gbp beside each *.nft
#                                     is the policy it came from)
# Exit 1 and the failing files listed if any script does not load.
set -euo pipefail
dir=${1:?usage: fuzz/check-nft.sh DIR}
total=0; bad=0
for f in "$dir"/*.nft; do
  [ -e "$f" ] || continue
  total=$((total + 1))
  if ! err=$(unshare --net nft -c -f "$f" 2>&1); then
    bad=$((bad + 1))
    echo "FAIL $f (policy ${f%.nft}.gbp):"
    echo "$err" | head -5
  fi
done
echo "nft -c: $total scripts, $bad failed"
[ "$bad" = 0 ]
