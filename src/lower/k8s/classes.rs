//! Label classes of one tenant: the exact sets of groups a combination of pod labels puts a pod
//! in (membership by `select` only, as Kubernetes sees pods), each with the disjoint selectors
//! (`matchLabels` plus `NotIn` expressions) that select exactly its pods.
//!
//! This is the lowering's own computation, kept behind [`label_classes`] so that it can give way
//! to the model's label classes (`model::classify`, shared with `diff` and the lints) without
//! touching the rest of the backend: the interface is "per tenant, each class's group set and
//! its cells".
//!
//! The label space is cut by a decision tree. Keys are ranked once (used by more selectors
//! first, then by name) and each selector's labels kept in rank order. A node branches on the
//! lowest-ranked key among the next labels of its *live* selectors (neither satisfied nor
//! contradicted yet): one child per value a live selector wants for that key, and one `NotIn`
//! child for every other value and for the key's absence. A selector is satisfied when its last
//! label matches, contradicted when a child fixes one of its keys otherwise; a node without
//! live selectors is a leaf, a *cell*, on which the set of satisfied selectors is constant.
//! Cells are disjoint and cover every label set. N selectors on one key make N + 1 cells;
//! only selectors on independent keys multiply (K groups on K unrelated keys: 2^K classes, the
//! true number), which `budget` bounds.

use std::collections::{BTreeMap, HashMap};

use super::units::Sel;
use crate::model::{GroupId, GroupKind, Policy, TenantId};

/// One label class of a tenant.
#[derive(Clone, Debug)]
pub(super) struct LabelClass {
    /// Sorted, with the tenant's `any`. Never empty (pods no group selects are no class here).
    pub groups: Vec<GroupId>,
    /// A pod of the tenant is in the class if and only if it matches one of these.
    pub cells: Vec<Sel>,
}

enum Step {
    Eq(u32, u32),
    NotIn(u32, Vec<u32>),
}

struct Frame {
    key: u32,
    /// Live selectors whose next label is on `key`, grouped by value (ascending by text).
    by_val: Vec<(u32, Vec<(u32, u32)>)>,
    others: Vec<(u32, u32)>,
    next: usize,
    sat_len: usize,
    path_len: usize,
}

