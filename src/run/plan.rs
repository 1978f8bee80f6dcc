//! The plan of a run, computed from the checked policy alone: which endpoints boot with which
//! addresses, which ports they listen on, and the probe list with the evaluator's verdict of
//! each probe. Pure: no system calls, the same policy always gives the same plan.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::wire::{Kind, Listen, Node, WireProbe};
use crate::eval::{self, Flow, Proto, Verdict};
use crate::model::{EndpointId, EntryProto, Party, Policy};
use crate::net::Family;

/// Limits of a plan.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Probe at most this many flows (an even sample; assertions are always probed).
    pub max_probes: Option<usize>,
}

/// A booted endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanNode {
    pub endpoint: EndpointId,
    /// `tenant/name`, for reports.
    pub name: String,
    pub node: Node,
}

/// One probe: a new connection from one endpoint to another, and what the evaluator says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Indexes into [`Plan::nodes`].
    pub src: usize,
    pub dst: usize,
    pub family: Family,
    pub flow: Flow,
    pub expect: Verdict,
}

#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub nodes: Vec<PlanNode>,
    /// Endpoints that are not booted, and why.
    pub skipped: Vec<String>,
    pub listen: Listen,
    /// The flows probed between every pair (ICMP echo stands for both families' echo).
    pub flows: Vec<Flow>,
    pub probes: Vec<Probe>,
    /// Probes before sampling.
    pub total: usize,
    /// What the policy names that traffic cannot show (ICMP types other than echo, other
    /// IP protocols).
    pub unprobed: Vec<String>,
}

/// Why a policy cannot be booted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanError(pub String);

/// The first port at or above 40000 that no filter names, nor its neighbours.
fn unnamed_port(ranges: &[(u16, u16)]) -> u16 {
    (40_000..=u16::MAX)
        .find(|&n| {
            let n = n as u32;
            ranges
                .iter()
                .all(|&(lo, hi)| n + 1 < lo as u32 || n > hi as u32 + 1)
        })
        .unwrap_or(40_000)
}

/// The echo flow of a family.
pub fn echo(family: Family) -> Flow {
    match family {
        Family::V4 => Flow {
            proto: Proto::Icmp,
            port: 8,
        },
        Family::V6 => Flow {
            proto: Proto::Icmpv6,
            port: 128,
        },
    }
}

fn bootable(ip: IpAddr) -> Result<(), &'static str> {
    let bad = match ip {
        IpAddr::V4(a) => {
            if a.is_loopback() {
                Some("loopback")
            } else if a.is_link_local() {
                Some("link-local (the fabric uses 169.254.1.1)")
            } else if a.is_multicast() || a.is_broadcast() {
                Some("multicast or broadcast")
            } else if a.is_unspecified() || a.octets()[0] == 0 {
                Some("unspecified")
            } else {
                None
            }
        }
        IpAddr::V6(a) => {
            if a.is_loopback() {
                Some("loopback")
            } else if a.segments()[0] & 0xffc0 == 0xfe80 {
                Some("link-local (the fabric uses fe80::1)")
            } else if a.is_multicast() {
                Some("multicast")
            } else if a.is_unspecified() {
                Some("unspecified")
            } else {
                None
            }
        }
    };
    match bad {
        Some(why) => Err(why),
        None => Ok(()),
    }
}

