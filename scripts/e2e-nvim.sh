#!/usr/bin/env bash
# End to end in a real editor: a headless Neovim (Debian's package, 0.7.2 on Debian 12) with its
# built-in LSP client and editors/neovim/plugin/gbp.lua opens a policy with a typo, receives
# gbpc's diagnostic, applies the quick fix, formats the buffer and writes it; the file's
# contents are then checked (scripts/e2e-nvim.lua).
#
# Usage: scripts/e2e-nvim.sh [PATH/TO/gbpc]   (default: builds and uses target/debug/gbpc)
# Needs nvim on PATH (apt-get install neovim; .ci/run installs it). Prints "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."

gbpc="${1:-}"
if [ -z "$gbpc" ]; then
  cargo build --quiet --locked --bin gbpc
  gbpc=target/debug/gbpc
fi
gbpc=$(realpath "$gbpc")

if ! command -v nvim >/dev/null 2>&1; then
  echo "e2e-nvim: nvim is missing (apt-get install neovim)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# A typo (htps) and a layout gbpc fmt changes; nothing else wrong.
cat >"$dir/shop.gbp" <<'EOF'
tenant shop {
    filter https {tcp 443}
  contract web { subject tls permit htps }

  group web { select app=web  address 198.18.1.0/24 provides web }
  group client {
  select app=client
  address 198.18.2.0/24
  consumes web }
}
EOF

# The tree-sitter grammar, compiled as nvim-treesitter would, in a runtimepath directory.
ts_rtp=
if command -v cc >/dev/null 2>&1; then
  ts_rtp=$dir/rtp
  mkdir -p "$ts_rtp/parser" "$ts_rtp/queries/gbp"
  cc -shared -fPIC -O1 -I editors/tree-sitter-gbp/src editors/tree-sitter-gbp/src/parser.c \
    editors/tree-sitter-gbp/src/scanner.c -o "$ts_rtp/parser/gbp.so"
  cp editors/tree-sitter-gbp/queries/*.scm "$ts_rtp/queries/gbp/"
else
  echo "e2e-nvim: no C compiler: the tree-sitter checks are left out" >&2
fi

# --clean: no user configuration or plugins; XDG dirs inside the temporary directory so that
# nothing is read from or written to the machine's home (shada, swap, LSP log).
export XDG_CONFIG_HOME="$dir/config" XDG_DATA_HOME="$dir/data" XDG_STATE_HOME="$dir/state" XDG_CACHE_HOME="$dir/cache"
echo "e2e-nvim: $(nvim --version | head -1)"
GBPC="$gbpc" GBPC_TS_RTP="$ts_rtp" GBPC_PLUGIN="$PWD/editors/neovim/plugin/gbp.lua" GBPC_POLICY="$dir/shop.gbp" \
  timeout 120 nvim --clean --headless -n -c "luafile scripts/e2e-nvim.lua" </dev/null
