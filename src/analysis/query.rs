//! `query`: every (destination group, protocol, port ranges) a group may open connections to,
//! computed per port segment with the evaluator, merged into ranges and grouped by rule.

use crate::model::{GroupId, Policy};

use super::{Ranges, Rule, Space, allowed, format_ranges, nominal, sweep};

/// What one source group may reach in one destination group.
#[derive(Clone, Debug)]
pub struct Reach {
    pub from: GroupId,
    pub to: GroupId,
    /// Per space: the allowed ranges and the rules that allowed them.
    pub allowed: Vec<(Space, Ranges, Vec<Rule>)>,
}

/// What a member of `from` (and of nothing else) may reach in each of `to` (a member of that
/// group only). Pairs with nothing allowed are left out. Only the pairs [`super::Near`] finds
/// are swept: nothing is allowed between the others.
pub fn query(p: &Policy, from: &[GroupId], to: &[GroupId]) -> Vec<Reach> {
    let near = super::Near::new(p, to);
    let mut out = Vec::new();
    for &s in from {
        let src = nominal(p, s);
        for i in near.of(p, s) {
            let d = to[i];
            let dst = nominal(p, d);
            let segs = sweep(p, &src, &dst, None);
            let allowed = allowed(p, &segs);
            if !allowed.is_empty() {
                out.push(Reach {
                    from: s,
                    to: d,
                    allowed,
                });
            }
        }
    }
    out
}

/// Is `port` of `space` inside the reach's allowed ranges?
pub fn allows(r: &Reach, space: Space, port: u32) -> bool {
    r.allowed
        .iter()
        .any(|(s, rs, _)| *s == space && rs.iter().any(|&(a, b)| a <= port && port <= b))
}

fn rules(p: &Policy, rules: &[Rule]) -> String {
    rules
        .iter()
        .map(|r| r.name(p))
        .collect::<Vec<_>>()
        .join(", ")
}

/// For people: one block per source, one line per destination and protocol.
pub fn text(p: &Policy, reach: &[Reach], from: &[GroupId]) -> String {
    let mut by_source: std::collections::HashMap<GroupId, Vec<&Reach>> =
        std::collections::HashMap::new();
    for r in reach {
        by_source.entry(r.from).or_default().push(r);
    }
    let mut out = String::new();
    for &s in from {
        out.push_str(&format!("from {}:\n", p.group_name(s)));
        let mine: &[&Reach] = by_source.get(&s).map_or(&[], Vec::as_slice);
        if mine.is_empty() {
            out.push_str("  (nothing allowed)\n");
        }
        for r in mine.iter() {
            out.push_str(&format!("  to {}\n", p.group_name(r.to)));
            let mut all_rules: Vec<Rule> = r.allowed.iter().flat_map(|x| x.2.clone()).collect();
            all_rules.sort_unstable();
            all_rules.dedup();
            if super::summary(&r.allowed) == "all" && all_rules.len() == 1 {
                out.push_str(&format!(
                    "    {:<40} by {}\n",
                    "every protocol and port",
                    rules(p, &all_rules)
                ));
                continue;
            }
            for (space, ranges, rs) in &r.allowed {
                out.push_str(&format!(
                    "    {:<40} by {}\n",
                    format_ranges(*space, ranges),
                    rules(p, rs)
                ));
            }
        }
    }
    out
}

/// As one JSON array of `{from, to, protocol, ranges: [[lo, hi]], rules}`.
pub fn json(p: &Policy, reach: &[Reach]) -> String {
    let mut rows = Vec::new();
    for r in reach {
        for (space, ranges, rs) in &r.allowed {
            rows.push(serde_json::json!({
                "from": p.group_name(r.from),
                "to": p.group_name(r.to),
                "protocol": space.name(),
                "ranges": ranges.iter().map(|&(a, b)| [a, b]).collect::<Vec<_>>(),
                "rules": rs.iter().map(|x| x.name(p)).collect::<Vec<_>>(),
            }));
        }
    }
    let mut s = serde_json::to_string_pretty(&rows).unwrap_or_default();
    s.push('\n');
    s
}
