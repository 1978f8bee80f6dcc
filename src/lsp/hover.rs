//! Hover: what a name stands for in the checked model. A group shows its selectors, addresses,
//! members and contracts (inherited ones marked); a contract its subjects, providers and
//! consumers; a filter its entries; an endpoint its addresses, labels and groups; an assertion
//! the verdict and the rule that decides it.

use std::fmt::Write as _;

use super::doc::Doc;
use super::index::Kind;
use crate::diag::Span;
use crate::eval;
use crate::model::{
    Action, ContractId, EndpointId, FilterId, GroupId, GroupKind, Policy, TenantId,
};
use crate::net::Cidr;
use crate::text::count;

/// Lists longer than this are cut, with a count of the rest.
const MAX_LIST: usize = 20;

/// The hover text (markdown) and the span it is about, for a cursor at `offset`.
/// `None` also when the document's model has been dropped (the server has it rebuilt first).
pub fn hover(doc: &Doc, offset: usize) -> Option<(String, Span)> {
    let p = doc.policy.as_ref()?;
    if let Some(o) = doc.index.at(offset) {
        let key = Named {
            kind: o.key.kind,
            tenant: doc.index.name(o.key.tenant),
            name: doc.index.name(o.key.name),
        };
        let text = describe(p, doc, &key);
        return Some((text, o.span));
    }
    assertion(p, offset)
}

/// An index key with its names.
struct Named<'a> {
    kind: Kind,
    tenant: &'a str,
    name: &'a str,
}

fn describe(p: &Policy, doc: &Doc, key: &Named<'_>) -> String {
    let found =
        match key.kind {
            Kind::Tenant => tenant_id(p, key.tenant).map(|t| tenant(p, t)),
            Kind::Group => group_id(p, key).map(|g| group(p, g)),
            Kind::Contract => find(p, key, &p.contracts, |c| (c.tenant, &c.name))
                .map(|c| contract(p, ContractId(c))),
            Kind::Filter => find(p, key, &p.filters, |f| (f.tenant, &f.name))
                .map(|f| filter(p, doc, FilterId(f))),
            Kind::Endpoint => find(p, key, &p.endpoints, |e| (e.tenant, &e.name))
                .map(|e| endpoint(p, EndpointId(e))),
        };
    found.unwrap_or_else(|| {
        if key.kind == Kind::Tenant {
            format!("tenant `{}` is not defined", key.name)
        } else {
            format!(
                "{} `{}` is not defined in tenant `{}`",
                key.kind.as_str(),
                key.name,
                key.tenant
            )
        }
    })
}

fn tenant_id(p: &Policy, name: &str) -> Option<TenantId> {
    p.tenants
        .iter()
        .position(|t| t.name == name)
        .map(|i| TenantId(i as u32))
}

/// The index of the first object of a tenant with this name (duplicates are not in the model).
fn find<T>(
    p: &Policy,
    key: &Named<'_>,
    items: &[T],
    name_of: impl Fn(&T) -> (TenantId, &String),
) -> Option<u32> {
    let tid = tenant_id(p, key.tenant)?;
    items
        .iter()
        .position(|x| {
            let (t, n) = name_of(x);
            t == tid && *n == key.name
        })
        .map(|i| i as u32)
}

fn group_id(p: &Policy, key: &Named<'_>) -> Option<GroupId> {
    if key.name == "any" {
        let tid = tenant_id(p, key.tenant)?;
        return p.tenants.get(tid.index()).map(|t| t.any);
    }
    let tid = tenant_id(p, key.tenant)?;
    p.groups
        .iter()
        .position(|g| g.tenant == tid && g.kind != GroupKind::Any && g.name == key.name)
        .map(|i| GroupId(i as u32))
}

/// `name` inside tenant `from`, `tenant/name` elsewhere.
fn relative(p: &Policy, from: TenantId, tenant: TenantId, name: &str) -> String {
    if from == tenant {
        format!("`{name}`")
    } else {
        format!("`{}/{name}`", p.tenant(tenant).name)
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        return "none".to_string();
    }
    let mut out = items
        .iter()
        .take(MAX_LIST)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > MAX_LIST {
        let _ = write!(out, " and {} more", items.len() - MAX_LIST);
    }
    out
}

/// An address as written: a single host without its `/32` or `/128`.
fn addr(c: &Cidr) -> String {
    if c.is_host() {
        c.ip().to_string()
    } else {
        c.to_string()
    }
}

