//! Lint: warnings about rules that do nothing or do less than they seem to (a shadowed permit,
//! a deny that takes nothing away, a redundant subject, an intra-group contract with no
//! effect), membership that is ambiguous or empty, and assertions that cannot fail. Each
//! finding is decided with the evaluator over port segments and the smallest group sets real
//! members have, and each is conservative: when in doubt, no warning.

use std::collections::BTreeSet;

use crate::diag::{Code, Diagnostic, Span};
use crate::eval::{self, Reason, Verdict};
use crate::model::{Action, ContractId, EntryProto, Expect, GroupId, GroupKind, Policy};

use super::{Ranges, Space, nominal, sweep, union};

/// Every lint warning of a checked policy without errors, in no particular order.
pub fn lint(p: &Policy) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let (prov, cons) = p.contract_users();
    let users = Users { prov, cons };
    shadowed_permits(p, &users, &mut out);
    useless_denies(p, &users, &mut out);
    redundant_subjects(p, &users, &mut out);
    overlapping_groups(p, &mut out);
    empty_groups(p, &mut out);
    intra_group_contracts(p, &users, &mut out);
    trivial_assertions(p, &mut out);
    out
}

struct Users {
    prov: Vec<Vec<GroupId>>,
    cons: Vec<Vec<GroupId>>,
}

impl Users {
    fn pairs(&self, c: ContractId) -> Vec<(GroupId, GroupId)> {
        let (Some(cs), Some(ps)) = (self.cons.get(c.index()), self.prov.get(c.index())) else {
            return Vec::new();
        };
        cs.iter()
            .flat_map(|&g| ps.iter().map(move |&h| (g, h)))
            .collect()
    }
}

fn has_deny(p: &Policy) -> bool {
    p.contracts
        .iter()
        .any(|c| c.subjects.iter().any(|s| s.action == Action::Deny))
}

/// W101: a permit subject that, between every consumer and provider of its contract and on
/// every port it matches, is overridden by a deny. Checked for members of one group only
/// (the fewest contracts, so the fewest denies): a real member has at least those denies.
fn shadowed_permits(p: &Policy, users: &Users, out: &mut Vec<Diagnostic>) {
    if !has_deny(p) {
        return;
    }
    for (ci, c) in p.contracts.iter().enumerate() {
        let cid = ContractId(ci as u32);
        let pairs = users.pairs(cid);
        if pairs.is_empty() {
            continue;
        }
        for (si, s) in c.subjects.iter().enumerate() {
            if s.action != Action::Permit {
                continue;
            }
            let mut matched = false;
            let mut shadowed = true;
            let mut by: BTreeSet<(ContractId, usize)> = BTreeSet::new();
            'pairs: for &(g, h) in &pairs {
                let (src, dst) = (nominal(p, g), nominal(p, h));
                let app = eval::applicable(p, &src, &dst);
                for seg in sweep(p, &src, &dst, None) {
                    let flow = seg.space.flow(seg.lo);
                    if seg.decision.reason == Reason::NotNew {
                        continue;
                    }
                    let ms = eval::matches(p, &app, flow);
                    if !ms.iter().any(|(_, m)| m.contract == cid && m.subject == si) {
                        continue;
                    }
                    matched = true;
                    match seg.decision.reason {
                        Reason::Subject(m) if seg.decision.verdict == Verdict::Deny => {
                            by.insert((m.contract, m.subject));
                        }
                        _ => {
                            shadowed = false;
                            break 'pairs;
                        }
                    }
                }
            }
            if matched && shadowed {
                let mut d = Diagnostic::warning(
                    Code::ShadowedPermit,
                    format!(
                        "subject `{}` of contract `{}` never permits anything: a deny overrides it everywhere it applies",
                        s.name,
                        p.contract_name(cid)
                    ),
                )
                .primary(s.span, "shadowed permit");
                for (dc, ds) in &by {
                    let sub = &p.contract(*dc).subjects[*ds];
                    d = d.secondary(
                        sub.span,
                        format!("denied by `{}` of `{}`", sub.name, p.contract_name(*dc)),
                    );
                }
                out.push(
                    d.help("remove the permit, or narrow the deny if the permit is meant to work"),
                );
            }
        }
    }
}

