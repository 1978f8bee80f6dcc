#!/usr/bin/env python3
"""Differential test of gbpc's Kubernetes output against IBM np-guard's network-config-analyzer.

For each policy (the examples and generated ones), gbpc compiles NetworkPolicy objects, writes
the Namespaces and Pods of the declared internal endpoints (`gbpc __k8s-fixture`), and prints
the evaluator's allowed ports between every ordered pair of internal endpoints
(`gbpc __eval-matrix`). NCA computes the connectivity those NetworkPolicies allow between the
pods; the two must be equal for TCP, UDP and SCTP, on every port.

network-config-analyzer 2.1.0 (the newest release) does not read AdminNetworkPolicy. Denies
are compiled with `--k8s-deny admin`, and each run is done twice:

1. the NetworkPolicy objects alone, compared with the evaluator's verdict *without the deny
   subjects* (`allow_without_denies`): this checks every permit and intra-group rule;
2. the NetworkPolicy objects plus each AdminNetworkPolicy translated here, rule for rule, into a
   Calico GlobalNetworkPolicy with action Deny and `order` = the ANP's priority (NCA evaluates
   ordered Calico policies before Kubernetes NetworkPolicies, which is exactly "an ANP Deny wins
   over every NetworkPolicy"), compared with the evaluator's true verdict (`allow`).

The translation is mechanical (subject/peers `pods` -> namespaceSelector + selector, `networks`
-> nets, ports -> one rule per protocol); anything it does not know makes the case fail.
ICMP is not expressible in NetworkPolicy and is not compared. Pod-to-itself flows are not
listed by NCA and are not compared.

Last line of output: "N passed, M failed". Exit status 1 on any disagreement or failure.
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

PROTOS = ("tcp", "udp", "sctp")
FULL = [(1, 65535)]
KNOWN_PROTOS = {"tcp", "udp", "sctp", "icmp", "icmpv6"}
CONN_RE = re.compile(r"\{protocols:([A-Za-z0-9, -]+?)(?:,dst_ports:([A-Za-z0-9,\- ]+))?\}")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def normalize(ranges):
    """Sorted, merged list of inclusive (lo, hi) port ranges."""
    out = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def subtract(ranges, minus):
    """Port ranges minus port ranges (both normalized)."""
    out = []
    for lo, hi in ranges:
        cur = lo
        for mlo, mhi in minus:
            if mhi < cur or mlo > hi:
                continue
            if mlo > cur:
                out.append((cur, mlo - 1))
            cur = max(cur, mhi + 1)
        if cur <= hi:
            out.append((cur, hi))
    return out


def parse_ports(text):
    text = text.strip()
    if text.lower().startswith("all but "):
        return subtract(FULL, normalize(parse_ports(text[len("all but "):])))
    ranges = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            ranges.append((int(lo), int(hi)))
        else:
            ranges.append((int(part), int(part)))
    return ranges


def parse_connection(text):
    """NCA's connection text to {proto: [ranges]}; raises ValueError on anything unknown."""
    text = text.strip()
    allowed = {p: [] for p in PROTOS}
    if text == "All connections":
        return {p: list(FULL) for p in PROTOS}
    if text == "No connections":
        return allowed
    if text.startswith("All but "):
        # The complement: every connection except those listed.
        excluded = parse_connection(text[len("All but "):])
        return {p: subtract(FULL, normalize(excluded[p])) for p in PROTOS}
    rest = text
    for m in CONN_RE.finditer(text):
        names = m.group(1).strip()
        negate = names.lower().startswith("all but ")
        if negate:
            names = names[len("all but "):]
        protos = [p.strip().lower() for p in names.split(",")]
        for p in protos:
            if p not in KNOWN_PROTOS:
                raise ValueError(f"unknown protocol {p!r} in NCA connection {text!r}")
        if negate:
            protos = [p for p in PROTOS if p not in protos]
        ports = parse_ports(m.group(2)) if m.group(2) else list(FULL)
        for p in protos:
            if p in allowed:
                allowed[p].extend(ports)
            # Other protocols (ICMP, numbers) are not compared.
        rest = rest.replace(m.group(0), "", 1)
    if rest.strip(" ,;"):
        raise ValueError(f"cannot parse NCA connection {text!r}")
    return allowed


