#!/usr/bin/env bash
# Build, package and test the VS Code extension (editors/vscode).
#
# 1. `npm ci` installs the pinned tools and libraries (editors/vscode/package-lock.json; reused
#    while the lock file does not change);
# 2. `tsc` compiles src/extension.ts; the TextMate grammar editors/gbp.tmLanguage.json is copied
#    into the extension;
# 3. `vsce package` writes target/editors/gbp-VERSION.vsix;
# 4. the .vsix is unpacked and ITS code (out/extension.js and the vscode-languageclient it ships)
#    runs under Node's test runner against a real `gbpc lsp`, with the `vscode` module replaced
#    by a stand-in (editors/vscode/test/vscode-stub.js): start-up, diagnostics, a quick fix,
#    formatting, restart, stop. VS Code itself is not run (see docs/editors.md).
#
# Usage: scripts/build-vscode.sh [PATH/TO/gbpc]   (default: builds and uses target/debug/gbpc)
# Needs Node.js 20 or later and npm (the npm registry). Ends with node's test summary.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

gbpc="${1:-}"
if [ -z "$gbpc" ]; then
  cargo build --quiet --locked --bin gbpc
  gbpc=target/debug/gbpc
fi
gbpc=$(realpath "$gbpc")

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "build-vscode: Node.js 20 or later and npm are needed" >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "build-vscode: Node.js $(node --version) is too old; @vscode/vsce needs 20 or later" >&2
  exit 1
fi

out=$root/target/editors
mkdir -p "$out"
cd editors/vscode

# npm ci deletes node_modules first; skip it while the installed tree matches the lock file.
if ! cmp -s package-lock.json node_modules/.gbpc-package-lock.json 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.gbpc-package-lock.json
fi

rm -rf out syntaxes
npx --no-install tsc -p .
mkdir -p syntaxes
cp ../gbp.tmLanguage.json syntaxes/

version=$(node -p 'require("./package.json").version')
vsix=$out/gbp-$version.vsix
rm -f "$vsix"
npx --no-install vsce package --skip-license --allow-missing-repository --out "$vsix" >"$out/vsce.log" 2>&1 || {
  cat "$out/vsce.log" >&2
  exit 1
}
echo "build-vscode: packaged $vsix ($(du -k "$vsix" | cut -f1) KiB)"

# Unpack what would be installed, check its manifest and files, then test its code.
unpacked=$out/vsix
rm -rf "$unpacked"
python3 - "$vsix" "$unpacked" "$root/editors/gbp.tmLanguage.json" <<'EOF'
import json, sys, zipfile
vsix, dest, grammar = sys.argv[1:]
with zipfile.ZipFile(vsix) as z:
    names = set(z.namelist())
    z.extractall(dest)
need = [
    "extension.vsixmanifest",
    "extension/package.json",
    "extension/out/extension.js",
    "extension/language-configuration.json",
    "extension/syntaxes/gbp.tmLanguage.json",
    "extension/node_modules/vscode-languageclient/node.js",
]
missing = [n for n in need if n not in names]
if missing:
    sys.exit(f"build-vscode: the .vsix lacks {missing}")
leaked = sorted(n for n in names if n.startswith(("extension/src/", "extension/test/"))
                or "/node_modules/typescript/" in n or "/node_modules/@vscode/vsce" in n)
if leaked:
    sys.exit(f"build-vscode: the .vsix carries development files: {leaked[:5]}")
manifest = json.load(open(f"{dest}/extension/package.json"))
assert manifest["main"] == "./out/extension.js", manifest["main"]
assert manifest["contributes"]["grammars"][0]["path"] == "./syntaxes/gbp.tmLanguage.json"
if open(f"{dest}/extension/syntaxes/gbp.tmLanguage.json", "rb").read() != open(grammar, "rb").read():
    sys.exit("build-vscode: the packaged grammar differs from editors/gbp.tmLanguage.json")
print(f"build-vscode: {len(names)} files in the .vsix, manifest and grammar checked")
EOF

GBPC="$gbpc" GBPC_EXTENSION_DIR="$unpacked/extension" node --test test/client.test.js
