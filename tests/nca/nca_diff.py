#!/usr/bin/env python3
"""Differential test of gbpc's Kubernetes output against IBM np-guard's network-config-analyzer.

For each policy (the examples, the regression cases and generated ones), gbpc compiles
NetworkPolicy objects with the default options (denies compiled away), writes the Namespaces and
Pods of the declared internal endpoints plus two witness pods for every label class (every set of
groups some combination of labels selects: `gbpc __k8s-class-fixture`), and prints the
evaluator's allowed ports between every ordered pair of those pods (`gbpc __eval-class-matrix`).
NCA computes the connectivity the NetworkPolicies allow between the pods; the two must be equal
for TCP, UDP and SCTP, on every port.

Each case is run a second time with `--k8s-deny cluster`: the NetworkPolicies plus each
ClusterNetworkPolicy translated here, rule for rule, into a Calico GlobalNetworkPolicy with
action Deny and `order` = the policy's priority (network-config-analyzer 2.1.0, the newest
release, reads neither ClusterNetworkPolicy nor AdminNetworkPolicy; it evaluates ordered Calico
policies before Kubernetes NetworkPolicies, which is exactly "an Admin-tier Deny wins over every
NetworkPolicy"). The translation is mechanical (subject/peers `pods` -> namespaceSelector +
selector, `networks` -> nets, protocols -> one rule per protocol); anything it does not know
makes the case fail.

What is not compared, and why (nothing else is left out):
- ICMP and other IP protocols: NetworkPolicy cannot name them (gbpc warns, W010/W030).
- A pod's connections to itself: NCA does not list them. Two pods per label class make every
  class meet itself.
- Pod addresses in `ipBlock`s: NCA never matches an ipBlock to a pod, so a pod is only ever a
  pod to it; gbpc's ipBlocks never contain a pod address (`tests/k8s.rs` proves it), so a plugin
  that does match pods against ipBlocks decides the same. Connections between pods and address
  ranges are compared too: for every piece of the address space, NCA's connectivity must be the
  evaluator's for the external groups there (none for the fabric's own addresses and for
  addresses in no group).

Last line of output: "N passed, M failed". Exit status 1 on any disagreement or failure.
"""

import argparse
import concurrent.futures
import glob
import ipaddress
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
    """Pairs ("ns/pod", "ns/pod") -> {proto: ranges}. Lines with address ranges are read by
    `parse_nca_external`."""
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


def parse_addr_range(text):
    """An NCA address range (`lo-hi`, a CIDR, or one address) as (family, lo, hi) integers, or
    None when the text is not an address range."""
    text = text.strip()
    try:
        if "/" in text:
            net = ipaddress.ip_network(text, strict=False)
            return net.version, int(net.network_address), int(net.broadcast_address)
        if "-" in text:
            lo, hi = text.split("-", 1)
            lo, hi = ipaddress.ip_address(lo), ipaddress.ip_address(hi)
            return lo.version, int(lo), int(hi)
        a = ipaddress.ip_address(text)
        return a.version, int(a), int(a)
    except ValueError:
        return None


def parse_nca_external(output):
    """(pod, "out" | "in") -> [(family, lo, hi, {proto: ranges})] from NCA's lines between a
    pod and an address range."""
    out = {}
    for line in output.splitlines():
        if " => " not in line or " : " not in line:
            continue
        ends, conn = line.split(" : ", 1)
        src, dst = (x.strip() for x in ends.split(" => ", 1))
        s_range, d_range = parse_addr_range(src), parse_addr_range(dst)
        if (s_range is None) == (d_range is None):
            continue  # pod to pod (or range to range)
        got = parse_connection(conn)
        if s_range is None:
            key, r = (src, "out"), d_range
        else:
            key, r = (dst, "in"), s_range
        out.setdefault(key, []).append((r[0], r[1], r[2], got))
    return out


