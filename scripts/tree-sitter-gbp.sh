#!/usr/bin/env bash
# Check the tree-sitter grammar of gbpc policies (editors/tree-sitter-gbp):
#
# 1. the generated parser committed in src/ (parser.c, grammar.json, node-types.json,
#    tree_sitter/*.h: consumers such as nvim-treesitter and Helix build from them) is what
#    grammar.js generates (`tree-sitter generate --abi 14`, for older runtimes too);
# 2. the corpus tests (test/corpus: every construct of docs/language.md, error recovery) and the
#    highlight tests (test/highlight) pass (`tree-sitter test`);
# 3. the Helix queries (queries/helix/highlights.scm) are queries/highlights.scm in Helix's
#    capture names;
# 4. the grammar agrees with gbpc on which files are valid (scripts/tree-sitter-agree.py:
#    every policy of the repository, the fuzz corpora, generated policies).
#
# The tree-sitter CLI (pinned below) comes from crates.io: the npm package `tree-sitter-cli`
# downloads its binary from GitHub at install time, which this machine cannot reach. It is built
# once (a few minutes) into ${GBPC_TOOLS_DIR:-~/.cache/gbpc} and reused.
#
# Usage: scripts/tree-sitter-gbp.sh [--update] [PATH/TO/gbpc]   (default: target/debug/gbpc)
#   --update  regenerate src/, the corpus trees and the Helix queries instead of checking them
# Ends with "N passed, M failed" from the agreement check.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

update=0
if [ "${1:-}" = "--update" ]; then
  update=1
  shift
fi
gbpc="${1:-}"
if [ -z "$gbpc" ]; then
  cargo build --quiet --locked --bin gbpc
  gbpc=target/debug/gbpc
fi
gbpc=$(realpath "$gbpc")

version=0.27.1
tools="${GBPC_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gbpc}"
ts="$tools/tree-sitter-cli-$version/bin/tree-sitter"
if [ "$("$ts" --version 2>/dev/null || true)" != "tree-sitter $version" ]; then
  echo "tree-sitter-gbp: building tree-sitter-cli $version from crates.io into $tools (once)"
  start=$(date +%s)
  # Without the default QuickJS runtime: grammar.js is evaluated by Node.js.
  cargo install --locked --quiet --no-default-features \
    --root "$tools/tree-sitter-cli-$version" tree-sitter-cli --version "$version"
  echo "tree-sitter-gbp: built in $(($(date +%s) - start)) s"
fi
command -v node >/dev/null 2>&1 || { echo "tree-sitter-gbp: Node.js is needed (tree-sitter generate)" >&2; exit 1; }
# The CLI's configuration and compiled parsers stay in target/.
export TREE_SITTER_DIR="$root/target/tree-sitter/config" TREE_SITTER_LIBDIR="$root/target/tree-sitter/lib"
mkdir -p "$TREE_SITTER_DIR" "$TREE_SITTER_LIBDIR"

grammar=editors/tree-sitter-gbp
generated=(parser.c grammar.json node-types.json tree_sitter/parser.h tree_sitter/array.h tree_sitter/alloc.h)

# 1. The committed generated parser is up to date.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$grammar/grammar.js" "$grammar/tree-sitter.json" "$tmp/"
(cd "$tmp" && "$ts" generate --abi 14)
if [ "$update" = 1 ]; then
  for f in "${generated[@]}"; do
    mkdir -p "$(dirname "$grammar/src/$f")"
    cp "$tmp/src/$f" "$grammar/src/$f"
  done
else
  for f in "${generated[@]}"; do
    if ! cmp -s "$tmp/src/$f" "$grammar/src/$f"; then
      echo "tree-sitter-gbp: $grammar/src/$f is not what grammar.js generates; run scripts/tree-sitter-gbp.sh --update" >&2
      exit 1
    fi
  done
  echo "tree-sitter-gbp: src/ is what grammar.js generates (tree-sitter $version, ABI 14)"
fi

# 2. Corpus and highlight tests.
if [ "$update" = 1 ]; then
  (cd "$grammar" && "$ts" test --update >/dev/null 2>&1 || true)
fi
if (cd "$grammar" && NO_COLOR=1 "$ts" test >"$tmp/test.log" 2>&1); then
  tail -n 3 "$tmp/test.log"
else
  cat "$tmp/test.log"
  echo "tree-sitter-gbp: corpus or highlight tests failed" >&2
  exit 1
fi

# 3. The Helix queries follow the main ones.
python3 - "$grammar/queries/highlights.scm" "$grammar/queries/helix/highlights.scm" "$update" <<'EOF'
import re, sys
main, helix, update = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
# nvim-treesitter / tree-sitter CLI capture -> Helix scope (where they differ).
names = {
    "module": "namespace",
    "keyword.modifier": "keyword.storage.modifier",
    "property": "variable.other.member",
    "number": "constant.numeric.integer",
}
text = open(main, encoding="utf-8").read()
text = text.replace(
    "; Highlights for gbpc policies, in the capture names of nvim-treesitter and the tree-sitter CLI.\n"
    "; queries/helix/highlights.scm is the same file in Helix's names (scripts/tree-sitter-gbp.sh\n"
    "; checks that the two agree).\n",
    "; Highlights for gbpc policies in Helix's scope names: generated from ../highlights.scm by\n"
    "; scripts/tree-sitter-gbp.sh --update (do not edit by hand).\n",
)
want = re.sub(r"@([a-z.]+)", lambda m: "@" + names.get(m.group(1), m.group(1)), text)
if update:
    open(helix, "w", encoding="utf-8").write(want)
elif open(helix, encoding="utf-8").read() != want:
    sys.exit("tree-sitter-gbp: queries/helix/highlights.scm does not follow queries/highlights.scm; run --update")
else:
    print("tree-sitter-gbp: the Helix queries follow queries/highlights.scm")
EOF

# 4. Agreement with gbpc's parser.
python3 scripts/tree-sitter-agree.py "$gbpc" "$ts"