/// Every group set a real member of `g` has: its own (see `nominal`), every address class and
/// every declared endpoint's groups that contain it.
fn member_sets(p: &Policy, g: GroupId) -> Vec<Vec<GroupId>> {
    let mut sets: BTreeSet<Vec<GroupId>> = BTreeSet::new();
    sets.insert(nominal(p, g));
    for s in &p.classes.sets {
        if s.binary_search(&g).is_ok() {
            sets.insert(s.clone());
        }
    }
    for e in &p.endpoints {
        if e.groups.binary_search(&g).is_ok() {
            sets.insert(e.groups.clone());
        }
    }
    sets.into_iter().collect()
}

/// W102: a deny subject that takes nothing away: wherever it matches, no permit matches and
/// the ends share no open group, so the flow would be denied anyway. Checked for every group
/// set real members have (more groups, more permits), so a deny that matters for some member
/// is never reported.
///
/// Only denies of flows that some permit subject of the policy matches somewhere are
/// reported: such a deny was meant to carve something out of a permit and misses it (wrong
/// groups, wrong contract). A deny of flows that no permit anywhere allows is a guard against
/// future permits (ACI's taboo contracts), which is legitimate and left alone.
fn useless_denies(p: &Policy, users: &Users, out: &mut Vec<Diagnostic>) {
    // Every flow some permit subject matches, per space, as merged ranges: one lookup per deny
    // instead of a walk over every permit subject of the policy.
    let mut permits: Vec<(Space, Ranges)> = Vec::new();
    for (ci, c) in p.contracts.iter().enumerate() {
        for (si, s) in c.subjects.iter().enumerate() {
            if s.action == Action::Permit {
                permits.extend(subject_flows(p, ContractId(ci as u32), si));
            }
        }
    }
    let permits = merge_flows(permits);
    for (ci, c) in p.contracts.iter().enumerate() {
        let cid = ContractId(ci as u32);
        let pairs = users.pairs(cid);
        if pairs.is_empty() {
            continue;
        }
        for (si, s) in c.subjects.iter().enumerate() {
            if s.action != Action::Deny {
                continue;
            }
            if !permitted_somewhere(p, &permits, cid, si) {
                continue;
            }
            let mut matched = false;
            let mut matters = false;
            'pairs: for &(g, h) in &pairs {
                let (srcs, dsts) = (member_sets(p, g), member_sets(p, h));
                for src in &srcs {
                    for dst in &dsts {
                        let app = eval::applicable(p, src, dst);
                        for seg in sweep(p, src, dst, None) {
                            if seg.decision.reason == Reason::NotNew {
                                continue;
                            }
                            let ms = eval::matches(p, &app, seg.space.flow(seg.lo));
                            if !ms.iter().any(|(_, m)| m.contract == cid && m.subject == si) {
                                continue;
                            }
                            matched = true;
                            if ms.iter().any(|(a, _)| *a == Action::Permit)
                                || eval::common_open_group(p, src, dst).is_some()
                            {
                                matters = true;
                                break 'pairs;
                            }
                        }
                    }
                }
            }
            if matched && !matters {
                out.push(
                    Diagnostic::warning(
                        Code::DenyNoEffect,
                        format!(
                            "subject `{}` of contract `{}` denies nothing that would be allowed",
                            s.name,
                            p.contract_name(cid)
                        ),
                    )
                    .primary(s.span, "this deny overrides no permit and no intra-group default")
                    .help("the whitelist already denies these flows; remove the subject, or check that the permit it should override applies between the same groups"),
                );
            }
        }
    }
}

/// Per space, the ports or types a subject matches.
type Flows = Vec<(Space, Ranges)>;

