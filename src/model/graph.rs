//! The policy as a graph (petgraph): groups, contracts and `extends` edges. Finds inheritance
//! cycles, flattens inherited contracts, and finds objects nobody uses.

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use super::{
    Action, Contract, ContractId, EntryProto, Filter, FilterEntry, GroupId, GroupKind, Origin,
    Policy, Subject, TenantId,
};
use crate::diag::{Code, Diagnostic};

/// Report `extends` cycles, then compute every group's effective provides/consumes (a group in
/// a cycle keeps only its own contracts, so one error does not cascade).
pub(super) fn inheritance(p: &mut Policy, errors: &mut Vec<Diagnostic>) {
    let n = p.groups.len();
    let mut g: DiGraph<GroupId, ()> = DiGraph::with_capacity(n, n);
    for i in 0..n {
        g.add_node(GroupId(i as u32));
    }
    for (i, grp) in p.groups.iter().enumerate() {
        if let Some(parent) = grp.parent {
            g.add_edge(NodeIndex::new(i), NodeIndex::new(parent.index()), ());
        }
    }
    let mut in_cycle = vec![false; n];
    let mut sccs = tarjan_scc(&g);
    for scc in &mut sccs {
        scc.sort_unstable();
    }
    sccs.sort_unstable();
    for scc in sccs {
        let is_cycle = scc.len() > 1
            || p.groups[scc[0].index()].parent == Some(GroupId(scc[0].index() as u32));
        if !is_cycle {
            continue;
        }
        for node in &scc {
            in_cycle[node.index()] = true;
        }
        // Walk the cycle in `extends` order from its first member, for a readable message.
        let start = GroupId(scc[0].index() as u32);
        let mut order = vec![start];
        let mut cur = start;
        while let Some(next) = p.groups[cur.index()].parent {
            if next == start || order.len() > scc.len() {
                break;
            }
            order.push(next);
            cur = next;
        }
        let names: Vec<String> = order
            .iter()
            .map(|g| p.groups[g.index()].name.clone())
            .collect();
        let chain = format!("{} -> {}", names.join(" -> "), names[0]);
        let mut d = Diagnostic::error(Code::Cycle, format!("`extends` forms a cycle: {chain}"))
            .primary(
                p.groups[start.index()].name_span,
                "this group extends itself through the cycle",
            );
        for g in order.iter().skip(1) {
            d = d.secondary(p.groups[g.index()].name_span, "part of the cycle");
        }
        errors.push(d.help("remove one `extends` so that inheritance forms a tree"));
    }
    // Effective contracts, parents first (memoised walk up the chain).
    let mut done = vec![false; n];
    for i in 0..n {
        let mut chain = Vec::new();
        let mut cur = Some(GroupId(i as u32));
        while let Some(c) = cur {
            if done[c.index()] || chain.contains(&c) {
                break;
            }
            chain.push(c);
            cur = if in_cycle[c.index()] {
                None
            } else {
                p.groups[c.index()].parent
            };
        }
        for &c in chain.iter().rev() {
            let grp = &p.groups[c.index()];
            let mut prov: Vec<ContractId> = grp.provides.iter().map(|u| u.contract).collect();
            let mut cons: Vec<ContractId> = grp.consumes.iter().map(|u| u.contract).collect();
            if !in_cycle[c.index()]
                && let Some(parent) = grp.parent
                && done[parent.index()]
            {
                prov.extend(p.groups[parent.index()].eff_provides.iter().copied());
                cons.extend(p.groups[parent.index()].eff_consumes.iter().copied());
            }
            prov.sort_unstable();
            prov.dedup();
            cons.sort_unstable();
            cons.dedup();
            let grp = &mut p.groups[c.index()];
            grp.eff_provides = prov;
            grp.eff_consumes = cons;
            done[c.index()] = true;
        }
    }
}

