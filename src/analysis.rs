//! Analysis of a checked policy: why a flow gets its verdict (`explain`), what a group may
//! reach (`query`), what changed between two versions (`diff`), lint warnings, and pictures
//! (`graph`, `matrix`). Every verdict here comes from [`crate::eval`]; this module only decides
//! which flows to ask about.
//!
//! Nothing enumerates the 65,536 ports: the port (or ICMP type) space of each protocol is cut
//! into segments at the edges of the filter entries that apply, and inside one segment every
//! filter entry matches every port or none, so one evaluation per segment answers for all of
//! its ports. ICMP segments are also cut around the request types, because whether a type may
//! start a connection (evaluator step 0) depends on the type itself.

pub mod diff;
pub mod explain;
pub mod graph;
pub mod lint;
pub mod matrix;
pub mod query;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::eval::{self, Decision, Flow, Proto, Reason, Verdict};
use crate::model::{ContractId, EndpointId, EntryProto, GroupId, GroupKind, Policy};
use crate::net::Family;

/// A protocol's space of destination ports (or ICMP types). `Other` stands for every IP
/// protocol that is not TCP, UDP, SCTP, ICMP or ICMPv6: only `ip` entries match those, and
/// they match all of them alike, so one representative answers for all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Space {
    Tcp,
    Udp,
    Sctp,
    Icmp,
    Icmpv6,
    Other,
}

/// The representative protocol number used for [`Space::Other`] (GRE).
pub const OTHER_REPRESENTATIVE: u8 = 47;

impl Space {
    pub const ALL: [Space; 6] = [
        Space::Tcp,
        Space::Udp,
        Space::Sctp,
        Space::Icmp,
        Space::Icmpv6,
        Space::Other,
    ];

    /// The first and last port or type of the space.
    pub fn bounds(self) -> (u32, u32) {
        match self {
            Space::Tcp | Space::Udp | Space::Sctp => (1, 65535),
            Space::Icmp | Space::Icmpv6 => (0, 255),
            Space::Other => (0, 0),
        }
    }

    pub fn proto(self) -> Proto {
        match self {
            Space::Tcp => Proto::Tcp,
            Space::Udp => Proto::Udp,
            Space::Sctp => Proto::Sctp,
            Space::Icmp => Proto::Icmp,
            Space::Icmpv6 => Proto::Icmpv6,
            Space::Other => Proto::Other(OTHER_REPRESENTATIVE),
        }
    }

    pub fn of_proto(p: Proto) -> Space {
        match p {
            Proto::Tcp => Space::Tcp,
            Proto::Udp => Space::Udp,
            Proto::Sctp => Space::Sctp,
            Proto::Icmp => Space::Icmp,
            Proto::Icmpv6 => Space::Icmpv6,
            Proto::Other(_) => Space::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Space::Tcp => "tcp",
            Space::Udp => "udp",
            Space::Sctp => "sctp",
            Space::Icmp => "icmp",
            Space::Icmpv6 => "icmpv6",
            Space::Other => "other-ip",
        }
    }

    /// The flow that stands for port `n` of this space.
    pub fn flow(self, n: u32) -> Flow {
        Flow {
            proto: self.proto(),
            port: n.min(65535) as u16,
        }
    }

    /// Does a filter entry of this protocol have a say in this space?
    fn entry_applies(self, e: EntryProto) -> bool {
        matches!(
            (self, e),
            (_, EntryProto::Ip)
                | (Space::Tcp, EntryProto::Tcp)
                | (Space::Udp, EntryProto::Udp)
                | (Space::Sctp, EntryProto::Sctp)
                | (Space::Icmp, EntryProto::Icmp)
                | (Space::Icmpv6, EntryProto::Icmpv6)
        )
    }
}

/// Cut points of a space: each is the first port of a segment. Always holds the space's lower
/// bound; [`segments`] turns them into ranges.
pub type Cuts = BTreeSet<u32>;

