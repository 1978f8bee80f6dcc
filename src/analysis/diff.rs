//! `diff`: the flows two versions of a policy decide differently, in the policy's own terms,
//! in both views of membership: the address view (nftables classifies by address) and the
//! label view (Kubernetes selects pods by labels).
//!
//! Groups are matched by `tenant/name`. The units compared are the group sets that members
//! really have, by name. Address view: "a member of one group only" for every group (see
//! [`super::nominal`]), every address class of either version and every declared endpoint's
//! groups. Label view: every label class of either version (see
//! [`crate::model::classify::LabelClasses`]), and the external groups (Kubernetes sees them as
//! `ipBlock` peers, by address). For each ordered pair of units of one view, the port spaces
//! are cut at the filter edges of BOTH versions, so each segment has one decision in each, and
//! the evaluator is asked once per segment and version. Each change says whether it is seen
//! in both views or in one only.
//!
//! Only pairs where some contract applies or the ends share an open group, in either version,
//! are swept: between any other pair both versions deny everything (evaluator step 4), so the
//! work grows with the pairs the policy connects, not with the square of the units.
//!
//! Membership is compared separately: address by address range, endpoint by name, and label
//! sets by the label classes of both versions' selectors together (every label set whose
//! groups differ between the versions, with the fewest labels that show it), so a policy that
//! moves an address or a pod into another group is never reported equivalent.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use crate::eval::{self, Verdict};
use crate::model::classify::{self, label_cells};
use crate::model::{ContractId, GroupId, GroupKind, Policy, TenantId};
use crate::net::Family;

use super::{Cuts, Ranges, Rule, Space, add_cuts, nominal, push_range, sweep_with};

/// Which view of membership sees a flow change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum View {
    /// Both: the two ends' group sets are real in the address view and in the label view.
    Both,
    /// Only the address view (nftables): a group set no label set selects.
    Address,
    /// Only the label view (Kubernetes): a group set only labels make (selectors that contain
    /// one another), or an external peer of one.
    Label,
}

impl View {
    pub fn as_str(self) -> &'static str {
        match self {
            View::Both => "both",
            View::Address => "address",
            View::Label => "label",
        }
    }
}

/// Flows between two units whose verdict changed, one per (space, old verdict, new verdict).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowChange {
    pub from: String,
    pub to: String,
    pub space: Space,
    pub ranges: Ranges,
    pub old: Verdict,
    pub new: Verdict,
    pub old_rules: Vec<String>,
    pub new_rules: Vec<String>,
    pub view: View,
}

/// What changed between two versions.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub added_groups: Vec<String>,
    pub removed_groups: Vec<String>,
    /// Address view: human-readable membership changes (address ranges and endpoints).
    pub membership: Vec<String>,
    /// Label view: groups whose `select` changed.
    pub selectors: Vec<String>,
    /// Label view: label sets whose groups changed.
    pub label_membership: Vec<String>,
    /// What could not be compared exactly (a tenant with too many label classes): the
    /// versions are then not reported equivalent.
    pub unverified: Vec<String>,
    pub flows: Vec<FlowChange>,
}

impl Report {
    /// True when both versions decide every flow alike and classify every address, endpoint
    /// and label set into the same groups.
    pub fn is_empty(&self) -> bool {
        self.added_groups.is_empty()
            && self.removed_groups.is_empty()
            && self.membership.is_empty()
            && self.selectors.is_empty()
            && self.label_membership.is_empty()
            && self.unverified.is_empty()
            && self.flows.is_empty()
    }
}

fn names(p: &Policy) -> BTreeMap<String, GroupId> {
    (0..p.groups.len())
        .map(|i| (p.group_name(GroupId(i as u32)), GroupId(i as u32)))
        .collect()
}

fn name_set(p: &Policy, gs: &[GroupId]) -> Vec<String> {
    let mut v: Vec<String> = gs.iter().map(|g| p.group_name(*g)).collect();
    v.sort();
    v.dedup();
    v
}

/// A unit for people: its groups, leaving out a tenant's `any` when one of the tenant's own
/// groups is there (every member of an internal group is in `any`).
fn show(p: &Policy, unit: &[String], ids: &BTreeMap<String, GroupId>) -> String {
    let tenants: BTreeSet<TenantId> = unit
        .iter()
        .filter_map(|n| ids.get(n))
        .map(|g| p.group(*g))
        .filter(|g| g.kind == GroupKind::Internal)
        .map(|g| g.tenant)
        .collect();
    let shown: Vec<&str> = unit
        .iter()
        .filter(|n| {
            let Some(g) = ids.get(*n) else { return true };
            let grp = p.group(*g);
            grp.kind != GroupKind::Any || !tenants.contains(&grp.tenant)
        })
        .map(String::as_str)
        .collect();
    if shown.is_empty() {
        "(no group)".into()
    } else {
        shown.join("+")
    }
}

