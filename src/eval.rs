//! The evaluator: the verdict of one new connection, exactly as `semantics.md` defines it, with
//! the rule that decided it. Every backend is tested against this function, and the nftables
//! backend computes its verdict maps by calling it.

use std::fmt;

use crate::diag::Span;
use crate::model::{
    Action, ContractId, Endpoint, EntryProto, FilterEntry, FilterId, GroupId, GroupKind, Origin,
    Policy,
};
use crate::net::{Cidr, Family};

/// Transport protocol of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
    Icmp,
    Icmpv6,
    /// Any other IP protocol, by number.
    Other(u8),
}

impl Proto {
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
            Proto::Icmp => 1,
            Proto::Icmpv6 => 58,
            Proto::Other(n) => n,
        }
    }

    pub fn from_number(n: u8) -> Proto {
        match n {
            6 => Proto::Tcp,
            17 => Proto::Udp,
            132 => Proto::Sctp,
            1 => Proto::Icmp,
            58 => Proto::Icmpv6,
            n => Proto::Other(n),
        }
    }

    pub fn has_ports(self) -> bool {
        matches!(self, Proto::Tcp | Proto::Udp | Proto::Sctp)
    }

    pub fn is_icmp(self) -> bool {
        matches!(self, Proto::Icmp | Proto::Icmpv6)
    }

    pub fn name(self) -> String {
        match self {
            Proto::Tcp => "tcp".into(),
            Proto::Udp => "udp".into(),
            Proto::Sctp => "sctp".into(),
            Proto::Icmp => "icmp".into(),
            Proto::Icmpv6 => "icmpv6".into(),
            Proto::Other(n) => format!("ip/{n}"),
        }
    }
}

/// A new connection's protocol and destination port (or ICMP type; 0 for other protocols).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Flow {
    pub proto: Proto,
    pub port: u16,
}

impl Flow {
    /// The address families this protocol exists in: ICMP is IPv4's, ICMPv6 is IPv6's.
    pub fn families(self) -> Families {
        match self.proto {
            Proto::Icmp => Families::V4,
            Proto::Icmpv6 => Families::V6,
            _ => Families::BOTH,
        }
    }
}

/// A set of address families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Families {
    pub v4: bool,
    pub v6: bool,
}

impl Families {
    pub const NONE: Families = Families {
        v4: false,
        v6: false,
    };
    pub const V4: Families = Families {
        v4: true,
        v6: false,
    };
    pub const V6: Families = Families {
        v4: false,
        v6: true,
    };
    pub const BOTH: Families = Families { v4: true, v6: true };

    pub fn of(f: Family) -> Families {
        match f {
            Family::V4 => Families::V4,
            Family::V6 => Families::V6,
        }
    }

    /// The families of some addresses.
    pub fn of_addrs<'c>(addrs: impl IntoIterator<Item = &'c Cidr>) -> Families {
        addrs
            .into_iter()
            .fold(Families::NONE, |f, a| f.or(Families::of(a.family)))
    }

    pub fn and(self, o: Families) -> Families {
        Families {
            v4: self.v4 && o.v4,
            v6: self.v6 && o.v6,
        }
    }

    pub fn or(self, o: Families) -> Families {
        Families {
            v4: self.v4 || o.v4,
            v6: self.v6 || o.v6,
        }
    }

    pub fn is_empty(self) -> bool {
        !self.v4 && !self.v6
    }

    pub fn contains(self, f: Family) -> bool {
        match f {
            Family::V4 => self.v4,
            Family::V6 => self.v6,
        }
    }

    /// `IPv4`, `IPv6`, `IPv4 and IPv6`, `no address`.
    pub fn describe(self) -> &'static str {
        match (self.v4, self.v6) {
            (true, false) => "IPv4",
            (false, true) => "IPv6",
            (true, true) => "IPv4 and IPv6",
            (false, false) => "no address",
        }
    }
}

/// One end of a connection as the evaluator sees it: the groups it is in, and the address
/// families it may have (one for an address; an endpoint's addresses; both for "a member of
/// this group", whose address the question leaves open).
#[derive(Clone, Copy, Debug)]
pub struct End<'a> {
    pub groups: &'a [GroupId],
    pub families: Families,
}