/// Add the edges of every filter entry of `contracts` (and, for ICMP, of the request types)
/// to `cuts`.
pub fn add_cuts(p: &Policy, contracts: &[ContractId], space: Space, cuts: &mut Cuts) {
    let (lo, hi) = space.bounds();
    cuts.insert(lo);
    let requests: &[u8] = match space {
        Space::Icmp => eval::ICMP_REQUESTS,
        Space::Icmpv6 => eval::ICMPV6_REQUESTS,
        _ => &[],
    };
    for &t in requests {
        cuts.insert(t as u32);
        cuts.insert(t as u32 + 1);
    }
    for &c in contracts {
        for s in &p.contract(c).subjects {
            for &(f, _) in &s.filters {
                for e in &p.filter(f).entries {
                    if e.proto == EntryProto::Ip || !space.entry_applies(e.proto) {
                        continue;
                    }
                    for &(a, b) in &e.ranges {
                        cuts.insert(a as u32);
                        cuts.insert(b as u32 + 1);
                    }
                }
            }
        }
    }
    cuts.retain(|&c| c >= lo && c <= hi);
}

/// The segments (inclusive ranges) that the cut points make of a space.
pub fn segments(space: Space, cuts: &Cuts) -> Vec<(u32, u32)> {
    let (lo, hi) = space.bounds();
    let points: Vec<u32> = cuts
        .iter()
        .copied()
        .filter(|&c| c >= lo && c <= hi)
        .chain(std::iter::once(lo))
        .collect::<BTreeSet<u32>>()
        .into_iter()
        .collect();
    points
        .iter()
        .enumerate()
        .map(|(i, &a)| (a, points.get(i + 1).map_or(hi, |n| n - 1)))
        .collect()
}

/// The contracts that apply between two group sets (ids only).
pub fn applicable_ids(p: &Policy, src: &[GroupId], dst: &[GroupId]) -> Vec<ContractId> {
    eval::applicable(p, src, dst)
        .into_iter()
        .map(|(c, _, _)| c)
        .collect()
}

/// One segment of one space and the evaluator's decision for all of it.
#[derive(Clone, Debug)]
pub struct Seg {
    pub space: Space,
    pub lo: u32,
    pub hi: u32,
    pub decision: Decision,
}

/// The evaluator's decision for every segment of every space between two group sets (both
/// sorted), with cut points from the applicable contracts plus `extra` (another policy's cuts
/// when comparing two versions). Adjacent segments are not merged.
pub fn sweep(
    p: &Policy,
    src: &[GroupId],
    dst: &[GroupId],
    extra: Option<&dyn Fn(Space) -> Cuts>,
) -> Vec<Seg> {
    let app = eval::applicable(p, src, dst);
    sweep_with(p, &app, src, dst, extra)
}

/// [`sweep`] with the applicable contracts already computed.
pub fn sweep_with(
    p: &Policy,
    app: &[(ContractId, GroupId, GroupId)],
    src: &[GroupId],
    dst: &[GroupId],
    extra: Option<&dyn Fn(Space) -> Cuts>,
) -> Vec<Seg> {
    let mut out = Vec::new();
    sweep_each(p, app, src, dst, extra, |seg, _| out.push(seg));
    out
}

/// The segments of [`sweep_with`] one by one, each with the matcher positioned on it (for
/// callers that also want every subject that matches there: [`Matcher::all`]).
pub fn sweep_each(
    p: &Policy,
    app: &[(ContractId, GroupId, GroupId)],
    src: &[GroupId],
    dst: &[GroupId],
    extra: Option<&dyn Fn(Space) -> Cuts>,
    mut f: impl FnMut(Seg, &Matcher),
) {
    let ids: Vec<ContractId> = app.iter().map(|x| x.0).collect();
    // Group sets stand for members whose address the question leaves open: either family,
    // so every space (ICMP in IPv4, ICMPv6 in IPv6) is a possible connection.
    let ends = (
        eval::End::new(src, eval::Families::BOTH),
        eval::End::new(dst, eval::Families::BOTH),
    );
    for space in Space::ALL {
        let mut cuts = extra.map(|f| f(space)).unwrap_or_default();
        add_cuts(p, &ids, space, &mut cuts);
        let mut m = Matcher::new(p, app, space);
        for (lo, hi) in segments(space, &cuts) {
            m.seek(lo);
            let Ok(conn) = eval::Conn::new(ends.0, ends.1, space.flow(lo)) else {
                continue;
            };
            let decision = eval::decide_from(
                p,
                conn.src(),
                conn.dst(),
                conn.flow(),
                m.first_deny(),
                m.first(),
            );
            f(
                Seg {
                    space,
                    lo,
                    hi,
                    decision,
                },
                &m,
            );
        }
    }
}

/// A filter entry in the order [`eval::matches`] visits them: applicable contract (by
/// position), subject, filter (position in the subject), entry.
type EntryKey = (u32, u32, u32, u32);