/// The flows a subject's filters match, per space (ICMP types included as written).
fn subject_flows(p: &Policy, c: ContractId, si: usize) -> Vec<(Space, Ranges)> {
    let mut per: Vec<(Space, Vec<(u32, u32)>)> = Space::ALL.iter().map(|s| (*s, vec![])).collect();
    for &(f, _) in &p.contract(c).subjects[si].filters {
        for e in &p.filter(f).entries {
            for (space, v) in per.iter_mut() {
                let applies = match e.proto {
                    EntryProto::Ip => true,
                    EntryProto::Tcp => *space == Space::Tcp,
                    EntryProto::Udp => *space == Space::Udp,
                    EntryProto::Sctp => *space == Space::Sctp,
                    EntryProto::Icmp => *space == Space::Icmp,
                    EntryProto::Icmpv6 => *space == Space::Icmpv6,
                };
                if !applies {
                    continue;
                }
                if e.ranges.is_empty() || e.proto == EntryProto::Ip {
                    v.push(space.bounds());
                } else {
                    v.extend(e.ranges.iter().map(|&(a, b)| (a as u32, b as u32)));
                }
            }
        }
    }
    per.into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(s, v)| (s, union(v)))
        .collect()
}

/// Per space, the union of the ranges.
fn merge_flows(mut flows: Vec<(Space, Ranges)>) -> Vec<(Space, Ranges)> {
    flows.sort_by_key(|(s, _)| *s);
    let mut out: Vec<(Space, Ranges)> = Vec::new();
    for (space, ranges) in flows {
        match out.last_mut() {
            Some((s, r)) if *s == space => r.extend(ranges),
            _ => out.push((space, ranges)),
        }
    }
    out.into_iter().map(|(s, r)| (s, union(r))).collect()
}

/// Does some permit subject (`permits`: their merged flows) match a flow that deny subject
/// `si` of `c` matches?
fn permitted_somewhere(p: &Policy, permits: &[(Space, Ranges)], c: ContractId, si: usize) -> bool {
    let deny = subject_flows(p, c, si);
    permits.iter().any(|(ps, pr)| {
        deny.iter().any(|(ds, dr)| {
            ds == ps
                && dr
                    .iter()
                    .any(|&(a, b)| pr.iter().any(|&(x, y)| a <= y && x <= b))
        })
    })
}

fn ranges_cover(big: &Ranges, small: &Ranges) -> bool {
    small
        .iter()
        .all(|&(a, b)| big.iter().any(|&(x, y)| x <= a && b <= y))
}

fn flows_cover(big: &[(Space, Ranges)], small: &[(Space, Ranges)]) -> bool {
    small
        .iter()
        .all(|(s, r)| big.iter().any(|(bs, br)| bs == s && ranges_cover(br, r)))
}

/// Does every member of `g` belong to a group of `set`? (`any` stands for every internal
/// group of its tenant.)
fn group_covered(p: &Policy, g: GroupId, set: &[GroupId]) -> bool {
    let grp = p.group(g);
    set.contains(&g) || (grp.kind == GroupKind::Internal && set.contains(&p.tenant(grp.tenant).any))
}

/// W103: a subject S made redundant by another subject T of the same contract and action: T
/// matches every flow S matches, and S does not log what T would not. Of two subjects that
/// cover each other, the later one is reported.
///
/// Subjects of different contracts are not compared: contracts are separate agreements, each
/// provided and consumed on its own, so an overlap between two of them today is not waste
/// (either may gain users or be withdrawn). The cover test still checks the groups, so it
/// would stay right if that choice changed.
fn redundant_subjects(p: &Policy, users: &Users, out: &mut Vec<Diagnostic>) {
    for (ci, c) in p.contracts.iter().enumerate() {
        let cid = ContractId(ci as u32);
        if users.pairs(cid).is_empty() {
            continue;
        }
        // Only subjects of one contract are compared (above): per contract, not all pairs of
        // the policy's subjects, which was quadratic in the number of contracts.
        let subjects: Vec<(ContractId, usize, Flows)> = (0..c.subjects.len())
            .map(|si| (cid, si, subject_flows(p, cid, si)))
            .collect();
        redundant_in(p, users, &subjects, out);
    }
}

