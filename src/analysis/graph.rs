//! `graph`: the contract graph as Graphviz DOT or Mermaid. Groups are nodes (clustered per
//! tenant; externals and `any` drawn in their own shapes), edges go from consumer to provider
//! labelled with the contract, deny subjects as separate red edges, `extends` as dashed edges.

use crate::model::{Action, ContractId, GroupId, GroupKind, Policy};

/// One edge of the contract graph.
struct Edge {
    from: GroupId,
    to: GroupId,
    label: String,
    deny: bool,
}

fn edges(p: &Policy) -> Vec<Edge> {
    let (prov, cons) = p.contract_users();
    let mut out = Vec::new();
    for (ci, c) in p.contracts.iter().enumerate() {
        if !c.written() {
            continue; // drawn as the written contract only
        }
        let cid = ContractId(ci as u32);
        let (Some(cs), Some(ps)) = (cons.get(ci), prov.get(ci)) else {
            continue;
        };
        let permits: Vec<&str> = c
            .subjects
            .iter()
            .filter(|s| s.action == Action::Permit)
            .map(|s| s.name.as_str())
            .collect();
        let denies: Vec<&str> = c
            .subjects
            .iter()
            .filter(|s| s.action == Action::Deny)
            .map(|s| s.name.as_str())
            .collect();
        for &g in cs {
            for &h in ps {
                let name = short_contract(p, cid, g);
                if !permits.is_empty() {
                    out.push(Edge {
                        from: g,
                        to: h,
                        label: name.clone(),
                        deny: false,
                    });
                }
                if !denies.is_empty() {
                    out.push(Edge {
                        from: g,
                        to: h,
                        label: format!("{name} (deny {})", denies.join(", ")),
                        deny: true,
                    });
                }
            }
        }
    }
    out
}

/// The contract's name as the consumer's tenant writes it.
fn short_contract(p: &Policy, c: ContractId, consumer: GroupId) -> String {
    if p.contract(c).tenant == p.group(consumer).tenant {
        p.contract(c).name.clone()
    } else {
        p.contract_name(c)
    }
}

fn groups_of(p: &Policy, t: usize) -> Vec<GroupId> {
    (0..p.groups.len())
        .map(|i| GroupId(i as u32))
        .filter(|g| p.group(*g).tenant.index() == t)
        .filter(|g| {
            // `any` is drawn only when it provides or consumes something.
            let grp = p.group(*g);
            grp.kind != GroupKind::Any
                || !grp.eff_provides.is_empty()
                || !grp.eff_consumes.is_empty()
        })
        .collect()
}

fn dot_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Graphviz DOT.
pub fn dot(p: &Policy) -> String {
    let mut o = String::from("digraph gbpc {\n");
    o.push_str("  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=11];\n  edge [fontname=\"Helvetica\", fontsize=9];\n");
    for (ti, t) in p.tenants.iter().enumerate() {
        o.push_str(&format!(
            "  subgraph cluster_{ti} {{\n    label={};\n    style=rounded;\n    color=gray50;\n",
            dot_str(&format!("tenant {}", t.name))
        ));
        for g in groups_of(p, ti) {
            let grp = p.group(g);
            let attrs = match grp.kind {
                GroupKind::Internal if grp.isolated => {
                    "shape=box, style=\"rounded,bold\", peripheries=2"
                }
                GroupKind::Internal => "shape=box, style=rounded",
                GroupKind::External => "shape=cds, style=filled, fillcolor=lightyellow",
                GroupKind::Any => "shape=ellipse, style=dashed",
            };
            let label = match grp.kind {
                GroupKind::Any => format!("any ({})", t.name),
                _ if grp.isolated => format!("{} (isolated)", grp.name),
                _ => grp.name.clone(),
            };
            o.push_str(&format!(
                "    g{} [label={}, {attrs}];\n",
                g.0,
                dot_str(&label)
            ));
        }
        o.push_str("  }\n");
    }
    for e in edges(p) {
        let style = if e.deny {
            "color=red, fontcolor=red, style=bold, arrowhead=tee"
        } else {
            "color=black"
        };
        o.push_str(&format!(
            "  g{} -> g{} [label={}, {style}];\n",
            e.from.0,
            e.to.0,
            dot_str(&e.label)
        ));
    }
    for (gi, g) in p.groups.iter().enumerate() {
        if let Some(parent) = g.parent {
            o.push_str(&format!(
                "  g{gi} -> g{} [label=\"extends\", style=dashed, color=gray40, arrowhead=empty];\n",
                parent.0
            ));
        }
    }
    o.push_str("}\n");
    o
}

fn mermaid_str(s: &str) -> String {
    // Mermaid labels are in double quotes; it has no escape for them, so use the entity.
    format!("\"{}\"", s.replace('"', "#quot;"))
}

/// Mermaid flowchart.
pub fn mermaid(p: &Policy) -> String {
    let mut o = String::from("flowchart LR\n");
    for (ti, t) in p.tenants.iter().enumerate() {
        o.push_str(&format!(
            "  subgraph t{ti}[{}]\n",
            mermaid_str(&format!("tenant {}", t.name))
        ));
        for g in groups_of(p, ti) {
            let grp = p.group(g);
            let node = match grp.kind {
                GroupKind::Internal if grp.isolated => {
                    format!("[[{}]]", mermaid_str(&format!("{} (isolated)", grp.name)))
                }
                GroupKind::Internal => format!("[{}]", mermaid_str(&grp.name)),
                GroupKind::External => format!("{{{{{}}}}}", mermaid_str(&grp.name)),
                GroupKind::Any => format!("(({}))", mermaid_str(&format!("any ({})", t.name))),
            };
            o.push_str(&format!("    g{}{node}\n", g.0));
        }
        o.push_str("  end\n");
    }
    let mut deny_links = Vec::new();
    let mut n = 0usize;
    for e in edges(p) {
        if e.deny {
            o.push_str(&format!(
                "  g{} -.->|{}| g{}\n",
                e.from.0,
                mermaid_str(&e.label),
                e.to.0
            ));
            deny_links.push(n);
        } else {
            o.push_str(&format!(
                "  g{} -->|{}| g{}\n",
                e.from.0,
                mermaid_str(&e.label),
                e.to.0
            ));
        }
        n += 1;
    }
    for (gi, g) in p.groups.iter().enumerate() {
        if let Some(parent) = g.parent {
            o.push_str(&format!("  g{gi} -.->|extends| g{}\n", parent.0));
            n += 1;
        }
    }
    let _ = n;
    if !deny_links.is_empty() {
        let ids: Vec<String> = deny_links.iter().map(|i| i.to_string()).collect();
        o.push_str(&format!(
            "  linkStyle {} stroke:#c00,color:#c00\n",
            ids.join(",")
        ));
    }
    o
}