fn tenant(p: &Policy, t: TenantId) -> String {
    let groups = p
        .groups
        .iter()
        .filter(|g| g.tenant == t && g.kind != GroupKind::Any)
        .count();
    let contracts: Vec<_> = p
        .contracts
        .iter()
        .filter(|c| c.tenant == t && c.written())
        .collect();
    let global = contracts.iter().filter(|c| c.global).count();
    // Implied filters (`.ip` of `preferred` and `unenforced`) have a name no one can write.
    let filters = p
        .filters
        .iter()
        .filter(|f| f.tenant == t && !f.name.starts_with('.'))
        .count();
    let endpoints = p.endpoints.iter().filter(|e| e.tenant == t).count();
    format!(
        "**tenant** `{}`{}\n\n{}, {} ({global} global), {}, {}",
        p.tenant(t).name,
        if p.tenant(t).unenforced.is_some() {
            " (unenforced: every flow among its members is allowed, denies still win)"
        } else {
            ""
        },
        count(groups, "group"),
        count(contracts.len(), "contract"),
        count(filters, "filter"),
        count(endpoints, "endpoint"),
    )
}

fn group(p: &Policy, gid: GroupId) -> String {
    let g = p.group(gid);
    let mut out = String::new();
    match g.kind {
        GroupKind::Any => {
            let _ = write!(
                out,
                "**any** of tenant `{}`: every member of its internal groups\n\n- groups: {}",
                p.tenant(g.tenant).name,
                list(
                    p.internal_groups(g.tenant)
                        .map(|i| format!("`{}`", p.group(i).name))
                )
            );
        }
        GroupKind::Internal | GroupKind::External => {
            let what = if g.kind == GroupKind::External {
                "external group"
            } else {
                "group"
            };
            let _ = write!(out, "**{what}** `{}`", p.group_name(gid));
            let mut mods = Vec::new();
            if g.isolated {
                mods.push("isolated".to_string());
            }
            if g.preferred.is_some() {
                mods.push(
                    "preferred: talks freely with the tenant's other preferred groups".to_string(),
                );
            }
            if let Some(parent) = g.parent {
                mods.push(format!("extends `{}`", p.group(parent).name));
            }
            if !mods.is_empty() {
                let _ = write!(out, " ({})", mods.join(", "));
            }
            out.push('\n');
            if g.kind == GroupKind::Internal {
                let _ = write!(
                    out,
                    "\n- select: {}",
                    list(g.selector.iter().map(|(k, v)| format!("`{k}={v}`")))
                );
            }
            let nets = g.nets.iter().map(|n| {
                if n.except.is_empty() {
                    format!("`{}`", n.cidr)
                } else {
                    let ex: Vec<String> = n.except.iter().map(|c| c.to_string()).collect();
                    format!("`{} except {}`", n.cidr, ex.join(", "))
                }
            });
            let _ = write!(out, "\n- addresses: {}", list(nets));
            let members = p
                .endpoints
                .iter()
                .filter(|e| e.groups.binary_search(&gid).is_ok())
                .map(|e| {
                    let mut m = relative(p, g.tenant, e.tenant, &e.name);
                    if !e.addrs.is_empty() {
                        let addrs: Vec<String> = e.addrs.iter().map(addr).collect();
                        let _ = write!(m, " ({})", addrs.join(", "));
                    }
                    if e.group != gid {
                        m.push_str(" by labels or address");
                    }
                    m
                });
            let _ = write!(out, "\n- members: {}", list(members));
        }
    }
    for (verb, own, eff) in [
        ("provides", &g.provides, &g.eff_provides),
        ("consumes", &g.consumes, &g.eff_consumes),
    ] {
        // Implied contracts (`both-ways` halves, `preferred`, `unenforced`) are said by the
        // modifiers, not listed as contracts the group uses.
        let items = eff.iter().filter(|&&c| p.contract(c).written()).map(|&c| {
            let cc = p.contract(c);
            let name = relative(p, g.tenant, cc.tenant, &cc.name);
            if own.iter().any(|u| u.contract == c) {
                name
            } else {
                match ancestor_with(p, gid, c, verb == "provides") {
                    Some(a) => format!("{name} (inherited from `{}`)", p.group(a).name),
                    None => format!("{name} (inherited)"),
                }
            }
        });
        let _ = write!(out, "\n- {verb}: {}", list(items));
    }
    out
}

