#!/usr/bin/env bash
# End-to-end test of the language server with a client the project did not write: pygls's
# LanguageClient (PyPI, versions pinned in tests/e2e/requirements.txt) starts `gbpc lsp`, opens
# a broken policy and checks the published diagnostics (tests/e2e/lsp_client.py).
#
# Usage: scripts/e2e-lsp.sh [PATH/TO/gbpc]   (default: builds and uses target/debug/gbpc)
# The client is installed once into a virtual environment (target/e2e-venv, or $E2E_VENV) and
# reused while the pins do not change. Prints "N passed, M failed"; exits non-zero on a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${E2E_VENV:-target/e2e-venv}"
reqs=tests/e2e/requirements.txt
gbpc="${1:-}"

if [ -z "$gbpc" ]; then
  cargo build --quiet --locked --bin gbpc
  gbpc=target/debug/gbpc
fi

# shellcheck source=scripts/pinned-venv.sh
. scripts/pinned-venv.sh
pinned_venv e2e-lsp "$venv" "$reqs"

"$venv/bin/python" tests/e2e/lsp_client.py "$gbpc"
