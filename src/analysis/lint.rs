//! Lint: warnings about rules that do nothing or do less than they seem to (a shadowed permit,
//! a deny that takes nothing away, a redundant subject, an intra-group contract with no
//! effect), membership that is ambiguous or empty, and assertions that cannot fail. Each
//! finding is decided with the evaluator over port segments and the smallest group sets real
//! members have, and each is conservative: when in doubt, no warning.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use crate::diag::{Code, Diagnostic, Span};
use crate::eval::{self, Reason, Verdict};
use crate::model::{Action, ContractId, EntryProto, Expect, GroupId, GroupKind, Policy};

use super::{Ranges, Seg, Space, nominal, sweep, union};

/// Every lint warning of a checked policy without errors, in no particular order.
pub fn lint(p: &Policy) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let (prov, cons) = p.contract_users();
    let users = Users { prov, cons };
    let mut sweeps = Sweeps::new(p);
    label_limit(p, &mut out);
    shadowed_permits(p, &users, &mut sweeps, &mut out);
    useless_denies(p, &users, &mut sweeps, &mut out);
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
    /// Does the contract have a consumer and a provider?
    fn pairs_exist(&self, c: ContractId) -> bool {
        self.cons.get(c.index()).is_some_and(|v| !v.is_empty())
            && self.prov.get(c.index()).is_some_and(|v| !v.is_empty())
    }

    fn pairs(&self, c: ContractId) -> Vec<(GroupId, GroupId)> {
        let (Some(cs), Some(ps)) = (self.cons.get(c.index()), self.prov.get(c.index())) else {
            return Vec::new();
        };
        cs.iter()
            .flat_map(|&g| ps.iter().map(move |&h| (g, h)))
            .collect()
    }
}

/// What the evaluator decides between two group sets, once per pair however many subjects
/// ask: each subject's lint used to sweep the pair again, which made a contract with many
/// subjects (or a group with many contracts) quadratic.
struct PairInfo {
    segs: Vec<Seg>,
    /// Per subject, the segments (that can start a connection) where it matches.
    by_subject: HashMap<(ContractId, usize), Vec<u32>>,
    /// Per segment: does some permit subject match there?
    permit: Vec<bool>,
    /// Do the two sets share an open group (the intra-group default)?
    open: bool,
}

struct Sweeps<'a> {
    p: &'a Policy,
    /// By the two group sets.
    by_sets: HashMap<(Vec<GroupId>, Vec<GroupId>), Rc<PairInfo>>,
    /// By the applicable contracts and whether an open group is shared: all the lints read of
    /// a pair (the subjects that match and decide, the verdicts), so group sets that differ
    /// only in groups without contracts share one sweep.
    by_contracts: HashMap<(Vec<ContractId>, bool), Rc<PairInfo>>,
}

/// At most this many pairs are kept; the cache starts over past it (bounded memory).
const MAX_CACHED_PAIRS: usize = 100_000;