/// The nearest ancestor that provides (or consumes) `c` itself.
fn ancestor_with(p: &Policy, gid: GroupId, c: ContractId, provides: bool) -> Option<GroupId> {
    let mut at = p.group(gid).parent;
    // A cycle is an error the checker reports; do not follow it forever.
    for _ in 0..p.groups.len() {
        let a = at?;
        let g = p.group(a);
        let own = if provides { &g.provides } else { &g.consumes };
        if own.iter().any(|u| u.contract == c) {
            return Some(a);
        }
        at = g.parent;
    }
    None
}

fn contract(p: &Policy, cid: ContractId) -> String {
    let c = p.contract(cid);
    let mut out = format!(
        "**{}contract** `{}`\n",
        if c.global { "global " } else { "" },
        p.contract_name(cid)
    );
    for s in &c.subjects {
        let filters: Vec<String> = s
            .filters
            .iter()
            .map(|(f, _)| format!("`{}`", p.filter(*f).name))
            .collect();
        let _ = write!(
            out,
            "\n- subject `{}`: {} {}{}{}",
            s.name,
            match s.action {
                Action::Permit => "permit",
                Action::Deny => "deny",
            },
            filters.join(", "),
            if s.both_ways {
                " both-ways (also provider to consumer)"
            } else {
                ""
            },
            if s.log { " log" } else { "" }
        );
    }
    let (prov, cons) = (p.providers(cid), p.consumers(cid));
    let names = |gs: Vec<GroupId>| {
        list(gs.into_iter().map(|g| {
            let gg = p.group(g);
            relative(p, c.tenant, gg.tenant, &gg.name)
        }))
    };
    let _ = write!(out, "\n- providers: {}", names(prov));
    let _ = write!(out, "\n- consumers: {}", names(cons));
    out
}

fn filter(p: &Policy, doc: &Doc, fid: FilterId) -> String {
    let f = p.filter(fid);
    let mut out = format!("**filter** `{}/{}`\n", p.tenant(f.tenant).name, f.name);
    for e in &f.entries {
        let text: Vec<&str> = doc.slice(e.span).split_whitespace().collect();
        let _ = write!(out, "\n- `{}`", text.join(" "));
    }
    let users = p.contracts.iter().filter(|c| c.written()).flat_map(|c| {
        c.subjects
            .iter()
            .filter(|s| s.filters.iter().any(|(x, _)| *x == fid))
            .map(move |s| format!("`{}` (subject `{}`)", c.name, s.name))
    });
    let _ = write!(out, "\n\nused by: {}", list(users));
    out
}

fn endpoint(p: &Policy, eid: EndpointId) -> String {
    let e = p.endpoint(eid);
    let addrs: Vec<String> = e.addrs.iter().map(|a| format!("`{}`", addr(a))).collect();
    format!(
        "**endpoint** `{}` in group `{}`\n\n- addresses: {}\n- labels: {}\n- groups: {}",
        p.endpoint_name(eid),
        p.group(e.group).name,
        list(addrs.into_iter()),
        list(e.labels.iter().map(|(k, v)| format!("`{k}={v}`"))),
        list(e.groups.iter().map(|&g| {
            let gg = p.group(g);
            relative(p, e.tenant, gg.tenant, &gg.name)
        }))
    )
}

/// On an assertion (outside its names): the verdict the evaluator reaches, and why.
fn assertion(p: &Policy, offset: usize) -> Option<(String, Span)> {
    let a = p
        .asserts
        .iter()
        .find(|a| a.span.start <= offset && offset <= a.span.end)?;
    let d = p.decide_assertion(a)?;
    let verdict = match d.verdict {
        eval::Verdict::Allow => "allowed",
        eval::Verdict::Deny => "denied",
    };
    let holds = if d.verdict.as_str() == expect_str(a.expect) {
        "holds"
    } else {
        "fails"
    };
    Some((
        format!(
            "**assert** `{}`: {verdict}, the assertion {holds}\n\n{}",
            a.text,
            d.describe(p)
        ),
        a.span,
    ))
}

fn expect_str(e: crate::model::Expect) -> &'static str {
    match e {
        crate::model::Expect::Allow => eval::Verdict::Allow.as_str(),
        crate::model::Expect::Deny => eval::Verdict::Deny.as_str(),
    }
}