/// The subject matches of every segment of one space between two group sets, found in one
/// pass over the edges of the applicable filter entries: each entry joins the active set at its
/// first port and leaves it after its last, so segment after segment costs the entries that
/// start or end there, not every subject of every applicable contract again (which made a
/// contract of 100,000 subjects quadratic). Agrees with [`eval::matches`] on every segment
/// whose first port is passed to [`Matcher::seek`] (ascending), provided the segments are cut
/// at every entry edge (as [`add_cuts`] does).
pub struct Matcher<'a> {
    p: &'a Policy,
    app: &'a [(ContractId, GroupId, GroupId)],
    /// (position, +1 or -1, entry, deny?), by position.
    events: Vec<(u32, i32, EntryKey, bool)>,
    next: usize,
    deny: BTreeMap<EntryKey, u32>,
    permit: BTreeMap<EntryKey, u32>,
}

impl<'a> Matcher<'a> {
    pub fn new(p: &'a Policy, app: &'a [(ContractId, GroupId, GroupId)], space: Space) -> Self {
        let (lo, hi) = space.bounds();
        let mut events = Vec::new();
        for (ai, &(c, _, _)) in app.iter().enumerate() {
            for (si, s) in p.contract(c).subjects.iter().enumerate() {
                let deny = s.action == crate::model::Action::Deny;
                for (fi, &(f, _)) in s.filters.iter().enumerate() {
                    for (ei, e) in p.filter(f).entries.iter().enumerate() {
                        if !space.entry_applies(e.proto) {
                            continue;
                        }
                        let key = (ai as u32, si as u32, fi as u32, ei as u32);
                        let mut add = |a: u32, b: u32| {
                            let (a, b) = (a.max(lo), b.min(hi));
                            if a <= b {
                                events.push((a, 1, key, deny));
                                events.push((b + 1, -1, key, deny));
                            }
                        };
                        if e.proto == EntryProto::Ip || e.ranges.is_empty() {
                            add(lo, hi);
                        } else {
                            for &(a, b) in &e.ranges {
                                add(a as u32, b as u32);
                            }
                        }
                    }
                }
            }
        }
        events.sort_unstable_by_key(|e| (e.0, e.1, e.2));
        Matcher {
            p,
            app,
            events,
            next: 0,
            deny: BTreeMap::new(),
            permit: BTreeMap::new(),
        }
    }

    /// Move to the segment that starts at `lo` (calls in ascending order).
    pub fn seek(&mut self, lo: u32) {
        while let Some(&(pos, delta, key, deny)) = self.events.get(self.next) {
            if pos > lo {
                break;
            }
            let set = if deny {
                &mut self.deny
            } else {
                &mut self.permit
            };
            if delta > 0 {
                *set.entry(key).or_insert(0) += 1;
            } else if let Some(n) = set.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    set.remove(&key);
                }
            }
            self.next += 1;
        }
    }

    fn to_match(&self, k: EntryKey) -> eval::Match {
        let (c, consumer, provider) = self.app[k.0 as usize];
        let (f, _) = self.p.contract(c).subjects[k.1 as usize].filters[k.2 as usize];
        eval::Match {
            contract: c,
            subject: k.1 as usize,
            filter: f,
            entry: k.3 as usize,
            consumer,
            provider,
        }
    }

    /// The first deny match at the current segment, as [`eval::matches`] orders them.
    pub fn first_deny(&self) -> Option<eval::Match> {
        self.deny.keys().next().map(|k| self.to_match(*k))
    }

    /// The first match of any action at the current segment.
    pub fn first(&self) -> Option<eval::Match> {
        let d = self.deny.keys().next();
        let q = self.permit.keys().next();
        match (d, q) {
            (Some(a), Some(b)) => Some(self.to_match(*a.min(b))),
            (Some(a), None) | (None, Some(a)) => Some(self.to_match(*a)),
            (None, None) => None,
        }
    }

    /// Every match at the current segment, exactly as [`eval::matches`] lists them: per
    /// subject, in policy order, its first matching filter entry.
    pub fn all(&self) -> Vec<(crate::model::Action, eval::Match)> {
        use crate::model::Action;
        let mut keys: Vec<(EntryKey, Action)> = self
            .deny
            .keys()
            .map(|k| (*k, Action::Deny))
            .chain(self.permit.keys().map(|k| (*k, Action::Permit)))
            .collect();
        keys.sort_unstable_by_key(|x| x.0);
        keys.dedup_by_key(|x| (x.0.0, x.0.1));
        keys.into_iter()
            .map(|(k, a)| (a, self.to_match(k)))
            .collect()
    }
}

