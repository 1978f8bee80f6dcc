//! Address classes: the address space cut into ranges, each range labelled with the exact set
//! of groups its addresses belong to. Two addresses in the same class are indistinguishable to
//! the policy, so the nftables backend maps an address to its class with one interval-map
//! lookup and decides on (source class, destination class): the cost of classification does not
//! grow with the number of groups.
//!
//! Internal groups win over external ones: an address that any internal group contains is
//! never a member of an external group (ACI classifies learned endpoints into their EPG before
//! L3Out prefixes; Kubernetes `ipBlock` is for addresses outside the cluster).

use std::collections::{BTreeMap, HashMap};

use super::{GroupId, GroupKind};
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
