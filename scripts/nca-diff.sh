#!/usr/bin/env bash
# Differential test of the Kubernetes target against an engine the project did not write:
# IBM np-guard's network-config-analyzer (NCA, PyPI, pinned in tests/nca/requirements.txt)
# computes the connectivity of gbpc's Kubernetes output (default options, and --k8s-deny cluster
# with the ClusterNetworkPolicies as Calico policies) for every example, every regression case
# (tests/regress) and N generated policies (`gbpc __synth 1..N`), between the declared internal
# endpoints and two pods of every label class (`gbpc __k8s-class-fixture`), and
# tests/nca/nca_diff.py compares it with the evaluator (`gbpc __eval-class-matrix`) for every
# ordered pair of pods, every address range outside the cluster and every TCP, UDP and SCTP
# port (ICMP aside: NetworkPolicy cannot name it).
#
# Usage: scripts/nca-diff.sh [N] [PATH/TO/gbpc]   (default: N=30; builds target/debug/gbpc)
# NCA is installed once into a virtual environment (target/nca-venv, or $NCA_VENV) and reused
# while the pins do not change. Extra options for the driver: $NCA_DIFF_ARGS (e.g. --keep DIR,
# --large K for K denser generated policies, --jobs J, --no-cluster).
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