/// What decided, without the entry-level detail: segments decided by the same subject (or the
/// same default) are merged for display.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    Subject(ContractId, usize),
    IntraGroup(GroupId),
    Default,
    NotNew,
}

impl Rule {
    pub fn of(d: &Decision) -> Rule {
        match d.reason {
            Reason::Subject(m) => Rule::Subject(m.contract, m.subject),
            Reason::IntraGroup(g) => Rule::IntraGroup(g),
            Reason::Default => Rule::Default,
            Reason::NotNew => Rule::NotNew,
        }
    }

    /// Short name: `tenant/contract: subject`, `intra-group tenant/group`, `default`.
    pub fn name(self, p: &Policy) -> String {
        match self {
            Rule::Subject(c, s) => format!(
                "{}: {}",
                p.contract_name(c),
                p.contract(c)
                    .subjects
                    .get(s)
                    .map_or("?", |x| x.name.as_str())
            ),
            Rule::IntraGroup(g) => format!("intra-group {}", p.group_name(g)),
            Rule::Default => "default".into(),
            Rule::NotNew => "not a new connection".into(),
        }
    }
}

/// A set of ports or types of one space, as sorted disjoint inclusive ranges.
pub type Ranges = Vec<(u32, u32)>;

/// Add a range, merging with the last one when adjacent (callers add in ascending order).
pub fn push_range(r: &mut Ranges, lo: u32, hi: u32) {
    if let Some(last) = r.last_mut()
        && last.1 + 1 >= lo
    {
        last.1 = last.1.max(hi);
        return;
    }
    r.push((lo, hi));
}

/// The union of ranges given in any order, as sorted disjoint ranges.
pub fn union(mut v: Vec<(u32, u32)>) -> Ranges {
    v.sort_unstable();
    let mut r = Ranges::with_capacity(v.len());
    for (a, b) in v {
        push_range(&mut r, a, b);
    }
    r
}

/// Does this range set cover the whole space?
pub fn is_full(space: Space, r: &Ranges) -> bool {
    r.len() == 1 && r.first() == Some(&space.bounds())
}

/// `tcp 80, 8000-8080`, `tcp (all ports)`, `icmp echo-request`, `other-ip`.
pub fn format_ranges(space: Space, r: &Ranges) -> String {
    let mut out = String::from(space.name());
    if space == Space::Other {
        return out;
    }
    if is_full(space, r) {
        out.push_str(match space {
            Space::Icmp | Space::Icmpv6 => " (all types)",
            _ => " (all ports)",
        });
        return out;
    }
    out.push(' ');
    let v6 = space == Space::Icmpv6;
    let parts: Vec<String> = r
        .iter()
        .map(|&(a, b)| match space {
            Space::Icmp | Space::Icmpv6 if a == b => {
                crate::model::validate::icmp_type_name(v6, a as u8)
                    .map_or_else(|| a.to_string(), str::to_string)
            }
            _ if a == b => a.to_string(),
            _ => format!("{a}-{b}"),
        })
        .collect();
    out.push_str(&parts.join(", "));
    out
}

