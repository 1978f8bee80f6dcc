"""Does the tree-sitter grammar (editors/tree-sitter-gbp) accept exactly the files gbpc parses?

For every input: gbpc's verdict comes from `gbpc check --message-format json` (a `gbpc::E001`
or `gbpc::E006`, a stray line end, means a syntax error; `E002`/`E003`, undecodable or over a limit, means gbpc never parsed it and
the file is left out); tree-sitter's from `tree-sitter parse --json-summary` (a tree with an
ERROR or MISSING node is not `successful`). They must agree both ways: a syntax error in gbpc is
an error in the tree, and a file gbpc parses (semantic errors or not) parses cleanly.

Inputs: every *.gbp of the repository (examples, the broken-input corpus tests/broken, fmt,
lint, diff and regression cases), the fuzz inputs of the parser and the formatter (the seeds
in git, fuzz/seeds/parse and fmt, and a local corpus fuzz/corpus/parse and fmt when a fuzz run
has made one: mutated text; any bytes are an input both must agree on), N
policies from gbpc's own generator (`gbpc __synth SEED`, default 60), and the inputs of the
grammar's corpus tests (whose `:error` attribute must match gbpc's verdict too).

Usage: python3 scripts/tree-sitter-agree.py GBPC TREE_SITTER [--synth N] [--fuzz parse,fmt,...]
Prints the disagreements, a table of counts per source and "N passed, M failed"; exit 0 when
every file agrees.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRAMMAR = ROOT / "editors" / "tree-sitter-gbp"


def gbpc_verdict(gbpc: str, path: Path) -> str:
    """`syntax`, `parsed` or `unparsed` (E002/E003: gbpc never parsed the text)."""
    out = subprocess.run(
        [gbpc, "check", "--message-format", "json", str(path)],
        capture_output=True,
        timeout=120,
    )
    if out.returncode not in (0, 1):
        raise RuntimeError(f"gbpc check {path}: exit {out.returncode}: {out.stderr[:300]!r}")
    codes = {json.loads(line)["code"] for line in out.stdout.decode().splitlines() if line}
    if codes & {"gbpc::E002", "gbpc::E003"}:
        return "unparsed"
    # A stray line end (E006: a lone CR, VT, FF, NEL, U+2028, U+2029) is refused by the
    # grammar as well.
    return "syntax" if codes & {"gbpc::E001", "gbpc::E006"} else "parsed"


def corpus_tests(tmp: Path):
    """The inputs of test/corpus/*.txt as files, with whether the test expects an error."""
    out = []
    header = re.compile(r"^={3,}\n(.*?)\n((?::[a-z-]+\n)*)={3,}\n", re.M)
    for f in sorted((GRAMMAR / "test" / "corpus").glob("*.txt")):
        text = f.read_text(encoding="utf-8")
        heads = list(header.finditer(text))
        for i, h in enumerate(heads):
            end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
            body = text[h.end() : end]
            sep = re.search(r"^-{3,}$", body, re.M)
            source = body[: sep.start()] if sep else body
            # tree-sitter drops the blank line after the header and the one before `---`.
            source = source[1:] if source.startswith("\n") else source
            source = source[:-1] if source.endswith("\n\n") else source
            p = tmp / f"corpus-{f.stem}-{i + 1}.gbp"
            p.write_bytes(source.encode("utf-8"))
            out.append((p, ":error" in h.group(2), f"{f.name}: {h.group(1)}"))
    return out


def main() -> int:
    args = sys.argv[1:]
    synth = 60
    fuzz = ["parse", "fmt"]
    if "--synth" in args:
        i = args.index("--synth")
        synth = int(args[i + 1])
        del args[i : i + 2]
    if "--fuzz" in args:
        i = args.index("--fuzz")
        fuzz = [t for t in args[i + 1].split(",") if t]
        del args[i : i + 2]
    gbpc, ts = (str(Path(a).resolve()) for a in args[:2])

    tmp = Path(tempfile.mkdtemp(prefix="gbpc-ts-"))
    sources = {}  # path -> source name
    listed = subprocess.run(
        ["git", "ls-files", "*.gbp"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for f in listed:
        sources[ROOT / f] = "repository *.gbp" if not f.startswith("tests/broken/") else "tests/broken"
    for target in fuzz:
        for kind in ("seeds", "corpus"):
            for f in sorted((ROOT / "fuzz" / kind / target).glob("*")):
                sources[f] = f"fuzz/{kind}/{target}"
    for seed in range(synth):
        flag = ["--small"] if seed % 3 == 1 else ["--large"] if seed % 3 == 2 else []
        p = tmp / f"synth-{seed}.gbp"
        p.write_bytes(subprocess.run([gbpc, "__synth", str(seed), *flag], capture_output=True, check=True).stdout)
        sources[p] = "gbpc __synth"
    expected = {}
    for p, err, name in corpus_tests(tmp):
        sources[p] = "test/corpus"
        expected[p] = (err, name)

    paths = list(sources)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        verdicts = dict(zip(paths, pool.map(lambda p: gbpc_verdict(gbpc, p), paths)))

    listing = tmp / "paths.txt"
    listing.write_text("".join(f"{p}\n" for p in paths if verdicts[p] != "unparsed"))
    env = dict(os.environ, TREE_SITTER_DIR=str(tmp / "ts-config"))
    run = subprocess.run(
        [ts, "parse", "--quiet", "--json-summary", "--grammar-path", str(GRAMMAR), "--paths", str(listing)],
        capture_output=True,
        text=True,
        env=env,
    )
    # Files with errors are also listed on lines of their own before the JSON document.
    start = run.stdout.find("\n{")
    doc = run.stdout[start + 1 :] if not run.stdout.startswith("{") else run.stdout
    try:
        summary = json.loads(doc)
    except ValueError:
        print(run.stdout[-2000:], run.stderr[-2000:], sep="\n")
        print("0 passed, 1 failed")
        return 1
    clean = {Path(s["file"]): s["successful"] for s in summary["parse_summaries"]}

    passed = failed = 0
    counts = {}
    problems = []
    for p in paths:
        src = sources[p]
        row = counts.setdefault(src, {"files": 0, "syntax": 0, "parsed": 0, "unparsed": 0, "disagree": 0})
        row["files"] += 1
        row[verdicts[p]] += 1
        if verdicts[p] == "unparsed":
            continue
        ok = clean.get(p)
        why = None
        if ok is None:
            why = "tree-sitter did not report on it"
        elif verdicts[p] == "syntax" and ok:
            why = "gbpc reports a syntax error (E001); the tree has no ERROR or MISSING node"
        elif verdicts[p] == "parsed" and not ok:
            why = "gbpc parses it; the tree has an ERROR or MISSING node"
        if p in expected and why is None:
            err, name = expected[p]
            if err != (verdicts[p] == "syntax"):
                why = f"corpus test `{name}` says {':error' if err else 'no error'}, gbpc disagrees"
        if why:
            failed += 1
            row["disagree"] += 1
            problems.append((p, src, why))
        else:
            passed += 1

    for p, src, why in problems[: int(os.environ.get("SHOW", "30"))]:
        shown = p.relative_to(ROOT) if p.is_relative_to(ROOT) else p
        print(f"DISAGREE {shown} ({src}): {why}")
        print("    " + repr(p.read_bytes()[:300]))
    print(f"{'source':<22} {'files':>6} {'E001':>6} {'parsed':>7} {'E002/3':>7} {'disagree':>9}")
    for src, r in counts.items():
        print(f"{src:<22} {r['files']:>6} {r['syntax']:>6} {r['parsed']:>7} {r['unparsed']:>7} {r['disagree']:>9}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