/// In which views a unit is real.
#[derive(Clone, Copy, Default)]
struct Seen {
    address: bool,
    label: bool,
}

fn units(p: &Policy, out: &mut BTreeMap<Vec<String>, Seen>) {
    for g in super::real_groups(p) {
        out.entry(name_set(p, &nominal(p, g))).or_default().address = true;
    }
    for set in &p.classes.sets {
        if !set.is_empty() {
            out.entry(name_set(p, set)).or_default().address = true;
        }
    }
    for e in &p.endpoints {
        if !e.groups.is_empty() {
            out.entry(name_set(p, &e.groups)).or_default().address = true;
        }
    }
    for c in &p.label_classes.classes {
        if !c.groups.is_empty() {
            out.entry(name_set(p, &c.groups)).or_default().label = true;
        }
    }
}

fn to_ids(unit: &[String], ids: &BTreeMap<String, GroupId>) -> Option<Vec<GroupId>> {
    let mut v = unit
        .iter()
        .map(|n| ids.get(n).copied())
        .collect::<Option<Vec<GroupId>>>()?;
    v.sort_unstable();
    Some(v)
}

/// Compare two checked policies (both without errors).
pub fn diff(old: &Policy, new: &Policy) -> Report {
    let old_ids = names(old);
    let new_ids = names(new);
    let mut r = Report::default();
    for (n, g) in &new_ids {
        if !old_ids.contains_key(n) && new.group(*g).kind != GroupKind::Any {
            r.added_groups.push(n.clone());
        }
    }
    for (n, g) in &old_ids {
        if !new_ids.contains_key(n) && old.group(*g).kind != GroupKind::Any {
            r.removed_groups.push(n.clone());
        }
    }
    membership(old, new, &mut r);
    selectors(old, new, &old_ids, &new_ids, &mut r);
    label_membership(old, new, &mut r);
    let mut all: BTreeMap<Vec<String>, Seen> = BTreeMap::new();
    units(old, &mut all);
    units(new, &mut all);
    // A unit whose groups do not all exist in a version has no members there: its flows
    // are all denied in that version (reported as opened or closed with the group).
    let units: Vec<Unit> = all
        .into_iter()
        .map(|(u, seen)| {
            let o = to_ids(&u, &old_ids);
            let n = to_ids(&u, &new_ids);
            let shown = match &o {
                Some(_) => show(old, &u, &old_ids),
                None => show(new, &u, &new_ids),
            };
            let external = |p: &Policy, ids: &Option<Vec<GroupId>>| {
                ids.as_ref()
                    .is_some_and(|v| v.iter().all(|g| p.group(*g).kind == GroupKind::External))
            };
            Unit {
                shown,
                external: external(old, &o) || external(new, &n),
                old: o,
                new: n,
                seen,
            }
        })
        .collect();
    let sides = [Side::new(old, &units, true), Side::new(new, &units, false)];
    let mut marks = Marks::new(units.len());
    let mut group_marks = [Marks::new(old.groups.len()), Marks::new(new.groups.len())];
    let mut near: Vec<u32> = Vec::new();
    let mut memo = Memo::new();
    for s in &units {
        marks.next();
        near.clear();
        for (side, gm) in sides.iter().zip(group_marks.iter_mut()) {
            gm.next();
            let ids = if side.old { &s.old } else { &s.new };
            if let Some(ids) = ids {
                side.near(ids, gm, &mut marks, &mut near);
            }
        }
        near.sort_unstable();
        for &di in &near {
            let d = &units[di as usize];
            let address = s.seen.address && d.seen.address;
            let label = (s.seen.label || s.external)
                && (d.seen.label || d.external)
                && (s.seen.label || d.seen.label);
            let view = match (address, label) {
                (true, true) => View::Both,
                (true, false) => View::Address,
                (false, true) => View::Label,
                (false, false) => continue,
            };
            pair(old, new, s, d, view, &mut memo, &mut r);
        }
    }
    r
}