def parse_nca(output):
    """Pairs ("ns/pod", "ns/pod") -> {proto: ranges}. Lines with IP ranges are skipped."""
    pairs = {}
    for line in output.splitlines():
        if " => " not in line or " : " not in line:
            continue
        ends, conn = line.split(" : ", 1)
        src, dst = (x.strip() for x in ends.split(" => ", 1))
        if "/" not in src or "/" not in dst or src[0].isdigit() or dst[0].isdigit():
            continue
        if ":" in src or ":" in dst:  # IPv6 ranges
            continue
        got = parse_connection(conn)
        cur = pairs.setdefault((src, dst), {p: [] for p in PROTOS})
        for p in PROTOS:
            cur[p].extend(got[p])
    return {k: {p: normalize(v[p]) for p in PROTOS} for k, v in pairs.items()}


def calico_selector(sel, what):
    """A Kubernetes LabelSelector (matchLabels only) as a Calico selector expression."""
    if set(sel) - {"matchLabels"}:
        raise ValueError(f"cannot translate {what} {sel!r} (only matchLabels)")
    ml = sel.get("matchLabels") or {}
    if not ml:
        return "all()"
    return " && ".join(f"{k} == '{v}'" for k, v in sorted(ml.items()))


def calico_peer(peer):
    """An ANP peer (pods, namespaces or networks) as a Calico entity rule."""
    if set(peer) == {"pods"}:
        pods = peer["pods"]
        return {"namespaceSelector": calico_selector(pods.get("namespaceSelector", {}), "namespaceSelector"),
                "selector": calico_selector(pods.get("podSelector", {}), "podSelector")}
    if set(peer) == {"namespaces"}:
        return {"namespaceSelector": calico_selector(peer["namespaces"], "namespaces"), "selector": "all()"}
    if set(peer) == {"networks"}:
        return {"nets": list(peer["networks"])}
    raise ValueError(f"cannot translate ANP peer {peer!r}")


def calico_ports(ports):
    """ANP ports as [(protocol or None, [calico port, ...] or None)]."""
    if not ports:
        return [(None, None)]
    by_proto = {}
    for p in ports:
        if set(p) == {"portNumber"}:
            n = p["portNumber"]
            by_proto.setdefault(n["protocol"], []).append(int(n["port"]))
        elif set(p) == {"portRange"}:
            r = p["portRange"]
            by_proto.setdefault(r["protocol"], []).append(f"{int(r['start'])}:{int(r['end'])}")
        else:
            raise ValueError(f"cannot translate ANP port {p!r}")
    return sorted(by_proto.items())


def anp_to_calico(anp):
    """One AdminNetworkPolicy (every rule Deny) as a Calico GlobalNetworkPolicy."""
    spec = anp["spec"]
    if set(spec) - {"priority", "subject", "ingress", "egress"}:
        raise ValueError(f"cannot translate ANP spec keys {sorted(spec)}")
    subj = spec["subject"]
    if set(subj) == {"pods"}:
        ns_sel = calico_selector(subj["pods"].get("namespaceSelector", {}), "subject namespaceSelector")
        pod_sel = calico_selector(subj["pods"].get("podSelector", {}), "subject podSelector")
    elif set(subj) == {"namespaces"}:
        ns_sel, pod_sel = calico_selector(subj["namespaces"], "subject namespaces"), "all()"
    else:
        raise ValueError(f"cannot translate ANP subject {subj!r}")
    out = {"order": int(spec["priority"]), "namespaceSelector": ns_sel, "selector": pod_sel, "types": []}
    for direction, peers_key, side in (("ingress", "from", "source"), ("egress", "to", "destination")):
        rules = []
        for rule in spec.get(direction) or []:
            if rule.get("action") != "Deny":
                raise ValueError(f"cannot translate ANP action {rule.get('action')!r}")
            for peer in rule.get(peers_key) or []:
                entity = calico_peer(peer)
                for proto, ports in calico_ports(rule.get("ports")):
                    r = {"action": "Deny", side: dict(entity)}
                    if proto:
                        r["protocol"] = proto
                    if ports:
                        r.setdefault("destination", {})["ports"] = ports
                    rules.append(r)
        if rules:
            out[direction] = rules
            out["types"].append(direction.capitalize())
    return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
            "metadata": {"name": anp["metadata"]["name"]}, "spec": out}


def fmt_ranges(rs):
    return ",".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in rs) or "-"


