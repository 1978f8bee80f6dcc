//! What the kernel and conntrack make of a flow (carried, answered, tracked how), the flows of
//! the truth tables with the port ranges the class proof cuts them into, and the evaluator's
//! verdict of one flow in one family: the flow-level half of the plan.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::eval::{self, Flow, Proto, Reason, Verdict};
use crate::model::{EntryProto, FilterEntry, GroupId, Policy};
use crate::net::Family;

/// How conntrack sees the first packet of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Track {
    /// A new connection (TCP, UDP, SCTP, other protocols, ICMP requests).
    New,
    /// Belongs to no connection and cannot start one: dropped as invalid (ICMP replies and
    /// errors, other ICMP types).
    Invalid,
    /// Not tracked at all (ICMPv6 neighbour discovery and multicast listener types).
    Untracked,
}

impl Track {
    pub fn as_str(self) -> &'static str {
        match self {
            Track::New => "new",
            Track::Invalid => "invalid",
            Track::Untracked => "untracked",
        }
    }
}

/// ICMPv6 types conntrack leaves untracked (`noct_valid_new` of the kernel).
pub const ICMPV6_UNTRACKED: &[u8] = &[130, 131, 132, 133, 134, 135, 136, 143];

/// How conntrack sees a flow's first packet.
pub fn track(flow: Flow) -> Track {
    match flow.proto {
        Proto::Icmp if eval::ICMP_REQUESTS.contains(&(flow.port as u8)) => Track::New,
        Proto::Icmp => Track::Invalid,
        Proto::Icmpv6 if eval::ICMPV6_REQUESTS.contains(&(flow.port as u8)) => Track::New,
        Proto::Icmpv6 if ICMPV6_UNTRACKED.contains(&(flow.port as u8)) => Track::Untracked,
        Proto::Icmpv6 => Track::Invalid,
        _ => Track::New,
    }
}