struct Unit {
    shown: String,
    old: Option<Vec<GroupId>>,
    new: Option<Vec<GroupId>>,
    seen: Seen,
    /// Every group of the unit is external (Kubernetes sees it by address in both views).
    external: bool,
}

/// A set of small integers that empties in O(1): `next` starts a new generation.
struct Marks {
    stamp: Vec<u32>,
    now: u32,
}

impl Marks {
    fn new(n: usize) -> Marks {
        Marks {
            stamp: vec![0; n],
            now: 0,
        }
    }
    fn next(&mut self) {
        self.now += 1;
    }
    /// Mark `i`; false if it was already marked in this generation.
    fn insert(&mut self, i: usize) -> bool {
        match self.stamp.get_mut(i) {
            Some(s) if *s != self.now => {
                *s = self.now;
                true
            }
            _ => false,
        }
    }
}

/// One version's indexes for finding the units a unit may reach.
struct Side<'a> {
    p: &'a Policy,
    old: bool,
    /// Per group, the units (of this version) it is in.
    units_of: Vec<Vec<u32>>,
    /// Per contract, its providers.
    providers: Vec<Vec<GroupId>>,
}

impl<'a> Side<'a> {
    fn new(p: &'a Policy, units: &[Unit], old: bool) -> Side<'a> {
        let mut units_of = vec![Vec::new(); p.groups.len()];
        for (ui, u) in units.iter().enumerate() {
            let ids = if old { &u.old } else { &u.new };
            for g in ids.iter().flatten() {
                units_of[g.index()].push(ui as u32);
            }
        }
        let (providers, _) = p.contract_users();
        Side {
            p,
            old,
            units_of,
            providers,
        }
    }

    /// Add to `out` every unit that a member of `ids` may reach in this version: those with a
    /// provider of a contract `ids` consumes, and those sharing an open group with it.
    fn near(&self, ids: &[GroupId], groups: &mut Marks, units: &mut Marks, out: &mut Vec<u32>) {
        let mut visit = |h: GroupId, units: &mut Marks, out: &mut Vec<u32>| {
            if groups.insert(h.index()) {
                for &u in &self.units_of[h.index()] {
                    if units.insert(u as usize) {
                        out.push(u);
                    }
                }
            }
        };
        for &g in ids {
            let grp = self.p.group(g);
            for c in &grp.eff_consumes {
                for &h in self.providers.get(c.index()).into_iter().flatten() {
                    visit(h, units, out);
                }
            }
            if grp.kind != GroupKind::Any && !grp.isolated {
                visit(g, units, out);
            }
        }
    }
}

/// What one version decides between two units: per segment, the verdict and the rule's name.
fn decisions(
    p: &Policy,
    ends: Option<(&Vec<GroupId>, &Vec<GroupId>)>,
    app: &[(ContractId, GroupId, GroupId)],
    other: &dyn Fn(Space) -> Cuts,
) -> Vec<(Space, u32, u32, Verdict, String)> {
    match ends {
        Some((s, d)) => sweep_with(p, app, s, d, Some(other))
            .into_iter()
            .map(|x| {
                (
                    x.space,
                    x.lo,
                    x.hi,
                    x.decision.verdict,
                    Rule::of(&x.decision).name(p),
                )
            })
            .collect(),
        None => Space::ALL
            .iter()
            .flat_map(|&space| {
                super::segments(space, &other(space))
                    .into_iter()
                    .map(move |(lo, hi)| {
                        (space, lo, hi, Verdict::Deny, "no such group".to_string())
                    })
            })
            .collect(),
    }
}

/// What decides between two group sets in one version, as far as the verdicts and the rule
/// names go: the applicable contracts and the shared open group (or `None`: a group of the
/// unit does not exist in that version). Pairs with the same key in both versions have the
/// same changes, so each key is swept once: a label view where every client class reaches every
/// provider class would otherwise sweep the same contracts again for every pair.
type Side1 = Option<(Vec<ContractId>, Option<GroupId>)>;
type Memo = HashMap<(Side1, Side1), Rc<Vec<FlowChange>>>;

#[allow(clippy::too_many_arguments)]
fn pair(
    old: &Policy,
    new: &Policy,
    s: &Unit,
    d: &Unit,
    view: View,
    memo: &mut Memo,
    r: &mut Report,
) {
    let ends = |a: &Option<Vec<GroupId>>, b: &Option<Vec<GroupId>>| match (a, b) {
        (Some(a), Some(b)) => Some((a.clone(), b.clone())),
        _ => None,
    };
    let (old_ends, new_ends) = (ends(&s.old, &d.old), ends(&s.new, &d.new));
    if old_ends.is_none() && new_ends.is_none() {
        return;
    }
    let app = |p: &Policy, e: &Option<(Vec<GroupId>, Vec<GroupId>)>| match e {
        Some((a, b)) => eval::applicable(p, a, b),
        None => Vec::new(),
    };
    let old_app = app(old, &old_ends);
    let new_app = app(new, &new_ends);
    let ids = |app: &[(ContractId, GroupId, GroupId)]| app.iter().map(|x| x.0).collect::<Vec<_>>();
    let (old_c, new_c) = (ids(&old_app), ids(&new_app));
    let key = |p: &Policy, e: &Option<(Vec<GroupId>, Vec<GroupId>)>, c: &Vec<ContractId>| {
        e.as_ref()
            .map(|(a, b)| (c.clone(), eval::common_open_group(p, a, b)))
    };
    let key = (key(old, &old_ends, &old_c), key(new, &new_ends, &new_c));
    let changes = match memo.get(&key) {
        Some(x) => x.clone(),
        None => {
            // Each version's segments are cut by both versions' filter edges, so they are the
            // same.
            let both_cuts = |space: Space| {
                let mut c = Cuts::new();
                add_cuts(old, &old_c, space, &mut c);
                add_cuts(new, &new_c, space, &mut c);
                c
            };
            let a = decisions(
                old,
                old_ends.as_ref().map(|(x, y)| (x, y)),
                &old_app,
                &both_cuts,
            );
            let b = decisions(
                new,
                new_ends.as_ref().map(|(x, y)| (x, y)),
                &new_app,
                &both_cuts,
            );
            let x = Rc::new(changes_of(&a, &b));
            memo.insert(key, x.clone());
            x
        }
    };
    r.flows.extend(changes.iter().map(|c| FlowChange {
        from: s.shown.clone(),
        to: d.shown.clone(),
        view,
        ..c.clone()
    }));
}

/// The segments whose verdict differs, merged per (space, old verdict, new verdict).
fn changes_of(
    a: &[(Space, u32, u32, Verdict, String)],
    b: &[(Space, u32, u32, Verdict, String)],
) -> Vec<FlowChange> {
    let mut changes: Vec<FlowChange> = Vec::new();
    for (x, y) in a.iter().zip(b) {
        if x.3 == y.3 {
            continue;
        }
        match changes
            .iter_mut()
            .find(|c| c.space == x.0 && c.old == x.3 && c.new == y.3)
        {
            Some(c) => {
                push_range(&mut c.ranges, x.1, x.2);
                if !c.old_rules.contains(&x.4) {
                    c.old_rules.push(x.4.clone());
                }
                if !c.new_rules.contains(&y.4) {
                    c.new_rules.push(y.4.clone());
                }
            }
            None => changes.push(FlowChange {
                from: String::new(),
                to: String::new(),
                space: x.0,
                ranges: vec![(x.1, x.2)],
                old: x.3,
                new: y.3,
                old_rules: vec![x.4.clone()],
                new_rules: vec![y.4.clone()],
                view: View::Both,
            }),
        }
    }
    changes
}

fn selector_text(sel: &BTreeMap<String, String>) -> String {
    if sel.is_empty() {
        return "(no select)".into();
    }
    let parts: Vec<String> = sel.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("select {}", parts.join(", "))
}

/// Label view: groups of both versions whose `select` differs.
fn selectors(
    old: &Policy,
    new: &Policy,
    old_ids: &BTreeMap<String, GroupId>,
    new_ids: &BTreeMap<String, GroupId>,
    r: &mut Report,
) {
    for (n, g) in old_ids {
        let Some(h) = new_ids.get(n) else { continue };
        let (a, b) = (&old.group(*g).selector, &new.group(*h).selector);
        if a != b {
            r.selectors
                .push(format!("{n}: {} -> {}", selector_text(a), selector_text(b)));
        }
    }
}

/// Label view: every label set whose groups differ between the versions. The label classes
/// of both versions' selectors together (per tenant, by name) cut the label space into sets
/// on which both versions' groups are constant: each set whose groups differ is reported
/// once, with the fewest labels that put a pod in it.
fn label_membership(old: &Policy, new: &Policy, r: &mut Report) {
    let mut tenants: BTreeMap<&str, (Option<TenantId>, Option<TenantId>)> = BTreeMap::new();
    for (i, t) in old.tenants.iter().enumerate() {
        tenants.entry(&t.name).or_default().0 = Some(TenantId(i as u32));
    }
    for (i, t) in new.tenants.iter().enumerate() {
        tenants.entry(&t.name).or_default().1 = Some(TenantId(i as u32));
    }
    let selecting = |p: &Policy| {
        let mut per: Vec<Vec<GroupId>> = vec![Vec::new(); p.tenants.len()];
        for (gi, g) in p.groups.iter().enumerate() {
            if g.kind == GroupKind::Internal && !g.selector.is_empty() {
                per[g.tenant.index()].push(GroupId(gi as u32));
            }
        }
        per
    };
    let (per_old, per_new) = (selecting(old), selecting(new));
    let too_many = |t: &str| {
        format!(
            "label view of tenant {t}: its selectors combine into more label classes than gbpc enumerates ({} cells); not compared",
            classify::MAX_TENANT_CELLS
        )
    };
    for (name, (to, tn)) in tenants {
        if to.is_some_and(|t| !old.label_classes.complete(t))
            || tn.is_some_and(|t| !new.label_classes.complete(t))
        {
            r.unverified.push(too_many(name));
            continue;
        }
        let go: &[GroupId] = to.map_or(&[], |t| &per_old[t.index()]);
        let gn: &[GroupId] = tn.map_or(&[], |t| &per_new[t.index()]);
        let sels: Vec<&BTreeMap<String, String>> = go
            .iter()
            .map(|g| &old.group(*g).selector)
            .chain(gn.iter().map(|g| &new.group(*g).selector))
            .collect();
        let Some(leaves) = label_cells(&sels, classify::MAX_TENANT_CELLS) else {
            r.unverified.push(too_many(name));
            continue;
        };
        let mut seen: BTreeSet<(Vec<String>, Vec<String>)> = BTreeSet::new();
        let mut lines: Vec<(Vec<String>, String)> = Vec::new();
        for leaf in leaves {
            let (mut a, mut b): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
            for &i in &leaf.sat {
                match (go.get(i), i.checked_sub(go.len()).and_then(|j| gn.get(j))) {
                    (Some(g), _) => a.push(old.group_name(*g)),
                    (None, Some(g)) => b.push(new.group_name(*g)),
                    _ => {}
                }
            }
            a.sort();
            b.sort();
            if a == b || !seen.insert((a.clone(), b.clone())) {
                continue;
            }
            let mut witness: BTreeMap<&str, &str> = BTreeMap::new();
            for &i in &leaf.sat {
                for (k, v) in sels[i] {
                    witness.insert(k, v);
                }
            }
            let labels: Vec<String> = witness.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let list = |v: &[String]| {
                if v.is_empty() {
                    "(no group)".to_string()
                } else {
                    v.join("+")
                }
            };
            lines.push((
                labels.clone(),
                format!(
                    "pods of {name} labelled {}: [{}] -> [{}]",
                    labels.join(", "),
                    list(&a),
                    list(&b)
                ),
            ));
        }
        lines.sort();
        r.label_membership
            .extend(lines.into_iter().map(|(_, line)| line));
    }
}

fn class_names(p: &Policy, family: Family, class: u32) -> Vec<String> {
    let _ = family;
    p.classes
        .sets
        .get(class as usize)
        .map(|s| name_set(p, s))
        .unwrap_or_default()
}

fn membership(old: &Policy, new: &Policy, r: &mut Report) {
    let old_ids = names(old);
    let new_ids = names(new);
    for family in [Family::V4, Family::V6] {
        let (ta, tb) = (old.classes.table(family), new.classes.table(family));
        let mut regions: Vec<(u128, u128, Vec<String>, Vec<String>)> = Vec::new();
        let (mut i, mut j) = (0, 0);
        while let (Some(&(alo, ahi, ac)), Some(&(blo, bhi, bc))) = (ta.get(i), tb.get(j)) {
            let lo = alo.max(blo);
            let hi = ahi.min(bhi);
            let (na, nb) = (class_names(old, family, ac), class_names(new, family, bc));
            if na != nb {
                match regions.last_mut() {
                    Some(last)
                        if last.1.checked_add(1) == Some(lo) && last.2 == na && last.3 == nb =>
                    {
                        last.1 = hi
                    }
                    _ => regions.push((lo, hi, na, nb)),
                }
            }
            if ahi == hi {
                i += 1;
            }
            if bhi == hi {
                j += 1;
            }
        }
        for (lo, hi, na, nb) in regions {
            let cidrs = crate::net::range_to_cidrs(family, lo, hi);
            let mut text: Vec<String> = cidrs.iter().take(6).map(|c| c.to_string()).collect();
            if cidrs.len() > 6 {
                text.push(format!("... ({} prefixes)", cidrs.len()));
            }
            r.membership.push(format!(
                "addresses {}: [{}] -> [{}]",
                text.join(", "),
                show(old, &na, &old_ids),
                show(new, &nb, &new_ids)
            ));
        }
    }
    let eps = |p: &Policy| -> BTreeMap<String, (Vec<String>, Vec<String>)> {
        p.endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| {
                (
                    p.endpoint_name(crate::model::EndpointId(i as u32)),
                    (
                        name_set(p, &e.groups),
                        e.addrs.iter().map(|a| a.ip().to_string()).collect(),
                    ),
                )
            })
            .collect()
    };
    let (ea, eb) = (eps(old), eps(new));
    for (n, (g, a)) in &ea {
        match eb.get(n) {
            None => r.membership.push(format!("endpoint {n} removed")),
            Some((g2, a2)) => {
                if g != g2 {
                    r.membership.push(format!(
                        "endpoint {n}: [{}] -> [{}]",
                        show(old, g, &old_ids),
                        show(new, g2, &new_ids)
                    ));
                }
                if a != a2 {
                    r.membership.push(format!(
                        "endpoint {n}: address {} -> {}",
                        a.join(", "),
                        a2.join(", ")
                    ));
                }
            }
        }
    }
    for n in eb.keys() {
        if !ea.contains_key(n) {
            r.membership.push(format!("endpoint {n} added"));
        }
    }
}

