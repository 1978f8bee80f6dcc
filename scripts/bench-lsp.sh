#!/usr/bin/env bash
# Language server benchmark: keystroke bursts on 3.4 MB and 5.2 MB policies (time from the last
# keystroke to the final diagnostics, diagnostics sets published, hover latency during the
# edits) and resident memory per open 330 KB document. The client is scripts/bench-lsp.py
# (Python standard library only); see its header for what each figure means.
#
# Usage: scripts/bench-lsp.sh [PATH/TO/gbpc] [bench-lsp.py options...]
#        (default: builds and uses target/release/gbpc; options: --interval MS between
#        keystrokes (50), --docs N for the memory table (50), --runs R (3), --only edits|memory)
# Figures are printed, never asserted. Targets: the final diagnostics within about two checks
# of the last keystroke (one set per burst, not one per keystroke), hovers answered in
# milliseconds during edits, a few MB per open 330 KB document (it was 13 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=""
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
  bin=$1
  shift
fi
if [ -z "$bin" ]; then
  cargo build --release --quiet --bin gbpc
  bin=target/release/gbpc
fi
exec python3 scripts/bench-lsp.py "$bin" "$@"
