"""Check the TextMate grammar editors/gbp.tmLanguage.json.

It must be valid JSON with the expected top-level fields; every regex must compile (Python's
`re` stands in for Oniguruma: the grammar uses only what both accept, no lookbehind) and must not
match the empty string (an editor would loop). A small tokenizer that follows TextMate's rule (at
each point the pattern whose match starts first wins; ties go to the first listed) then
highlights sample lines, whose scopes are checked, and every example policy, which must
tokenize completely with the keyword that starts each statement in a keyword scope.

Usage: python3 editors/check-grammar.py   (from the repository root; exit 0 when all is well)
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRAMMAR = ROOT / "editors" / "gbp.tmLanguage.json"

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL", msg)


def load():
    try:
        g = json.loads(GRAMMAR.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        fail(f"{GRAMMAR} is not valid JSON: {e}")
        sys.exit(1)
    for key in ("name", "scopeName", "fileTypes", "patterns", "repository"):
        if key not in g:
            fail(f"missing top-level field {key!r}")
    if g.get("scopeName") != "source.gbp" or g.get("fileTypes") != ["gbp"]:
        fail("scopeName must be source.gbp and fileTypes [gbp]")
    return g


def flatten(g, patterns, seen=()):
    """The patterns with every `include` of the repository expanded, in order."""
    out = []
    for p in patterns:
        if "include" in p:
            name = p["include"].lstrip("#")
            if name in seen or name not in g["repository"]:
                fail(f"bad include {p['include']!r}")
                continue
            out += flatten(g, g["repository"][name]["patterns"], seen + (name,))
        else:
            out.append(p)
    return out


def compile_all(patterns):
    compiled = []
    for p in patterns:
        for key in ("match", "begin", "end"):
            if key not in p:
                continue
            src = p[key]
            if "(?<=" in src or "(?<!" in src:
                fail(f"lookbehind in {src!r}")
            try:
                rx = re.compile(src)
            except re.error as e:
                fail(f"regex {src!r} does not compile: {e}")
                continue
            if key != "end" and rx.fullmatch("") is not None:
                fail(f"regex {src!r} matches the empty string")
            p["_" + key] = rx
        compiled.append(p)
    return compiled


def tokenize(patterns, line):
    """[(text, scope)] for one line; the scope of a plain match or of each capture group."""
    out = []
    pos = 0
    while pos < len(line):
        best = None
        for p in patterns:
            rx = p.get("_match") or p.get("_begin")
            if rx is None:
                continue
            m = rx.search(line, pos)
            if m and m.end() > m.start() and (best is None or m.start() < best[1].start()):
                best = (p, m)
        if best is None:
            out.append((line[pos:], None))
            break
        p, m = best
        if m.start() > pos:
            out.append((line[pos : m.start()], None))
        if "_begin" in p:
            end = p["_end"].search(line, m.end())
            stop = end.end() if end else len(line)
            out.append((line[m.start() : stop], p.get("name")))
            pos = stop
            continue
        caps = p.get("captures")
        if caps:
            at = m.start()
            for i in range(1, (m.lastindex or 0) + 1):
                if m.start(i) < 0:
                    continue
                if m.start(i) > at:
                    out.append((line[at : m.start(i)], p.get("name")))
                out.append((m.group(i), caps.get(str(i), {}).get("name")))
                at = m.end(i)
            if at < m.end():
                out.append((line[at : m.end()], p.get("name")))
        else:
            out.append((m.group(0), p.get("name")))
        pos = m.end()
    return [(t, s) for t, s in out if t.strip()]


SAMPLES = [
    ("tenant shop {", [("tenant", "storage.type.gbp"), ("shop", "entity.name.namespace.gbp")]),
    (
        "  global contract dns { subject lookup permit dns }",
        [
            ("global", "storage.modifier.gbp"),
            ("contract", "storage.type.gbp"),
            ("dns", "entity.name.type.contract.gbp"),
            ("subject", "storage.type.gbp"),
            ("lookup", "entity.name.function.subject.gbp"),
            ("permit", "keyword.control.gbp"),
            ("dns", "variable.other.gbp"),
        ],
    ),
    (
        "  group web-canary isolated extends web {",
        [
            ("web-canary", "entity.name.type.class.group.gbp"),
            ("isolated", "storage.modifier.gbp"),
            ("extends", "storage.modifier.gbp"),
            ("web", "entity.other.inherited-class.gbp"),
        ],
    ),
    (
        '    select app.kubernetes.io/name=shop, tier="web"',
        [
            ("select", "keyword.other.gbp"),
            ("app.kubernetes.io/name", "entity.other.attribute-name.label.gbp"),
            ("=", "keyword.operator.assignment.gbp"),
            ("shop", "string.unquoted.label-value.gbp"),
            ("tier", "entity.other.attribute-name.label.gbp"),
            ('"web"', "string.quoted.double.gbp"),
        ],
    ),
    (
        "    address 0.0.0.0/0 except 198.18.0.0/15, 2001:db8::/32",
        [
            ("0.0.0.0/0", "constant.numeric.address.ipv4.gbp"),
            ("except", "keyword.other.gbp"),
            ("198.18.0.0/15", "constant.numeric.address.ipv4.gbp"),
            ("2001:db8::/32", "constant.numeric.address.ipv6.gbp"),
        ],
    ),
    (
        "    endpoint web1 198.18.1.10, ::1 labels version=v2.3.1",
        [
            ("endpoint", "storage.type.gbp"),
            ("web1", "variable.other.constant.endpoint.gbp"),
            ("::1", "constant.numeric.address.ipv6.gbp"),
            ("labels", "keyword.other.gbp"),
            ("v2.3.1", "string.unquoted.label-value.gbp"),
        ],
    ),
    (
        "  filter f { tcp 80, 8000-8099; icmp echo-request }",
        [
            ("tcp", "support.type.protocol.gbp"),
            ("80", "constant.numeric.integer.gbp"),
            ("8000-8099", "constant.numeric.range.gbp"),
            ("icmp", "support.type.protocol.gbp"),
            ("echo-request", "support.constant.icmp-type.gbp"),
        ],
    ),
    (
        "  assert web1 -> shared/ns1 udp/53 allow # a comment, with tenant",
        [
            ("assert", "keyword.other.gbp"),
            ("->", "keyword.operator.arrow.gbp"),
            ("shared", "entity.name.namespace.gbp"),
            ("ns1", "variable.other.gbp"),
            ("udp", "support.type.protocol.gbp"),
            ("53", "constant.numeric.port.gbp"),
            ("allow", "keyword.control.gbp"),
            ("# a comment, with tenant", "comment.line.number-sign.gbp"),
        ],
    ),
    (
        "  any { consumes my-group, tenant-x } // done",
        [
            ("any", "storage.type.gbp"),
            ("consumes", "keyword.other.gbp"),
            ("my-group", "variable.other.gbp"),
            ("tenant-x", "variable.other.gbp"),
            ("// done", "comment.line.double-slash.gbp"),
        ],
    ),
]

KEYWORDS = set(
    "tenant filter contract global subject permit deny log group external extends isolated "
    "select address except endpoint labels provides consumes any assert allow".split()
)


def check_vscode():
    """The VS Code extension in editors/vscode declares the grammar's language and scope."""
    ext = ROOT / "editors" / "vscode"
    try:
        pkg = json.loads((ext / "package.json").read_text(encoding="utf-8"))
        json.loads((ext / "language-configuration.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        fail(f"editors/vscode: {e}")
        return
    grammars = pkg.get("contributes", {}).get("grammars", [])
    languages = pkg.get("contributes", {}).get("languages", [])
    if not any(gr.get("scopeName") == "source.gbp" and gr.get("language") == "gbp" for gr in grammars):
        fail("editors/vscode/package.json does not contribute source.gbp for language gbp")
    if not any(lang.get("id") == "gbp" and ".gbp" in lang.get("extensions", []) for lang in languages):
        fail("editors/vscode/package.json does not declare the gbp language for *.gbp")


def main():
    check_vscode()
    g = load()
    patterns = compile_all(flatten(g, g["patterns"]))
    for line, want in SAMPLES:
        # The expected tokens must appear in this order (others may come between).
        got = iter(tokenize(patterns, line))
        for text, scope in want:
            if not any(t == (text, scope) for t in got):
                fail(f"{line!r}: no {text!r} with scope {scope!r} in {tokenize(patterns, line)}")
                break
    examples = sorted((ROOT / "examples").glob("*.gbp"))
    if not examples:
        fail("no examples found")
    for path in examples:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for text, scope in tokenize(patterns, line):
                if scope is None:
                    fail(f"{path.name}:{n}: {text!r} is not highlighted")
            words = line.split("#")[0].split()
            if words and words[0] in KEYWORDS:
                first = dict(tokenize(patterns, line)).get(words[0], "")
                if not first.startswith(("storage.", "keyword.")):
                    fail(f"{path.name}:{n}: statement keyword {words[0]!r} has scope {first!r}")
    print(f"{len(SAMPLES) + len(examples) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
