#!/usr/bin/env python3
"""Write the Aerleon version of scripts/gen-policy.py N: the same groups, filters and contracts.

Usage: scripts/aerleon_gen.py N OUTDIR [nftables|k8s]

Writes OUTDIR/def/networks.yaml, OUTDIR/def/services.yaml and OUTDIR/pol/scale.yaml for
`aclgen --base_directory OUTDIR/pol --definitions_directory OUTDIR/def`.

The mapping (kept in step with scripts/gen-policy.py by hand):
- group g{i} -> network G{i} with the group's three /30 blocks;
- filter f{k} -> service F{k} (one port or a range, tcp or udp); filter `block` -> BLOCK;
- contract c{k} (provider k mod N, consumer (7k+1) mod N) -> one term: source G{consumer},
  destination G{provider}, destination-port F{k mod 16}, action accept;
- every 10th contract's deny subject -> a deny term (same addresses, tcp 9999), all deny
  terms placed first (gbpc: deny wins over permit; Aerleon: first match wins).
Not mapped: gbpc's intra-group default (members of one group reach each other) and the
endpoints/assertions; Aerleon has no such notion and the brief maps contracts only.

nftables: one filter, header `nftables: inet forward` (Aerleon's `inet` is IPv4 only: table
family ip, forward hook, default drop; `mixed` emitted every rule twice here).
k8s: Aerleon's k8s generator cannot express deny terms nor a destination on ingress (each
term's NetworkPolicy selects all pods of the namespace), so the k8s policy holds the accept
terms as ingress rules with the consumer network as source only.
"""
import os
import sys

PORTS = [80, 443, 5432, 6379, 8080, 9090, 9100, 11211, 3306, 27017, 2379, 53, 123, 161, 514, 5060]
UDP = (53, 123, 161, 514, 5060)


def ip(a):
    return f"{a >> 24 & 255}.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    n = int(sys.argv[1])
    out = sys.argv[2]
    target = sys.argv[3] if len(sys.argv) > 3 else "nftables"
    os.makedirs(os.path.join(out, "def"), exist_ok=True)
    os.makedirs(os.path.join(out, "pol"), exist_ok=True)
    base = (198 << 24) | (18 << 16)
    with open(os.path.join(out, "def", "networks.yaml"), "w") as f:
        f.write("networks:\n")
        for i in range(n):
            f.write(f"  G{i}:\n    values:\n")
            for j in range(3):
                f.write(f"      - address: {ip(base + 4 * (i + j * n))}/30\n")
    with open(os.path.join(out, "def", "services.yaml"), "w") as f:
        f.write("services:\n")
        for k, p in enumerate(PORTS):
            proto = "udp" if p in UDP else "tcp"
            port = f"{p}-{p + 20}" if k % 4 == 3 else f"{p}"
            f.write(f"  F{k}:\n    - port: {port}\n      protocol: {proto}\n")
        f.write("  BLOCK:\n    - port: 9999\n      protocol: tcp\n")
    denies, permits = [], []
    for k in range(3 * n):
        prov, cons = k % n, (7 * k + 1) % n
        fk = k % len(PORTS)
        proto = "udp" if PORTS[fk] in UDP else "tcp"
        if k % 10 == 0:
            denies.append((f"c{k}-d", cons, prov, "BLOCK", "tcp", "deny"))
        permits.append((f"c{k}-s", cons, prov, f"F{fk}", proto, "accept"))
    lines = ["filters:"]
    if target == "nftables":
        lines += ["  - header:", "      targets:", "        nftables: inet forward", "    terms:"]
        for name, cons, prov, svc, proto, action in denies + permits:
            lines += [
                f"      - name: {name}",
                f"        source-address: G{cons}",
                f"        destination-address: G{prov}",
                f"        destination-port: {svc}",
                f"        protocol: {proto}",
                f"        action: {action}",
            ]
    else:
        lines += ["  - header:", "      targets:", "        k8s: INGRESS", "    terms:"]
        for name, cons, prov, svc, proto, action in permits:
            lines += [
                f"      - name: {name}",
                f"        source-address: G{cons}",
                f"        destination-port: {svc}",
                f"        protocol: {proto}",
                f"        action: {action}",
            ]
    with open(os.path.join(out, "pol", "scale.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
