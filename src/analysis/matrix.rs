//! `matrix`: group-to-group connectivity (rows are sources, columns destinations; a cell says
//! what a member of the row group may open to a member of the column group) as text, CSV or
//! one self-contained HTML page.

use crate::eval::Verdict;
use crate::model::{GroupId, Policy};

use super::{Rule, allowed, nominal, real_groups, summary, sweep};

/// One cell: the allowed summary, the rules that allowed, and whether a deny subject decided
/// some segment (shown in colour).
#[derive(Clone, Debug)]
pub struct Cell {
    pub summary: String,
    pub allow_rules: Vec<String>,
    pub deny_rules: Vec<String>,
}

/// The matrix over every internal and external group.
pub struct Matrix {
    pub groups: Vec<GroupId>,
    pub names: Vec<String>,
    /// Row-major: `cells[row * n + col]`.
    pub cells: Vec<Cell>,
}

pub fn matrix(p: &Policy) -> Matrix {
    let groups = real_groups(p);
    let names: Vec<String> = groups.iter().map(|g| p.group_name(*g)).collect();
    let mut cells = Vec::with_capacity(groups.len() * groups.len());
    for &s in &groups {
        let src = nominal(p, s);
        for &d in &groups {
            let dst = nominal(p, d);
            let segs = sweep(p, &src, &dst, None);
            let a = allowed(p, &segs);
            let mut allow_rules: Vec<Rule> = a.iter().flat_map(|x| x.2.iter().copied()).collect();
            allow_rules.sort_unstable();
            allow_rules.dedup();
            let mut deny_rules: Vec<Rule> = segs
                .iter()
                .filter(|x| {
                    x.decision.verdict == Verdict::Deny
                        && matches!(Rule::of(&x.decision), Rule::Subject(..))
                })
                .map(|x| Rule::of(&x.decision))
                .collect();
            deny_rules.sort_unstable();
            deny_rules.dedup();
            cells.push(Cell {
                summary: summary(&a),
                allow_rules: allow_rules.iter().map(|r| r.name(p)).collect(),
                deny_rules: deny_rules.iter().map(|r| r.name(p)).collect(),
            });
        }
    }
    Matrix {
        groups,
        names,
        cells,
    }
}

impl Matrix {
    fn cell(&self, r: usize, c: usize) -> Option<&Cell> {
        self.cells.get(r * self.groups.len() + c)
    }
}

/// Aligned text: one row per source, one column per destination.
pub fn text(m: &Matrix) -> String {
    let n = m.names.len();
    let mut widths: Vec<usize> = m.names.iter().map(|s| s.chars().count()).collect();
    for r in 0..n {
        for (c, w) in widths.iter_mut().enumerate() {
            if let Some(cell) = m.cell(r, c) {
                *w = (*w).max(cell.summary.chars().count());
            }
        }
    }
    let first = m
        .names
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0)
        .max("from \\ to".len());
    let mut out = format!("{:<first$}", "from \\ to");
    for (c, name) in m.names.iter().enumerate() {
        out.push_str(&format!(
            " | {:<w$}",
            name,
            w = widths.get(c).copied().unwrap_or(0)
        ));
    }
    out = out.trim_end().to_string();
    out.push('\n');
    for (r, name) in m.names.iter().enumerate() {
        let mut line = format!("{name:<first$}");
        for (c, w) in widths.iter().enumerate() {
            let s = m.cell(r, c).map_or("", |x| x.summary.as_str());
            line.push_str(&format!(" | {s:<w$}"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', ';']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// CSV (RFC 4180): a header row of destinations, then one row per source.
pub fn csv(m: &Matrix) -> String {
    let mut out = String::from("from");
    for n in &m.names {
        out.push(',');
        out.push_str(&csv_field(n));
    }
    out.push_str("\r\n");
    for (r, name) in m.names.iter().enumerate() {
        out.push_str(&csv_field(name));
        for c in 0..m.names.len() {
            out.push(',');
            out.push_str(&csv_field(m.cell(r, c).map_or("", |x| x.summary.as_str())));
        }
        out.push_str("\r\n");
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// One self-contained HTML page (inline CSS, no scripts, no external resources). Cells are
/// green when something is allowed, red when a deny subject decides part of the pair, grey
/// when nothing is allowed; the title attribute names the deciding rules.
pub fn html(m: &Matrix, title: &str) -> String {
    let mut o = String::new();
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    o.push_str(&format!("<title>gbpc matrix: {}</title>\n", esc(title)));
    o.push_str(
        "<style>\n\
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }\n\
table { border-collapse: collapse; font-size: 13px; }\n\
th, td { border: 1px solid #bbb; padding: 4px 8px; text-align: left; vertical-align: top; }\n\
thead th { background: #eee; position: sticky; top: 0; }\n\
th.src { background: #eee; white-space: nowrap; }\n\
td.allow { background: #c8efc8; }\n\
td.partial { background: linear-gradient(135deg, #c8efc8 60%, #f4b6b6 60%); }\n\
td.deny { background: #f4b6b6; }\n\
td.none { background: #f3f3f3; color: #999; text-align: center; }\n\
.legend span { display: inline-block; padding: 2px 8px; margin-right: 8px; border: 1px solid #bbb; }\n\
</style>\n</head>\n<body>\n",
    );
    o.push_str(&format!("<h1>Connectivity: {}</h1>\n", esc(title)));
    o.push_str("<p>Rows are sources, columns destinations: what a member of the row group may open to a member of the column group. Hover a cell for the deciding rules.</p>\n");
    o.push_str("<p class=\"legend\"><span class=\"allow\" style=\"background:#c8efc8\">allowed</span><span style=\"background:linear-gradient(135deg,#c8efc8 60%,#f4b6b6 60%)\">allowed, with a deny carving out part</span><span style=\"background:#f4b6b6\">denied by a deny subject</span><span style=\"background:#f3f3f3\">nothing allowed</span></p>\n");
    o.push_str("<table>\n<thead><tr><th>from \\ to</th>");
    for n in &m.names {
        o.push_str(&format!("<th>{}</th>", esc(n)));
    }
    o.push_str("</tr></thead>\n<tbody>\n");
    for (r, name) in m.names.iter().enumerate() {
        o.push_str(&format!("<tr><th class=\"src\">{}</th>", esc(name)));
        for c in 0..m.names.len() {
            let Some(cell) = m.cell(r, c) else { continue };
            let class = match (cell.summary.as_str(), cell.deny_rules.is_empty()) {
                ("-", true) => "none",
                ("-", false) => "deny",
                (_, true) => "allow",
                (_, false) => "partial",
            };
            let mut tip = Vec::new();
            if !cell.allow_rules.is_empty() {
                tip.push(format!("allowed by {}", cell.allow_rules.join(", ")));
            }
            if !cell.deny_rules.is_empty() {
                tip.push(format!("denied by {}", cell.deny_rules.join(", ")));
            }
            if tip.is_empty() {
                tip.push("denied by default".into());
            }
            o.push_str(&format!(
                "<td class=\"{class}\" title=\"{}\">{}</td>",
                esc(&format!(
                    "{} -> {}: {}",
                    name,
                    m.names.get(c).map_or("", |s| s.as_str()),
                    tip.join("; ")
                )),
                esc(&cell.summary)
            ));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    o
}
