#!/usr/bin/env bash
# The completion scripts of `gbpc completions` loaded by the real shells, as users install them:
# - bash: the completion function answers COMPREPLY (also in `cargo test --test tests
#   completions`);
# - zsh: compinit finds `_gbpc` on $fpath, registers it for gbpc, and the function loads and
#   parses. zsh's completion engine itself needs a terminal (zle), so what it would offer at
#   <TAB> is not checked here;
# - fish: `complete -C` prints exactly what fish offers at <TAB>.
#
# Usage: scripts/e2e-completions.sh [PATH/TO/gbpc]   (default: builds and uses target/debug/gbpc)
# Needs bash, zsh and fish (apt-get install zsh fish; .ci/run installs them).
# Prints one line per check and "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."

gbpc="${1:-}"
if [ -z "$gbpc" ]; then
  cargo build --quiet --locked --bin gbpc
  gbpc=target/debug/gbpc
fi
gbpc=$(realpath "$gbpc")

passed=0
failed=0
check() {
  local name=$1 got=$2 want=$3
  if [ "$got" = "$want" ]; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
    echo "     got:  $(echo "$got" | tr '\n' ' ')"
    echo "     want: $(echo "$want" | tr '\n' ' ')"
  fi
}

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/bin" "$dir/zfunc" "$dir/fish/completions" "$dir/home"
ln -s "$gbpc" "$dir/bin/gbpc"
export HOME="$dir/home" PATH="$dir/bin:$PATH"

for sh in bash zsh fish; do
  if ! command -v "$sh" >/dev/null 2>&1; then
    echo "e2e-completions: $sh is missing (apt-get install zsh fish)" >&2
    echo "$passed passed, $((failed + 1)) failed"
    exit 1
  fi
done

# bash: as bash-completion would load it.
gbpc completions bash >"$dir/gbpc.bash"
got=$(bash --norc --noprofile -c "
  source '$dir/gbpc.bash'
  COMP_WORDS=(gbpc compile --target ''); COMP_CWORD=3; COMP_LINE='gbpc compile --target '; COMP_POINT=\${#COMP_LINE}
  _gbpc gbpc '' --target; printf '%s\n' \"\${COMPREPLY[@]}\"" | sort)
check "bash: gbpc compile --target <TAB>" "$got" "$(printf 'k8s\nnft')"

# zsh: from a directory on $fpath, through compinit.
gbpc completions zsh >"$dir/zfunc/_gbpc"
got=$(zsh -f -c "
  fpath=('$dir/zfunc' \$fpath)
  autoload -Uz compinit && compinit -u -d '$dir/zcompdump'
  print -r -- \${_comps[gbpc]}
  autoload -Uz +X _gbpc && (( \$+functions[_gbpc] )) && print loaded" 2>&1)
check "zsh: compinit registers _gbpc for gbpc and the function loads" "$got" "$(printf '_gbpc\nloaded')"
if zsh -n "$dir/zfunc/_gbpc"; then
  check "zsh: the script parses (zsh -n)" ok ok
else
  check "zsh: the script parses (zsh -n)" failed ok
fi

# fish: from its completions directory; `complete -C` is what fish offers at <TAB>.
gbpc completions fish >"$dir/fish/completions/gbpc.fish"
fishc() {
  XDG_CONFIG_HOME="$dir" XDG_DATA_HOME="$dir/data" fish --no-config -c "
    set -p fish_complete_path '$dir/fish/completions'
    complete -C '$1'" | cut -f1 | sort
}
check "fish: gbpc c<TAB>" "$(fishc 'gbpc c')" "$(printf 'check\ncompile\ncompletions')"
check "fish: gbpc check --message-format <TAB>" "$(fishc 'gbpc check --message-format ')" "$(printf 'human\njson\nsarif')"
check "fish: no hidden command is offered" "$(fishc 'gbpc _')" ""

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
