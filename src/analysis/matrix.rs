//! `matrix`: group-to-group connectivity (rows are sources, columns destinations; a cell says
//! what a member of the row group may open to a member of the column group) as text, CSV or
//! one self-contained HTML page.
//!
//! The writers stream: a row is computed, written and dropped, and only the cells where
//! something may be allowed are computed at all (see [`super::Near`]; every other cell is `-`),
//! so memory stays bounded by one row (text needs the column widths first, so it keeps the
//! summaries of the non-empty cells). An HTML page with a cell per pair stops being usable
//! long before it stops fitting in memory: past [`HTML_MAX_GROUPS`] groups the page shows
//! tenants instead of groups, and past as many tenants it is refused with a message.

use std::io::{self, Write};

use crate::eval::Verdict;
use crate::model::{GroupId, Policy, TenantId};

use super::{Near, Rule, allowed, nominal, real_groups, summary, sweep};

/// One cell: the allowed summary, the rules that allowed, and whether a deny subject decided
/// some segment (shown in colour).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub summary: String,
    pub allow_rules: Vec<String>,
    pub deny_rules: Vec<String>,
}

impl Cell {
    /// A pair nothing connects: no contract applies, no open group is shared.
    fn nothing() -> Cell {
        Cell {
            summary: "-".into(),
            allow_rules: Vec::new(),
            deny_rules: Vec::new(),
        }
    }
}

/// The matrix over every internal and external group, every cell computed: the reference the
/// streaming writers are tested against, and what small callers use.
pub struct Matrix {
    pub groups: Vec<GroupId>,
    pub names: Vec<String>,
    /// Row-major: `cells[row * n + col]`.
    pub cells: Vec<Cell>,
}

/// The cell between two groups, from the evaluator.
pub fn cell(p: &Policy, s: GroupId, d: GroupId) -> Cell {
    let (src, dst) = (nominal(p, s), nominal(p, d));
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
    Cell {
        summary: summary(&a),
        allow_rules: allow_rules.iter().map(|r| r.name(p)).collect(),
        deny_rules: deny_rules.iter().map(|r| r.name(p)).collect(),
    }
}

/// Every cell, each swept (quadratic: for tests and small policies).
pub fn matrix(p: &Policy) -> Matrix {
    let groups = real_groups(p);
    let names: Vec<String> = groups.iter().map(|g| p.group_name(*g)).collect();
    let mut cells = Vec::with_capacity(groups.len() * groups.len());
    for &s in &groups {
        for &d in &groups {
            cells.push(cell(p, s, d));
        }
    }
    Matrix {
        groups,
        names,
        cells,
    }
}

/// The rows of a matrix, each as its non-`-` cells: (column, cell), ascending.
type SparseRow = Vec<(usize, Cell)>;

/// Rows computed on demand: only the cells [`Near`] finds are swept.
struct Rows<'a> {
    p: &'a Policy,
    groups: Vec<GroupId>,
    names: Vec<String>,
    near: Near,
}

impl<'a> Rows<'a> {
    fn new(p: &'a Policy) -> Self {
        let groups = real_groups(p);
        let names = groups.iter().map(|g| p.group_name(*g)).collect();
        let near = Near::new(p, &groups);
        Rows {
            p,
            groups,
            names,
            near,
        }
    }

    fn row(&self, r: usize) -> SparseRow {
        let s = self.groups[r];
        self.near
            .of(self.p, s)
            .into_iter()
            .map(|c| (c, cell(self.p, s, self.groups[c])))
            .filter(|(_, x)| *x != Cell::nothing())
            .collect()
    }
}

impl Matrix {
    fn sparse_row(&self, r: usize) -> SparseRow {
        let n = self.groups.len();
        (0..n)
            .filter_map(|c| self.cells.get(r * n + c).map(|x| (c, x.clone())))
            .filter(|(_, x)| *x != Cell::nothing())
            .collect()
    }
}

/// Aligned text: one row per source, one column per destination.
fn write_text_rows(names: &[String], rows: &[SparseRow], w: &mut dyn Write) -> io::Result<()> {
    let mut widths: Vec<usize> = names.iter().map(|s| s.chars().count().max(1)).collect();
    for row in rows {
        for (c, cell) in row {
            if let Some(w) = widths.get_mut(*c) {
                *w = (*w).max(cell.summary.chars().count());
            }
        }
    }
    let first = names
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0)
        .max("from \\ to".len());
    let mut line = format!("{:<first$}", "from \\ to");
    for (c, name) in names.iter().enumerate() {
        line.push_str(&format!(
            " | {:<w$}",
            name,
            w = widths.get(c).copied().unwrap_or(0)
        ));
    }
    writeln!(w, "{}", line.trim_end())?;
    for (r, name) in names.iter().enumerate() {
        let mut line = format!("{name:<first$}");
        let mut cells = rows.get(r).into_iter().flatten().peekable();
        for (c, wd) in widths.iter().enumerate() {
            let s = match cells.peek() {
                Some((col, x)) if *col == c => {
                    let s = x.summary.as_str();
                    cells.next();
                    s
                }
                _ => "-",
            };
            line.push_str(&format!(" | {s:<wd$}"));
        }
        writeln!(w, "{}", line.trim_end())?;
    }
    Ok(())
}