impl<'a> End<'a> {
    pub fn new(groups: &'a [GroupId], families: Families) -> End<'a> {
        End { groups, families }
    }

    /// An address: the groups its class is in, and its family.
    pub fn address(p: &'a Policy, family: Family, addr: u128) -> End<'a> {
        End {
            groups: p.classes.lookup(family, addr),
            families: Families::of(family),
        }
    }

    /// A declared endpoint: its groups, and the families of its addresses.
    pub fn endpoint(e: &'a Endpoint) -> End<'a> {
        End {
            groups: &e.groups,
            families: Families::of_addrs(&e.addrs),
        }
    }
}

/// Why two ends cannot be joined by a flow: no address family is common to both ends and the
/// flow's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrossFamily {
    pub src: Families,
    pub dst: Families,
    pub flow: Flow,
}

impl CrossFamily {
    /// Why, in a sentence: `the source is IPv4 and the destination IPv6`, `icmp is IPv4 only,
    /// and both ends are IPv6`.
    pub fn describe(&self) -> String {
        let ends = self.src.and(self.dst);
        if ends.is_empty() {
            return format!(
                "the source is {} and the destination {}: no connection crosses address families",
                self.src.describe(),
                self.dst.describe()
            );
        }
        let (proto, only) = match self.flow.proto {
            Proto::Icmpv6 => ("icmpv6", "IPv6"),
            _ => ("icmp", "IPv4"),
        };
        format!(
            "{proto} is {only} only, and the ends have only {} in common",
            ends.describe()
        )
    }

    /// The probe to use instead, when only the ICMP version is wrong.
    pub fn suggestion(&self) -> Option<&'static str> {
        let ends = self.src.and(self.dst);
        match self.flow.proto {
            Proto::Icmp if ends.v6 => Some("icmpv6"),
            Proto::Icmpv6 if ends.v4 => Some("icmp"),
            _ => None,
        }
    }
}

/// A new connection the evaluator can decide: a flow between two ends that have an address
/// family in common in which the flow's protocol exists. [`Conn::new`] is the only way to make
/// one and refuses a connection across families (no packet of one family can reach an address
/// of the other; ICMP does not exist in IPv6, nor ICMPv6 in IPv4), and every function that
/// gives a verdict takes a `Conn`: the evaluator cannot be asked about a flow that cannot exist.
#[derive(Clone, Copy, Debug)]
pub struct Conn<'a> {
    src: &'a [GroupId],
    dst: &'a [GroupId],
    flow: Flow,
    families: Families,
}

impl<'a> Conn<'a> {
    pub fn new(src: End<'a>, dst: End<'a>, flow: Flow) -> Result<Conn<'a>, CrossFamily> {
        let families = src.families.and(dst.families).and(flow.families());
        if families.is_empty() {
            return Err(CrossFamily {
                src: src.families,
                dst: dst.families,
                flow,
            });
        }
        Ok(Conn {
            src: src.groups,
            dst: dst.groups,
            flow,
            families,
        })
    }

    /// The same ends with another flow (checked again: the protocol may not exist in the
    /// ends' family).
    pub fn with_flow(self, flow: Flow) -> Result<Conn<'a>, CrossFamily> {
        let src = End::new(self.src, self.families);
        let dst = End::new(self.dst, self.families);
        Conn::new(src, dst, flow)
    }

    pub fn src(&self) -> &'a [GroupId] {
        self.src
    }
    pub fn dst(&self) -> &'a [GroupId] {
        self.dst
    }
    pub fn flow(&self) -> Flow {
        self.flow
    }
    /// The families the connection can be in.
    pub fn families(&self) -> Families {
        self.families
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.proto {
            Proto::Other(_) => write!(f, "{}", self.proto.name()),
            p => write!(f, "{}/{}", p.name(), self.port),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allow,
    Deny,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
        }
    }
}

/// A subject that matched a flow: which contract, subject, filter and entry, and through which
/// consumer and provider groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Match {
    pub contract: ContractId,
    pub subject: usize,
    pub filter: FilterId,
    pub entry: usize,
    pub consumer: GroupId,
    pub provider: GroupId,
}

/// Why a verdict was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A subject of a contract (step 1 for deny, step 2 for permit).
    Subject(Match),
    /// Both ends are in this non-isolated group (step 3).
    IntraGroup(GroupId),
    /// Nothing allowed it (step 4).
    Default,
    /// An ICMP type that cannot open a connection (a reply, an error, router or neighbour
    /// discovery): conntrack only lets it through as part of an allowed connection
    /// (`established,related`), never as a new one, whatever the contracts say.
    NotNew,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    pub reason: Reason,
}