def compare_external(label, expected, got, stats):
    """Disagreements between the evaluator's pod-address connectivity and NCA's, compared on
    every piece of the address space either side names."""
    want = {}
    for e in expected:
        r = parse_addr_range(f"{e['lo']}-{e['hi']}")
        want.setdefault((e["pod"], e["dir"]), []).append((r[0], r[1], r[2], e["allow"]))
    bad = []
    for key in sorted(set(want) | set(got)):
        w, g = want.get(key, []), got.get(key, [])
        for fam in (4, 6):
            ws = [x for x in w if x[0] == fam]
            gs = [x for x in g if x[0] == fam]
            if not ws and not gs:
                continue
            cuts = sorted({x[1] for x in ws + gs} | {x[2] + 1 for x in ws + gs})
            for lo, nxt in zip(cuts, cuts[1:]):
                def at(items):
                    conn = {p: [] for p in PROTOS}
                    for _, a, b, c in items:
                        if a <= lo <= b:
                            for p in PROTOS:
                                conn[p].extend(tuple(r) for r in c[p])
                    return {p: normalize(conn[p]) for p in PROTOS}
                a, b = at(ws), at(gs)
                stats["external_sets"] += 1
                if a != b:
                    ip = ipaddress.ip_address(lo)
                    last = ipaddress.ip_address(nxt - 1)
                    bad.append(
                        f"[{label}] {key[0]} {'->' if key[1] == 'out' else '<-'} {ip}-{last}: "
                        f"gbpc evaluator allows {a}, NCA allows {b}")
    return bad


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


def cnp_protocols(protocols):
    """CNP protocols as [(protocol or None, [calico port, ...] or None)]."""
    if not protocols:
        return [(None, None)]
    by_proto = {}
    for pr in protocols:
        if len(pr) != 1:
            raise ValueError(f"cannot translate CNP protocol {pr!r}")
        (name, body), = pr.items()
        if name not in ("tcp", "udp", "sctp") or set(body) != {"destinationPort"}:
            raise ValueError(f"cannot translate CNP protocol {pr!r}")
        port = body["destinationPort"]
        if set(port) == {"number"}:
            by_proto.setdefault(name.upper(), []).append(int(port["number"]))
        elif set(port) == {"range"}:
            r = port["range"]
            by_proto.setdefault(name.upper(), []).append(f"{int(r['start'])}:{int(r['end'])}")
        else:
            raise ValueError(f"cannot translate CNP port {port!r}")
    return sorted(by_proto.items())


def cnp_to_calico(cnp):
    """One Admin-tier ClusterNetworkPolicy (every rule Deny) as a Calico GlobalNetworkPolicy."""
    spec = cnp["spec"]
    if set(spec) - {"tier", "priority", "subject", "ingress", "egress"} or spec.get("tier") != "Admin":
        raise ValueError(f"cannot translate CNP spec {sorted(spec)} tier {spec.get('tier')!r}")
    subj = spec["subject"]
    if set(subj) != {"pods"}:
        raise ValueError(f"cannot translate CNP subject {subj!r}")
    out = {"order": int(spec["priority"]),
           "namespaceSelector": calico_selector(subj["pods"].get("namespaceSelector", {}), "subject namespaceSelector"),
           "selector": calico_selector(subj["pods"].get("podSelector", {}), "subject podSelector"),
           "types": []}
    for direction, peers_key, side in (("ingress", "from", "source"), ("egress", "to", "destination")):
        rules = []
        for rule in spec.get(direction) or []:
            if rule.get("action") != "Deny":
                raise ValueError(f"cannot translate CNP action {rule.get('action')!r}")
            for peer in rule.get(peers_key) or []:
                entity = calico_peer(peer)
                for proto, ports in cnp_protocols(rule.get("protocols")):
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
            "metadata": {"name": cnp["metadata"]["name"]}, "spec": out}


def fmt_ranges(rs):
    return ",".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in rs) or "-"


def compile_items(args, path, extra):
    """gbpc's Kubernetes objects for a policy: (items, None) or (None, error)."""
    comp = run([args.gbpc, "compile", path, "--target", "k8s"] + extra)
    if comp.returncode != 0:
        return None, f"gbpc compile {' '.join(extra) or '(default options)'} failed ({comp.returncode}): {comp.stderr.strip()[-2000:]}"
    return json.loads(comp.stdout)["items"], None