/// Filters no subject uses; contracts with no provider or no consumer.
pub(super) fn unused(p: &Policy, filter_used: &[bool], warnings: &mut Vec<Diagnostic>) {
    for (f, used) in p.filters.iter().zip(filter_used) {
        if !used {
            warnings.push(
                Diagnostic::warning(
                    Code::UnusedFilter,
                    format!("filter `{}` is never used", f.name),
                )
                .primary(f.name_span, "no subject lists this filter")
                .help("use it in a contract's subject, or remove it"),
            );
        }
    }
    let n = p.contracts.len();
    let mut provided = vec![false; n];
    let mut consumed = vec![false; n];
    for g in &p.groups {
        // Only direct uses count: a group inheriting from a parent that uses nothing adds nothing.
        for u in &g.provides {
            provided[u.contract.index()] = true;
        }
        for u in &g.consumes {
            consumed[u.contract.index()] = true;
        }
        let _ = g.kind == GroupKind::Any;
    }
    for (i, c) in p.contracts.iter().enumerate() {
        if !c.written() {
            continue;
        }
        let (msg, help) = match (provided[i], consumed[i]) {
            (true, true) => continue,
            (false, false) => (
                format!("contract `{}` is neither provided nor consumed", c.name),
                "add `provides` to the serving group and `consumes` to the client group, or remove it",
            ),
            (true, false) => (
                format!("contract `{}` is provided but nobody consumes it", c.name),
                "add `consumes` to the groups that should reach its providers",
            ),
            (false, true) => (
                format!("contract `{}` is consumed but nobody provides it", c.name),
                "add `provides` to the group that serves it",
            ),
        };
        warnings.push(
            Diagnostic::warning(Code::UnusedContract, msg)
                .primary(c.name_span, "")
                .help(help),
        );
    }
}

/// The implied contracts (semantics.md, "Implied contracts"), after the effective contracts
/// are known: the reverse half of every contract with `both-ways` subjects, then per tenant
/// the `permit ip` of its preferred groups and of an unenforced tenant. Each is added to the
/// groups' effective contracts, so the evaluator and every backend see it as any other
/// contract (ids grow, so the effective lists stay sorted).
pub(super) fn implied(p: &mut Policy) {
    let written = p.contracts.len();
    let (prov, cons) = p.contract_users();
    for ci in 0..written {
        let c = &p.contracts[ci];
        let subjects: Vec<Subject> = c.subjects.iter().filter(|s| s.both_ways).cloned().collect();
        if subjects.is_empty() {
            continue;
        }
        let id = ContractId(p.contracts.len() as u32);
        p.contracts.push(Contract {
            subjects,
            origin: Origin::Reverse(ContractId(ci as u32)),
            ..c.clone()
        });
        for g in &cons[ci] {
            p.groups[g.index()].eff_provides.push(id);
        }
        for g in &prov[ci] {
            p.groups[g.index()].eff_consumes.push(id);
        }
    }
    for ti in 0..p.tenants.len() {
        let tid = TenantId(ti as u32);
        let preferred: Vec<(GroupId, crate::diag::Span)> = (0..p.groups.len())
            .filter_map(|gi| {
                let g = &p.groups[gi];
                (g.tenant == tid && g.kind != GroupKind::Any)
                    .then_some(())
                    .and(g.preferred)
                    .map(|s| (GroupId(gi as u32), s))
            })
            .collect();
        let any = p.tenants[ti].any;
        let mut uses: Vec<(Origin, crate::diag::Span, Vec<GroupId>)> = Vec::new();
        if let Some(&(_, span)) = preferred.first() {
            uses.push((
                Origin::Preferred,
                span,
                preferred.iter().map(|x| x.0).collect(),
            ));
        }
        if let Some(span) = p.tenants[ti].unenforced {
            uses.push((Origin::Unenforced, span, vec![any]));
        }
        for (origin, span, groups) in uses {
            let f = crate::model::FilterId(p.filters.len() as u32);
            p.filters.push(Filter {
                tenant: tid,
                name: ".ip".into(),
                span,
                name_span: span,
                entries: vec![FilterEntry {
                    proto: EntryProto::Ip,
                    ranges: Vec::new(),
                    span,
                }],
            });
            let (name, subject) = match origin {
                Origin::Preferred => (".preferred", "preferred"),
                _ => (".unenforced", "unenforced"),
            };
            let id = ContractId(p.contracts.len() as u32);
            p.contracts.push(Contract {
                tenant: tid,
                name: name.into(),
                span,
                name_span: span,
                global: false,
                subjects: vec![Subject {
                    name: subject.into(),
                    span,
                    action: Action::Permit,
                    both_ways: false,
                    log: false,
                    filters: vec![(f, span)],
                }],
                origin,
            });
            for g in groups {
                let grp = &mut p.groups[g.index()];
                grp.eff_provides.push(id);
                grp.eff_consumes.push(id);
            }
        }
    }
}