def check_case(name, path, args, work, stats):
    """Compare one policy file; returns a list of disagreement lines (empty: pass)."""
    out = os.path.join(work, re.sub(r"[^A-Za-z0-9_.-]", "_", name))
    os.makedirs(os.path.join(out, "policies"), exist_ok=True)
    comp = run([args.gbpc, "compile", path, "--target", "k8s", "--k8s-deny", "admin"])
    if comp.returncode != 0:
        return [f"gbpc compile failed ({comp.returncode}): {comp.stderr.strip()[-2000:]}"]
    items = json.loads(comp.stdout)["items"]
    nps = [i for i in items if i.get("kind") == "NetworkPolicy"]
    anps = [i for i in items if i.get("kind") == "AdminNetworkPolicy"]
    other = [i.get("kind") for i in items if i.get("kind") not in ("NetworkPolicy", "AdminNetworkPolicy")]
    if other:
        return [f"unexpected object kinds in gbpc output: {sorted(set(other))}"]
    fix = run([args.gbpc, "__k8s-fixture", path])
    mat = run([args.gbpc, "__eval-matrix", path])
    if fix.returncode != 0 or mat.returncode != 0:
        return [f"gbpc helpers failed: {fix.stderr.strip()} {mat.stderr.strip()}"]
    fixture = json.loads(fix.stdout)["items"]
    matrix = json.loads(mat.stdout)["pairs"]
    pods = [i for i in fixture if i["kind"] == "Pod"]
    if len(pods) < 2:
        # Nothing to compare. The generator always declares two or more internal endpoints,
        # so only a hand-written case may be trivial.
        if name.startswith("seed "):
            return [f"only {len(pods)} pod(s) in a generated policy"]
        stats["trivial"] += 1
        return []
    topo = os.path.join(out, "topology.yaml")
    with open(topo, "w") as f:
        yaml.safe_dump_all(fixture, f, sort_keys=False)
    try:
        gnps = [anp_to_calico(a) for a in anps]
    except ValueError as e:
        return [str(e)]
    stats["nps"] += len(nps)
    stats["anps"] += len(anps)
    runs = [("NetworkPolicy only", "policies", nps, "allow_without_denies")]
    if anps:
        runs.append(("with denies (ANP as Calico)", "policies-denies", nps + gnps, "allow"))
    bad = []
    for label, sub, objs, field in runs:
        pdir = os.path.join(out, sub)
        os.makedirs(pdir, exist_ok=True)
        with open(os.path.join(pdir, "policies.yaml"), "w") as f:
            yaml.safe_dump_all(objs, f, sort_keys=False)
        got, err = nca_connectivity(args, pdir, topo, len(pods), os.path.join(out, sub + ".txt"))
        if err:
            return [f"{label}: {err}"]
        bad += compare(label, matrix, got, field, stats)
    return bad


def nca_connectivity(args, pdir, topo, npods, keep):
    """NCA's pod-to-pod connectivity for the policies in pdir: (pairs, None) or (None, error)."""
    nca = run(
        [args.nca, "--connectivity", pdir, "--ns_list", topo, "--pod_list", topo,
         "-o", "txt_no_fw_rules", "--output_endpoints", "pods"],
        timeout=args.timeout,
    )
    with open(keep, "w") as f:
        f.write(nca.stdout + nca.stderr)
    if "Error" in nca.stdout[:200] or "Error" in nca.stderr:
        return None, f"nca failed: {(nca.stdout + nca.stderr).strip()[-2000:]}"
    m = re.search(r"cluster has (\d+) unique endpoints", nca.stdout)
    if not m or int(m.group(1)) < npods:
        return None, f"nca saw {m.group(1) if m else '?'} endpoints, expected {npods}: {nca.stdout[:300]}"
    try:
        return parse_nca(nca.stdout), None
    except ValueError as e:
        return None, str(e)


def compare(label, matrix, got, field, stats):
    """Disagreements between NCA's pairs and the evaluator's `field` for every pair."""
    got = dict(got)
    bad = []
    empty = {p: [] for p in PROTOS}
    for pair in matrix:
        key = (pair["src"], pair["dst"])
        want = {p: normalize(tuple(r) for r in pair[field][p]) for p in PROTOS}
        have = got.pop(key, empty)
        stats["pairs"] += 1
        for p in PROTOS:
            stats["sets"] += 1
            stats["ports"] += sum(hi - lo + 1 for lo, hi in want[p])
            if field == "allow":
                nodeny = normalize(tuple(r) for r in pair["allow_without_denies"][p])
                if nodeny != want[p]:
                    stats["deny_sets"] += 1
            if have[p] != want[p]:
                bad.append(
                    f"[{label}] {key[0]} -> {key[1]} {p}: gbpc evaluator allows "
                    f"{fmt_ranges(want[p])}, NCA allows {fmt_ranges(have[p])}")
    for key, v in sorted(got.items()):
        if key[0] != key[1] and any(v[p] for p in PROTOS):
            bad.append(f"[{label}] {key[0]} -> {key[1]}: NCA lists a pair the evaluator does not know: {v}")
    return bad




