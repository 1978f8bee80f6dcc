//! What the evaluator allows from one set of groups to another, as NetworkPolicy ports.
//!
//! This is the only place the Kubernetes lowering asks for verdicts, and it asks the evaluator
//! through the flow-space segmentation of [`crate::analysis`] (`sweep`: the port space of each
//! protocol cut at the edges of the filter entries that apply, one evaluator decision per
//! segment), exactly as the nftables backend fills its verdict maps. Nothing here re-derives a
//! verdict from subjects: denies, permits, the intra-group default and isolation are already
//! resolved in the decisions. The segmentation is used through [`FlowSpace::allowed`] only, so
//! that moving it (into one flow-space module beside the evaluator) touches this file alone.

use std::collections::HashMap;
use std::rc::Rc;

use crate::analysis::{self, Space};
use crate::eval::{self, Reason, Verdict};
use crate::model::{Action, ContractId, GroupId, Policy};

/// A transport protocol NetworkPolicy can match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum L4 {
    Tcp,
    Udp,
    Sctp,
}

impl L4 {
    pub(super) fn as_k8s(self) -> &'static str {
        match self {
            L4::Tcp => "TCP",
            L4::Udp => "UDP",
            L4::Sctp => "SCTP",
        }
    }
}

/// The ports of a rule. `All` sorts first.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Ports {
    /// Every protocol and port: the rule has no `ports`.
    All,
    /// Per protocol, sorted: `None` is every port of the protocol, else an inclusive range.
    Some(Vec<(L4, Option<(u16, u16)>)>),
}

/// What the evaluator allows between two group sets, as NetworkPolicy can say it.
#[derive(Clone, Debug, Default)]
pub(super) struct Allowed {
    /// `None`: nothing NetworkPolicy can express is allowed.
    pub ports: Option<Ports>,
    /// The evaluator allows flows of other IP protocols (GRE, ...) that the ports cannot carry:
    /// NetworkPolicy can say "every protocol" or "these TCP, UDP and SCTP ports", nothing
    /// between, so Kubernetes denies them (fails closed), and ICMP with them. (ICMP allowed by
    /// ICMP entries alone is the subject's own warning, W010.)
    pub lost_other: bool,
    /// The deny subjects that decided a denied segment (contract, subject index), sorted.
    pub denies: Vec<(ContractId, usize)>,
}

impl Allowed {
    fn from_segments(segs: &[analysis::Seg]) -> Allowed {
        let mut per: [Vec<(u32, u32)>; 3] = Default::default();
        let mut other = false;
        let mut icmp: Vec<u32> = Vec::new();
        let mut icmp6: Vec<u32> = Vec::new();
        let mut denies: Vec<(ContractId, usize)> = Vec::new();
        for s in segs {
            if s.decision.verdict != Verdict::Allow {
                if let Reason::Subject(m) = s.decision.reason {
                    denies.push((m.contract, m.subject));
                }
                continue;
            }
            match s.space {
                Space::Tcp => analysis::push_range(&mut per[0], s.lo, s.hi),
                Space::Udp => analysis::push_range(&mut per[1], s.lo, s.hi),
                Space::Sctp => analysis::push_range(&mut per[2], s.lo, s.hi),
                Space::Icmp => icmp.extend(s.lo..=s.hi),
                Space::Icmpv6 => icmp6.extend(s.lo..=s.hi),
                Space::Other => other = true,
            }
        }
        denies.sort_unstable();
        denies.dedup();
        let full = |r: &Vec<(u32, u32)>| r.as_slice() == [(1, 65535)];
        let requests = |got: &[u32], want: &[u8]| want.iter().all(|t| got.contains(&(*t as u32)));
        let all = per.iter().all(full)
            && other
            && requests(&icmp, eval::ICMP_REQUESTS)
            && requests(&icmp6, eval::ICMPV6_REQUESTS);
        if all {
            return Allowed {
                ports: Some(Ports::All),
                denies,
                ..Allowed::default()
            };
        }
        let mut ports = Vec::new();
        for (l4, r) in [L4::Tcp, L4::Udp, L4::Sctp].into_iter().zip(&per) {
            if full(r) {
                ports.push((l4, None));
                continue;
            }
            for &(lo, hi) in r {
                ports.push((l4, Some((lo.clamp(1, 65535) as u16, hi.min(65535) as u16))));
            }
        }
        Allowed {
            ports: (!ports.is_empty()).then_some(Ports::Some(ports)),
            lost_other: other,
            denies,
        }
    }
}

