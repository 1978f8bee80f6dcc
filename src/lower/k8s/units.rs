//! Who the NetworkPolicies are about: *units* of pods, each selected exactly by label
//! selectors and standing for one set of groups the evaluator decides on, and units of
//! addresses outside the cluster, each a set of `ipBlock`s.
//!
//! - **Pod units.** By default one per internal group with `select` labels: its pods are the
//!   group's, and the evaluator is asked about a member of that group only (the group and its
//!   tenant's `any`). A pod that several groups select gets the union of their policies, which
//!   is the evaluator's verdict as long as no deny of one of its groups has to take away what
//!   another of its groups allows. Where that can happen (selectors that overlap, in a tenant
//!   whose overlapping groups take part in a contract with a deny that the NetworkPolicies must
//!   carry), the tenant's units are its *label classes* instead: the exact sets of groups a
//!   combination of labels puts a pod in, each selected exactly by `matchLabels` and `NotIn`
//!   expressions, so every pod is in exactly one unit and gets exactly its verdict.
//! - **Address units.** The address classes of the policy (the checked model's
//!   [`crate::model::classify::Classes`]) that hold external groups only: every address of one
//!   is in exactly the same external groups. Each becomes `ipBlock` peers (a prefix of its
//!   groups and, as `except`, every part of that prefix outside the class), so overlapping
//!   external groups and the fabric's own addresses are told apart exactly.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use crate::model::{GroupId, GroupKind, Policy, TenantId};
use crate::net::{Cidr, Family, range_to_cidrs};

/// One label selector: every label of `labels`, and for each `not_in` key none of its values
/// (which a pod without the key also satisfies: Kubernetes' `NotIn`). Sorted by key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(super) struct Sel {
    pub labels: BTreeMap<String, String>,
    pub not_in: Vec<(String, Vec<String>)>,
}

impl Sel {
    pub(super) fn labels(labels: &BTreeMap<String, String>) -> Sel {
        Sel {
            labels: labels.clone(),
            not_in: Vec::new(),
        }
    }

    pub(super) fn to_k8s(&self) -> LabelSelector {
        LabelSelector {
            match_labels: (!self.labels.is_empty()).then(|| self.labels.clone()),
            match_expressions: (!self.not_in.is_empty()).then(|| {
                self.not_in
                    .iter()
                    .map(|(k, vs)| LabelSelectorRequirement {
                        key: k.clone(),
                        operator: "NotIn".into(),
                        values: Some(vs.clone()),
                    })
                    .collect()
            }),
        }
    }

    #[cfg(test)]
    pub(super) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self
                .not_in
                .iter()
                .all(|(k, vs)| labels.get(k).is_none_or(|v| !vs.contains(v)))
    }
}

/// Pods of one namespace, selected exactly.
#[derive(Clone, Debug)]
pub(super) struct PodUnit {
    pub tenant: TenantId,
    /// The groups the evaluator sees for these pods: sorted, `any` included.
    pub groups: Vec<GroupId>,
    /// A pod is in the unit when it matches one of these (disjoint) selectors.
    pub cells: Vec<Sel>,
    /// The readable names of the unit's NetworkPolicies, one per cell (made unique later).
    pub names: Vec<String>,
}

/// Addresses outside the cluster that are in exactly `groups` (external groups only).
#[derive(Clone, Debug)]
pub(super) struct AddrUnit {
    pub groups: Vec<GroupId>,
    /// `ipBlock`s: a prefix and the parts of it outside the unit.
    pub blocks: Vec<(Cidr, Vec<Cidr>)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum UnitId {
    Pods(u32),
    Addrs(u32),
}

#[derive(Debug, Default)]
pub(super) struct Units {
    pub pods: Vec<PodUnit>,
    pub addrs: Vec<AddrUnit>,
    /// Per group: the units whose members it holds.
    of_group: Vec<Vec<UnitId>>,
}

impl Units {
    pub(super) fn new(pods: Vec<PodUnit>, addrs: Vec<AddrUnit>, groups: usize) -> Units {
        let mut of_group = vec![Vec::new(); groups];
        for (i, u) in pods.iter().enumerate() {
            for g in &u.groups {
                if let Some(v) = of_group.get_mut(g.index()) {
                    v.push(UnitId::Pods(i as u32));
                }
            }
        }
        for (i, u) in addrs.iter().enumerate() {
            for g in &u.groups {
                if let Some(v) = of_group.get_mut(g.index()) {
                    v.push(UnitId::Addrs(i as u32));
                }
            }
        }
        Units {
            pods,
            addrs,
            of_group,
        }
    }

