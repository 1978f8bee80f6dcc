//! Warnings about `both-ways`, `preferred` and `unenforced` (W121-W123), and about where gbpc
//! and ACI decide a flow differently (W120: docs/language.md, "Where gbpc differs from ACI").

use super::{Action, ContractId, EntryProto, FilterEntry, GroupId, GroupKind, Policy};
use crate::diag::{Code, Diagnostic};

/// Every warning of this module, after the implied contracts exist.
pub(super) fn warnings(p: &Policy, out: &mut Vec<Diagnostic>) {
    let (prov, cons) = p.contract_users();
    unenforced_no_effect(p, out);
    lone_preferred(p, out);
    both_ways_no_effect(p, &prov, &cons, out);
    aci_order(p, &prov, &cons, out);
}

/// W121: `isolated` and `preferred` change nothing in an unenforced tenant.
fn unenforced_no_effect(p: &Policy, out: &mut Vec<Diagnostic>) {
    for g in &p.groups {
        let Some(t) = p.tenant(g.tenant).unenforced else {
            continue;
        };
        let what = match (g.isolated, g.preferred) {
            (_, Some(s)) => Some(("preferred", s)),
            (true, None) => Some(("isolated", g.name_span)),
            _ => None,
        };
        if let Some((what, span)) = what {
            out.push(
                Diagnostic::warning(
                    Code::UnenforcedNoEffect,
                    format!(
                        "`{what}` has no effect on group `{}`: its tenant is unenforced",
                        g.name
                    ),
                )
                .primary(span, format!("{what} here"))
                .secondary(t, "every flow among the tenant's members is allowed")
                .help(format!(
                    "remove `{what}`, or `unenforced` if the tenant's contracts should decide"
                )),
            );
        }
    }
}

/// W123: a tenant's only preferred group talks to no other preferred group, and its members
/// reach each other anyway (intra-group default).
fn lone_preferred(p: &Policy, out: &mut Vec<Diagnostic>) {
    // The preferred groups of each tenant, in one pass over the groups (a scan per tenant was
    // quadratic: 20,000 tenants took 22 s).
    let mut pref: Vec<Vec<&crate::model::Group>> = vec![Vec::new(); p.tenants.len()];
    for g in p.groups.iter().filter(|g| g.preferred.is_some()) {
        if let Some(list) = pref.get_mut(g.tenant.index()) {
            list.push(g);
        }
    }
    for (ti, t) in p.tenants.iter().enumerate() {
        if t.unenforced.is_some() {
            continue; // W121 says it
        }
        if let [g] = pref[ti].as_slice()
            && let Some(s) = g.preferred
        {
            out.push(
                Diagnostic::warning(
                    Code::LonePreferred,
                    format!(
                        "group `{}` is the only preferred group of tenant `{}`",
                        g.name, t.name
                    ),
                )
                .primary(s, "no other preferred group to talk to")
                .help("mark the groups that should talk freely with it `preferred`, or remove `preferred`"),
            );
        }
    }
}

/// W122: the reverse half of a `both-ways` subject joins the same groups as the subject.
fn both_ways_no_effect(
    p: &Policy,
    prov: &[Vec<GroupId>],
    cons: &[Vec<GroupId>],
    out: &mut Vec<Diagnostic>,
) {
    for (ci, c) in p.contracts.iter().enumerate() {
        if !c.written() || prov[ci].is_empty() || prov[ci] != cons[ci] {
            continue;
        }
        for s in c.subjects.iter().filter(|s| s.both_ways) {
            out.push(
                Diagnostic::warning(
                    Code::BothWaysNoEffect,
                    format!(
                        "`both-ways` adds nothing to subject `{}`: every group that consumes contract `{}` also provides it",
                        s.name, c.name
                    ),
                )
                .primary(s.span, "applies between the same groups in both directions already")
                .help("remove `both-ways`"),
            );
        }
    }
}

/// Can some flow match both entries?
fn entries_meet(a: &FilterEntry, b: &FilterEntry) -> bool {
    if a.proto == EntryProto::Ip || b.proto == EntryProto::Ip {
        return true;
    }
    a.proto == b.proto
        && (a.ranges.is_empty()
            || b.ranges.is_empty()
            || a.ranges
                .iter()
                .any(|&(lo, hi)| b.ranges.iter().any(|&(l, h)| lo <= h && l <= hi)))
}

