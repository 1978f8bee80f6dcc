//! Address classes: the address space cut into ranges, each range labelled with the exact set
//! of groups its addresses belong to. Two addresses in the same class are indistinguishable to
//! the policy, so the nftables backend maps an address to its class with one interval-map
//! lookup and decides on (source class, destination class): the cost of classification does not
//! grow with the number of groups.
//!
//! Internal groups win over external ones: an address that any internal group contains is
//! never a member of an external group (ACI classifies learned endpoints into their EPG before
//! L3Out prefixes; Kubernetes `ipBlock` is for addresses outside the cluster).
//!
//! [`LabelClasses`] are the Kubernetes twin: per tenant (namespace), the exact sets of groups a
//! pod's labels can put it in, given every group's `select`, each with a witness label set and
//! its exact extent as `matchLabels` + `NotIn` cells (see [`label_cells`] for the algorithm).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{GroupId, GroupKind, Policy, TenantId};
use crate::net::Family;

/// One input range: addresses `lo..=hi` of `family` are in `group`.
#[derive(Clone, Copy, Debug)]
pub struct Range {
    pub family: Family,
    pub lo: u128,
    pub hi: u128,
    pub group: GroupId,
    pub external: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Classes {
    /// Class id to its sorted set of groups (with `any` groups). Class 0 is the empty set:
    /// addresses in no group.
    pub sets: Vec<Vec<GroupId>>,
    /// Disjoint ranges covering the whole IPv4 space, ascending: (lo, hi, class).
    pub v4: Vec<(u128, u128, u32)>,
    /// Same for IPv6.
    pub v6: Vec<(u128, u128, u32)>,
}

impl Classes {
    /// Partition the address space. `any_of` maps an internal group to its tenant's `any`.
    pub fn build(
        ranges: &[Range],
        kinds: &[GroupKind],
        any_of: &dyn Fn(GroupId) -> Option<GroupId>,
    ) -> Classes {
        let mut c = Classes {
            sets: vec![Vec::new()],
            v4: Vec::new(),
            v6: Vec::new(),
        };
        let mut ids: HashMap<Vec<GroupId>, u32> = HashMap::new();
        ids.insert(Vec::new(), 0);
        for family in [Family::V4, Family::V6] {
            let out = sweep(ranges, family, kinds, any_of, &mut c.sets, &mut ids);
            match family {
                Family::V4 => c.v4 = out,
                Family::V6 => c.v6 = out,
            }
        }
        c
    }

