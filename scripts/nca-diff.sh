#!/usr/bin/env bash
# Differential test of the Kubernetes target against an engine the project did not write:
# IBM np-guard's network-config-analyzer (NCA, PyPI, pinned in tests/nca/requirements.txt)
# computes the pod-to-pod connectivity of gbpc's NetworkPolicy output for every example, every
# regression case (tests/regress) and N generated policies (`gbpc __synth 1..N`), and
# tests/nca/nca_diff.py compares it with the evaluator (`gbpc __eval-matrix`) for every ordered
# pair of internal endpoints and every TCP, UDP and SCTP port.
#
# Usage: scripts/nca-diff.sh [N] [PATH/TO/gbpc]   (default: N=30; builds target/debug/gbpc)
# NCA is installed once into a virtual environment (target/nca-venv, or $NCA_VENV) and reused
# while the pins do not change. Extra options for the driver: $NCA_DIFF_ARGS (e.g. --keep DIR).
# Last line: "N passed, M failed"; exits non-zero on any disagreement.
set -euo pipefail
n="${1:-30}"
gbpc="${2:-}"
# Paths given relative to the caller's directory, resolved before the cd below.
[ -z "$gbpc" ] || gbpc=$(realpath "$gbpc")
venv="${NCA_VENV:-}"
[ -z "$venv" ] || venv=$(realpath -m "$venv")
cd "$(dirname "$0")/.."
venv="${venv:-target/nca-venv}"
reqs=tests/nca/requirements.txt

if [ -z "$gbpc" ]; then
  cargo build --quiet --locked --bin gbpc
  gbpc=target/debug/gbpc
fi

# shellcheck source=scripts/pinned-venv.sh
. scripts/pinned-venv.sh
pinned_venv nca-diff "$venv" "$reqs"

# shellcheck disable=SC2086
"$venv/bin/python" tests/nca/nca_diff.py --gbpc "$gbpc" --nca "$venv/bin/nca" --seeds "$n" \
  --examples examples --regress tests/regress ${NCA_DIFF_ARGS:-}