def self_test():
    """The parser on forms NCA 2.1.0 prints (tests/regress/nca-all-but-protocols.gbp)."""
    cases = [
        ("All connections", {"tcp": FULL, "udp": FULL, "sctp": FULL}),
        ("{protocols:TCP, UDP,dst_ports:53}", {"tcp": [(53, 53)], "udp": [(53, 53)], "sctp": []}),
        ("{protocols:SCTP,dst_ports:3868}", {"tcp": [], "udp": [], "sctp": [(3868, 3868)]}),
        ("{protocols:TCP,dst_ports:8000-8099,8443}", {"tcp": [(8000, 8099), (8443, 8443)], "udp": [], "sctp": []}),
        ("All but {protocols:TCP, UDP}", {"tcp": [], "udp": [], "sctp": FULL}),
        ("All but {protocols:TCP,dst_ports:22,80},{protocols:all but TCP}",
         {"tcp": [(1, 21), (23, 79), (81, 65535)], "udp": [], "sctp": []}),
    ]
    for text, want in cases:
        got = {p: normalize(v) for p, v in parse_connection(text).items()}
        if got != want:
            raise SystemExit(f"nca_diff self-test: {text!r} parsed as {got}, expected {want}")
    for text in ("{protocols:GRE}", "Some connections", "{protocols:TCP,dst_ports:22} extra"):
        try:
            parse_connection(text)
        except ValueError:
            continue
        raise SystemExit(f"nca_diff self-test: {text!r} was accepted")


def main():
    self_test()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gbpc", required=True, help="the gbpc binary")
    ap.add_argument("--nca", required=True, help="the nca executable")
    ap.add_argument("--examples", default="examples", help="directory of *.gbp to check")
    ap.add_argument("--regress", default="tests/regress", help="directory of regression *.gbp")
    ap.add_argument("--seeds", type=int, default=30, help="generated policies, seeds 1..N")
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--large", type=int, default=0,
                    help="also this many denser generated policies (`__synth SEED --large`)")
    ap.add_argument("--timeout", type=int, default=120, help="seconds per NCA run")
    ap.add_argument("--keep", help="keep the work files in this directory")
    args = ap.parse_args()

    work = args.keep or tempfile.mkdtemp(prefix="gbpc-nca-")
    os.makedirs(work, exist_ok=True)
    cases = []
    for d in (args.examples, args.regress):
        for f in sorted(glob.glob(os.path.join(d, "*.gbp"))):
            cases.append((os.path.relpath(f), f))
    gen = os.path.join(work, "generated")
    os.makedirs(gen, exist_ok=True)
    seeds = [(seed, []) for seed in range(args.first_seed, args.first_seed + args.seeds)]
    seeds += [(seed, ["--large"]) for seed in range(args.first_seed, args.first_seed + args.large)]
    for seed, extra in seeds:
        text = run([args.gbpc, "__synth", str(seed)] + extra)
        if text.returncode != 0 or not text.stdout.strip():
            print(f"gbpc __synth {seed} failed ({text.returncode}): {text.stderr.strip()[-2000:]}")
            print("0 passed, 1 failed")
            return 1
        tag = f"{seed}{' large' if extra else ''}"
        f = os.path.join(gen, f"seed-{tag.replace(' ', '-')}.gbp")
        with open(f, "w") as fh:
            fh.write(text.stdout)
        cases.append((f"seed {tag}", f))

    stats = dict(pairs=0, sets=0, ports=0, deny_sets=0, anps=0, nps=0, trivial=0)
    passed = failed = 0
    for name, path in cases:
        try:
            bad = check_case(name, path, args, work, stats)
        except subprocess.TimeoutExpired:
            bad = ["nca timed out"]
        if bad:
            failed += 1
            print(f"FAIL {name} ({path}): {len(bad)} disagreement(s)")
            for b in bad[:20]:
                print(f"  {b}")
            if len(bad) > 20:
                print(f"  ... and {len(bad) - 20} more")
        else:
            passed += 1
            print(f"ok   {name}")
    print(
        f"compared {stats['pairs']} (endpoint pair, run) cases, {stats['sets']} (pair, protocol) "
        f"port sets, {stats['ports']} allowed (pair, protocol, port) flows; "
        f"{stats['nps']} NetworkPolicies, {stats['anps']} AdminNetworkPolicies (as Calico); "
        f"{stats['deny_sets']} port sets where a deny subject changes the verdict; "
        f"{stats['trivial']} cases with fewer than two pods (nothing to compare)")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