    pub fn table(&self, family: Family) -> &[(u128, u128, u32)] {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    pub fn class_of(&self, family: Family, addr: u128) -> u32 {
        let t = self.table(family);
        let i = t.partition_point(|&(_, hi, _)| hi < addr);
        t.get(i)
            .map_or(0, |&(lo, _, class)| if lo <= addr { class } else { 0 })
    }

    pub fn lookup(&self, family: Family, addr: u128) -> &[GroupId] {
        let class = self.class_of(family, addr);
        self.sets.get(class as usize).map_or(&[], |s| s.as_slice())
    }
}

fn sweep(
    ranges: &[Range],
    family: Family,
    kinds: &[GroupKind],
    any_of: &dyn Fn(GroupId) -> Option<GroupId>,
    sets: &mut Vec<Vec<GroupId>>,
    ids: &mut HashMap<Vec<GroupId>, u32>,
) -> Vec<(u128, u128, u32)> {
    // (position, +1/-1, group). An end event sits at hi + 1, or is absent at the top.
    let mut events: Vec<(u128, i8, GroupId)> = Vec::new();
    for r in ranges.iter().filter(|r| r.family == family) {
        events.push((r.lo, 1, r.group));
        if r.hi < family.max() {
            events.push((r.hi + 1, -1, r.group));
        }
    }
    events.sort_unstable_by_key(|&(pos, delta, g)| (pos, delta, g));
    let mut active: BTreeMap<GroupId, u32> = BTreeMap::new();
    let mut out: Vec<(u128, u128, u32)> = Vec::new();
    let mut pos: u128 = 0;
    let mut i = 0;
    let push = |lo: u128, hi: u128, class: u32, out: &mut Vec<(u128, u128, u32)>| {
        if let Some(last) = out.last_mut()
            && last.2 == class
            && last.1.checked_add(1) == Some(lo)
        {
            last.1 = hi;
            return;
        }
        out.push((lo, hi, class));
    };
    loop {
        // Apply every event at `pos`.
        while i < events.len() && events[i].0 == pos {
            let (_, delta, g) = events[i];
            if delta > 0 {
                *active.entry(g).or_insert(0) += 1;
            } else if let Some(n) = active.get_mut(&g) {
                *n -= 1;
                if *n == 0 {
                    active.remove(&g);
                }
            }
            i += 1;
        }
        let next = events.get(i).map(|e| e.0);
        let hi = match next {
            Some(n) => n - 1,
            None => family.max(),
        };
        let set = class_set(&active, kinds, any_of);
        let class = match ids.get(&set) {
            Some(&id) => id,
            None => {
                let id = sets.len() as u32;
                ids.insert(set.clone(), id);
                sets.push(set);
                id
            }
        };
        push(pos, hi, class, &mut out);
        match next {
            Some(n) => pos = n,
            None => break,
        }
    }
    out
}

fn class_set(
    active: &BTreeMap<GroupId, u32>,
    kinds: &[GroupKind],
    any_of: &dyn Fn(GroupId) -> Option<GroupId>,
) -> Vec<GroupId> {
    let internal: Vec<GroupId> = active
        .keys()
        .copied()
        .filter(|g| kinds.get(g.index()) == Some(&GroupKind::Internal))
        .collect();
    let mut set = if internal.is_empty() {
        active.keys().copied().collect::<Vec<_>>()
    } else {
        let mut s = internal.clone();
        s.extend(internal.iter().filter_map(|g| any_of(*g)));
        s
    };
    set.sort_unstable();
    set.dedup();
    set
}

/// At most this many cells (leaves of the search of [`label_cells`]) per tenant: a tenant
/// whose selectors combine into more is listed in [`LabelClasses::overflow`] instead.
pub const MAX_TENANT_CELLS: usize = 65_536;
/// At most this many cells for the whole policy.
pub const MAX_CELLS: usize = 1 << 20;
/// At most this many selector visits in one search (the work, as opposed to the output).
const MAX_VISITS: usize = 1 << 26;

/// One cell of a tenant's label space: the pods whose labels carry every `equal` pair and, for
/// every `not_in` key, none of its values (the key is absent or has another value: Kubernetes
/// `matchLabels` plus `NotIn` expressions, which also match pods without the key). Both lists
/// are sorted by key.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Cell {
    pub equal: Vec<(String, String)>,
    pub not_in: Vec<(String, Arc<[String]>)>,
}

impl Cell {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.equal.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self
                .not_in
                .iter()
                .all(|(k, vs)| labels.get(k).is_none_or(|v| !vs.contains(v)))
    }
}

/// One label class: the pods of a tenant whose labels put them in exactly `groups`.
#[derive(Clone, Debug)]
pub struct LabelClass {
    pub tenant: TenantId,
    /// Sorted, with the tenant's `any` when not empty. Empty: the pods no group selects.
    pub groups: Vec<GroupId>,
    /// The fewest labels that put a pod in this class: the union of its groups' selectors.
    pub witness: BTreeMap<String, String>,
    /// The exact extent: a pod of the tenant is in this class if and only if its labels match
    /// one of these cells. The cells of all classes of a tenant are disjoint and cover every
    /// label set.
    pub cells: Vec<Cell>,
}

/// Label classes, the Kubernetes twin of the address [`Classes`]: per tenant, every set of
/// groups that some set of pod labels selects exactly (membership rule 2: a group selects a
/// pod of its tenant when the pod carries every label of its `select`; `any` stands for every
/// pod some internal group selects). Groups without `select`, external groups and declared
/// endpoints play no part: Kubernetes sees pods only by their labels.
#[derive(Clone, Debug, Default)]
pub struct LabelClasses {
    /// Sorted by (tenant, groups).
    pub classes: Vec<LabelClass>,
    /// Tenants whose selectors combine into more than [`MAX_TENANT_CELLS`] cells (or the
    /// policy into more than [`MAX_CELLS`]): their classes are not listed.
    pub overflow: Vec<TenantId>,
    /// Per group, the classes it is in (ascending).
    pub by_group: Vec<Vec<u32>>,
}

