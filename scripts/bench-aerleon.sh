#!/usr/bin/env bash
# Peer benchmark: the same synthetic policy (N groups with three /30 blocks each, 3N contracts,
# every 10th with a deny subject) compiled by gbpc and by Aerleon, side by side.
#
# Usage: scripts/bench-aerleon.sh [N ...]   (default: 100 1000 3000, and 10000 for gbpc alone)
#        AERLEON_MAX_N=3000 (largest N Aerleon runs), NFT_TIMEOUT=300 (seconds for nft -c)
#
# gbpc's policy comes from scripts/gen-policy.py N, Aerleon's from scripts/aerleon_gen.py N
# (definitions networks.yaml/services.yaml + a YAML policy; see that file for the mapping and
# what Aerleon cannot express). Aerleon 1.x is installed with pip into target/aerleon-venv on
# the first run. Per tool and N it prints: nftables generation time and peak RSS
# (best of BENCH_RUNS=3 direct runs, to the microsecond; peak RSS from /usr/bin/time %M;
# aclgen runs with --max_renderers=1 so the figure is one process),
# nftables output bytes, rule count (statements inside chain blocks other than the hook line),
# the time of `nft -c -f` in a throwaway network namespace (`unshare --net`; "timeout" after
# NFT_TIMEOUT seconds), and the Kubernetes generation time and bytes. Figures are printed,
# never asserted. Nothing generated is kept (a temporary directory, removed on exit).
set -euo pipefail
export LC_ALL=C   # $EPOCHREALTIME with a `.`
cd "$(dirname "$0")/.."
root=$(pwd)
venv=target/aerleon-venv
AERLEON_VERSION=1.18.0   # the version measured; change it on purpose
installed=$("$venv/bin/pip" show aerleon 2>/dev/null | awk '/^Version/{print $2}' || true)
if [ ! -x "$venv/bin/aclgen" ] || [ "$installed" != "$AERLEON_VERSION" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "aerleon==$AERLEON_VERSION"
fi
aerleon_version=$("$venv/bin/pip" show aerleon 2>/dev/null | awk '/^Version/{print $2}')
cargo build --release --quiet --locked
gbpc="$root/target/release/gbpc"
nft_timeout=${NFT_TIMEOUT:-300}
aerleon_max=${AERLEON_MAX_N:-3000}
sizes=("$@")
speed=()
[ ${#sizes[@]} -gt 0 ] || sizes=(100 1000 3000 10000)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Statements inside `chain NAME { ... }` blocks, both tools' layouts (tabs or spaces).
rules() {
  awk '
    /^[ \t]*chain [^ ]+ \{/ { c = 1; next }
    c && /^[ \t]*\}/ { c = 0; next }
    c && NF && !/^[ \t]*type [a-z]+ hook/ && !/^[ \t]*policy / && !/^[ \t]*#/ { r++ }
    END { print r + 0 }' "$1"
}

# `nft -c -f FILE` in a fresh network namespace: seconds, or "timeout"/"error".
nft_check() {
  if ! command -v nft >/dev/null || [ "$(id -u)" != 0 ]; then echo n/a; return; fi
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  timeout "$nft_timeout" unshare --net nft -c -f "$1" >/dev/null 2>"$work/nft.err" || rc=$?
  t1=$(date +%s.%N)
  if [ $rc = 124 ]; then echo timeout
  elif [ $rc != 0 ]; then echo "error"; head -3 "$work/nft.err" >&2
  else awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
  fi
}

# Run "$@" $runs times; prints "best_seconds peak_MB": the fastest wall time of a direct run
# (bash's $EPOCHREALTIME, no helper process inside the measurement), and the peak RSS of one
# more run under /usr/bin/time.
runs=${BENCH_RUNS:-3}
timed() {
  local best="" i t0 t1 us
  for ((i = 0; i < runs; i++)); do
    t0=$EPOCHREALTIME
    "$@" >/dev/null 2>"$work/cmd.err" || {
      echo "command failed: $*" >&2; tail -5 "$work/cmd.err" >&2; echo "fail 0"; return; }
    t1=$EPOCHREALTIME
    us=$(( (${t1/./} - ${t0/./}) ))
    if [ -z "$best" ] || [ "$us" -lt "$best" ]; then best=$us; fi
  done
  /usr/bin/time -f '%M' -o "$work/time" "$@" >/dev/null 2>/dev/null || true
  awk -v us="$best" -v kb="$(tail -1 "$work/time")" 'BEGIN { printf "%.4f %d\n", us / 1e6, kb / 1024 }'
}

# "gbpc is Nx faster": Aerleon's seconds over gbpc's.
ratio() {
  awk -v a="$1" -v g="$2" 'BEGIN {
    if (a ~ /^[0-9.]+$/ && g ~ /^[0-9.]+$/) { if (g < 0.0001) g = 0.0001; printf "%.1fx", a / g }
    else printf "n/a" }'
}

echo "gbpc $(git rev-parse --short HEAD 2>/dev/null || echo '?') vs Aerleon $aerleon_version; nft -c timeout ${nft_timeout}s"
fmt='%-7s %-8s %-9s %-8s %-10s %-8s %-9s %-9s %-9s\n'
printf "$fmt" N tool gen_nft_s peak_MB nft_bytes rules nft_c_s gen_k8s_s k8s_bytes
for n in "${sizes[@]}"; do
  d="$work/$n"; mkdir -p "$d"
  # gbpc
  python3 scripts/gen-policy.py "$n" > "$d/p.gbp"
  read -r gs gmb < <(timed "$gbpc" compile "$d/p.gbp" --target nft -o "$d/gbpc.nft" --color never)
  # The default options: denies compiled away into the NetworkPolicies (any N).
  read -r ks _ < <(timed "$gbpc" compile "$d/p.gbp" --target k8s -o "$d/gbpc.json" --color never)
  kb=$( [ -f "$d/gbpc.json" ] && stat -c %s "$d/gbpc.json" || echo -)
  [ "$ks" != fail ] || ks="err"
  printf "$fmt" "$n" gbpc "$gs" "$gmb" "$(stat -c %s "$d/gbpc.nft")" "$(rules "$d/gbpc.nft")" \
    "$(nft_check "$d/gbpc.nft")" "$ks" "$kb"
  # Aerleon
  if [ "$n" -gt "$aerleon_max" ]; then continue; fi
  python3 scripts/aerleon_gen.py "$n" "$d/a-nft" nftables
  python3 scripts/aerleon_gen.py "$n" "$d/a-k8s" k8s
  (cd "$d/a-nft" && read -r s m < <(timed "$root/$venv/bin/aclgen" --base_directory pol \
      --definitions_directory def --output_directory out --policy_file pol/scale.yaml \
      --max_renderers=1) && echo "$s $m" > t)
  (cd "$d/a-k8s" && read -r s m < <(timed "$root/$venv/bin/aclgen" --base_directory pol \
      --definitions_directory def --output_directory out --policy_file pol/scale.yaml \
      --max_renderers=1) && echo "$s $m" > t)
  read -r as amb < "$d/a-nft/t"
  read -r aks _ < "$d/a-k8s/t"
  speed+=("N=$n: gbpc generates nftables $(ratio "$as" "$gs") and Kubernetes $(ratio "$aks" "$ks") faster than Aerleon")
  an="$d/a-nft/out/scale.nft"; ak="$d/a-k8s/out/scale.yml"
  [ -f "$ak" ] || ak=$(find "$d/a-k8s/out" -type f 2>/dev/null | head -1 || true)
  if [ -f "$an" ]; then
    printf "$fmt" "$n" aerleon "$as" "$amb" "$(stat -c %s "$an")" "$(rules "$an")" \
      "$(nft_check "$an")" "$aks" "$( [ -n "$ak" ] && [ -f "$ak" ] && stat -c %s "$ak" || echo -)"
  else
    printf "$fmt" "$n" aerleon "$as" "$amb" - - - "$aks" -
  fi
done
printf '%s\n' "${speed[@]}"