pub(super) fn fam_index(f: Family) -> usize {
    match f {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

pub(super) const FAMILIES: [Family; 2] = [Family::V4, Family::V6];

/// The echo request flow of a family.
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

/// Why an address cannot be an endpoint of a run, if it cannot: the kernel would not route it
/// between namespaces, or the fabric uses it.
pub fn unbootable(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => {
            if a.is_loopback() {
                Some("loopback")
            } else if a.is_link_local() {
                Some("link-local (the fabric uses 169.254.1.1)")
            } else if a.is_multicast() {
                Some("multicast")
            } else if a.is_broadcast() {
                Some("the broadcast address")
            } else if a.octets()[0] == 0 {
                Some("in 0.0.0.0/8 (unspecified, \"this network\")")
            } else {
                None
            }
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            if a.is_loopback() {
                Some("loopback")
            } else if a.is_unspecified() {
                Some("unspecified")
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some("link-local (the fabric uses fe80::1)")
            } else if a.is_multicast() {
                Some("multicast")
            } else if a.to_ipv4_mapped().is_some() {
                Some("IPv4-mapped (::ffff:0:0/96 never appears on the wire)")
            } else if s[..6] == [0; 6] {
                Some("IPv4-compatible (::/96, deprecated; the kernel would tunnel it)")
            } else {
                None
            }
        }
    }
}

/// Whether the kernel can carry a flow and show its arrival: not an IPv6 extension header
/// (0, 43, 44, 51, 60), no next header (59), not IPPROTO_RAW (255), and for IPv4 not 0.
pub(super) fn carried(family: Family, flow: Flow) -> bool {
    match (family, flow.proto) {
        (Family::V4, Proto::Other(n)) => !matches!(n, 0 | 255),
        (Family::V6, Proto::Other(n)) => !matches!(n, 0 | 43 | 44 | 51 | 59 | 60 | 255),
        _ => true,
    }
}

/// Whether the destination's kernel answers the probe (the answer must come back).
pub(super) fn answered(flow: Flow) -> bool {
    matches!(flow.proto, Proto::Tcp | Proto::Udp)
        || (flow.proto == Proto::Icmp && flow.port == 8)
        || (flow.proto == Proto::Icmpv6 && flow.port == 128)
}

/// The first port at or above 40000 that no filter names, nor its neighbours.
fn unnamed_port(ranges: &[(u16, u16)]) -> u16 {
    (40_000..=u16::MAX)
        .find(|&n| {
            let n = u32::from(n);
            ranges
                .iter()
                .all(|&(lo, hi)| n + 1 < u32::from(lo) || n > u32::from(hi) + 1)
        })
        .unwrap_or(40_000)
}

/// The protocol spaces of a family's flows, in table order.
pub(super) fn spaces(family: Family) -> [(Proto, u16); 5] {
    let icmp = match family {
        Family::V4 => Proto::Icmp,
        Family::V6 => Proto::Icmpv6,
    };
    [
        (Proto::Tcp, u16::MAX),
        (Proto::Udp, u16::MAX),
        (Proto::Sctp, u16::MAX),
        (icmp, 255),
        (Proto::Other(0), 255),
    ]
}

/// The space a flow's protocol is in (other protocols share one).
pub(super) fn space_of(p: Proto) -> Proto {
    match p {
        Proto::Other(_) => Proto::Other(0),
        p => p,
    }
}

/// The value of a flow within its space (a protocol number for other protocols).
pub(super) fn value(f: Flow) -> u16 {
    match f.proto {
        Proto::Other(n) => u16::from(n),
        _ => f.port,
    }
}

/// Whether a filter entry speaks about a protocol space.
pub(super) fn entry_in(e: &FilterEntry, space: Proto) -> bool {
    match e.proto {
        EntryProto::Ip => true,
        EntryProto::Tcp => space == Proto::Tcp,
        EntryProto::Udp => space == Proto::Udp,
        EntryProto::Sctp => space == Proto::Sctp,
        EntryProto::Icmp => space == Proto::Icmp,
        EntryProto::Icmpv6 => space == Proto::Icmpv6,
    }
}

/// Conntrack's own boundaries in an ICMP space: (first, last) of each run of types that
/// conntrack treats alike and differently from their neighbours.
pub(super) fn track_runs(space: Proto) -> Vec<(u16, u16)> {
    let (requests, untracked): (&[u8], &[u8]) = match space {
        Proto::Icmp => (eval::ICMP_REQUESTS, &[]),
        Proto::Icmpv6 => (eval::ICMPV6_REQUESTS, ICMPV6_UNTRACKED),
        _ => return Vec::new(),
    };
    let mut runs: Vec<(u16, u16)> = requests.iter().map(|&t| (t.into(), t.into())).collect();
    for &t in untracked {
        match runs.last_mut() {
            Some((_, hi)) if *hi + 1 == u16::from(t) && untracked.contains(&(*hi as u8)) => {
                *hi = t.into()
            }
            _ => runs.push((t.into(), t.into())),
        }
    }
    runs
}

/// The flows of the truth tables, per family.
pub(super) fn table_flows(p: &Policy) -> [Vec<Flow>; 2] {
    let mut ports: [BTreeSet<u16>; 3] = Default::default();
    let mut icmp: [BTreeSet<u16>; 2] = Default::default();
    let mut other: BTreeSet<u8> = BTreeSet::new();
    let mut named_ranges: Vec<(u16, u16)> = Vec::new();
    let mut sctp = false;
    let edges = |set: &mut BTreeSet<u16>, lo: u16, hi: u16, max: u16| {
        set.insert(lo);
        set.insert(hi);
        if lo > 0 {
            set.insert(lo - 1);
        }
        if hi < max {
            set.insert(hi + 1);
        }
    };
    for f in &p.filters {
        for e in &f.entries {
            let slots: Vec<usize> = match e.proto {
                EntryProto::Tcp => vec![0],
                EntryProto::Udp => vec![1],
                EntryProto::Sctp => vec![2],
                EntryProto::Icmp => vec![3],
                EntryProto::Icmpv6 => vec![4],
                EntryProto::Ip => vec![0, 1, 2, 3, 4, 5],
            };
            for slot in slots {
                match slot {
                    0..=2 => {
                        sctp |= slot == 2;
                        let set = &mut ports[slot];
                        set.insert(0);
                        set.insert(u16::MAX);
                        if e.proto == EntryProto::Ip || e.ranges.is_empty() {
                            continue;
                        }
                        for &(lo, hi) in &e.ranges {
                            named_ranges.push((lo, hi));
                            edges(set, lo, hi, u16::MAX);
                        }
                    }
                    3 | 4 => {
                        let set = &mut icmp[slot - 3];
                        let space = if slot == 3 {
                            Proto::Icmp
                        } else {
                            Proto::Icmpv6
                        };
                        let ranges: &[(u16, u16)] =
                            if e.proto == EntryProto::Ip || e.ranges.is_empty() {
                                &[(0, 255)]
                            } else {
                                &e.ranges
                            };
                        for &(lo, hi) in ranges {
                            edges(set, lo, hi, 255);
                            // Conntrack's boundaries inside the range (and just outside).
                            for (a, b) in track_runs(space) {
                                if b + 1 >= lo && a <= hi.saturating_add(1) {
                                    edges(set, a, b, 255);
                                }
                            }
                        }
                        set.retain(|&t| t <= 255);
                    }
                    _ => {
                        other.insert(47);
                        other.insert(253);
                    }
                }
            }
        }
    }
    for a in &p.asserts {
        match a.flow.proto {
            Proto::Tcp => {
                ports[0].insert(a.flow.port);
            }
            Proto::Udp => {
                ports[1].insert(a.flow.port);
            }
            Proto::Sctp => {
                sctp = true;
                ports[2].insert(a.flow.port);
            }
            Proto::Icmp => {
                icmp[0].insert(a.flow.port);
            }
            Proto::Icmpv6 => {
                icmp[1].insert(a.flow.port);
            }
            Proto::Other(n) => {
                other.insert(n);
            }
        }
    }
    let unnamed = unnamed_port(&named_ranges);
    for (slot, set) in ports.iter_mut().enumerate() {
        if slot < 2 || sctp {
            set.insert(unnamed);
        }
    }
    icmp[0].insert(8);
    icmp[1].insert(128);
    let mut out: [Vec<Flow>; 2] = Default::default();
    for family in FAMILIES {
        let list = &mut out[fam_index(family)];
        for (proto, set) in [
            (Proto::Tcp, &ports[0]),
            (Proto::Udp, &ports[1]),
            (Proto::Sctp, &ports[2]),
        ] {
            list.extend(set.iter().map(|&port| Flow { proto, port }));
        }
        let (proto, set) = match family {
            Family::V4 => (Proto::Icmp, &icmp[0]),
            Family::V6 => (Proto::Icmpv6, &icmp[1]),
        };
        list.extend(set.iter().map(|&port| Flow { proto, port }));
        list.extend(other.iter().map(|&n| Flow {
            proto: Proto::from_number(n),
            port: 0,
        }));
    }
    out
}

/// The evaluator's verdict and deciding rule of a flow in `family` between two group sets
/// (with the applicable contracts already computed). The plan only probes flows of the family
/// (`flow_in_family`); a flow of the other family is no connection, and no packet of it can be
/// let through: denied by default.
pub(super) fn judge(
    p: &Policy,
    app: &[(crate::model::ContractId, GroupId, GroupId)],
    src: &[GroupId],
    dst: &[GroupId],
    family: Family,
    flow: Flow,
) -> (Verdict, Reason) {
    let fam = eval::Families::of(family);
    match eval::Conn::new(eval::End::new(src, fam), eval::End::new(dst, fam), flow) {
        Ok(conn) => {
            let d = eval::decide_with(p, app, &conn);
            (d.verdict, d.reason)
        }
        Err(_) => (Verdict::Deny, Reason::Default),
    }
}