impl Decision {
    /// A one-line description of the deciding rule, in the policy's own terms.
    pub fn describe(&self, p: &Policy) -> String {
        match self.reason {
            Reason::Subject(m) if p.contract(m.contract).origin == Origin::Preferred => format!(
                "allowed between preferred groups `{}` and `{}`",
                p.group_name(m.consumer),
                p.group_name(m.provider),
            ),
            Reason::Subject(m) if p.contract(m.contract).origin == Origin::Unenforced => format!(
                "allowed inside unenforced tenant `{}`",
                p.tenant(p.contract(m.contract).tenant).name
            ),
            Reason::Subject(m) if matches!(p.contract(m.contract).origin, Origin::Reverse(_)) => {
                let c = p.contract(m.contract);
                let s = &c.subjects[m.subject];
                format!(
                    "{} by both-ways subject `{}` of contract `{}`, provider to consumer (filter `{}`; {} provides, {} consumes)",
                    match s.action {
                        Action::Permit => "permitted",
                        Action::Deny => "denied",
                    },
                    s.name,
                    p.contract_name(m.contract),
                    p.filter(m.filter).name,
                    p.group_name(m.consumer),
                    p.group_name(m.provider),
                )
            }
            Reason::Subject(m) => {
                let c = p.contract(m.contract);
                let s = &c.subjects[m.subject];
                format!(
                    "{} by subject `{}` of contract `{}` (filter `{}`; {} consumes, {} provides)",
                    match s.action {
                        Action::Permit => "permitted",
                        Action::Deny => "denied",
                    },
                    s.name,
                    p.contract_name(m.contract),
                    p.filter(m.filter).name,
                    p.group_name(m.consumer),
                    p.group_name(m.provider),
                )
            }
            Reason::IntraGroup(g) => format!(
                "allowed inside group `{}` (intra-group default)",
                p.group_name(g)
            ),
            Reason::Default => {
                "denied by default: no contract permits it and the ends share no open group".into()
            }
            Reason::NotNew => "denied: this ICMP type cannot start a connection; it passes only as the reply or error of an allowed one".into(),
        }
    }

    /// Where the deciding rule is written, if anywhere.
    pub fn span(&self, p: &Policy) -> Option<Span> {
        match self.reason {
            Reason::Subject(m) => Some(p.contract(m.contract).subjects[m.subject].span),
            Reason::IntraGroup(g) => Some(p.group(g).name_span),
            Reason::Default | Reason::NotNew => None,
        }
    }
}

/// ICMP types that open a connection in conntrack: echo, timestamp, information and address
/// mask requests (ICMPv4), echo request and node information query (ICMPv6). Every other type
/// is only ever a reply or an error, tracked as part of an existing connection.
pub const ICMP_REQUESTS: &[u8] = &[8, 13, 15, 17];
pub const ICMPV6_REQUESTS: &[u8] = &[128, 139];

/// Can this flow be the first packet of a new connection?
pub fn can_start(flow: Flow) -> bool {
    match flow.proto {
        Proto::Icmp => ICMP_REQUESTS.contains(&(flow.port as u8)) && flow.port < 256,
        Proto::Icmpv6 => ICMPV6_REQUESTS.contains(&(flow.port as u8)) && flow.port < 256,
        _ => true,
    }
}

/// Does a filter entry match a flow?
pub fn entry_matches(e: &FilterEntry, flow: Flow) -> bool {
    let proto_ok = match e.proto {
        EntryProto::Ip => return true,
        EntryProto::Tcp => flow.proto == Proto::Tcp,
        EntryProto::Udp => flow.proto == Proto::Udp,
        EntryProto::Sctp => flow.proto == Proto::Sctp,
        EntryProto::Icmp => flow.proto == Proto::Icmp,
        EntryProto::Icmpv6 => flow.proto == Proto::Icmpv6,
    };
    proto_ok
        && (e.ranges.is_empty()
            || e.ranges
                .iter()
                .any(|&(lo, hi)| lo <= flow.port && flow.port <= hi))
}

/// The contracts that apply between two group sets: consumed by a source group and provided by
/// a destination group, each with the first consumer and provider that make it apply.
/// Ascending by contract id.
pub fn applicable(
    p: &Policy,
    src: &[GroupId],
    dst: &[GroupId],
) -> Vec<(ContractId, GroupId, GroupId)> {
    // (contract, position of the first consumer in `src`): sorted and deduplicated, so a
    // group set consuming thousands of contracts costs a sort, not a quadratic scan.
    let mut consumed: Vec<(ContractId, usize)> = src
        .iter()
        .enumerate()
        .flat_map(|(i, s)| p.group(*s).eff_consumes.iter().map(move |c| (*c, i)))
        .collect();
    consumed.sort_unstable();
    consumed.dedup_by_key(|x| x.0);
    let mut out: Vec<(ContractId, GroupId, GroupId)> = Vec::new();
    if dst.len() <= 4 {
        for (c, i) in consumed {
            if let Some(&d) = dst
                .iter()
                .find(|d| p.group(**d).eff_provides.binary_search(&c).is_ok())
            {
                out.push((c, src[i], d));
            }
        }
        return out;
    }
    let mut provided: Vec<(ContractId, usize)> = dst
        .iter()
        .enumerate()
        .flat_map(|(j, d)| p.group(*d).eff_provides.iter().map(move |c| (*c, j)))
        .collect();
    provided.sort_unstable();
    provided.dedup_by_key(|x| x.0);
    let mut j = 0;
    for (c, i) in consumed {
        while j < provided.len() && provided[j].0 < c {
            j += 1;
        }
        if let Some(&(pc, k)) = provided.get(j)
            && pc == c
        {
            out.push((c, src[i], dst[k]));
        }
    }
    out
}