fn redundant_in(
    p: &Policy,
    users: &Users,
    subjects: &[(ContractId, usize, Flows)],
    out: &mut Vec<Diagnostic>,
) {
    for (sc, ss, sf) in subjects {
        let s = &p.contract(*sc).subjects[*ss];
        if sf.is_empty() {
            continue;
        }
        for (tc, ts, tf) in subjects {
            if (sc, ss) == (tc, ts) {
                continue;
            }
            let t = &p.contract(*tc).subjects[*ts];
            if t.action != s.action || (s.log && !t.log) || !flows_cover(tf, sf) {
                continue;
            }
            let covers = |side: &Vec<Vec<GroupId>>| {
                let (Some(sg), Some(tg)) = (side.get(sc.index()), side.get(tc.index())) else {
                    return false;
                };
                sg.iter().all(|g| group_covered(p, *g, tg))
            };
            if !covers(&users.cons) || !covers(&users.prov) {
                continue;
            }
            // Mutual cover: report only the later subject.
            let mutual = flows_cover(sf, tf) && (t.log == s.log) && {
                let back = |side: &Vec<Vec<GroupId>>| {
                    let (Some(sg), Some(tg)) = (side.get(sc.index()), side.get(tc.index())) else {
                        return false;
                    };
                    tg.iter().all(|g| group_covered(p, *g, sg))
                };
                back(&users.cons) && back(&users.prov)
            };
            if mutual && s.span.start < t.span.start {
                continue;
            }
            out.push(
                Diagnostic::warning(
                    Code::RedundantSubject,
                    format!(
                        "subject `{}` of contract `{}` is redundant: subject `{}` of `{}` already {} every flow it matches between the same groups",
                        s.name,
                        p.contract_name(*sc),
                        t.name,
                        p.contract_name(*tc),
                        match s.action {
                            Action::Permit => "permits",
                            Action::Deny => "denies",
                        }
                    ),
                )
                .primary(s.span, "redundant")
                .secondary(t.span, "covered by this subject")
                .help("remove the redundant subject; the verdicts stay the same"),
            );
            break;
        }
    }
}

fn related(p: &Policy, a: GroupId, b: GroupId) -> bool {
    let ancestor = |mut x: GroupId, y: GroupId| {
        // Bounded walk: `extends` cycles are errors, but never loop on them anyway.
        for _ in 0..p.groups.len() {
            match p.group(x).parent {
                Some(q) if q == y => return true,
                Some(q) => x = q,
                None => return false,
            }
        }
        false
    };
    ancestor(a, b) || ancestor(b, a)
}

/// W104: two internal groups, neither extending the other, whose address prefixes overlap:
/// every address in the overlap is a member of both and gets the contracts of both, which is
/// rarely what overlapping prefixes were written for. Reported once per pair of groups.
fn overlapping_groups(p: &Policy, out: &mut Vec<Diagnostic>) {
    let mut nets: Vec<(crate::net::Family, u128, u128, GroupId, Span, String)> = Vec::new();
    for (gi, g) in p.groups.iter().enumerate() {
        if g.kind != GroupKind::Internal {
            continue;
        }
        for n in &g.nets {
            nets.push((
                n.cidr.family,
                n.cidr.first(),
                n.cidr.last(),
                GroupId(gi as u32),
                n.span,
                n.cidr.to_string(),
            ));
        }
    }
    nets.sort_by_key(|a| (a.0, a.1, a.2));
    let mut seen: BTreeSet<(GroupId, GroupId)> = BTreeSet::new();
    for (i, a) in nets.iter().enumerate() {
        for b in nets.iter().skip(i + 1) {
            if b.0 != a.0 || b.1 > a.2 {
                break;
            }
            if a.3 == b.3 || related(p, a.3, b.3) {
                continue;
            }
            let key = (a.3.min(b.3), a.3.max(b.3));
            if !seen.insert(key) {
                continue;
            }
            // Report at the later of the two prefixes in the text.
            let (first, second) = if a.4.start <= b.4.start {
                (a, b)
            } else {
                (b, a)
            };
            out.push(
                Diagnostic::warning(
                    Code::OverlappingGroups,
                    format!(
                        "{} of group `{}` overlaps {} of group `{}`: addresses in both prefixes are members of both groups",
                        second.5,
                        p.group_name(second.3),
                        first.5,
                        p.group_name(first.3)
                    ),
                )
                .primary(second.4, "overlaps another group's prefix")
                .secondary(first.4, "the other prefix")
                .help("give each group its own prefixes; if one group refines the other, say so with `extends` and separate prefixes"),
            );
        }
    }
}