impl LabelClasses {
    pub fn build(p: &Policy) -> LabelClasses {
        let mut per: Vec<Vec<GroupId>> = vec![Vec::new(); p.tenants.len()];
        for (gi, g) in p.groups.iter().enumerate() {
            if g.kind == GroupKind::Internal
                && !g.selector.is_empty()
                && let Some(v) = per.get_mut(g.tenant.index())
            {
                v.push(GroupId(gi as u32));
            }
        }
        let mut out = LabelClasses {
            classes: Vec::new(),
            overflow: Vec::new(),
            by_group: vec![Vec::new(); p.groups.len()],
        };
        let mut left = MAX_CELLS;
        for (ti, gs) in per.iter().enumerate() {
            let tid = TenantId(ti as u32);
            let sels: Vec<&BTreeMap<String, String>> =
                gs.iter().map(|g| &p.group(*g).selector).collect();
            let Some(leaves) = label_cells(&sels, MAX_TENANT_CELLS.min(left)) else {
                out.overflow.push(tid);
                continue;
            };
            left = left.saturating_sub(leaves.len());
            let any = p.tenant(tid).any;
            let mut ids: HashMap<Vec<GroupId>, usize> = HashMap::new();
            let mut classes: Vec<LabelClass> = Vec::new();
            for leaf in leaves {
                let mut groups: Vec<GroupId> = leaf.sat.iter().map(|&i| gs[i]).collect();
                if !groups.is_empty() {
                    groups.push(any);
                }
                groups.sort_unstable();
                groups.dedup();
                match ids.get(&groups) {
                    Some(&i) => classes[i].cells.push(leaf.cell),
                    None => {
                        let mut witness = BTreeMap::new();
                        for &i in &leaf.sat {
                            for (k, v) in sels[i] {
                                witness.insert(k.clone(), v.clone());
                            }
                        }
                        ids.insert(groups.clone(), classes.len());
                        classes.push(LabelClass {
                            tenant: tid,
                            groups,
                            witness,
                            cells: vec![leaf.cell],
                        });
                    }
                }
            }
            classes.sort_by(|a, b| a.groups.cmp(&b.groups));
            for c in classes {
                let id = out.classes.len() as u32;
                for g in &c.groups {
                    if let Some(v) = out.by_group.get_mut(g.index()) {
                        v.push(id);
                    }
                }
                out.classes.push(c);
            }
        }
        out
    }

    /// Was the label view of this tenant enumerated?
    pub fn complete(&self, t: TenantId) -> bool {
        !self.overflow.contains(&t)
    }

    /// The classes of one tenant (a contiguous run: classes are sorted by tenant).
    pub fn of_tenant(&self, t: TenantId) -> &[LabelClass] {
        let a = self.classes.partition_point(|c| c.tenant < t);
        let b = self.classes.partition_point(|c| c.tenant <= t);
        &self.classes[a..b]
    }

    /// The class of a pod of tenant `t` with these labels, found by its cells.
    pub fn class_of(&self, t: TenantId, labels: &BTreeMap<String, String>) -> Option<&LabelClass> {
        self.of_tenant(t)
            .iter()
            .find(|c| c.cells.iter().any(|cell| cell.matches(labels)))
    }
}

