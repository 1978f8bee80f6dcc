# Sourced by the scripts that need a Python tool from PyPI (e2e-lsp.sh, nca-diff.sh).
#
# pinned_venv WHO VENV REQUIREMENTS
# Makes VENV a virtual environment with exactly REQUIREMENTS installed, reusing it while the
# file does not change. On failure it says why (prefixed with WHO), prints the "0 passed,
# 1 failed" line the callers end with, and exits 1.
pinned_venv() {
  local who=$1 venv=$2 reqs=$3
  if cmp -s "$reqs" "$venv/.requirements" 2>/dev/null; then
    return
  fi
  rm -rf "$venv"
  if ! python3 -m venv "$venv"; then
    echo "$who: cannot create a Python virtual environment (on Debian: apt-get install python3-venv)" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
  if ! "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$reqs"; then
    echo "$who: cannot install $reqs" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
  cp "$reqs" "$venv/.requirements"
}
