#!/usr/bin/env bash
# Scaling cliffs: grow ONE dimension of a policy at a time (scripts/gen-cliffs.py) and time
# every command on it. Prints one row per (dimension, size, command): wall seconds and peak
# resident memory (/usr/bin/time), or `timeout` past the limit. Figures only, never asserted.
#
# Usage: scripts/bench-cliffs.sh [DIMENSION[=SIZE,SIZE...] ...]
#   DIMENSION: groups subjects contracts tenants filters endpoints warnings labels overlaps empty
#   (default: all of them at their default sizes, below)
# Environment:
#   GBPC=path      the binary to measure (default: target/release/gbpc, built first)
#   TIMEOUT=secs   per command (default 120)
#   CMDS="..."     the commands to run (default: every one below)
#   RUNS=k         runs per measurement; the median is printed (default 1)
#
# Example: scripts/bench-cliffs.sh subjects=8000,100000 tenants=10000,40000
#          GBPC=/tmp/old-gbpc CMDS="diff query" scripts/bench-cliffs.sh groups=1000,5000
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${GBPC:-}" ]; then
  cargo build --release --quiet
  GBPC=target/release/gbpc
fi
TIMEOUT=${TIMEOUT:-120}
RUNS=${RUNS:-1}
ALL_CMDS="check check-json nft k8s diff query matrix-csv matrix-html explain fmt"
CMDS=${CMDS:-$ALL_CMDS}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

declare -A SIZES=(
  [groups]="1000,5000,10000"
  [subjects]="8000,100000"
  [contracts]="10000,100000"
  [tenants]="10000,20000,40000"
  [filters]="10000,100000"
  [endpoints]="10000,60000"
  [warnings]="50000"
  [labels]="1000,10000"
  [overlaps]="1000,10000"
  [empty]="100000,1000000"
)
ORDER="groups subjects contracts tenants filters endpoints warnings labels overlaps empty"

jobs=()
if [ $# -eq 0 ]; then
  for d in $ORDER; do jobs+=("$d=${SIZES[$d]}"); done
else
  for a in "$@"; do
    case $a in
      *=*) jobs+=("$a") ;;
      *) jobs+=("$a=${SIZES[$a]:?unknown dimension $a}") ;;
    esac
  done
fi

# The two ends `explain` asks about, per dimension.
ends() {
  case $1 in
    groups) echo "g0 g1" ;;
    tenants) echo "t0/a t0/b" ;;
    labels) echo "client g1" ;;
    overlaps | empty) echo "g0 g1" ;;
    *) echo "a b" ;;
  esac
}

# run NAME ARGS...: time one command (median of RUNS), print "secs peak_MB" or "timeout".
measure() {
  local times=() mem=0 rc
  for _ in $(seq "$RUNS"); do
    rc=0
    /usr/bin/time -f '%e %M' -o "$work/time" timeout "$TIMEOUT" "$@" >"$work/out" 2>"$work/err" || rc=$?
    if [ "$rc" = 124 ]; then
      echo "timeout(>${TIMEOUT}s) -"
      return
    fi
    if [ "$rc" -gt 2 ]; then
      echo "crash(exit $rc) -"
      return
    fi
    local line
    line=$(tail -1 "$work/time")
    times+=("${line% *}")
    mem=${line#* }
  done
  local med
  med=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  echo "$med $((mem / 1024))"
}

printf '%-10s %-8s %-12s %-9s %-8s %s\n' dimension size command seconds peak_MB output
for job in "${jobs[@]}"; do
  dim=${job%%=*}
  IFS=, read -r -a sizes <<<"${job#*=}"
  for n in "${sizes[@]}"; do
    f="$work/$dim-$n.gbp"
    python3 scripts/gen-cliffs.py "$dim" "$n" >"$f"
    read -r from to < <(ends "$dim")
    for c in $CMDS; do
      case $c in
        check) args=(check "$f" --color never) ;;
        check-json) args=(check "$f" --message-format json) ;;
        nft) args=(compile "$f" --target nft --color never) ;;
        k8s) args=(compile "$f" --target k8s --color never) ;;
        diff) args=(diff "$f" "$f" --color never) ;;
        query) args=(query "$f" --from any --color never) ;;
        matrix-csv) args=(matrix "$f" --format csv --color never) ;;
        matrix-html) args=(matrix "$f" --format html --color never) ;;
        explain) args=(explain "$f" --from "$from" --to "$to" --port tcp/80 --color never) ;;
        fmt) args=(fmt --check "$f") ;;
        *) echo "unknown command $c" >&2; exit 2 ;;
      esac
      read -r secs mb < <(measure "$GBPC" "${args[@]}")
      bytes=$(stat -c %s "$work/out" 2>/dev/null || echo 0)
      errb=$(stat -c %s "$work/err" 2>/dev/null || echo 0)
      printf '%-10s %-8s %-12s %-9s %-8s %s\n' "$dim" "$n" "$c" "$secs" "$mb" \
        "stdout $((bytes / 1024))K, stderr $((errb / 1024))K"
    done
  done
done
