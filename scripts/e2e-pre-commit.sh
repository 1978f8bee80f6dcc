#!/usr/bin/env bash
# The pre-commit hooks of .pre-commit-hooks.yaml, run by the real pre-commit tool (PyPI, pinned
# in scripts/e2e-pre-commit.requirements.txt) with `pre-commit try-repo` in a throwaway git
# repository holding a clean policy, a badly laid out one and a broken one. The hook repository
# is a copy of this working tree's .pre-commit-hooks.yaml and of what `cargo install` builds
# from (Cargo.toml, Cargo.lock, src/, grammar/), committed in a repository of its own: cloning
# the whole repository for every hook run would cost minutes.
#
# - the `-system` hooks run with the gbpc under test on PATH;
# - with --build, the `language: rust` hooks are also run as users get them: from a
#   .pre-commit-config.yaml with `pre-commit run`; pre-commit builds gbpc from the hook
#   repository with `cargo install` (unoptimised, in target/pre-commit, reused while the tree is
#   unchanged) and the gbpc on PATH is hidden, so the hook must use the one it built.
#
# Usage: scripts/e2e-pre-commit.sh [--build] [PATH/TO/gbpc]   (default: target/debug/gbpc)
# Prints one line per check and "N passed, M failed"; exits non-zero on a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

build=0
if [ "${1:-}" = "--build" ]; then
  build=1
  shift
fi
gbpc="${1:-}"
if [ -z "$gbpc" ]; then
  cargo build --quiet --locked --bin gbpc
  gbpc=target/debug/gbpc
fi
gbpc=$(realpath "$gbpc")

# shellcheck source=scripts/pinned-venv.sh
. scripts/pinned-venv.sh
venv="${E2E_PRE_COMMIT_VENV:-target/pre-commit-venv}"
pinned_venv e2e-pre-commit "$venv" scripts/e2e-pre-commit.requirements.txt
pre_commit=$(realpath "$venv/bin/pre-commit")

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; sed 's/^/     | /' "$work/out" | head -40; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PRE_COMMIT_HOME="$root/target/pre-commit/home"
export GIT_AUTHOR_NAME=gbpc GIT_AUTHOR_EMAIL=gbpc@example.invalid
export GIT_COMMITTER_NAME=gbpc GIT_COMMITTER_EMAIL=gbpc@example.invalid
# No user or system git configuration (an empty file of our own, so nothing can touch the
# machine's: git reads it and never writes it here).
: >"$work/gitconfig"
export GIT_CONFIG_GLOBAL="$work/gitconfig" GIT_CONFIG_NOSYSTEM=1

# Always the same path, the files' times kept and the commit's dates fixed: unchanged sources
# give the same commit, whose pre-commit environment (and cargo's build) is reused.
hookrepo=$root/target/pre-commit/hooks
rm -rf "$hookrepo"
mkdir -p "$hookrepo/tests"
cp -rp .pre-commit-hooks.yaml Cargo.toml Cargo.lock src grammar "$hookrepo/"
cp -p tests/tests.rs "$hookrepo/tests/"
git -C "$hookrepo" init -q
git -C "$hookrepo" add -A
GIT_AUTHOR_DATE=2000-01-01T00:00:00Z GIT_COMMITTER_DATE=2000-01-01T00:00:00Z \
  git -C "$hookrepo" commit -q -m hooks

# A project with policies.
project=$work/project
mkdir -p "$project/policies"
cp examples/canary.gbp "$project/policies/clean.gbp"
cat >"$project/policies/layout.gbp" <<'EOF'
tenant shop {
    filter https {tcp 443}
  contract web { subject tls permit https }
  group web { select app=web  address 198.18.1.0/24 provides web }
  group client { select app=client address 198.18.2.0/24 consumes web }
}
EOF
cat >"$project/policies/broken.gbp" <<'EOF'
tenant shop {
  filter https { tcp 443 }
  contract web { subject tls permit htps }
  group web { select app=web address 198.18.1.0/24 provides web }
}
EOF
echo "not a policy" >"$project/README.md"
git -C "$project" init -q
git -C "$project" add -A
git -C "$project" commit -q -m policies

# run NAME EXPECTED-STATUS HOOK [FILES...]: one hook, through `pre-commit try-repo` or, once
# the project has a .pre-commit-config.yaml (the --build part), through `pre-commit run`.
runner=try-repo
run() {
  local name=$1 want=$2 hook=$3
  shift 3
  local status=0
  if [ "$runner" = try-repo ]; then
    (cd "$project" && "$pre_commit" try-repo "$hookrepo" "$hook" --verbose --files "$@") >"$work/out" 2>&1 || status=$?
  else
    (cd "$project" && "$pre_commit" run "$hook" --verbose --files "$@") >"$work/out" 2>&1 || status=$?
  fi
  if [ "$status" -eq "$want" ]; then
    return 0
  fi
  echo "     (exit status $status, expected $want)" >>"$work/out"
  return 1
}
has() { grep -q -- "$1" "$work/out"; }