/// The verdicts of one policy between group sets, memoised: between two group sets the
/// evaluator's verdicts depend only on the contracts that apply and on whether the ends share
/// an open group, so pairs with the same (contracts, shared group) share one sweep.
pub(super) struct FlowSpace<'p> {
    p: &'p Policy,
    memo: HashMap<(Vec<ContractId>, bool), Rc<Allowed>>,
    nothing: Rc<Allowed>,
}

impl<'p> FlowSpace<'p> {
    pub(super) fn new(p: &'p Policy) -> Self {
        FlowSpace {
            p,
            memo: HashMap::new(),
            nothing: Rc::new(Allowed::default()),
        }
    }

    /// What the evaluator allows from a member of exactly `src` to a member of exactly `dst`
    /// (both sorted group sets, `any` included).
    pub(super) fn allowed(&mut self, src: &[GroupId], dst: &[GroupId]) -> Rc<Allowed> {
        let ids = analysis::applicable_ids(self.p, src, dst);
        let open = eval::common_open_group(self.p, src, dst).is_some();
        if ids.is_empty() && !open {
            return self.nothing.clone();
        }
        let key = (ids, open);
        if let Some(a) = self.memo.get(&key) {
            return a.clone();
        }
        let segs = analysis::sweep(self.p, src, dst, None);
        let a = Rc::new(Allowed::from_segments(&segs));
        self.memo.insert(key, a.clone());
        a
    }
}

/// The TCP, UDP and SCTP ports a deny subject's filters name, or `Ports::All` for an `ip`
/// entry; `None` when one of its entries is ICMP (nothing but `ip` can carry ICMP in a
/// cluster-tier rule).
pub(super) fn deny_ports(p: &Policy, s: &crate::model::Subject) -> Option<Ports> {
    debug_assert_eq!(s.action, Action::Deny);
    let mut per: std::collections::BTreeMap<L4, Option<Vec<(u32, u32)>>> = Default::default();
    let mut icmp = false;
    for &(f, _) in &s.filters {
        for e in &p.filter(f).entries {
            use crate::model::EntryProto as E;
            let l4 = match e.proto {
                E::Ip => return Some(Ports::All),
                E::Icmp | E::Icmpv6 => {
                    icmp = true;
                    continue;
                }
                E::Tcp => L4::Tcp,
                E::Udp => L4::Udp,
                E::Sctp => L4::Sctp,
            };
            let slot = per.entry(l4).or_insert_with(|| Some(Vec::new()));
            if e.ranges.is_empty() {
                *slot = None;
            } else if let Some(v) = slot {
                v.extend(
                    e.ranges
                        .iter()
                        .map(|&(lo, hi)| (u32::from(lo.max(1)), u32::from(hi)))
                        .filter(|(lo, hi)| lo <= hi),
                );
            }
        }
    }
    if icmp {
        return None;
    }
    let mut out = Vec::new();
    for (l4, ranges) in per {
        match ranges {
            None => out.push((l4, None)),
            Some(v) => {
                for (lo, hi) in analysis::union(v) {
                    if lo <= 1 && hi >= 65535 {
                        out.push((l4, None));
                    } else {
                        out.push((l4, Some((lo as u16, hi as u16))));
                    }
                }
            }
        }
    }
    Some(Ports::Some(out))
}
