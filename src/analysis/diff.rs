//! `diff`: the flows two versions of a policy decide differently, in the policy's own terms.
//!
//! Groups are matched by `tenant/name`. The units compared are the group sets that members
//! really have, by name: "a member of one group only" for every group (see
//! [`super::nominal`]), every address class of either version and every declared endpoint's
//! groups. For each ordered pair of units, the port spaces are cut at the filter edges of
//! BOTH versions, so each segment has one decision in each, and the evaluator is asked once
//! per segment and version. Address and endpoint membership is compared separately (range by
//! range, endpoint by name), so a policy that moves an address into another group is never
//! reported equivalent.

use std::collections::{BTreeMap, BTreeSet};

use crate::eval::Verdict;
use crate::model::{GroupId, GroupKind, Policy};
use crate::net::Family;

use super::{Cuts, Ranges, Rule, Space, add_cuts, applicable_ids, nominal, push_range, sweep};

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
}

/// What changed between two versions.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub added_groups: Vec<String>,
    pub removed_groups: Vec<String>,
    /// Human-readable membership changes (address ranges and endpoints).
    pub membership: Vec<String>,
    pub flows: Vec<FlowChange>,
}

impl Report {
    /// True when both versions decide every flow alike and classify every address and
    /// endpoint into the same groups.
    pub fn is_empty(&self) -> bool {
        self.added_groups.is_empty()
            && self.removed_groups.is_empty()
            && self.membership.is_empty()
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
    let shown: Vec<&str> = unit
        .iter()
        .filter(|n| {
            let Some(g) = ids.get(*n) else { return true };
            let grp = p.group(*g);
            grp.kind != GroupKind::Any
                || !unit.iter().any(|o| {
                    ids.get(o).is_some_and(|h| {
                        let hg = p.group(*h);
                        hg.kind == GroupKind::Internal && hg.tenant == grp.tenant
                    })
                })
        })
        .map(String::as_str)
        .collect();
    if shown.is_empty() {
        "(no group)".into()
    } else {
        shown.join("+")
    }
}

fn units(p: &Policy) -> BTreeSet<Vec<String>> {
    let mut u = BTreeSet::new();
    for g in super::real_groups(p) {
        u.insert(name_set(p, &nominal(p, g)));
    }
    for set in &p.classes.sets {
        if !set.is_empty() {
            u.insert(name_set(p, set));
        }
    }
    for e in &p.endpoints {
        u.insert(name_set(p, &e.groups));
    }
    u
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
    let mut all: BTreeSet<Vec<String>> = units(old);
    all.extend(units(new));
    // A unit whose groups do not all exist in a version has no members there: its flows
    // are all denied in that version (reported as opened or closed with the group).
    let units: Vec<Unit> = all
        .into_iter()
        .map(|u| {
            let o = to_ids(&u, &old_ids);
            let n = to_ids(&u, &new_ids);
            let shown = match &o {
                Some(_) => show(old, &u, &old_ids),
                None => show(new, &u, &new_ids),
            };
            Unit {
                shown,
                old: o,
                new: n,
            }
        })
        .collect();
    for s in &units {
        for d in &units {
            pair(old, new, s, d, &mut r);
        }
    }
    r
}

struct Unit {
    shown: String,
    old: Option<Vec<GroupId>>,
    new: Option<Vec<GroupId>>,
}

/// What one version decides between two units: per segment, the verdict and the rule's name.
fn decisions(
    p: &Policy,
    src: Option<&Vec<GroupId>>,
    dst: Option<&Vec<GroupId>>,
    other: &dyn Fn(Space) -> Cuts,
) -> Vec<(Space, u32, u32, Verdict, String)> {
    match (src, dst) {
        (Some(s), Some(d)) => sweep(p, s, d, Some(other))
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
        _ => Space::ALL
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

fn pair(old: &Policy, new: &Policy, s: &Unit, d: &Unit, r: &mut Report) {
    if (s.old.is_none() || d.old.is_none()) && (s.new.is_none() || d.new.is_none()) {
        return;
    }
    let app = |p: &Policy, a: &Option<Vec<GroupId>>, b: &Option<Vec<GroupId>>| match (a, b) {
        (Some(a), Some(b)) => applicable_ids(p, a, b),
        _ => Vec::new(),
    };
    let old_app = app(old, &s.old, &d.old);
    let new_app = app(new, &s.new, &d.new);
    // Each version's segments are cut by both versions' filter edges, so they are the same.
    let both_cuts = |space: Space| {
        let mut c = Cuts::new();
        add_cuts(old, &old_app, space, &mut c);
        add_cuts(new, &new_app, space, &mut c);
        c
    };
    let a = decisions(old, s.old.as_ref(), d.old.as_ref(), &both_cuts);
    let b = decisions(new, s.new.as_ref(), d.new.as_ref(), &both_cuts);
    let mut changes: Vec<FlowChange> = Vec::new();
    for (x, y) in a.iter().zip(&b) {
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
                from: s.shown.clone(),
                to: d.shown.clone(),
                space: x.0,
                ranges: vec![(x.1, x.2)],
                old: x.3,
                new: y.3,
                old_rules: vec![x.4.clone()],
                new_rules: vec![y.4.clone()],
            }),
        }
    }
    r.flows.extend(changes);
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

/// For people.
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
    section("membership changed", r.membership.clone());
    section(
        "flows opened",
        r.flows
            .iter()
            .filter(|c| c.new == Verdict::Allow)
            .map(describe)
            .collect(),
    );
    section(
        "flows closed",
        r.flows
            .iter()
            .filter(|c| c.new == Verdict::Deny)
            .map(describe)
            .collect(),
    );
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
        "membership": r.membership,
        "flows": flows,
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}