/// Every subject match of a flow given the applicable contracts, in policy order.
pub fn matches(
    p: &Policy,
    applicable: &[(ContractId, GroupId, GroupId)],
    flow: Flow,
) -> Vec<(Action, Match)> {
    let mut out = Vec::new();
    for &(c, consumer, provider) in applicable {
        for (si, s) in p.contract(c).subjects.iter().enumerate() {
            'filters: for &(f, _) in &s.filters {
                for (ei, e) in p.filter(f).entries.iter().enumerate() {
                    if entry_matches(e, flow) {
                        out.push((
                            s.action,
                            Match {
                                contract: c,
                                subject: si,
                                filter: f,
                                entry: ei,
                                consumer,
                                provider,
                            },
                        ));
                        break 'filters;
                    }
                }
            }
        }
    }
    out
}

/// Step 3: a common group that is not isolated (`any` does not count).
pub fn common_open_group(p: &Policy, src: &[GroupId], dst: &[GroupId]) -> Option<GroupId> {
    src.iter().copied().find(|g| {
        let grp = p.group(*g);
        grp.kind != GroupKind::Any && !grp.isolated && dst.binary_search(g).is_ok()
    })
}

/// The verdict for a connection (its ends' group sets are sorted).
pub fn decide(p: &Policy, c: &Conn) -> Decision {
    let app = applicable(p, c.src, c.dst);
    decide_with(p, &app, c)
}

/// [`decide`] with the applicable contracts of the connection's ends already computed (the
/// backends call this for many flows between the same two group sets).
pub fn decide_with(p: &Policy, app: &[(ContractId, GroupId, GroupId)], c: &Conn) -> Decision {
    let (src, dst, flow) = (c.src, c.dst, c.flow);
    if !can_start(flow) {
        return decide_from(p, src, dst, flow, None, None);
    }
    let ms = matches(p, app, flow);
    let deny = ms.iter().find(|(a, _)| *a == Action::Deny).map(|x| x.1);
    decide_from(p, src, dst, flow, deny, ms.first().map(|x| x.1))
}

/// Steps 0-4 given what [`matches`] says about the flow: its first deny match and its first
/// match of any action (in `matches`' order). For callers that find the matches of many flows
/// at once (the analysis sweeps every port segment in one pass); `decide_with` is this with
/// `matches`.
pub fn decide_from(
    p: &Policy,
    src: &[GroupId],
    dst: &[GroupId],
    flow: Flow,
    first_deny: Option<Match>,
    first: Option<Match>,
) -> Decision {
    if !can_start(flow) {
        return Decision {
            verdict: Verdict::Deny,
            reason: Reason::NotNew,
        };
    }
    if let Some(m) = first_deny {
        return Decision {
            verdict: Verdict::Deny,
            reason: Reason::Subject(m),
        };
    }
    if let Some(m) = first {
        return Decision {
            verdict: Verdict::Allow,
            reason: Reason::Subject(m),
        };
    }
    if let Some(g) = common_open_group(p, src, dst) {
        return Decision {
            verdict: Verdict::Allow,
            reason: Reason::IntraGroup(g),
        };
    }
    Decision {
        verdict: Verdict::Deny,
        reason: Reason::Default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_connection_across_families() {
        let g = [GroupId(0)];
        let tcp = Flow {
            proto: Proto::Tcp,
            port: 80,
        };
        let icmp = Flow {
            proto: Proto::Icmp,
            port: 8,
        };
        let icmpv6 = Flow {
            proto: Proto::Icmpv6,
            port: 128,
        };
        let end = |f| End::new(&g, f);
        let (v4, v6, both) = (Families::V4, Families::V6, Families::BOTH);
        assert!(Conn::new(end(v4), end(v6), tcp).is_err());
        assert!(Conn::new(end(v6), end(v6), icmp).is_err());
        assert!(Conn::new(end(v4), end(v4), icmpv6).is_err());
        assert!(Conn::new(end(v4), end(Families::NONE), tcp).is_err());
        assert!(Conn::new(end(both), end(v6), icmpv6).is_ok());
        assert_eq!(
            Conn::new(end(both), end(v6), tcp)
                .map(|c| c.families())
                .ok(),
            Some(v6)
        );
        let c = Conn::new(end(both), end(v4), tcp);
        assert!(c.is_ok_and(|c| c.with_flow(icmpv6).is_err()));
        let x = Conn::new(end(v6), end(v6), icmp).err();
        assert_eq!(x.and_then(|x| x.suggestion()), Some("icmpv6"));
    }
}