impl<'a> Sweeps<'a> {
    fn new(p: &'a Policy) -> Sweeps<'a> {
        Sweeps {
            p,
            by_sets: HashMap::new(),
            by_contracts: HashMap::new(),
        }
    }

    fn get(&mut self, src: &[GroupId], dst: &[GroupId]) -> Rc<PairInfo> {
        let sets = (src.to_vec(), dst.to_vec());
        if let Some(x) = self.by_sets.get(&sets) {
            return x.clone();
        }
        if self.by_sets.len() >= MAX_CACHED_PAIRS {
            self.by_sets.clear();
            self.by_contracts.clear();
        }
        let p = self.p;
        let app = eval::applicable(p, src, dst);
        let open = eval::common_open_group(p, src, dst).is_some();
        let key = (app.iter().map(|x| x.0).collect::<Vec<_>>(), open);
        if let Some(x) = self.by_contracts.get(&key) {
            let x = x.clone();
            self.by_sets.insert(sets, x.clone());
            return x;
        }
        let mut segs = Vec::new();
        let mut by_subject: HashMap<(ContractId, usize), Vec<u32>> = HashMap::new();
        let mut permit = Vec::new();
        super::sweep_each(p, &app, src, dst, None, |seg, m| {
            let i = segs.len() as u32;
            let mut any_permit = false;
            if seg.decision.reason != Reason::NotNew {
                for (action, x) in m.all() {
                    any_permit |= action == Action::Permit;
                    by_subject
                        .entry((x.contract, x.subject))
                        .or_default()
                        .push(i);
                }
            }
            permit.push(any_permit);
            segs.push(seg);
        });
        let info = Rc::new(PairInfo {
            open,
            segs,
            by_subject,
            permit,
        });
        self.by_contracts.insert(key, info.clone());
        self.by_sets.insert(sets, info.clone());
        info
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
fn shadowed_permits(p: &Policy, users: &Users, sweeps: &mut Sweeps, out: &mut Vec<Diagnostic>) {
    if !has_deny(p) {
        return;
    }
    for (ci, c) in p.contracts.iter().enumerate() {
        let cid = ContractId(ci as u32);
        let pairs = users.pairs(cid);
        // Implied contracts (a `both-ways` half, `preferred`, `unenforced`) are judged
        // through the written subject or not at all: a warning names what was written.
        if pairs.is_empty() || !c.written() {
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
                let info = sweeps.get(&nominal(p, g), &nominal(p, h));
                for &i in info.by_subject.get(&(cid, si)).into_iter().flatten() {
                    let seg = &info.segs[i as usize];
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

/// W108: a tenant whose label view was not enumerated (see
/// [`crate::model::classify::LabelClasses::overflow`]): the lints below then assume that a
/// deny there matters, and `diff` says it did not compare the tenant's label view.
fn label_limit(p: &Policy, out: &mut Vec<Diagnostic>) {
    for &t in &p.label_classes.overflow {
        let tenant = p.tenant(t);
        out.push(
            Diagnostic::warning(
                Code::LabelClassLimit,
                format!(
                    "the selectors of tenant `{}` combine into more than {} label classes: lints and `diff` do not judge its Kubernetes (label) view",
                    tenant.name,
                    crate::model::classify::MAX_TENANT_CELLS
                ),
            )
            .primary(tenant.span, "too many label combinations")
            .help("selectors on unrelated keys multiply (each combination of them is a class of pods); select on shared keys with distinct values, such as `app=...` and `tier=...`"),
        );
    }
}

/// The group sets real members of each group have, per view of membership.
struct Members<'a> {
    p: &'a Policy,
    nominal: Vec<Vec<GroupId>>,
    /// Per group, the address classes it is in.
    classes: Vec<Vec<u32>>,
    /// Per group, the declared endpoints it holds.
    endpoints: Vec<Vec<u32>>,
}

impl<'a> Members<'a> {
    fn new(p: &'a Policy) -> Members<'a> {
        let n = p.groups.len();
        let mut classes = vec![Vec::new(); n];
        for (ci, set) in p.classes.sets.iter().enumerate() {
            for g in set {
                classes[g.index()].push(ci as u32);
            }
        }
        let mut endpoints = vec![Vec::new(); n];
        for (ei, e) in p.endpoints.iter().enumerate() {
            for g in &e.groups {
                endpoints[g.index()].push(ei as u32);
            }
        }
        Members {
            p,
            nominal: (0..n).map(|g| nominal(p, GroupId(g as u32))).collect(),
            classes,
            endpoints,
        }
    }

    /// Address view (nftables): the group's own set (see `nominal`), every address class and
    /// every declared endpoint's groups that contain it.
    fn address(&self, g: GroupId) -> Vec<&[GroupId]> {
        let p = self.p;
        let mut sets: BTreeSet<&[GroupId]> = BTreeSet::new();
        sets.insert(&self.nominal[g.index()]);
        for &c in &self.classes[g.index()] {
            sets.insert(&p.classes.sets[c as usize]);
        }
        for &e in &self.endpoints[g.index()] {
            sets.insert(&p.endpoints[e as usize].groups);
        }
        sets.into_iter().collect()
    }

    /// Label view (Kubernetes): the label classes that contain the group; an external group is
    /// seen by address (`ipBlock`). `None` when the tenant's label view was not enumerated.
    fn label(&self, g: GroupId) -> Option<Vec<&[GroupId]>> {
        let p = self.p;
        let grp = p.group(g);
        if grp.kind == GroupKind::External {
            return Some(self.address(g));
        }
        if !p.label_classes.complete(grp.tenant) {
            return None;
        }
        Some(
            p.label_classes.by_group[g.index()]
                .iter()
                .map(|&c| p.label_classes.classes[c as usize].groups.as_slice())
                .collect(),
        )
    }
}

/// The group sets of the two ends in one view of membership.
type View<'s> = (Vec<&'s [GroupId]>, Vec<&'s [GroupId]>);

/// At most this many pairs of group sets are tried for one deny subject; past it the deny is
/// assumed to matter (no warning).
const MAX_DENY_PAIRS: usize = 100_000;

/// W102: a deny subject that takes nothing away: wherever it matches, no permit matches and
/// the ends share no open group, so the flow would be denied anyway. Checked in both views of
/// membership for every group set real members have (more groups, more permits): in the
/// address view every address class and declared endpoint (and a member of one group only),
/// in the label view every label class (selectors that contain one another put pods in
/// several groups), so a deny that matters for some member in either view is never reported.
///
/// Only denies of flows that some permit subject of the policy matches somewhere are
/// reported: such a deny was meant to carve something out of a permit and misses it (wrong
/// groups, wrong contract). A deny of flows that no permit anywhere allows is a guard against
/// future permits (ACI's taboo contracts), which is legitimate and left alone.
fn useless_denies(p: &Policy, users: &Users, sweeps: &mut Sweeps, out: &mut Vec<Diagnostic>) {
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
    let members = Members::new(p);
    for (ci, c) in p.contracts.iter().enumerate() {
        let cid = ContractId(ci as u32);
        let pairs = users.pairs(cid);
        // Implied contracts (a `both-ways` half, `preferred`, `unenforced`) are judged
        // through the written subject or not at all: a warning names what was written.
        if pairs.is_empty() || !c.written() {
            continue;
        }
        for (si, s) in c.subjects.iter().enumerate() {
            if s.action != Action::Deny {
                continue;
            }
            if !permitted_somewhere(p, &permits, cid, si) {
                continue;
            }
            let (matched, matters) = deny_matters(sweeps, &members, &pairs, cid, si);
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

/// Does deny subject `si` of `c` match some flow between real members of a consumer and a
/// provider (`matched`), and does it take away something a permit or the intra-group default
/// would allow there, in either view (`matters`)? In doubt (a view not enumerated, too many
/// pairs to try), it matters.
fn deny_matters(
    sweeps: &mut Sweeps,
    members: &Members<'_>,
    pairs: &[(GroupId, GroupId)],
    cid: ContractId,
    si: usize,
) -> (bool, bool) {
    let mut matched = false;
    let mut tried = 0usize;
    for &(g, h) in pairs {
        let mut views: Vec<View> = vec![(members.address(g), members.address(h))];
        match (members.label(g), members.label(h)) {
            (Some(sl), Some(dl)) => views.push((sl, dl)),
            _ => return (true, true),
        }
        for (srcs, dsts) in &views {
            tried += srcs.len() * dsts.len();
            if tried > MAX_DENY_PAIRS {
                return (true, true);
            }
            for src in srcs {
                for dst in dsts {
                    let info = sweeps.get(src, dst);
                    for &i in info.by_subject.get(&(cid, si)).into_iter().flatten() {
                        matched = true;
                        if info.permit[i as usize] || info.open {
                            return (true, true);
                        }
                    }
                }
            }
        }
    }
    (matched, false)
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

/// W103: a subject S made redundant by another subject T of the same contract and action: T
/// matches every flow S matches, and S does not log what T would not. Of two subjects that
/// cover each other, the later one is reported.
///
/// Subjects of different contracts are not compared: contracts are separate agreements, each
/// provided and consumed on its own, so an overlap between two of them today is not waste
/// (either may gain users or be withdrawn). Subjects of one contract apply between the same
/// groups, so only their flows need comparing.
fn redundant_subjects(p: &Policy, users: &Users, out: &mut Vec<Diagnostic>) {
    for (ci, c) in p.contracts.iter().enumerate() {
        let cid = ContractId(ci as u32);
        if c.written() && users.pairs_exist(cid) {
            redundant_in(p, cid, out);
        }
    }
}

/// A subject's flows on one axis: space `i` of [`Space::ALL`] holds points `i << 16 ..`.
fn flat(flows: &Flows) -> Vec<(u32, u32)> {
    let mut v: Vec<(u32, u32)> = Vec::new();
    for (space, ranges) in flows {
        let base = (Space::ALL.iter().position(|s| s == space).unwrap_or(0) as u32) << 16;
        v.extend(ranges.iter().map(|&(a, b)| (base + a, base + b)));
    }
    v.sort_unstable();
    v
}

/// Does the sorted disjoint range list `big` contain every range of `small`?
fn flat_covers(big: &[(u32, u32)], small: &[(u32, u32)]) -> bool {
    let mut i = 0;
    for &(a, b) in small {
        while i < big.len() && big[i].1 < a {
            i += 1;
        }
        match big.get(i) {
            Some(&(x, y)) if x <= a && b <= y => {}
            _ => return false,
        }
    }
    true
}

/// At most this many cover tests in one contract; past it, fewer W103 are reported.
const MAX_COVER_TESTS: usize = 50_000_000;

/// For distinct range lists, the others that cover each one. Candidates are found through the
/// point of each list that the fewest lists cover (an interval sweep), so the work is the sum
/// of those smallest coverages, not the square of the number of lists.
fn covering(lists: &[&[(u32, u32)]]) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); lists.len()];
    let mut bounds: Vec<u32> = lists
        .iter()
        .flat_map(|l| l.iter().flat_map(|&(a, b)| [a, b + 1]))
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    let seg = |x: u32| bounds.partition_point(|&b| b <= x) - 1;
    let nseg = bounds.len();
    // Coverage of every elementary segment, and a min tree over it.
    let mut diff = vec![0i64; nseg + 1];
    let spans: Vec<Vec<(usize, usize)>> = lists
        .iter()
        .map(|l| l.iter().map(|&(a, b)| (seg(a), seg(b))).collect())
        .collect();
    for sp in &spans {
        for &(x, y) in sp {
            diff[x] += 1;
            diff[y + 1] -= 1;
        }
    }
    let mut cover = Vec::with_capacity(nseg);
    let mut run = 0i64;
    for d in diff.iter().take(nseg) {
        run += d;
        cover.push(run);
    }
    let size = nseg.next_power_of_two().max(1);
    let mut tree = vec![(i64::MAX, usize::MAX); 2 * size];
    for (i, &c) in cover.iter().enumerate() {
        tree[size + i] = (c, i);
    }
    for i in (1..size).rev() {
        tree[i] = tree[2 * i].min(tree[2 * i + 1]);
    }
    let min_in = |mut lo: usize, mut hi: usize| {
        let mut best = (i64::MAX, usize::MAX);
        lo += size;
        hi += size + 1;
        while lo < hi {
            if lo & 1 == 1 {
                best = best.min(tree[lo]);
                lo += 1;
            }
            if hi & 1 == 1 {
                hi -= 1;
                best = best.min(tree[hi]);
            }
            lo /= 2;
            hi /= 2;
        }
        best
    };
    // Each list's probe: its least covered elementary segment.
    let mut probes: Vec<(usize, usize)> = Vec::new();
    for (li, sp) in spans.iter().enumerate() {
        if let Some(best) = sp.iter().map(|&(x, y)| min_in(x, y)).min() {
            probes.push((best.1, li));
        }
    }
    probes.sort_unstable();
    // Sweep the segments with the set of lists that cover the current one.
    let mut starts: Vec<(usize, usize)> = Vec::new();
    let mut ends: Vec<(usize, usize)> = Vec::new();
    for (li, sp) in spans.iter().enumerate() {
        for &(x, y) in sp {
            starts.push((x, li));
            ends.push((y + 1, li));
        }
    }
    starts.sort_unstable();
    ends.sort_unstable();
    let mut active: Vec<usize> = Vec::new();
    let mut pos = vec![usize::MAX; lists.len()];
    let (mut si, mut ei, mut pi) = (0, 0, 0);
    let mut tests = 0usize;
    for e in 0..nseg {
        while ei < ends.len() && ends[ei].0 <= e {
            let li = ends[ei].1;
            let at = pos[li];
            if at != usize::MAX {
                let last = active.len() - 1;
                active.swap(at, last);
                pos[active[at]] = at;
                active.pop();
                pos[li] = usize::MAX;
            }
            ei += 1;
        }
        while si < starts.len() && starts[si].0 <= e {
            let li = starts[si].1;
            pos[li] = active.len();
            active.push(li);
            si += 1;
        }
        while pi < probes.len() && probes[pi].0 == e {
            let li = probes[pi].1;
            for &other in &active {
                if other == li {
                    continue;
                }
                tests += 1;
                if tests > MAX_COVER_TESTS {
                    return out;
                }
                if flat_covers(lists[other], lists[li]) {
                    out[li].push(other);
                }
            }
            pi += 1;
        }
    }
    out
}

/// A subject's flows on one axis (see [`flat`]).
type Flat<'a> = &'a [(u32, u32)];

fn redundant_in(p: &Policy, cid: ContractId, out: &mut Vec<Diagnostic>) {
    let subjects = &p.contract(cid).subjects;
    let flows: Vec<Vec<(u32, u32)>> = (0..subjects.len())
        .map(|si| flat(&subject_flows(p, cid, si)))
        .collect();
    // Subjects with the same action and the same flows form one class.
    let mut ids: HashMap<(Action, Flat<'_>), usize> = HashMap::new();
    let mut classes: Vec<(Action, Flat<'_>, Vec<usize>)> = Vec::new();
    let mut class_of = vec![usize::MAX; subjects.len()];
    for (si, s) in subjects.iter().enumerate() {
        if flows[si].is_empty() {
            continue;
        }
        let key = (s.action, flows[si].as_slice());
        let k = *ids.entry(key).or_insert_with(|| {
            classes.push((s.action, flows[si].as_slice(), Vec::new()));
            classes.len() - 1
        });
        classes[k].2.push(si);
        class_of[si] = k;
    }
    // Which classes of the same action cover which.
    let mut covered_by: Vec<Vec<usize>> = vec![Vec::new(); classes.len()];
    for action in [Action::Permit, Action::Deny] {
        let of: Vec<usize> = (0..classes.len())
            .filter(|&k| classes[k].0 == action)
            .collect();
        let lists: Vec<&[(u32, u32)]> = of.iter().map(|&k| classes[k].1).collect();
        for (i, by) in covering(&lists).into_iter().enumerate() {
            covered_by[of[i]] = by.into_iter().map(|j| of[j]).collect();
        }
    }
    let first = |k: usize, log: bool| {
        classes[k]
            .2
            .iter()
            .copied()
            .find(|&t| !log || subjects[t].log)
    };
    for (si, s) in subjects.iter().enumerate() {
        let k = class_of[si];
        if k == usize::MAX {
            continue;
        }
        // The first subject T that covers S and is not S's earlier twin: in S's own class (the
        // same flows) the twins cover each other, so S is reported only after one; in a class
        // that covers S's strictly, any member that logs when S logs.
        let mut best: Option<usize> = None;
        let mut consider = |t: Option<usize>| {
            if let Some(t) = t {
                best = Some(best.map_or(t, |b| b.min(t)));
            }
        };
        let twins = &classes[k].2;
        if s.log {
            consider(twins.iter().copied().find(|&t| t < si && subjects[t].log));
        } else {
            consider(twins.iter().copied().find(|&t| t < si));
            consider(twins.iter().copied().find(|&t| t > si && subjects[t].log));
        }
        for &d in &covered_by[k] {
            consider(first(d, s.log));
        }
        let Some(ti) = best else { continue };
        let t = &subjects[ti];
        out.push(
            Diagnostic::warning(
                Code::RedundantSubject,
                format!(
                    "subject `{}` of contract `{}` is redundant: subject `{}` of `{}` already {} every flow it matches between the same groups",
                    s.name,
                    p.contract_name(cid),
                    t.name,
                    p.contract_name(cid),
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
/// rarely what overlapping prefixes were written for. Each pair of groups is reported once,
/// at the group declared later, and each group once: one warning names every earlier group
/// its prefixes overlap (the first few by name), so a thousand overlapping prefixes give at
/// most a thousand warnings, not one per pair.
///
/// Prefixes are nested or disjoint, so the prefixes that overlap one are its ancestors (at
/// most one per prefix length, looked up directly) and its descendants (a run of the sorted
/// list): the work is the number of overlapping pairs, never all pairs.
fn overlapping_groups(p: &Policy, out: &mut Vec<Diagnostic>) {
    struct Pfx {
        family: crate::net::Family,
        first: u128,
        last: u128,
        len: u8,
        group: GroupId,
        span: Span,
        text: String,
    }
    let mut nets: Vec<Pfx> = Vec::new();
    for (gi, g) in p.groups.iter().enumerate() {
        if g.kind != GroupKind::Internal {
            continue;
        }
        for n in &g.nets {
            nets.push(Pfx {
                family: n.cidr.family,
                first: n.cidr.first(),
                last: n.cidr.last(),
                len: n.cidr.len,
                group: GroupId(gi as u32),
                span: n.span,
                text: n.cidr.to_string(),
            });
        }
    }
    // Containing prefixes first, so a prefix's descendants follow it.
    nets.sort_by(|a, b| {
        (a.family, a.first, std::cmp::Reverse(a.last), a.span.start).cmp(&(
            b.family,
            b.first,
            std::cmp::Reverse(b.last),
            b.span.start,
        ))
    });
    let key = |x: &Pfx| (x.family, x.first, std::cmp::Reverse(x.last));
    // The prefix lengths in use: an ancestor can only have one of these.
    let lengths: BTreeSet<(crate::net::Family, u8)> =
        nets.iter().map(|n| (n.family, n.len)).collect();
    let mut of_group: Vec<Vec<usize>> = vec![Vec::new(); p.groups.len()];
    for (i, n) in nets.iter().enumerate() {
        of_group[n.group.index()].push(i);
    }
    let declared = |g: GroupId| p.group(g).name_span.start;
    let mut stamp = vec![u32::MAX; p.groups.len()];
    for (gi, mine) in of_group.iter_mut().enumerate() {
        if mine.is_empty() {
            continue;
        }
        let gid = GroupId(gi as u32);
        mine.sort_by_key(|&i| nets[i].span.start);
        // (other group, my prefix, its prefix), first found per group.
        let mut others: Vec<(GroupId, usize, usize)> = Vec::new();
        let mut visit = |i: usize, j: usize, others: &mut Vec<(GroupId, usize, usize)>| {
            let h = nets[j].group;
            if h == gid
                || declared(h) >= declared(gid)
                || stamp[h.index()] == gi as u32
                || related(p, gid, h)
            {
                return;
            }
            stamp[h.index()] = gi as u32;
            others.push((h, i, j));
        };
        for &i in mine.iter() {
            let n = &nets[i];
            // Descendants and equal prefixes after it.
            let mut j = i + 1;
            while j < nets.len() && nets[j].family == n.family && nets[j].first <= n.last {
                visit(i, j, &mut others);
                j += 1;
            }
            // Equal prefixes before it.
            let mut j = i;
            while j > 0 && key(&nets[j - 1]) == key(n) {
                j -= 1;
                visit(i, j, &mut others);
            }
            // Strict ancestors: one prefix per shorter length.
            let bits: u32 = match n.family {
                crate::net::Family::V4 => 32,
                crate::net::Family::V6 => 128,
            };
            for &len in lengths.iter().filter(|&&(f, l)| f == n.family && l < n.len) {
                let host = bits - len.1 as u32;
                let mask: u128 = if host >= 128 {
                    u128::MAX
                } else {
                    (1u128 << host) - 1
                };
                let k = (
                    n.family,
                    n.first & !mask,
                    std::cmp::Reverse((n.first & !mask) | mask),
                );
                let mut j = nets.partition_point(|x| key(x) < k);
                while j < nets.len() && key(&nets[j]) == k {
                    visit(i, j, &mut others);
                    j += 1;
                }
            }
        }
        if others.is_empty() {
            continue;
        }
        others.sort_by_key(|&(_, _, j)| nets[j].span.start);
        let at = others
            .iter()
            .map(|&(_, i, _)| i)
            .min_by_key(|&i| nets[i].span.start);
        let Some(at) = at else { continue };
        let mine = &nets[at];
        let d = if let [(h, i, j)] = others.as_slice() {
            Diagnostic::warning(
                Code::OverlappingGroups,
                format!(
                    "{} of group `{}` overlaps {} of group `{}`: addresses in both prefixes are members of both groups",
                    nets[*i].text,
                    p.group_name(gid),
                    nets[*j].text,
                    p.group_name(*h)
                ),
            )
            .primary(nets[*i].span, "overlaps another group's prefix")
            .secondary(nets[*j].span, "the other prefix")
        } else {
            const SHOWN: usize = 3;
            let mut names: Vec<String> = others
                .iter()
                .take(SHOWN)
                .map(|&(h, _, j)| format!("`{}` ({})", p.group_name(h), nets[j].text))
                .collect();
            if others.len() > SHOWN {
                names.push(format!("and {} more", others.len() - SHOWN));
            }
            let mut d = Diagnostic::warning(
                Code::OverlappingGroups,
                format!(
                    "the prefixes of group `{}` overlap those of {} other groups: {}; addresses in both are members of both groups",
                    p.group_name(gid),
                    others.len(),
                    names.join(", ")
                ),
            )
            .primary(mine.span, "overlaps other groups' prefixes");
            for &(h, _, j) in others.iter().take(SHOWN) {
                d = d.secondary(nets[j].span, format!("a prefix of `{}`", p.group_name(h)));
            }
            d
        };
        out.push(d.help("give each group its own prefixes; if one group refines the other, say so with `extends` and separate prefixes"));
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
            .filter(|c| g.eff_consumes.binary_search(c).is_ok() && p.contract(*c).written())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The pairwise W103 of before (every subject against every other), as the oracle.
    fn redundant_pairwise(p: &Policy, cid: ContractId) -> Vec<Diagnostic> {
        let ranges_cover = |big: &Ranges, small: &Ranges| {
            small
                .iter()
                .all(|&(a, b)| big.iter().any(|&(x, y)| x <= a && b <= y))
        };
        let flows_cover = |big: &Flows, small: &Flows| {
            small
                .iter()
                .all(|(s, r)| big.iter().any(|(bs, br)| bs == s && ranges_cover(br, r)))
        };
        let subjects = &p.contract(cid).subjects;
        let flows: Vec<Flows> = (0..subjects.len())
            .map(|si| subject_flows(p, cid, si))
            .collect();
        let mut out = Vec::new();
        for (si, s) in subjects.iter().enumerate() {
            if flows[si].is_empty() {
                continue;
            }
            for (ti, t) in subjects.iter().enumerate() {
                if si == ti
                    || t.action != s.action
                    || (s.log && !t.log)
                    || !flows_cover(&flows[ti], &flows[si])
                {
                    continue;
                }
                let mutual = flows_cover(&flows[si], &flows[ti]) && t.log == s.log;
                if mutual && s.span.start < t.span.start {
                    continue;
                }
                out.push((s.span, t.span));
                break;
            }
        }
        out.into_iter()
            .map(|(a, b)| {
                Diagnostic::warning(Code::RedundantSubject, "")
                    .primary(a, "")
                    .secondary(b, "")
            })
            .collect()
    }

    struct Lcg(u64);
    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    /// W103 through the covering index finds exactly what comparing every pair of subjects
    /// finds: same subjects, same covering subject, on random contracts with duplicates,
    /// nested ranges, several protocols, `ip`, ICMP and logging.
    #[test]
    fn redundant_subjects_match_pairwise() {
        let mut rng = Lcg(3);
        let entries = [
            "tcp 80",
            "tcp 80-90",
            "tcp 1-1024",
            "tcp 85",
            "udp 53",
            "udp",
            "ip",
            "icmp echo-request",
            "icmp",
            "tcp 443, 8443",
            "sctp 3868",
            "tcp 8443",
        ];
        let mut found = 0;
        for _ in 0..300 {
            let mut src = String::from("tenant t {\n");
            let nf = rng.below(6) + 2;
            for f in 0..nf {
                let e1 = entries[rng.below(entries.len() as u64) as usize];
                if rng.below(2) == 0 {
                    let e2 = entries[rng.below(entries.len() as u64) as usize];
                    src.push_str(&format!("  filter f{f} {{ {e1}; {e2} }}\n"));
                } else {
                    src.push_str(&format!("  filter f{f} {{ {e1} }}\n"));
                }
            }
            src.push_str("  contract c {\n");
            for s in 0..rng.below(12) + 2 {
                let action = if rng.below(3) == 0 { "deny" } else { "permit" };
                let a = rng.below(nf);
                let b = rng.below(nf);
                let log = if rng.below(3) == 0 { " log" } else { "" };
                src.push_str(&format!("    subject s{s} {action} f{a}, f{b}{log}\n"));
            }
            src.push_str("  }\n  group a { select app=a  consumes c }\n  group b { select app=b  provides c }\n}\n");
            let checked = crate::check_source(&src);
            if !checked.ok() {
                continue;
            }
            let p = &checked.policy;
            let mut got = Vec::new();
            redundant_in(p, ContractId(0), &mut got);
            let want = redundant_pairwise(p, ContractId(0));
            let spans = |v: &[Diagnostic]| -> Vec<Vec<Span>> {
                v.iter()
                    .map(|d| d.labels.iter().map(|l| l.span).collect())
                    .collect()
            };
            assert_eq!(spans(&got), spans(&want), "{src}");
            found += got.len();
        }
        assert!(found > 50, "{found}");
    }
}