/// The group set that stands for "a member of this group and of nothing else": the group and,
/// for an internal group, its tenant's `any`. It is the smallest set any real member has.
pub fn nominal(p: &Policy, g: GroupId) -> Vec<GroupId> {
    let grp = p.group(g);
    let mut v = vec![g];
    if grp.kind == GroupKind::Internal {
        v.push(p.tenant(grp.tenant).any);
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// Which of some destination groups a member of a source group (and of nothing else: see
/// [`nominal`]) may reach at all: those with a contract the source consumes (through the
/// group, `any` or their tenants' `any`) and the source itself when the intra-group default
/// applies. Between any other pair no contract applies and no open group is shared, so the
/// evaluator denies everything (step 4): `query` and `matrix` sweep only these pairs, which
/// makes them grow with what the policy connects instead of with the square of the groups.
pub struct Near {
    providers: Vec<Vec<GroupId>>,
    /// Per group, its positions in the destination list.
    positions: Vec<Vec<usize>>,
    /// Per `any` group, the positions of its tenant's internal groups in the destination list.
    by_any: Vec<Vec<usize>>,
}

impl Near {
    pub fn new(p: &Policy, to: &[GroupId]) -> Near {
        let (providers, _) = p.contract_users();
        let mut positions = vec![Vec::new(); p.groups.len()];
        let mut by_any = vec![Vec::new(); p.groups.len()];
        for (i, &d) in to.iter().enumerate() {
            positions[d.index()].push(i);
            let grp = p.group(d);
            if grp.kind == GroupKind::Internal {
                by_any[p.tenant(grp.tenant).any.index()].push(i);
            }
        }
        Near {
            providers,
            positions,
            by_any,
        }
    }

    /// Positions (ascending) in the destination list of the groups that a member of `s` only
    /// may have something allowed to.
    pub fn of(&self, p: &Policy, s: GroupId) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for g in nominal(p, s) {
            for c in &p.group(g).eff_consumes {
                for h in self.providers.get(c.index()).into_iter().flatten() {
                    out.extend(&self.positions[h.index()]);
                    out.extend(&self.by_any[h.index()]);
                }
            }
        }
        let grp = p.group(s);
        if grp.kind != GroupKind::Any && !grp.isolated {
            out.extend(&self.positions[s.index()]);
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Groups a person means by "every group": internal and external groups, not `any`.
pub fn real_groups(p: &Policy) -> Vec<GroupId> {
    (0..p.groups.len())
        .map(|i| GroupId(i as u32))
        .filter(|g| p.group(*g).kind != GroupKind::Any)
        .collect()
}

/// One end of a flow as the user named it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    Endpoint(EndpointId),
    /// A group, standing for a member of that group only (see [`nominal`]).
    Group(GroupId),
    Address(Family, u128),
}

impl Party {
    /// The groups the evaluator sees for this end.
    pub fn groups(self, p: &Policy) -> Vec<GroupId> {
        match self {
            Party::Endpoint(e) => p.endpoint(e).groups.clone(),
            Party::Group(g) => nominal(p, g),
            Party::Address(f, a) => p.address_groups(f, a),
        }
    }

    /// The address families this end may have: an endpoint's, an address's, and both for a
    /// member of a group (whose address the question leaves open).
    pub fn families(self, p: &Policy) -> eval::Families {
        match self {
            Party::Endpoint(e) => eval::Families::of_addrs(&p.endpoint(e).addrs),
            Party::Group(_) => eval::Families::BOTH,
            Party::Address(f, _) => eval::Families::of(f),
        }
    }

    pub fn describe(self, p: &Policy) -> String {
        match self {
            Party::Endpoint(e) => format!("endpoint {}", p.endpoint_name(e)),
            Party::Group(g) => format!(
                "group {} (a member of this group only; `any` included)",
                p.group_name(g)
            ),
            Party::Address(f, a) => format!("address {}", crate::net::addr_to_ip(f, a)),
        }
    }
}

/// Resolve what the user typed for `--from`/`--to`: an address; `group:NAME` or
/// `group:TENANT/NAME` (a group, named explicitly); `endpoint:NAME` or `endpoint:TENANT/NAME`;
/// or a bare `NAME` / `TENANT/NAME`, which must name exactly one endpoint or group. A bare name
/// that names several (an endpoint and a group called alike, or one in several tenants) is an
/// error that lists the forms that name each one: a name never resolves one way silently.
pub fn resolve(p: &Policy, text: &str) -> Result<Party, String> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix("group:") {
        return resolve_group(p, rest).map(Party::Group);
    }
    if let Some(rest) = text.strip_prefix("endpoint:") {
        return match endpoints_named(p, rest).as_slice() {
            [e] => Ok(Party::Endpoint(*e)),
            [] => Err(format!("`{rest}` is not an endpoint of the policy")),
            eps => Err(format!(
                "`{rest}` names several endpoints: {}",
                eps.iter()
                    .map(|e| format!("endpoint:{}", p.endpoint_name(*e)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
    }
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        let (f, a) = crate::net::ip_to_addr(ip);
        return Ok(Party::Address(f, a));
    }
    if let Ok(c) = crate::net::Cidr::parse(text) {
        if c.is_host() {
            return Ok(Party::Address(c.family, c.addr));
        }
        return Err(format!(
            "`{text}` is a prefix; give one address (for example {})",
            c.ip()
        ));
    }
    let eps = endpoints_named(p, text);
    let gs = groups_named(p, text);
    match (eps.as_slice(), gs.as_slice()) {
        ([e], []) => Ok(Party::Endpoint(*e)),
        ([], [g]) => Ok(Party::Group(*g)),
        ([], []) => Err(format!(
            "`{text}` is not an address, an endpoint or a group of the policy"
        )),
        _ => {
            // Each choice in its shortest form that names it alone.
            let qualified: Vec<(String, String)> = eps
                .iter()
                .map(|e| ("endpoint", p.endpoint_name(*e)))
                .chain(gs.iter().map(|g| ("group", p.group_name(*g))))
                .map(|(k, n)| (k.to_string(), n))
                .collect();
            let choices: Vec<String> = qualified
                .iter()
                .map(|(k, n)| {
                    if qualified.iter().filter(|(_, m)| m == n).count() == 1 {
                        n.clone()
                    } else {
                        format!("{k}:{n}")
                    }
                })
                .collect();
            let what = |n: usize, one: &str, many: &str| match n {
                0 => None,
                1 => Some(one.to_string()),
                n => Some(format!("{n} {many}")),
            };
            let kinds: Vec<String> = [
                what(eps.len(), "an endpoint", "endpoints"),
                what(gs.len(), "a group", "groups"),
            ]
            .into_iter()
            .flatten()
            .collect();
            Err(format!(
                "`{text}` is ambiguous: it names {}; write one of {}",
                kinds.join(" and "),
                choices.join(", ")
            ))
        }
    }
}

/// Endpoints named `NAME` (in any tenant) or `TENANT/NAME`.
fn endpoints_named(p: &Policy, text: &str) -> Vec<EndpointId> {
    let (tenant, name) = split_qualified(text);
    p.endpoints
        .iter()
        .enumerate()
        .filter(|(_, e)| e.name == name && tenant.is_none_or(|t| p.tenant(e.tenant).name == t))
        .map(|(i, _)| EndpointId(i as u32))
        .collect()
}

/// Groups (`any` included) named `NAME` (in any tenant) or `TENANT/NAME`.
fn groups_named(p: &Policy, text: &str) -> Vec<GroupId> {
    let (tenant, name) = split_qualified(text);
    p.groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g.name == name && tenant.is_none_or(|t| p.tenant(g.tenant).name == t))
        .map(|(i, _)| GroupId(i as u32))
        .collect()
}

fn split_qualified(text: &str) -> (Option<&str>, &str) {
    match text.split_once('/') {
        Some((t, n)) => (Some(t), n),
        None => (None, text),
    }
}

/// Resolve a group for `query`: a group name or `tenant/group` (`group:` in front is allowed,
/// as `explain` takes it).
pub fn resolve_group(p: &Policy, text: &str) -> Result<GroupId, String> {
    let text = text.trim();
    let text = text.strip_prefix("group:").unwrap_or(text);
    let gs = groups_named(p, text);
    match gs.as_slice() {
        [g] => Ok(*g),
        [] => Err(format!("`{text}` is not a group of the policy")),
        _ => {
            let names: Vec<String> = gs.iter().map(|g| p.group_name(*g)).collect();
            Err(format!(
                "`{text}` names several groups: {}; qualify it",
                names.join(", ")
            ))
        }
    }
}

/// The protocol words of a probe.
const PROTOCOLS: [&str; 6] = ["tcp", "udp", "sctp", "icmp", "icmpv6", "ip"];

/// Parse a probe as assertions write it: `tcp/5432`, `udp/53`, `icmp/echo-request`, `icmp`,
/// `icmpv6/128`, `ip/47`.
pub fn parse_flow(text: &str) -> Result<Flow, String> {
    let (proto, arg) = match text.split_once('/') {
        Some((p, a)) => (p, Some(a)),
        None => (text, None),
    };
    let port = |arg: Option<&str>| -> Result<u16, String> {
        let a = arg.ok_or_else(|| format!("`{proto}` needs a port: {proto}/443"))?;
        crate::model::validate::port(a).map_err(|e| {
            format!(
                "{}: a flow is one port ({proto}/443), one ICMP type (icmp/echo-request, \
                 icmpv6/128) or one other IP protocol (ip/47); {}",
                e.message, e.help
            )
        })
    };
    match proto {
        "tcp" => Ok(Flow {
            proto: Proto::Tcp,
            port: port(arg)?,
        }),
        "udp" => Ok(Flow {
            proto: Proto::Udp,
            port: port(arg)?,
        }),
        "sctp" => Ok(Flow {
            proto: Proto::Sctp,
            port: port(arg)?,
        }),
        "icmp" | "icmpv6" => {
            let v6 = proto == "icmpv6";
            let t = match arg {
                None => {
                    if v6 {
                        128
                    } else {
                        8
                    }
                }
                Some(a) => crate::model::validate::icmp_type(v6, a)
                    .map_err(|e| format!("{}: {}", e.message, e.help))?,
            };
            Ok(Flow {
                proto: if v6 { Proto::Icmpv6 } else { Proto::Icmp },
                port: t as u16,
            })
        }
        "ip" => {
            let n = arg
                .and_then(|a| a.parse::<u8>().ok())
                .ok_or_else(|| "`ip` needs a protocol number 0-255: ip/47".to_string())?;
            if let Some(own) = crate::model::validate::own_form(n) {
                return Err(format!(
                    "`ip/{n}` is {}: {}",
                    crate::model::validate::proto_title(own),
                    crate::model::validate::own_form_help(own)
                ));
            }
            Ok(Flow {
                proto: Proto::Other(n),
                port: 0,
            })
        }
        _ => {
            let mut m = format!(
                "unknown protocol `{}`: write tcp/N, udp/N, sctp/N, icmp/TYPE, icmpv6/TYPE or ip/N",
                crate::text::ellipsis(proto, 24)
            );
            if let Some(k) = crate::model::did_you_mean(proto, &PROTOCOLS) {
                let fixed = match arg {
                    Some(a) => format!("{k}/{a}"),
                    None => k.to_string(),
                };
                m.push_str(&format!(" (did you mean `{fixed}`?)"));
            }
            Err(m)
        }
    }
}

/// The allowed part of a sweep, per space, with the rules that allowed it, merged.
/// Returns (space, ranges, rules) for every space with something allowed, in space order.
pub fn allowed(p: &Policy, segs: &[Seg]) -> Vec<(Space, Ranges, Vec<Rule>)> {
    let mut out: Vec<(Space, Ranges, Vec<Rule>)> = Vec::new();
    for s in segs {
        if s.decision.verdict != Verdict::Allow {
            continue;
        }
        let rule = Rule::of(&s.decision);
        match out.last_mut() {
            Some((sp, r, rules)) if *sp == s.space => {
                push_range(r, s.lo, s.hi);
                if !rules.contains(&rule) {
                    rules.push(rule);
                }
            }
            _ => out.push((s.space, vec![(s.lo, s.hi)], vec![rule])),
        }
    }
    let _ = p;
    for (_, _, rules) in &mut out {
        rules.sort_unstable();
    }
    out
}

/// A one-line summary of what is allowed: `tcp 443; icmp echo-request`, `all` when every
/// space is fully allowed, `-` when nothing is.
pub fn summary(allowed: &[(Space, Ranges, Vec<Rule>)]) -> String {
    if allowed.is_empty() {
        return "-".into();
    }
    let all_l4 = [Space::Tcp, Space::Udp, Space::Sctp, Space::Other]
        .iter()
        .all(|sp| allowed.iter().any(|(s, r, _)| s == sp && is_full(*sp, r)));
    // ICMP can only ever be allowed for request types, so "everything" means every request.
    let icmp_all = |sp: Space, req: &[u8]| {
        allowed.iter().any(|(s, r, _)| {
            *s == sp
                && req
                    .iter()
                    .all(|t| r.iter().any(|&(a, b)| a <= *t as u32 && *t as u32 <= b))
        })
    };
    if all_l4
        && icmp_all(Space::Icmp, eval::ICMP_REQUESTS)
        && icmp_all(Space::Icmpv6, eval::ICMPV6_REQUESTS)
    {
        return "all".into();
    }
    let mut s = String::new();
    for (i, (sp, r, _)) in allowed.iter().enumerate() {
        if i > 0 {
            s.push_str("; ");
        }
        let _ = write!(s, "{}", format_ranges(*sp, r));
    }
    s
}

/// Render a source location as `file:line:col` followed by the line itself.
pub fn location(file: &str, src: &str, span: crate::diag::Span) -> (String, String) {
    let ix = crate::text::LineIndex::new(src);
    let pos = ix.position(src, span.start);
    let line = ix.line_text(src, pos.line).trim().to_string();
    (crate::text::place(file, src, &ix, span.start), line)
}