/// W105: a group with no way to have members: no `select`, no `address`, no `endpoint`.
fn empty_groups(p: &Policy, out: &mut Vec<Diagnostic>) {
    for g in &p.groups {
        if g.kind == GroupKind::Any
            || !g.selector.is_empty()
            || !g.nets.is_empty()
            || !g.endpoints.is_empty()
        {
            continue;
        }
        out.push(
            Diagnostic::warning(
                Code::EmptyGroup,
                format!("group `{}` has no members", g.name),
            )
            .primary(g.name_span, "no `select`, `address` or `endpoint`")
            .help(if g.kind == GroupKind::External {
                "give the external group its prefixes with `address`"
            } else {
                "add `select` labels (Kubernetes), `address` prefixes (nftables) or endpoints"
            }),
        );
    }
}

/// W106: a contract a group both provides and consumes that has no effect between members:
/// - on a group that is not isolated, a contract of permits only that no other group provides
///   or consumes: the intra-group default already allows every flow between members;
/// - on an isolated group, contracts that together allow every flow between members: the
///   isolation then takes nothing away.
///
/// A contract that permits some flows inside an isolated group (replication between database
/// nodes) is the intended use and is not reported.
fn intra_group_contracts(p: &Policy, users: &Users, out: &mut Vec<Diagnostic>) {
    for (gi, g) in p.groups.iter().enumerate() {
        if g.kind != GroupKind::Internal {
            continue;
        }
        let gid = GroupId(gi as u32);
        let own: Vec<ContractId> = g
            .eff_provides
            .iter()
            .copied()
            .filter(|c| g.eff_consumes.binary_search(c).is_ok())
            .collect();
        if own.is_empty() {
            continue;
        }
        if g.isolated {
            let set = nominal(p, gid);
            let segs = sweep(p, &set, &set, None);
            let allowed = super::allowed(p, &segs);
            if super::summary(&allowed) == "all" {
                let names: Vec<String> = own
                    .iter()
                    .map(|c| format!("`{}`", p.contract_name(*c)))
                    .collect();
                out.push(
                    Diagnostic::warning(
                        Code::IntraGroupContract,
                        format!(
                            "isolated group `{}` allows every flow between its members through {}: `isolated` has no effect",
                            g.name,
                            names.join(", ")
                        ),
                    )
                    .primary(g.name_span, "isolated, yet members reach each other on every port")
                    .help("narrow the contract to the traffic members need between them, or drop `isolated`"),
                );
            }
            continue;
        }
        for c in own {
            let only_me = |side: &Vec<Vec<GroupId>>| {
                side.get(c.index())
                    .is_some_and(|v| v.iter().all(|x| *x == gid))
            };
            let permits_only = p
                .contract(c)
                .subjects
                .iter()
                .all(|s| s.action == Action::Permit);
            if permits_only && only_me(&users.prov) && only_me(&users.cons) {
                out.push(
                    Diagnostic::warning(
                        Code::IntraGroupContract,
                        format!(
                            "contract `{}` is only between members of group `{}`, which is not isolated: the intra-group default already allows everything it permits",
                            p.contract_name(c),
                            g.name
                        ),
                    )
                    .primary(g.name_span, "not isolated")
                    .secondary(p.contract(c).name_span, "permits only inside the group")
                    .help("declare the group `isolated` if members should reach each other only through this contract, or remove the contract"),
                );
            }
        }
    }
}

/// W107: a `deny` assertion about an ICMP type that cannot start a connection: it is denied
/// whatever the contracts say (evaluator step 0), so the assertion tests nothing.
fn trivial_assertions(p: &Policy, out: &mut Vec<Diagnostic>) {
    for a in &p.asserts {
        if a.expect == Expect::Deny && !eval::can_start(a.flow) {
            out.push(
                Diagnostic::warning(
                    Code::TrivialAssertion,
                    format!(
                        "this assertion cannot fail: {} `{}` never starts a connection",
                        a.flow.proto.name(),
                        crate::model::validate::icmp_type_name(
                            a.flow.proto == crate::eval::Proto::Icmpv6,
                            a.flow.port.min(255) as u8
                        )
                        .map_or_else(|| a.flow.port.to_string(), str::to_string)
                    ),
                )
                .primary(a.span, "this ICMP type is never a new connection")
                .help("assert a request type (such as `echo-request`) to test what the contracts decide"),
            );
        }
    }
}
