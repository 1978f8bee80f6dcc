//! `explain`: the verdict of one flow, the rule that decided it, and every subject that
//! matched (the deny that won over which permits), each with its place in the source.

use crate::diag::Span;
use crate::eval::{self, Decision, Flow, Reason, Verdict};
use crate::model::{Action, GroupKind, Policy};

use super::{Party, location};

/// One subject that matched the flow.
#[derive(Clone, Debug)]
pub struct Matched {
    pub action: Action,
    pub contract: String,
    pub subject: String,
    pub filter: String,
    pub consumer: String,
    pub provider: String,
    pub span: Span,
    pub decides: bool,
}

/// Everything `explain` says about one flow.
#[derive(Clone, Debug)]
pub struct Explanation {
    pub from: String,
    pub to: String,
    pub from_groups: Vec<String>,
    pub to_groups: Vec<String>,
    pub flow: Flow,
    pub decision: Decision,
    pub description: String,
    pub span: Option<Span>,
    pub matched: Vec<Matched>,
    /// What the answer rests on that the user may not expect: an end that no real address or
    /// pod can be (the verdict is then about a member that cannot exist).
    pub notes: Vec<String>,
}

/// Why no member of this end can exist, if none can: an external group with no address left
/// (W020), a group with no select, address or endpoint (W105).
fn memberless(p: &Policy, party: Party) -> Option<String> {
    let Party::Group(g) = party else {
        return None;
    };
    let grp = p.group(g);
    let name = p.group_name(g);
    match grp.kind {
        GroupKind::External => {
            let present = p.classes.sets.iter().any(|s| s.contains(&g));
            (!present).then(|| {
                format!(
                    "group {name} has no address (its prefixes are excepted or inside internal \
                     groups): no member of it can exist, so this verdict is about none"
                )
            })
        }
        GroupKind::Internal => {
            let empty = grp.selector.is_empty() && grp.nets.is_empty() && grp.endpoints.is_empty();
            empty.then(|| {
                format!(
                    "group {name} has no select, address or endpoint: no member of it can \
                     exist, so this verdict is about none"
                )
            })
        }
        GroupKind::Any => None,
    }
}

/// Explain the flow from `from` to `to`. The verdict is `eval::decide`'s; the list of matches
/// is `eval::matches` over the same applicable contracts. A flow that cannot exist (ends of
/// different address families, ICMP between IPv6 ends, ICMPv6 between IPv4 ends) has no
/// verdict: the error says why.
pub fn explain(p: &Policy, from: Party, to: Party, flow: Flow) -> Result<Explanation, String> {
    let src = from.groups(p);
    let dst = to.groups(p);
    let conn = eval::Conn::new(
        eval::End::new(&src, from.families(p)),
        eval::End::new(&dst, to.families(p)),
        flow,
    )
    .map_err(|x| {
        let mut m = format!(
            "no connection from {} to {} can be {flow}: {}",
            from.describe(p),
            to.describe(p),
            x.describe()
        );
        if let Some(s) = x.suggestion() {
            m.push_str(&format!(" (use {s})"));
        }
        m
    })?;
    let decision = eval::decide(p, &conn);
    let notes: Vec<String> = [memberless(p, from), memberless(p, to)]
        .into_iter()
        .flatten()
        .collect();
    let app = eval::applicable(p, &src, &dst);
    // Matches only count when the flow can start a connection at all (evaluator step 0).
    let ms = if eval::can_start(flow) {
        eval::matches(p, &app, flow)
    } else {
        Vec::new()
    };
    let deciding = match decision.reason {
        Reason::Subject(m) => Some((m.contract, m.subject)),
        _ => None,
    };
    let matched = ms
        .iter()
        .map(|(action, m)| {
            let c = p.contract(m.contract);
            let s = &c.subjects[m.subject];
            Matched {
                action: *action,
                contract: match c.origin {
                    // The provider-to-consumer half of a `both-ways` subject.
                    crate::model::Origin::Reverse(_) => {
                        format!("{} (both-ways, reverse)", p.contract_name(m.contract))
                    }
                    _ => p.contract_name(m.contract),
                },
                subject: s.name.clone(),
                filter: p.filter(m.filter).name.clone(),
                consumer: p.group_name(m.consumer),
                provider: p.group_name(m.provider),
                span: s.span,
                decides: deciding == Some((m.contract, m.subject)),
            }
        })
        .collect();
    Ok(Explanation {
        from: from.describe(p),
        to: to.describe(p),
        from_groups: src.iter().map(|g| p.group_name(*g)).collect(),
        to_groups: dst.iter().map(|g| p.group_name(*g)).collect(),
        flow,
        description: decision.describe(p),
        span: decision.span(p),
        decision,
        matched,
        notes,
    })
}