/// Can some flow match both subjects?
fn subjects_meet(p: &Policy, a: &super::Subject, b: &super::Subject) -> bool {
    let entries = |s: &super::Subject| -> Vec<&FilterEntry> {
        s.filters
            .iter()
            .flat_map(|&(f, _)| p.filter(f).entries.iter())
            .collect()
    };
    let eb = entries(b);
    entries(a)
        .iter()
        .any(|x| eb.iter().any(|y| entries_meet(x, y)))
}

/// How many (permit, group pair, deny) triples W120 looks at, at most: the warning is advice,
/// and a policy of thousands of groups under a tenant-wide deny must not make `check` slow.
const ACI_BUDGET: usize = 2_000_000;

/// W120: a deny written at the `any` level (on either side) overrides a permit between two
/// specific groups. ACI orders rules by specificity, so there the EPG-to-EPG permit would win;
/// in gbpc every deny wins. One warning per (permit subject, deny subject), with the first
/// group pair where it happens.
fn aci_order(p: &Policy, prov: &[Vec<GroupId>], cons: &[Vec<GroupId>], out: &mut Vec<Diagnostic>) {
    // Deny subjects of written contracts that an `any` provides or consumes.
    let any_used = |ci: usize| {
        prov[ci]
            .iter()
            .chain(&cons[ci])
            .any(|g| p.group(*g).kind == GroupKind::Any)
    };
    let denies: Vec<(ContractId, usize)> = p
        .contracts
        .iter()
        .enumerate()
        .filter(|(ci, c)| c.written() && any_used(*ci))
        .flat_map(|(ci, c)| {
            c.subjects
                .iter()
                .enumerate()
                .filter(|(_, s)| s.action == Action::Deny)
                .map(move |(si, _)| (ContractId(ci as u32), si))
        })
        .collect();
    if denies.is_empty() {
        return;
    }
    // A group's side of a contract: directly (itself or a parent), or through its tenant's
    // `any` (internal groups only).
    let uses = |g: GroupId, c: ContractId, provides: bool| -> (bool, bool) {
        let grp = p.group(g);
        let list = |x: GroupId| {
            let x = p.group(x);
            if provides {
                &x.eff_provides
            } else {
                &x.eff_consumes
            }
        };
        let direct = list(g).binary_search(&c).is_ok();
        let any = p.tenant(grp.tenant).any;
        let via_any = grp.kind == GroupKind::Internal && list(any).binary_search(&c).is_ok();
        (direct, via_any)
    };
    let mut budget = ACI_BUDGET;
    for (di, d) in p.contracts.iter().enumerate() {
        if !d.written() {
            continue;
        }
        let specific = |gs: &[GroupId]| -> Vec<GroupId> {
            gs.iter()
                .copied()
                .filter(|g| p.group(*g).kind != GroupKind::Any)
                .collect()
        };
        let (cs, ps) = (specific(&cons[di]), specific(&prov[di]));
        for s in &d.subjects {
            if s.action != Action::Permit {
                continue;
            }
            for &(dc, dsi) in &denies {
                let deny = &p.contract(dc).subjects[dsi];
                if !subjects_meet(p, s, deny) {
                    continue;
                }
                let mut found = None;
                'pairs: for &c in &cs {
                    for &pv in &ps {
                        if budget == 0 {
                            return;
                        }
                        budget -= 1;
                        let (cd, ca) = uses(c, dc, false);
                        let (pd, pa) = uses(pv, dc, true);
                        if (cd || ca) && (pd || pa) && !(cd && pd) {
                            found = Some((c, pv));
                            break 'pairs;
                        }
                    }
                }
                let Some((c, pv)) = found else {
                    continue;
                };
                out.push(
                    Diagnostic::warning(
                        Code::AciOrder,
                        format!(
                            "deny `{}` of contract `{}` applies through `any` and overrides permit `{}` of contract `{}` from `{}` to `{}`; ACI would let the group-to-group permit win",
                            deny.name,
                            p.contract_name(dc),
                            s.name,
                            p.contract_name(ContractId(di as u32)),
                            p.group_name(c),
                            p.group_name(pv),
                        ),
                    )
                    .primary(s.span, "this permit loses where the deny matches")
                    .secondary(deny.span, "a deny at the `any` level wins here, not in ACI")
                    .help("in gbpc every deny wins (docs/language.md, \"Where gbpc differs from ACI\"): narrow the deny's filters or its groups if the permit should hold"),
                );
            }
        }
    }
}