/// Plan a run of `p` (a policy without errors).
pub fn plan(p: &Policy, o: &Options) -> Result<Plan, PlanError> {
    let mut out = Plan::default();
    let mut seen: BTreeSet<IpAddr> = BTreeSet::new();
    for (i, e) in p.endpoints.iter().enumerate() {
        let name = p.endpoint_name(EndpointId(i as u32));
        let mut v4: Option<Ipv4Addr> = None;
        let mut v6: Option<Ipv6Addr> = None;
        for c in e.addrs.iter().filter(|c| c.is_host()) {
            let ip = c.ip();
            if let Err(why) = bootable(ip) {
                return Err(PlanError(format!(
                    "endpoint `{name}` cannot be booted at {ip}: the address is {why}"
                )));
            }
            if !seen.insert(ip) {
                return Err(PlanError(format!(
                    "endpoint `{name}` has address {ip}, which another endpoint has too"
                )));
            }
            match ip {
                IpAddr::V4(a) if v4.is_none() => v4 = Some(a),
                IpAddr::V6(a) if v6.is_none() => v6 = Some(a),
                _ => {}
            }
        }
        if v4.is_none() && v6.is_none() {
            out.skipped.push(format!("{name}: no address"));
            continue;
        }
        out.nodes.push(PlanNode {
            endpoint: EndpointId(i as u32),
            name,
            node: Node {
                host: e.name.clone(),
                v4,
                v6,
            },
        });
    }

    // Ports: every edge of every range, the ports just outside, and one nothing names.
    let mut ports: [BTreeSet<u16>; 3] = Default::default();
    let mut all_ranges: Vec<(u16, u16)> = Vec::new();
    let mut sctp_named = false;
    let mut unprobed: BTreeSet<String> = BTreeSet::new();
    for f in &p.filters {
        for e in &f.entries {
            let slot = match e.proto {
                EntryProto::Tcp => 0,
                EntryProto::Udp => 1,
                EntryProto::Sctp => {
                    sctp_named = true;
                    2
                }
                EntryProto::Icmp | EntryProto::Icmpv6 => {
                    let echo_type = if e.proto == EntryProto::Icmp { 8 } else { 128 };
                    let other = e.ranges.is_empty()
                        || e.ranges
                            .iter()
                            .any(|&(lo, hi)| lo != echo_type || hi != echo_type);
                    if other {
                        unprobed.insert(format!(
                            "filter `{}`: {} types other than echo-request (only echo is probed)",
                            f.name,
                            if e.proto == EntryProto::Icmp {
                                "icmp"
                            } else {
                                "icmpv6"
                            }
                        ));
                    }
                    continue;
                }
                EntryProto::Ip => {
                    unprobed.insert(format!(
                        "filter `{}`: IP protocols other than tcp, udp and ICMP echo",
                        f.name
                    ));
                    continue;
                }
            };
            let ranges: &[(u16, u16)] = if e.ranges.is_empty() {
                &[(1, u16::MAX)]
            } else {
                &e.ranges
            };
            for &(lo, hi) in ranges {
                all_ranges.push((lo, hi));
                let set = &mut ports[slot];
                set.insert(lo);
                set.insert(hi);
                if let Some(x) = lo.checked_sub(1) {
                    set.insert(x);
                }
                if let Some(x) = hi.checked_add(1) {
                    set.insert(x);
                }
            }
        }
    }
    // Assertions between booted endpoints are probed whatever the filters name.
    for a in &p.asserts {
        let slot = match a.flow.proto {
            Proto::Tcp => 0,
            Proto::Udp => 1,
            Proto::Sctp => {
                sctp_named = true;
                2
            }
            _ => continue,
        };
        ports[slot].insert(a.flow.port);
    }
    let unnamed = unnamed_port(&all_ranges);
    for (slot, set) in ports.iter_mut().enumerate() {
        if slot < 2 || sctp_named {
            set.insert(unnamed);
        }
        set.remove(&0);
    }
    out.listen = Listen {
        tcp: ports[0].iter().copied().collect(),
        udp: ports[1].iter().copied().collect(),
        sctp: ports[2].iter().copied().collect(),
    };
    let mut flows: Vec<Flow> = Vec::new();
    for (proto, list) in [
        (Proto::Tcp, &out.listen.tcp),
        (Proto::Udp, &out.listen.udp),
        (Proto::Sctp, &out.listen.sctp),
    ] {
        flows.extend(list.iter().map(|&port| Flow { proto, port }));
    }
    flows.push(echo(Family::V4));
    out.flows = flows;
    out.unprobed = unprobed.into_iter().collect();

    // Every ordered pair with a common family, every flow.
    let mut probes = Vec::new();
    for (si, s) in out.nodes.iter().enumerate() {
        let sg = &p.endpoint(s.endpoint).groups;
        for (di, d) in out.nodes.iter().enumerate() {
            if si == di {
                continue;
            }
            let dg = &p.endpoint(d.endpoint).groups;
            let app = eval::applicable(p, sg, dg);
            for family in [Family::V4, Family::V6] {
                let both = match family {
                    Family::V4 => s.node.v4.is_some() && d.node.v4.is_some(),
                    Family::V6 => s.node.v6.is_some() && d.node.v6.is_some(),
                };
                if !both {
                    continue;
                }
                for &f in &out.flows {
                    let flow = if f.proto == Proto::Icmp {
                        echo(family)
                    } else {
                        f
                    };
                    let fam = eval::Families::of(family);
                    let ends = (eval::End::new(sg, fam), eval::End::new(dg, fam));
                    let Ok(conn) = eval::Conn::new(ends.0, ends.1, flow) else {
                        continue; // a protocol of the other family
                    };
                    let expect = eval::decide_with(p, &app, &conn).verdict;
                    probes.push(Probe {
                        src: si,
                        dst: di,
                        family,
                        flow,
                        expect,
                    });
                }
            }
        }
    }
    out.total = probes.len();
    out.probes = match o.max_probes {
        Some(max) if probes.len() > max => sample(p, &out.nodes, probes, max),
        _ => probes,
    };
    Ok(out)
}