/// The label classes of tenant `t` (its internal groups with `select` labels), sorted by group
/// set; `None` when they need more than `budget` cells.
pub(super) fn label_classes(p: &Policy, t: TenantId, budget: usize) -> Option<Vec<LabelClass>> {
    let groups: Vec<GroupId> = p
        .groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g.tenant == t && g.kind == GroupKind::Internal && !g.selector.is_empty())
        .map(|(i, _)| GroupId(i as u32))
        .collect();
    // Intern keys and values.
    let mut key_ids: HashMap<&str, u32> = HashMap::new();
    let mut keys: Vec<&str> = Vec::new();
    let mut val_ids: HashMap<&str, u32> = HashMap::new();
    let mut vals: Vec<&str> = Vec::new();
    let mut sels: Vec<Vec<(u32, u32)>> = Vec::with_capacity(groups.len());
    for &g in &groups {
        let mut v = Vec::new();
        for (k, x) in &p.group(g).selector {
            let kid = *key_ids.entry(k.as_str()).or_insert_with(|| {
                keys.push(k.as_str());
                (keys.len() - 1) as u32
            });
            let vid = *val_ids.entry(x.as_str()).or_insert_with(|| {
                vals.push(x.as_str());
                (vals.len() - 1) as u32
            });
            v.push((kid, vid));
        }
        sels.push(v);
    }
    let mut freq = vec![0usize; keys.len()];
    for s in &sels {
        for &(k, _) in s {
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
    // Each selector's labels as (key rank, value), ascending.
    let ranked: Vec<Vec<(u32, u32)>> = sels
        .iter()
        .map(|s| {
            let mut v: Vec<(u32, u32)> = s.iter().map(|&(k, x)| (rank[k as usize], x)).collect();
            v.sort_unstable();
            v
        })
        .collect();
    let key_name = |r: u32| keys[order[r as usize] as usize];

    let mut leaves: Vec<(Vec<u32>, Sel)> = Vec::new();
    let mut sat: Vec<u32> = Vec::new();
    let mut path: Vec<Step> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut pending: Option<Vec<(u32, u32)>> =
        Some((0..ranked.len() as u32).map(|s| (s, 0)).collect());
    loop {
        if let Some(live) = pending.take() {
            let next_key = |&(s, pos): &(u32, u32)| ranked[s as usize][pos as usize].0;
            match live.iter().map(next_key).min() {
                None => {
                    if leaves.len() >= budget {
                        return None;
                    }
                    let mut cell = Sel::default();
                    for step in &path {
                        match step {
                            Step::Eq(k, v) => {
                                cell.labels.insert(
                                    key_name(*k).to_string(),
                                    vals[*v as usize].to_string(),
                                );
                            }
                            Step::NotIn(k, vs) => cell.not_in.push((
                                key_name(*k).to_string(),
                                vs.iter().map(|v| vals[*v as usize].to_string()).collect(),
                            )),
                        }
                    }
                    cell.not_in.sort();
                    let mut s = sat.clone();
                    s.sort_unstable();
                    leaves.push((s, cell));
                }
                Some(key) => {
                    let val = |&(s, pos): &(u32, u32)| ranked[s as usize][pos as usize].1;
                    let (mut with, others): (Vec<_>, Vec<_>) =
                        live.into_iter().partition(|x| next_key(x) == key);
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
                    stack.push(Frame {
                        key,
                        by_val,
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
            let mut vs: Vec<u32> = f.by_val.iter().map(|(v, _)| *v).collect();
            vs.sort_by(|a, b| vals[*a as usize].cmp(vals[*b as usize]));
            path.push(Step::NotIn(f.key, vs));
        }
        f.next += 1;
        pending = Some(live);
    }
    let any = p.tenant(t).any;
    let mut by_set: BTreeMap<Vec<GroupId>, Vec<Sel>> = BTreeMap::new();
    for (s, cell) in leaves {
        if s.is_empty() {
            continue;
        }
        let mut set: Vec<GroupId> = s.iter().map(|&i| groups[i as usize]).collect();
        set.push(any);
        set.sort_unstable();
        set.dedup();
        by_set.entry(set).or_default().push(cell);
    }
    Some(
        by_set
            .into_iter()
            .map(|(groups, mut cells)| {
                cells.sort();
                LabelClass { groups, cells }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(src: &str) -> Vec<(Vec<String>, Vec<Sel>)> {
        let c = crate::check_source(src);
        assert!(c.ok(), "{:?}", c.errors);
        let p = &c.policy;
        label_classes(p, TenantId(0), 1000)
            .unwrap()
            .into_iter()
            .map(|k| {
                let names = k
                    .groups
                    .iter()
                    .filter(|g| p.group(**g).kind != GroupKind::Any)
                    .map(|g| p.group(*g).name.clone())
                    .collect();
                (names, k.cells)
            })
            .collect()
    }

    /// Every label set over the keys and values the selectors use (plus absence and another
    /// value) is in exactly one cell, the cell of the class whose groups select it.
    #[test]
    fn cells_are_exact_and_disjoint() {
        let src = "tenant t { group a { select app=cart } group b { select app=cart, track=canary }
                   group c { select tier=web } group d { select app=db, tier=web } }";
        let c = crate::check_source(src);
        let p = &c.policy;
        let cls = label_classes(p, TenantId(0), 1000).unwrap();
        let dims: [(&str, &[&str]); 3] = [
            ("app", &["cart", "db", "other"]),
            ("track", &["canary", "other"]),
            ("tier", &["web", "other"]),
        ];
        let mut n = 0;
        for a in 0..=dims[0].1.len() {
            for b in 0..=dims[1].1.len() {
                for d in 0..=dims[2].1.len() {
                    let mut labels = BTreeMap::new();
                    for (i, pick) in [a, b, d].into_iter().enumerate() {
                        if let Some(v) = dims[i].1.get(pick) {
                            labels.insert(dims[i].0.to_string(), v.to_string());
                        }
                    }
                    let want: Vec<GroupId> = p
                        .groups
                        .iter()
                        .enumerate()
                        .filter(|(_, g)| {
                            g.kind == GroupKind::Internal
                                && g.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                        })
                        .map(|(i, _)| GroupId(i as u32))
                        .collect();
                    let hits: Vec<&LabelClass> = cls
                        .iter()
                        .filter(|k| k.cells.iter().any(|s| s.matches(&labels)))
                        .collect();
                    let cells: usize = cls
                        .iter()
                        .map(|k| k.cells.iter().filter(|s| s.matches(&labels)).count())
                        .sum();
                    if want.is_empty() {
                        assert!(hits.is_empty(), "{labels:?}");
                    } else {
                        assert_eq!(cells, 1, "{labels:?}");
                        let got: Vec<GroupId> = hits[0]
                            .groups
                            .iter()
                            .copied()
                            .filter(|g| p.group(*g).kind != GroupKind::Any)
                            .collect();
                        assert_eq!(got, want, "{labels:?}");
                    }
                    n += 1;
                }
            }
        }
        assert_eq!(n, 4 * 3 * 3);
    }

    #[test]
    fn disjoint_selectors_on_one_key_are_one_class_each() {
        let got = classes("tenant t { group a { select app=a } group b { select app=b } }");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, ["a"]);
        assert_eq!(
            got[0].1,
            vec![Sel::labels(&BTreeMap::from([("app".into(), "a".into())]))]
        );
    }

    #[test]
    fn nested_selectors_split_with_not_in() {
        let got = classes(
            "tenant t { group a { select app=cart } group b { select app=cart, track=canary } }",
        );
        assert_eq!(got.len(), 2);
        let a = &got[0];
        assert_eq!(a.0, ["a"]);
        assert_eq!(a.1.len(), 1);
        assert_eq!(
            a.1[0].not_in,
            vec![("track".to_string(), vec!["canary".to_string()])]
        );
        assert_eq!(got[1].0, ["a", "b"]);
    }

    #[test]
    fn the_budget_bounds_independent_keys() {
        let mut src = String::from("tenant t {");
        for i in 0..12 {
            src.push_str(&format!(" group g{i} {{ select k{i}=x }}"));
        }
        src.push_str(" }");
        let c = crate::check_source(&src);
        assert!(label_classes(&c.policy, TenantId(0), 4096).is_some());
        assert!(label_classes(&c.policy, TenantId(0), 4095).is_none());
    }
}