hooks() {
  local suffix=$1
  if run "check$suffix clean" 0 "gbpc-check$suffix" policies/clean.gbp policies/layout.gbp && has "ok:"; then
    ok "gbpc-check$suffix passes clean policies"
  else
    fail "gbpc-check$suffix passes clean policies"
  fi
  if run "check$suffix broken" 1 "gbpc-check$suffix" policies/clean.gbp policies/broken.gbp \
    && has "gbpc::E010" && has "policies/clean.gbp: ok"; then
    ok "gbpc-check$suffix fails on a broken policy, and still checks the others"
  else
    fail "gbpc-check$suffix fails on a broken policy, and still checks the others"
  fi
  if run "fmt$suffix clean" 0 "gbpc-fmt-check$suffix" policies/clean.gbp; then
    ok "gbpc-fmt-check$suffix passes a formatted policy"
  else
    fail "gbpc-fmt-check$suffix passes a formatted policy"
  fi
  if run "fmt$suffix layout" 1 "gbpc-fmt-check$suffix" policies/clean.gbp policies/layout.gbp \
    && has "policies/layout.gbp" && ! has "policies/clean.gbp:" \
    && git -C "$project" diff --quiet; then
    ok "gbpc-fmt-check$suffix names the file to format and changes nothing"
  else
    fail "gbpc-fmt-check$suffix names the file to format and changes nothing"
  fi
}

# The -system hooks, with the gbpc under test first on PATH.
bindir=$work/bin
mkdir -p "$bindir"
ln -s "$gbpc" "$bindir/gbpc"
PATH="$bindir:$PATH" hooks -system

# Only the hooks of .pre-commit-hooks.yaml that the script knows are tested; a new one must be
# added here.
ids=$(grep -E '^- id: ' .pre-commit-hooks.yaml | sed 's/^- id: //' | sort | tr '\n' ' ')
if [ "$ids" = "gbpc-check gbpc-check-system gbpc-fmt gbpc-fmt-check gbpc-fmt-check-system " ]; then
  ok "every hook of .pre-commit-hooks.yaml is known to this test"
else
  echo "unknown hook list: $ids" >"$work/out"
  fail "every hook of .pre-commit-hooks.yaml is known to this test"
fi

if [ "$build" = 1 ]; then
  # As users get them: pre-commit runs `cargo install --path .` of this repository. An
  # unoptimised build in a target directory of its own keeps this affordable and reusable.
  export CARGO_TARGET_DIR="$root/target/pre-commit/build"
  export CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_DEBUG=0
  export CARGO_PROFILE_RELEASE_INCREMENTAL=true CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256
  # Hide every gbpc on PATH: the hook must run the one pre-commit built. The Rust tools come
  # through links of their own; the rest of PATH is the system's.
  nogbpc=$work/path
  mkdir -p "$nogbpc"
  for t in cargo rustc rustup; do
    p=$(command -v "$t" || true)
    if [ -n "$p" ]; then ln -sf "$p" "$nogbpc/$t"; fi
  done
  PATH="$nogbpc:/usr/local/bin:/usr/bin:/bin"
  if command -v gbpc >/dev/null 2>&1; then
    echo "e2e-pre-commit: $(command -v gbpc) would mask the gbpc the hook builds" >&2
    echo "$passed passed, $((failed + 1)) failed"
    exit 1
  fi
  # As users configure it: a .pre-commit-config.yaml naming the hook repository and its rev.
  # pre-commit keeps the environment it built in PRE_COMMIT_HOME (target/pre-commit/home):
  # a second run of an unchanged tree reuses it.
  cat >"$project/.pre-commit-config.yaml" <<CONFIG
repos:
  - repo: $hookrepo
    rev: $(git -C "$hookrepo" rev-parse HEAD)
    hooks:
      - id: gbpc-check
      - id: gbpc-fmt-check
      - id: gbpc-fmt
CONFIG
  git -C "$project" add .pre-commit-config.yaml
  git -C "$project" commit -q -m "pre-commit configuration"
  runner=run
  hooks ""
  if run "fmt rewrite" 1 gbpc-fmt policies/layout.gbp \
    && "$gbpc" fmt --check "$project/policies/layout.gbp" >/dev/null 2>&1; then
    ok "gbpc-fmt rewrites the policy (and fails the commit, as fixers do)"
  else
    fail "gbpc-fmt rewrites the policy (and fails the commit, as fixers do)"
  fi
  git -C "$project" checkout -q -- .
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