def check_case(name, path, args, work, stats):
    """Compare one policy file; returns a list of disagreement lines (empty: pass)."""
    out = os.path.join(work, re.sub(r"[^A-Za-z0-9_.-]", "_", name))
    os.makedirs(out, exist_ok=True)
    fix = run([args.gbpc, "__k8s-class-fixture", path])
    mat = run([args.gbpc, "__eval-class-matrix", path])
    if fix.returncode != 0 or mat.returncode != 0:
        return [f"gbpc helpers failed: {fix.stderr.strip()} {mat.stderr.strip()}"]
    fixture = json.loads(fix.stdout)["items"]
    matrix_all = json.loads(mat.stdout)
    matrix = matrix_all["pairs"]
    pods = [i for i in fixture if i["kind"] == "Pod"]
    if len(pods) < 2:
        # Nothing to compare. The generator always declares two or more internal endpoints,
        # so only a hand-written case may be trivial.
        if name.startswith("seed "):
            return [f"only {len(pods)} pod(s) in a generated policy"]
        stats["trivial"] += 1
        return []
    stats["pods"] += len(pods)
    stats["witnesses"] += sum(1 for p in pods if p["metadata"]["name"].startswith("gbpc-class"))
    topo = os.path.join(out, "topology.yaml")
    with open(topo, "w") as f:
        yaml.safe_dump_all(fixture, f, sort_keys=False)
    runs = []
    items, err = compile_items(args, path, [])
    if err:
        return [err]
    kinds = sorted({i.get("kind") for i in items} - {"NetworkPolicy"})
    if kinds:
        return [f"default options gave {kinds}: only NetworkPolicy was expected"]
    stats["nps"] += len(items)
    runs.append(("default options", "policies", items))
    if not args.no_cluster:
        items, err = compile_items(args, path, ["--k8s-deny", "cluster"])
        if err:
            return [err]
        nps = [i for i in items if i.get("kind") == "NetworkPolicy"]
        cnps = [i for i in items if i.get("kind") == "ClusterNetworkPolicy"]
        other = [i.get("kind") for i in items if i.get("kind") not in ("NetworkPolicy", "ClusterNetworkPolicy")]
        if other:
            return [f"unexpected object kinds in gbpc output: {sorted(set(other))}"]
        if cnps:
            try:
                gnps = [cnp_to_calico(c) for c in cnps]
            except ValueError as e:
                return [str(e)]
            stats["cnps"] += len(cnps)
            runs.append(("--k8s-deny cluster (CNP as Calico)", "policies-cluster", nps + gnps))
    bad = []
    for label, sub, objs in runs:
        pdir = os.path.join(out, sub)
        os.makedirs(pdir, exist_ok=True)
        with open(os.path.join(pdir, "policies.yaml"), "w") as f:
            yaml.safe_dump_all(objs, f, sort_keys=False)
        got, ext, err = nca_connectivity(args, pdir, topo, len(pods), os.path.join(out, sub + ".txt"))
        if err:
            return [f"{label}: {err}"]
        bad += compare(label, matrix, got, "allow", stats)
        bad += compare_external(label, matrix_all["external"], ext, stats)
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
        return None, None, f"nca failed: {(nca.stdout + nca.stderr).strip()[-2000:]}"
    m = re.search(r"cluster has (\d+) unique endpoints", nca.stdout)
    if not m or int(m.group(1)) < npods:
        return None, None, f"nca saw {m.group(1) if m else '?'} endpoints, expected {npods}: {nca.stdout[:300]}"
    try:
        return parse_nca(nca.stdout), parse_nca_external(nca.stdout), None
    except ValueError as e:
        return None, None, str(e)


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
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="cases checked at once (default: the number of CPUs)")
    ap.add_argument("--no-cluster", action="store_true",
                    help="skip the second run of each case with --k8s-deny cluster")
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

    stats = dict(pairs=0, sets=0, ports=0, deny_sets=0, cnps=0, nps=0, trivial=0, pods=0, witnesses=0,
                 disagreements=0, external_sets=0)
    passed = failed = 0
    def one(case):
        name, path = case
        local = dict.fromkeys(stats, 0)
        try:
            return check_case(name, path, args, work, local), local
        except subprocess.TimeoutExpired:
            return ["nca timed out"], local

    # The cases are independent: NCA runs in parallel, results are reported in case order.
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(one, cases))
    for (name, path), (bad, local) in zip(cases, results):
        for k, v in local.items():
            stats[k] += v
        if bad:
            stats["disagreements"] += len(bad)
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
        f"{len(cases)} policies, {stats['pods']} pods ({stats['witnesses']} of them label-class "
        f"witnesses); compared {stats['pairs']} (pod pair, run) cases, {stats['sets']} (pair, "
        f"protocol) port sets, {stats['ports']} allowed (pair, protocol, port) flows; "
        f"{stats['nps']} NetworkPolicies (default options), {stats['cnps']} ClusterNetworkPolicies "
        f"(as Calico); {stats['deny_sets']} port sets where a deny subject changes the verdict; "
        f"{stats['external_sets']} (pod, address range, direction) pieces compared; "
        f"{stats['disagreements']} disagreements; "
        f"{stats['trivial']} cases with fewer than two pods (nothing to compare)")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