/// The groups of tenant `t` that select a pod with these labels, straight from the selectors
/// (with `any` when there is one): what [`LabelClasses::class_of`] must agree with.
pub fn select_groups(p: &Policy, t: TenantId, labels: &BTreeMap<String, String>) -> Vec<GroupId> {
    let mut v: Vec<GroupId> = p
        .groups
        .iter()
        .enumerate()
        .filter(|(_, g)| {
            g.tenant == t
                && g.kind == GroupKind::Internal
                && !g.selector.is_empty()
                && g.selector.iter().all(|(k, val)| labels.get(k) == Some(val))
        })
        .map(|(i, _)| GroupId(i as u32))
        .collect();
    if !v.is_empty() {
        v.push(p.tenant(t).any);
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// Label pairs as ids, or (selector, position) pairs of the search.
type Pairs = Vec<(u32, u32)>;

/// A leaf of [`label_cells`]: a cell and the selectors (indices into the input) its pods
/// carry every label of, ascending.
#[derive(Clone, Debug)]
pub struct Leaf {
    pub sat: Vec<usize>,
    pub cell: Cell,
}

/// One step on the path from the root of the search to a cell.
enum Step {
    Eq(u32, u32),
    NotIn(u32, Arc<[String]>),
}

/// A node of the search whose children are still to visit.
struct Frame {
    /// The key branched on (its rank).
    key: u32,
    /// The live selectors whose next label is on `key`, by value (ascending by value text).
    by_val: Vec<(u32, Vec<(u32, u32)>)>,
    /// The values of `by_val`, for the `NotIn` child.
    values: Arc<[String]>,
    /// The other live selectors.
    others: Vec<(u32, u32)>,
    /// The next child: `0..by_val.len()` a value, `by_val.len()` the `NotIn` child.
    next: usize,
    sat_len: usize,
    path_len: usize,
}

/// Cut the label space of some equality selectors into disjoint cells on which the set of
/// satisfied selectors is constant; `None` when that takes more than `budget` cells.
///
/// The search branches on one key at a time: at each node, the key of highest rank among the
/// labels the live selectors (neither satisfied nor contradicted yet) still need, with one child
/// per value some live selector wants for it and one `NotIn` child for every other value and
/// for the key's absence. A selector is satisfied when its last label is matched and
/// contradicted when a child fixes one of its keys otherwise; a node with no live selector is a
/// leaf: a cell. Keys are ranked by how many selectors use them (then by name), so the keys that
/// split the selectors most are decided first and the live sets shrink fast; each selector's
/// labels are kept in rank order, so its next label is always on its lowest remaining key and a
/// node finds its key in one pass over its live selectors.
///
/// Complexity: O(S log S) to rank and sort the S selectors' labels, plus O(Σ live selectors
/// over the nodes) for the search, each node costing a sort of its live selectors by value.
/// There are fewer nodes than twice the cells. The cells are exactly the distinct restrictions
/// of label sets to the keys the search had to look at, so their number is the output size: N
/// selectors on one key (`app=a0` ... `app=aN`) give N + 1 cells; nested selectors (`app=cart`
/// and `app=cart, track=canary`) one more cell per nesting; only selectors over independent
/// keys multiply (K groups on K unrelated keys make 2^K classes, the real number of label
/// combinations with different memberships), which is what `budget` bounds. Label sets are never
/// enumerated.
pub fn label_cells(selectors: &[&BTreeMap<String, String>], budget: usize) -> Option<Vec<Leaf>> {
    let mut key_ids: HashMap<&str, u32> = HashMap::new();
    let mut keys: Vec<&str> = Vec::new();
    let mut val_ids: HashMap<&str, u32> = HashMap::new();
    let mut vals: Vec<&str> = Vec::new();
    let mut distinct: HashMap<Vec<(u32, u32)>, usize> = HashMap::new();
    // Distinct selectors as (key, value) ids, each with the inputs that wrote it.
    let mut sels: Vec<(Pairs, Vec<usize>)> = Vec::new();
    let mut always: Vec<usize> = Vec::new();
    for (i, s) in selectors.iter().enumerate() {
        if s.is_empty() {
            always.push(i);
            continue;
        }
        let mut pairs = Vec::with_capacity(s.len());
        for (k, v) in s.iter() {
            let kid = *key_ids.entry(k.as_str()).or_insert_with(|| {
                keys.push(k.as_str());
                (keys.len() - 1) as u32
            });
            let vid = *val_ids.entry(v.as_str()).or_insert_with(|| {
                vals.push(v.as_str());
                (vals.len() - 1) as u32
            });
            pairs.push((kid, vid));
        }
        match distinct.get(&pairs) {
            Some(&d) => sels[d].1.push(i),
            None => {
                distinct.insert(pairs.clone(), sels.len());
                sels.push((pairs, vec![i]));
            }
        }
    }
    // Rank keys: used by more selectors first, then by name.
    let mut freq = vec![0usize; keys.len()];
    for (pairs, _) in &sels {
        for &(k, _) in pairs {
            freq[k as usize] += 1;
        }
    }
    let mut order: Vec<u32> = (0..keys.len() as u32).collect();
    order.sort_by(|&a, &b| {
        freq[b as usize]
            .cmp(&freq[a as usize])
            .then_with(|| keys[a as usize].cmp(keys[b as usize]))
    });
    let mut rank = vec![0u32; keys.len()];
    for (r, &k) in order.iter().enumerate() {
        rank[k as usize] = r as u32;
    }
    let ranked: Vec<Vec<(u32, u32)>> = sels
        .iter()
        .map(|(pairs, _)| {
            let mut v: Vec<(u32, u32)> =
                pairs.iter().map(|&(k, x)| (rank[k as usize], x)).collect();
            v.sort_unstable();
            v
        })
        .collect();
    let key_name = |r: u32| keys[order[r as usize] as usize];

    let mut leaves: Vec<Leaf> = Vec::new();
    let mut sat: Vec<u32> = Vec::new();
    let mut path: Vec<Step> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut visits = 0usize;
    let mut pending: Option<Vec<(u32, u32)>> =
        Some((0..sels.len() as u32).map(|s| (s, 0)).collect());
    loop {
        if let Some(live) = pending.take() {
            visits += live.len() + 1;
            if visits > MAX_VISITS {
                return None;
            }
            match live
                .iter()
                .map(|&(s, pos)| ranked[s as usize][pos as usize].0)
                .min()
            {
                None => {
                    if leaves.len() >= budget {
                        return None;
                    }
                    let mut s: Vec<usize> = always.clone();
                    for &d in &sat {
                        s.extend(&sels[d as usize].1);
                    }
                    s.sort_unstable();
                    let mut cell = Cell::default();
                    for step in &path {
                        match step {
                            Step::Eq(k, v) => cell
                                .equal
                                .push((key_name(*k).to_string(), vals[*v as usize].to_string())),
                            Step::NotIn(k, vs) => {
                                cell.not_in.push((key_name(*k).to_string(), vs.clone()))
                            }
                        }
                    }
                    cell.equal.sort();
                    cell.not_in.sort_by(|a, b| a.0.cmp(&b.0));
                    leaves.push(Leaf { sat: s, cell });
                }
                Some(key) => {
                    let (mut with, others): (Pairs, Pairs) = live
                        .into_iter()
                        .partition(|&(s, pos)| ranked[s as usize][pos as usize].0 == key);
                    let val = |&(s, pos): &(u32, u32)| ranked[s as usize][pos as usize].1;
                    with.sort_by(|a, b| {
                        vals[val(a) as usize]
                            .cmp(vals[val(b) as usize])
                            .then(a.cmp(b))
                    });
                    let mut by_val: Vec<(u32, Vec<(u32, u32)>)> = Vec::new();
                    for x in with {
                        match by_val.last_mut() {
                            Some((v, xs)) if *v == val(&x) => xs.push(x),
                            _ => by_val.push((val(&x), vec![x])),
                        }
                    }
                    let values: Arc<[String]> = by_val
                        .iter()
                        .map(|(v, _)| vals[*v as usize].to_string())
                        .collect();
                    stack.push(Frame {
                        key,
                        by_val,
                        values,
                        others,
                        next: 0,
                        sat_len: sat.len(),
                        path_len: path.len(),
                    });
                }
            }
        }
        let Some(f) = stack.last_mut() else { break };
        if f.next > f.by_val.len() {
            stack.pop();
            continue;
        }
        sat.truncate(f.sat_len);
        path.truncate(f.path_len);
        let mut live = f.others.clone();
        if let Some((v, xs)) = f.by_val.get(f.next) {
            path.push(Step::Eq(f.key, *v));
            for &(s, pos) in xs {
                if pos as usize + 1 == ranked[s as usize].len() {
                    sat.push(s);
                } else {
                    live.push((s, pos + 1));
                }
            }
        } else {
            path.push(Step::NotIn(f.key, f.values.clone()));
        }
        f.next += 1;
        pending = Some(live);
    }
    Some(leaves)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_wins_and_space_is_covered() {
        let kinds = [GroupKind::Internal, GroupKind::External, GroupKind::Any];
        let any = |g: GroupId| (g == GroupId(0)).then_some(GroupId(2));
        let ranges = [
            Range {
                family: Family::V4,
                lo: 10,
                hi: 19,
                group: GroupId(0),
                external: false,
            },
            Range {
                family: Family::V4,
                lo: 0,
                hi: u32::MAX as u128,
                group: GroupId(1),
                external: true,
            },
        ];
        let c = Classes::build(&ranges, &kinds, &any);
        assert_eq!(c.lookup(Family::V4, 5), &[GroupId(1)]);
        assert_eq!(c.lookup(Family::V4, 15), &[GroupId(0), GroupId(2)]);
        assert_eq!(c.lookup(Family::V4, 25), &[GroupId(1)]);
        assert!(c.lookup(Family::V6, 25).is_empty());
        assert_eq!(c.v4.len(), 3);
        assert_eq!(c.v6, vec![(0, u128::MAX, 0)]);
    }
}

#[cfg(test)]
mod label_tests {
    use super::*;

    fn sel(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn satisfied(
        sels: &[BTreeMap<String, String>],
        labels: &BTreeMap<String, String>,
    ) -> Vec<usize> {
        (0..sels.len())
            .filter(|&i| sels[i].iter().all(|(k, v)| labels.get(k) == Some(v)))
            .collect()
    }

    /// Every label set over the selectors' keys and values (plus one unused value and the
    /// key's absence) lands in exactly one cell, whose satisfied selectors are right.
    fn exhaustive(sels: &[BTreeMap<String, String>]) -> usize {
        let refs: Vec<&BTreeMap<String, String>> = sels.iter().collect();
        let leaves = label_cells(&refs, 1 << 16).unwrap_or_default();
        let mut keys: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
        for s in sels {
            for (k, v) in s {
                let e = keys
                    .entry(k.clone())
                    .or_insert_with(|| vec![None, Some("zz".into())]);
                if !e.contains(&Some(v.clone())) {
                    e.push(Some(v.clone()));
                }
            }
        }
        let keys: Vec<(String, Vec<Option<String>>)> = keys.into_iter().collect();
        let mut idx = vec![0usize; keys.len()];
        let mut n = 0;
        loop {
            let labels: BTreeMap<String, String> = keys
                .iter()
                .zip(&idx)
                .filter_map(|((k, vs), &i)| vs[i].clone().map(|v| (k.clone(), v)))
                .collect();
            let hits: Vec<&Leaf> = leaves.iter().filter(|l| l.cell.matches(&labels)).collect();
            assert_eq!(hits.len(), 1, "{labels:?} in {} cells", hits.len());
            assert_eq!(hits[0].sat, satisfied(sels, &labels), "{labels:?}");
            n += 1;
            let mut d = 0;
            loop {
                if d == idx.len() {
                    return n;
                }
                idx[d] += 1;
                if idx[d] < keys[d].1.len() {
                    break;
                }
                idx[d] = 0;
                d += 1;
            }
        }
    }

    #[test]
    fn cells_partition_the_label_space() {
        // The canary example, shared keys, independent keys, duplicates, many values.
        exhaustive(&[
            sel(&[("app", "client")]),
            sel(&[("app", "cart")]),
            sel(&[("app", "cart"), ("track", "canary")]),
        ]);
        exhaustive(&[
            sel(&[("app", "shop"), ("tier", "web")]),
            sel(&[("app", "shop"), ("tier", "app")]),
            sel(&[("app", "shop")]),
            sel(&[("tier", "web")]),
            sel(&[("app", "shop"), ("tier", "web")]),
        ]);
        exhaustive(&[
            sel(&[("a", "1")]),
            sel(&[("b", "1")]),
            sel(&[("c", "1")]),
            sel(&[("a", "1"), ("b", "2"), ("c", "1")]),
        ]);
        // Pseudo-random selectors over 4 keys and 3 values.
        let mut x: u64 = 0x9e37;
        for _ in 0..40 {
            let mut sels = Vec::new();
            for _ in 0..(x % 6 + 1) {
                let mut s = BTreeMap::new();
                for k in ["a", "b", "c", "d"] {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    if (x >> 40).is_multiple_of(3) {
                        s.insert(k.to_string(), ((x >> 50) % 3).to_string());
                    }
                }
                if s.is_empty() {
                    s.insert("a".into(), "0".into());
                }
                sels.push(s);
            }
            exhaustive(&sels);
        }
    }

    #[test]
    fn one_key_many_values_is_linear() {
        let sels: Vec<BTreeMap<String, String>> = (0..10_000)
            .map(|i| sel(&[("app", &format!("a{i}"))]))
            .collect();
        let refs: Vec<&BTreeMap<String, String>> = sels.iter().collect();
        let leaves = label_cells(&refs, 1 << 16).unwrap_or_default();
        assert_eq!(leaves.len(), 10_001);
        // Independent keys multiply; the budget stops the search.
        let indep: Vec<BTreeMap<String, String>> =
            (0..20).map(|i| sel(&[(&format!("k{i}"), "1")])).collect();
        let refs: Vec<&BTreeMap<String, String>> = indep.iter().collect();
        assert!(label_cells(&refs, 1 << 16).is_none());
        assert_eq!(
            label_cells(&refs[..10], 1 << 16).map(|l| l.len()),
            Some(1024)
        );
    }
}
