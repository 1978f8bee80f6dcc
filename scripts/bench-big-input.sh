#!/usr/bin/env bash
# Hostile-input benchmark (issue 10, item 6: "10 MB of `{`"): `gbpc check` on inputs of one
# huge line or one huge class of line ends, with terminal and JSON diagnostics and `fmt`.
# Prints, per input and mode: the median wall and CPU (user + system) time of 3 runs (on a
# shared machine the CPU time is the steadier figure), the largest peak memory, and the size of what gbpc wrote
# (a diagnostic never copies a long line: the terminal snippet is cut to a window around its
# labels).
#
# Usage: scripts/bench-big-input.sh [MB]        (default 10)
# Figures are printed, never asserted: targets are < 0.5 s and < 200 MB at 10 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/gbpc
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mb=${1:-10}
n=$(( mb * 1024 * 1024 ))

python3 - "$work" "$n" <<'PY'
import sys
work, n = sys.argv[1], int(sys.argv[2])
def w(name, text):
    open(f"{work}/{name}.gbp", "w", newline="").write(text)
w("braces", "{" * n)
w("word", "a" * n)
w("tenant-braces", "tenant t { " + "{" * (n - 11))
parts, size, i = ["tenant t {"], 10, 0
while size < n - 100:
    p = f"filter f{i} {{ tcp {i % 65535 + 1} }}"
    parts.append(p); size += len(p) + 1; i += 1
parts.append("contract c { subject s permit nope } }")  # one error, at the end of the line
w("one-line-policy", " ".join(parts))
w("cr-line-ends", "# x\r" * (n // 4))
w("comment-line", "# " + "x" * (n - 2) + "\ntenant t {}\n")
PY

printf '%-16s %-6s %-9s %-7s %-8s %-10s\n' input mode median_s cpu_s peak_MB output_B
for f in braces word tenant-braces one-line-policy cr-line-ends comment-line; do
  for mode in text json fmt; do
    case $mode in
      text) args=(check --color never "$work/$f.gbp");;
      json) args=(check --message-format json "$work/$f.gbp");;
      fmt) args=(fmt --check "$work/$f.gbp");;
    esac
    times=(); users=(); peak=0
    for _ in 1 2 3; do
      /usr/bin/time -f '%e %U %S %M' -o "$work/t" "$bin" "${args[@]}" >"$work/out" 2>&1 || true
      read -r secs user sys kb < <(tail -1 "$work/t")
      times+=("$secs"); users+=("$(echo "$user + $sys" | bc)"); [ "$kb" -gt "$peak" ] && peak=$kb
    done
    median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
    muser=$(printf '%s\n' "${users[@]}" | sort -n | sed -n 2p)
    printf '%-16s %-6s %-9s %-7s %-8s %-10s\n' "$f" "$mode" "$median" "$muser" $(( peak / 1024 )) "$(stat -c %s "$work/out")"
  done
done