pub fn text(m: &Matrix) -> String {
    let rows: Vec<SparseRow> = (0..m.groups.len()).map(|r| m.sparse_row(r)).collect();
    let mut out = Vec::new();
    let _ = write_text_rows(&m.names, &rows, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The text matrix of a policy, written as it is computed (the summaries of non-empty cells
/// are kept for the column widths).
pub fn write_text(p: &Policy, w: &mut dyn Write) -> io::Result<()> {
    let rows = Rows::new(p);
    let all: Vec<SparseRow> = (0..rows.groups.len()).map(|r| rows.row(r)).collect();
    write_text_rows(&rows.names, &all, w)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', ';']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_csv_rows(
    names: &[String],
    row: &mut dyn FnMut(usize) -> SparseRow,
    w: &mut dyn Write,
) -> io::Result<()> {
    let mut head = String::from("from");
    for n in names {
        head.push(',');
        head.push_str(&csv_field(n));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    let mut line = String::new();
    for (r, name) in names.iter().enumerate() {
        line.clear();
        line.push_str(&csv_field(name));
        let cells = row(r);
        let mut cells = cells.iter().peekable();
        for c in 0..names.len() {
            line.push(',');
            match cells.peek() {
                Some((col, x)) if *col == c => {
                    line.push_str(&csv_field(&x.summary));
                    cells.next();
                }
                _ => line.push('-'),
            }
        }
        line.push_str("\r\n");
        w.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// CSV (RFC 4180): a header row of destinations, then one row per source.
pub fn csv(m: &Matrix) -> String {
    let mut out = Vec::new();
    let _ = write_csv_rows(&m.names, &mut |r| m.sparse_row(r), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The CSV matrix of a policy, row by row (memory: one row).
pub fn write_csv(p: &Policy, w: &mut dyn Write) -> io::Result<()> {
    let rows = Rows::new(p);
    write_csv_rows(&rows.names, &mut |r| rows.row(r), w)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Past this many groups the HTML page shows tenants, and past this many tenants it is
/// refused: a table of 250 x 250 cells is about as much as a browser page stays usable with.
pub const HTML_MAX_GROUPS: usize = 250;

fn html_head(o: &mut String, title: &str) {
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
}

const LEGEND: &str = "<p class=\"legend\"><span class=\"allow\" style=\"background:#c8efc8\">allowed</span><span style=\"background:linear-gradient(135deg,#c8efc8 60%,#f4b6b6 60%)\">allowed, with a deny carving out part</span><span style=\"background:#f4b6b6\">denied by a deny subject</span><span style=\"background:#f3f3f3\">nothing allowed</span></p>\n";

fn html_class(allowed: bool, denied: bool) -> &'static str {
    match (allowed, denied) {
        (false, false) => "none",
        (false, true) => "deny",
        (true, false) => "allow",
        (true, true) => "partial",
    }
}

fn write_html_rows(
    names: &[String],
    row: &mut dyn FnMut(usize) -> SparseRow,
    title: &str,
    w: &mut dyn Write,
) -> io::Result<()> {
    let mut o = String::new();
    html_head(&mut o, title);
    o.push_str("<p>Rows are sources, columns destinations: what a member of the row group may open to a member of the column group. Hover a cell for the deciding rules.</p>\n");
    o.push_str(LEGEND);
    o.push_str("<table>\n<thead><tr><th>from \\ to</th>");
    for n in names {
        o.push_str(&format!("<th>{}</th>", esc(n)));
    }
    o.push_str("</tr></thead>\n<tbody>\n");
    w.write_all(o.as_bytes())?;
    let nothing = Cell::nothing();
    for (r, name) in names.iter().enumerate() {
        let mut o = format!("<tr><th class=\"src\">{}</th>", esc(name));
        let cells = row(r);
        let mut cells = cells.iter().peekable();
        for (c, to) in names.iter().enumerate() {
            let cell = match cells.peek() {
                Some((col, x)) if *col == c => {
                    cells.next();
                    x
                }
                _ => &nothing,
            };
            let class = html_class(cell.summary != "-", !cell.deny_rules.is_empty());
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
                esc(&format!("{} -> {}: {}", name, to, tip.join("; "))),
                esc(&cell.summary)
            ));
        }
        o.push_str("</tr>\n");
        w.write_all(o.as_bytes())?;
    }
    w.write_all(b"</tbody>\n</table>\n</body>\n</html>\n")
}

/// One self-contained HTML page (inline CSS, no scripts, no external resources). Cells are
/// green when something is allowed, red when a deny subject decides part of the pair, grey
/// when nothing is allowed; the title attribute names the deciding rules.
pub fn html(m: &Matrix, title: &str) -> String {
    let mut out = Vec::new();
    let _ = write_html_rows(&m.names, &mut |r| m.sparse_row(r), title, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Why an HTML matrix was not written.
#[derive(Debug)]
pub enum HtmlError {
    /// More groups and tenants than a page can show usefully: the message says what to do.
    TooLarge(String),
    Io(io::Error),
}

impl From<io::Error> for HtmlError {
    fn from(e: io::Error) -> Self {
        HtmlError::Io(e)
    }
}

/// The HTML matrix of a policy, streamed: a page of groups up to [`HTML_MAX_GROUPS`] groups,
/// else a page of tenants (each cell counts the group pairs of the two tenants that allow
/// something), else an error that says to use CSV.
pub fn write_html(p: &Policy, title: &str, w: &mut dyn Write) -> Result<(), HtmlError> {
    let rows = Rows::new(p);
    let n = rows.groups.len();
    if n <= HTML_MAX_GROUPS {
        return Ok(write_html_rows(
            &rows.names,
            &mut |r| rows.row(r),
            title,
            w,
        )?);
    }
    let nt = p.tenants.len();
    if nt > HTML_MAX_GROUPS {
        return Err(HtmlError::TooLarge(format!(
            "{n} groups in {nt} tenants are too many for an HTML page (at most {HTML_MAX_GROUPS} groups, or {HTML_MAX_GROUPS} tenants shown as tenants); use `--format csv` (every pair of groups) or `gbpc query`"
        )));
    }
    // Per (source tenant, destination tenant): group pairs, pairs allowing something, pairs
    // where a deny subject decides part.
    let mut counts = vec![(0u64, 0u64, 0u64); nt * nt];
    let mut per_tenant = vec![0u64; nt];
    for g in &rows.groups {
        per_tenant[p.group(*g).tenant.index()] += 1;
    }
    for (r, s) in rows.groups.iter().enumerate() {
        let ts = p.group(*s).tenant.index();
        for (c, cell) in rows.row(r) {
            let td = p.group(rows.groups[c]).tenant.index();
            let x = &mut counts[ts * nt + td];
            x.1 += u64::from(cell.summary != "-");
            x.2 += u64::from(!cell.deny_rules.is_empty());
        }
    }
    let mut o = String::new();
    html_head(&mut o, title);
    o.push_str(&format!(
        "<p>{n} groups are too many for one row and column each, so this page shows tenants: a cell counts the pairs of groups (a member of the row tenant's group to a member of the column tenant's group) that allow something. <code>gbpc matrix --format csv</code> has every pair of groups, <code>gbpc query</code> the ports.</p>\n"
    ));
    o.push_str(LEGEND);
    o.push_str("<table>\n<thead><tr><th>from \\ to</th>");
    let tname = |t: usize| p.tenant(TenantId(t as u32)).name.clone();
    for (t, count) in per_tenant.iter().enumerate() {
        o.push_str(&format!("<th>{} ({count} groups)</th>", esc(&tname(t))));
    }
    o.push_str("</tr></thead>\n<tbody>\n");
    w.write_all(o.as_bytes())?;
    for ts in 0..nt {
        let mut o = format!(
            "<tr><th class=\"src\">{} ({} groups)</th>",
            esc(&tname(ts)),
            per_tenant[ts]
        );
        for td in 0..nt {
            let (_, allowing, denying) = counts[ts * nt + td];
            let pairs = per_tenant[ts] * per_tenant[td];
            let class = html_class(allowing > 0, denying > 0);
            let tip = format!(
                "{} -> {}: {allowing} of {pairs} group pairs allow something; a deny subject decides part of {denying}",
                tname(ts),
                tname(td)
            );
            let text = if allowing == 0 {
                "-".to_string()
            } else {
                format!("{allowing} / {pairs}")
            };
            o.push_str(&format!(
                "<td class=\"{class}\" title=\"{}\">{}</td>",
                esc(&tip),
                esc(&text)
            ));
        }
        o.push_str("</tr>\n");
        w.write_all(o.as_bytes())?;
    }
    w.write_all(b"</tbody>\n</table>\n</body>\n</html>\n")?;
    Ok(())
}