fn describe(c: &FlowChange) -> String {
    format!(
        "{} -> {}  {}  (old: {}; new: {})",
        c.from,
        c.to,
        super::format_ranges(c.space, &c.ranges),
        c.old_rules.join(", "),
        c.new_rules.join(", ")
    )
}

/// For people. Flow changes seen in both views come first; those only one view sees are in
/// sections of their own.
pub fn text(r: &Report) -> String {
    if r.is_empty() {
        return "no change: both versions decide every flow alike\n".into();
    }
    let mut out = String::new();
    let mut section = |title: &str, lines: Vec<String>| {
        if !lines.is_empty() {
            out.push_str(&format!("{title}:\n"));
            for l in lines {
                out.push_str(&format!("  {l}\n"));
            }
        }
    };
    section("groups added", r.added_groups.clone());
    section("groups removed", r.removed_groups.clone());
    section("not compared", r.unverified.clone());
    section(
        "membership changed (address view: nftables)",
        r.membership.clone(),
    );
    section(
        "selectors changed (label view: Kubernetes)",
        r.selectors.clone(),
    );
    section(
        "membership changed (label view: Kubernetes)",
        r.label_membership.clone(),
    );
    for (view, suffix) in [
        (View::Both, ""),
        (View::Address, " (address view only: nftables)"),
        (View::Label, " (label view only: Kubernetes)"),
    ] {
        for (opened, what) in [(true, "flows opened"), (false, "flows closed")] {
            section(
                &format!("{what}{suffix}"),
                r.flows
                    .iter()
                    .filter(|c| c.view == view && (c.new == Verdict::Allow) == opened)
                    .map(describe)
                    .collect(),
            );
        }
    }
    out
}

/// As one JSON object.
pub fn json(r: &Report) -> String {
    let flows: Vec<serde_json::Value> = r
        .flows
        .iter()
        .map(|c| {
            serde_json::json!({
                "change": if c.new == Verdict::Allow { "opened" } else { "closed" },
                "view": c.view.as_str(),
                "from": c.from,
                "to": c.to,
                "protocol": c.space.name(),
                "ranges": c.ranges.iter().map(|&(a, b)| [a, b]).collect::<Vec<_>>(),
                "old": { "verdict": c.old.as_str(), "rules": c.old_rules },
                "new": { "verdict": c.new.as_str(), "rules": c.new_rules },
            })
        })
        .collect();
    let v = serde_json::json!({
        "equivalent": r.is_empty(),
        "groups_added": r.added_groups,
        "groups_removed": r.removed_groups,
        "not_compared": r.unverified,
        "membership": r.membership,
        "selectors": r.selectors,
        "label_membership": r.label_membership,
        "flows": flows,
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}