fn action_str(a: Action) -> &'static str {
    match a {
        Action::Permit => "permit",
        Action::Deny => "deny",
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "no group".into()
    } else {
        v.join(", ")
    }
}

/// Render for people: the verdict, the deciding rule with its source line, every match.
pub fn text(e: &Explanation, file: &str, src: &str) -> String {
    let mut out = String::new();
    out.push_str(&format!("{}: {}\n", e.flow, e.decision.verdict.as_str()));
    out.push_str(&format!(
        "  from {} in [{}]\n",
        e.from,
        list(&e.from_groups)
    ));
    out.push_str(&format!("  to   {} in [{}]\n", e.to, list(&e.to_groups)));
    for n in &e.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out.push_str(&format!("decided: {}\n", e.description));
    if let Some(span) = e.span {
        let (at, line) = location(file, src, span);
        out.push_str(&format!("  --> {at}\n   | {line}\n"));
    }
    if e.matched.is_empty() {
        out.push_str(match e.decision.reason {
            Reason::IntraGroup(_) => "no subject matched; the intra-group default allowed it\n",
            Reason::NotNew => "no subject is consulted for this ICMP type\n",
            _ => "no subject matched\n",
        });
        return out;
    }
    out.push_str(&format!("matched subjects ({}):\n", e.matched.len()));
    for m in &e.matched {
        let (at, _) = location(file, src, m.span);
        let note = if m.decides {
            "  <- decides".to_string()
        } else if e.decision.verdict == Verdict::Deny && m.action == Action::Permit {
            "  (overridden by the deny)".to_string()
        } else {
            String::new()
        };
        out.push_str(&format!(
            "  {:<6} {} subject `{}` (filter `{}`; {} consumes, {} provides) at {at}{note}\n",
            action_str(m.action),
            m.contract,
            m.subject,
            m.filter,
            m.consumer,
            m.provider,
        ));
    }
    let denies: Vec<&Matched> = e
        .matched
        .iter()
        .filter(|m| m.action == Action::Deny)
        .collect();
    let permits: Vec<String> = e
        .matched
        .iter()
        .filter(|m| m.action == Action::Permit)
        .map(|m| format!("{}: {}", m.contract, m.subject))
        .collect();
    if let Some(d) = denies.first()
        && !permits.is_empty()
    {
        out.push_str(&format!(
            "deny {}: {} wins over {}\n",
            d.contract,
            d.subject,
            permits.join(", ")
        ));
    }
    out
}

fn json_loc(file: &str, src: &str, span: Span) -> serde_json::Value {
    let ix = crate::text::LineIndex::new(src);
    let mut loc = crate::render::json_place(file, src, &ix, span.start);
    loc.insert("offset".into(), span.start.into());
    loc.insert("end".into(), span.end.into());
    serde_json::Value::Object(loc)
}

/// Render as one JSON object.
pub fn json(e: &Explanation, p: &Policy, file: &str, src: &str) -> String {
    let rule = match e.decision.reason {
        Reason::Subject(m) => serde_json::json!({
            "kind": "subject",
            "contract": p.contract_name(m.contract),
            "subject": p.contract(m.contract).subjects[m.subject].name,
            "filter": p.filter(m.filter).name,
            "consumer": p.group_name(m.consumer),
            "provider": p.group_name(m.provider),
        }),
        Reason::IntraGroup(g) => serde_json::json!({
            "kind": "intra-group",
            "group": p.group_name(g),
        }),
        Reason::Default => serde_json::json!({ "kind": "default" }),
        Reason::NotNew => serde_json::json!({ "kind": "not-new" }),
    };
    let matched: Vec<serde_json::Value> = e
        .matched
        .iter()
        .map(|m| {
            serde_json::json!({
                "action": action_str(m.action),
                "contract": m.contract,
                "subject": m.subject,
                "filter": m.filter,
                "consumer": m.consumer,
                "provider": m.provider,
                "decides": m.decides,
                "location": json_loc(file, src, m.span),
            })
        })
        .collect();
    let v = serde_json::json!({
        "flow": e.flow.to_string(),
        "from": { "party": e.from, "groups": e.from_groups },
        "to": { "party": e.to, "groups": e.to_groups },
        "verdict": e.decision.verdict.as_str(),
        "rule": rule,
        "description": e.description,
        "location": e.span.map(|s| json_loc(file, src, s)),
        "matched": matched,
        "notes": e.notes,
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}