/// The node an assertion's party stands for, if it was booted.
pub fn party_node(nodes: &[PlanNode], party: &Party) -> Option<(usize, Option<Family>)> {
    match party {
        Party::Endpoint(e) => nodes
            .iter()
            .position(|n| n.endpoint == *e)
            .map(|i| (i, None)),
        Party::Address(c) => {
            let ip = c.ip();
            nodes
                .iter()
                .position(|n| {
                    n.node.v4.map(IpAddr::V4) == Some(ip) || n.node.v6.map(IpAddr::V6) == Some(ip)
                })
                .map(|i| (i, Some(c.family)))
        }
    }
}

/// An even spread of `max` probes, plus every probe an assertion needs.
fn sample(p: &Policy, nodes: &[PlanNode], probes: Vec<Probe>, max: usize) -> Vec<Probe> {
    let mut keep = vec![false; probes.len()];
    for a in &p.asserts {
        let (Some((s, sf)), Some((d, df))) = (party_node(nodes, &a.from), party_node(nodes, &a.to))
        else {
            continue;
        };
        for (i, pr) in probes.iter().enumerate() {
            if pr.src == s
                && pr.dst == d
                && pr.flow == a.flow
                && sf.is_none_or(|f| f == pr.family)
                && df.is_none_or(|f| f == pr.family)
            {
                keep[i] = true;
            }
        }
    }
    let n = probes.len();
    for i in 0..max {
        if let Some(k) = keep.get_mut(i * n / max) {
            *k = true;
        }
    }
    probes
        .into_iter()
        .zip(keep)
        .filter_map(|(p, k)| k.then_some(p))
        .collect()
}

impl Plan {
    /// The probes as the fabric takes them.
    pub fn wire_probes(&self) -> Vec<WireProbe> {
        self.probes
            .iter()
            .map(|p| WireProbe {
                src: p.src as u32,
                dst: p.dst as u32,
                v6: p.family == Family::V6,
                kind: match p.flow.proto {
                    Proto::Tcp => Kind::Tcp,
                    Proto::Udp => Kind::Udp,
                    Proto::Sctp => Kind::Sctp,
                    _ => Kind::Echo,
                },
                port: p.flow.port,
                retry: p.expect == Verdict::Allow,
            })
            .collect()
    }

    /// The plan for people: endpoints, ports, flows and the first probes (for snapshots).
    pub fn describe(&self, first: usize) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "endpoints ({}):", self.nodes.len());
        for n in &self.nodes {
            let addrs: Vec<String> = n
                .node
                .v4
                .map(|a| a.to_string())
                .into_iter()
                .chain(n.node.v6.map(|a| a.to_string()))
                .collect();
            let _ = writeln!(
                s,
                "  {} (hostname {}): {}",
                n.name,
                n.node.host,
                addrs.join(", ")
            );
        }
        for k in &self.skipped {
            let _ = writeln!(s, "  not booted: {k}");
        }
        let list = |v: &[u16]| v.iter().map(u16::to_string).collect::<Vec<_>>().join(" ");
        let _ = writeln!(s, "listen tcp: {}", list(&self.listen.tcp));
        let _ = writeln!(s, "listen udp: {}", list(&self.listen.udp));
        let _ = writeln!(s, "listen sctp: {}", list(&self.listen.sctp));
        let flows: Vec<String> = self.flows.iter().map(ToString::to_string).collect();
        let _ = writeln!(s, "flows per pair: {}", flows.join(" "));
        for u in &self.unprobed {
            let _ = writeln!(s, "not probed: {u}");
        }
        let _ = writeln!(s, "probes: {} of {}", self.probes.len(), self.total);
        for p in self.probes.iter().take(first) {
            let _ = writeln!(
                s,
                "  {} -> {} {} {}: {}",
                self.nodes[p.src].name,
                self.nodes[p.dst].name,
                p.family.as_str(),
                p.flow,
                p.expect.as_str()
            );
        }
        s
    }
}