    /// The units with members of `g`.
    pub(super) fn of(&self, g: GroupId) -> &[UnitId] {
        self.of_group.get(g.index()).map_or(&[], Vec::as_slice)
    }

    pub(super) fn groups(&self, u: UnitId) -> &[GroupId] {
        match u {
            UnitId::Pods(i) => self.pods.get(i as usize).map_or(&[], |u| &u.groups),
            UnitId::Addrs(i) => self.addrs.get(i as usize).map_or(&[], |u| &u.groups),
        }
    }
}

/// The member set the evaluator sees for a pod of exactly this group: the group and its
/// tenant's `any`.
pub(super) fn nominal(p: &Policy, g: GroupId) -> Vec<GroupId> {
    crate::analysis::nominal(p, g)
}

/// One pod unit per internal group with labels.
pub(super) fn group_units(p: &Policy, tenants: impl Fn(TenantId) -> bool) -> Vec<PodUnit> {
    p.groups
        .iter()
        .enumerate()
        .filter(|(_, g)| {
            g.kind == GroupKind::Internal && !g.selector.is_empty() && tenants(g.tenant)
        })
        .map(|(i, g)| PodUnit {
            tenant: g.tenant,
            groups: nominal(p, GroupId(i as u32)),
            cells: vec![Sel::labels(&g.selector)],
            names: vec![super::names::group_policy_name(&g.name)],
        })
        .collect()
}

/// Two `matchLabels` selectors that some set of labels satisfies both: no key with two values.
pub(super) fn compatible(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> bool {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    small
        .iter()
        .all(|(k, v)| large.get(k).is_none_or(|w| w == v))
}

/// For each of `of_interest` (groups with labels), another group with labels of its tenant
/// whose selector overlaps it (some pod is in both), if any. Indexed by each group's first
/// label so that disjoint selectors on one key (`app=a`, `app=b`, ...) cost nothing.
pub(super) fn overlapping(p: &Policy, of_interest: &[GroupId]) -> Vec<(GroupId, GroupId)> {
    // Per (tenant, key): value -> groups, and the groups without the key.
    let mut with: HashMap<(TenantId, &str), HashMap<&str, Vec<GroupId>>> = HashMap::new();
    let mut by_tenant: HashMap<TenantId, Vec<GroupId>> = HashMap::new();
    for (i, g) in p.groups.iter().enumerate() {
        if g.kind != GroupKind::Internal || g.selector.is_empty() {
            continue;
        }
        let id = GroupId(i as u32);
        by_tenant.entry(g.tenant).or_default().push(id);
        for (k, v) in &g.selector {
            with.entry((g.tenant, k.as_str()))
                .or_default()
                .entry(v.as_str())
                .or_default()
                .push(id);
        }
    }
    // Per (tenant, key): the groups without the key, found once.
    let mut lacking: HashMap<(TenantId, &str), Vec<GroupId>> = HashMap::new();
    let mut out = Vec::new();
    for &g in of_interest {
        let grp = p.group(g);
        let Some((k, v)) = grp.selector.iter().next() else {
            continue;
        };
        let same: &[GroupId] = with
            .get(&(grp.tenant, k.as_str()))
            .and_then(|m| m.get(v.as_str()))
            .map_or(&[], Vec::as_slice);
        let without = lacking.entry((grp.tenant, k.as_str())).or_insert_with(|| {
            by_tenant
                .get(&grp.tenant)
                .into_iter()
                .flatten()
                .copied()
                .filter(|h| !p.group(*h).selector.contains_key(k))
                .collect()
        });
        if let Some(h) = same
            .iter()
            .chain(without.iter())
            .find(|&&h| h != g && compatible(&grp.selector, &p.group(h).selector))
        {
            out.push((g, *h));
        }
    }
    out
}

/// Keep the prefixes no other prefix of the list contains; sorted.
pub(super) fn minimal(mut v: Vec<Cidr>) -> Vec<Cidr> {
    // Containing prefixes sort before the prefixes they contain (same family, lower or equal
    // first address, shorter length); prefixes are nested or disjoint, so comparing with the
    // last kept one is enough.
    v.sort_unstable_by_key(|c| (c.family, c.first(), c.len));
    let mut out: Vec<Cidr> = Vec::with_capacity(v.len());
    for c in v {
        if out.last().is_some_and(|k| k.contains(&c)) {
            continue;
        }
        out.push(c);
    }
    out
}

/// The prefixes that hold an external group's addresses: its own, and its endpoints'.
fn group_prefixes(p: &Policy, g: GroupId) -> Vec<Cidr> {
    let grp = p.group(g);
    minimal(
        grp.nets
            .iter()
            .map(|n| n.cidr)
            .chain(
                grp.endpoints
                    .iter()
                    .flat_map(|e| p.endpoint(*e).addrs.iter().copied()),
            )
            .collect(),
    )
}

/// The address units: one per address class of external groups only.
pub(super) fn addr_units(p: &Policy) -> Vec<AddrUnit> {
    let cls = &p.classes;
    let external: Vec<bool> = cls
        .sets
        .iter()
        .map(|s| {
            !s.is_empty()
                && s.iter().all(|g| {
                    p.groups
                        .get(g.index())
                        .is_some_and(|x| x.kind == GroupKind::External)
                })
        })
        .collect();
    // Class -> its ranges, per family, ascending.
    let mut extent: BTreeMap<u32, Vec<(Family, u128, u128)>> = BTreeMap::new();
    for (family, table) in [(Family::V4, &cls.v4), (Family::V6, &cls.v6)] {
        for &(lo, hi, c) in table.iter() {
            if external.get(c as usize) == Some(&true) {
                extent.entry(c).or_default().push((family, lo, hi));
            }
        }
    }
    let mut prefixes: HashMap<GroupId, Vec<Cidr>> = HashMap::new();
    let mut out = Vec::new();
    for (c, ranges) in extent {
        let Some(groups) = cls.sets.get(c as usize) else {
            continue;
        };
        // The prefixes common to every group of the class: the smaller of each nested pair.
        let mut cover: Option<Vec<Cidr>> = None;
        for g in groups {
            let mine = prefixes
                .entry(*g)
                .or_insert_with(|| group_prefixes(p, *g))
                .clone();
            cover = Some(match cover {
                None => mine,
                Some(cur) => {
                    let mut both = Vec::new();
                    for a in &cur {
                        for b in &mine {
                            if a.contains(b) {
                                both.push(*b);
                            } else if b.contains(a) {
                                both.push(*a);
                            }
                        }
                    }
                    minimal(both)
                }
            });
        }
        let mut blocks = Vec::new();
        for n in cover.unwrap_or_default() {
            let (first, last) = (n.first(), n.last());
            // The class's ranges inside `n`; the rest of `n` is the `except` list.
            let mut except = Vec::new();
            let mut cur = Some(first);
            let mut inside = false;
            for &(f, lo, hi) in &ranges {
                if f != n.family || hi < first || lo > last {
                    continue;
                }
                inside = true;
                let (lo, hi) = (lo.max(first), hi.min(last));
                if let Some(c) = cur
                    && lo > c
                {
                    except.extend(range_to_cidrs(n.family, c, lo - 1));
                }
                cur = hi.checked_add(1).filter(|&x| x <= last);
            }
            if !inside {
                continue;
            }
            if let Some(c) = cur {
                except.extend(range_to_cidrs(n.family, c, last));
            }
            blocks.push((n, except));
        }
        if !blocks.is_empty() {
            out.push(AddrUnit {
                groups: groups.clone(),
                blocks,
            });
        }
    }
    out.sort_by(|a, b| a.groups.cmp(&b.groups));
    out
}

/// The internal groups with labels that `any` of a tenant stands for, or the group itself.
pub(super) fn pod_groups(p: &Policy, g: GroupId) -> Vec<GroupId> {
    let grp = p.group(g);
    match grp.kind {
        GroupKind::Internal => vec![g],
        GroupKind::Any => p.internal_groups(grp.tenant).collect(),
        GroupKind::External => Vec::new(),
    }
}
