//! Renderers of the one diagnostic model. The terminal renderer uses miette; the binary picks
//! colour or not. Returns strings; never prints.

use miette::{GraphicalReportHandler, GraphicalTheme};

use crate::diag::Diagnostic;

/// A diagnostic bound to the excerpt of its source that miette shows.
#[derive(Debug)]
struct WithSource<'a> {
    diag: &'a Diagnostic,
    src: Excerpt,
}

impl std::fmt::Display for WithSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self.diag, f)
    }
}

impl std::error::Error for WithSource<'_> {}

impl miette::Diagnostic for WithSource<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        miette::Diagnostic::code(self.diag)
    }
    fn severity(&self) -> Option<miette::Severity> {
        miette::Diagnostic::severity(self.diag)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        miette::Diagnostic::help(self.diag)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        miette::Diagnostic::labels(self.diag)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.src)
    }
}

/// Whether to colour when the user left it to gbpc (`--color auto`): only on a terminal, and
/// not when `NO_COLOR` is set to a non-empty value (no-color.org: set but empty does not count)
/// or the terminal cannot show colour (`TERM` unset or `dumb`, as clap's own help decides).
/// The inputs are passed in (not read here) so the decision can be tested.
pub fn auto_color(
    is_terminal: bool,
    no_color: Option<&std::ffi::OsStr>,
    term: Option<&std::ffi::OsStr>,
) -> bool {
    let no_color = no_color.is_some_and(|v| !v.is_empty());
    let dumb = term.is_none_or(|t| t.is_empty() || t == "dumb");
    is_terminal && !no_color && !dumb
}

/// A line longer than this (in bytes) is shown cut to a window around its labels.
const LONG_LINE: usize = 200;
/// The width of that window (bytes), and how much of it comes before the first label.
const WINDOW: usize = 160;
const LEAD: usize = 60;
/// Labels at most this many lines apart are shown in one snippet with the lines between them;
/// farther apart, in snippets of their own.
const MAX_GAP: usize = 2;

/// One line of an excerpt: where its shown text starts in the excerpt and in the file.
#[derive(Debug, Clone, Copy)]
struct ShownLine {
    /// The file's 0-based line number.
    line: usize,
    /// Offset of the line in the excerpt, and of its shown text after a leading `…`.
    at: usize,
    text_at: usize,
    /// The shown part of the line in the file (byte offsets).
    from: usize,
    to: usize,
}

/// What miette sees of the source for one diagnostic: the lines its labels touch and one line
/// either side, each cut to a window around its labels when it is long (with `…`), in blocks
/// of consecutive lines. Labels are moved into the excerpt's offsets; line numbers and the
/// `file:line:column` header are the file's, from [`crate::text::LineIndex`] (the one line
/// counting of every output). A diagnostic never copies more of a long line than the window,
/// nor the lines between two distant labels.
#[derive(Debug)]
struct Excerpt {
    name: String,
    text: String,
    lines: Vec<ShownLine>,
    /// Each block's first and last index in `lines`.
    blocks: Vec<(usize, usize)>,
    /// Column (in characters) of each excerpt line's shown start in the file, for headers.
    src_cols: Vec<usize>,
    /// Each label in the excerpt's offsets, with the column (in characters) of its start in the
    /// file: the header of a label cut off by a window still names its real place.
    heads: Vec<(usize, usize, usize)>,
}

impl Excerpt {
    /// The excerpt of `src` for `spans` (`primary`: the index of the primary one), and the
    /// spans moved into it.
    fn new(
        name: &str,
        src: &str,
        ix: &crate::text::LineIndex,
        spans: &[crate::diag::Span],
        primary: Option<usize>,
    ) -> (Excerpt, Vec<crate::diag::Span>) {
        // The last line with text: the empty "line" after a final line end is not context.
        let mut last_line = ix.line_count().saturating_sub(1);
        if last_line > 0 && ix.line_range(src, last_line).0 == src.len() {
            last_line -= 1;
        }
        // Lines to show, with one line of context either side, merged into blocks.
        let mut ranges: Vec<(usize, usize)> = spans
            .iter()
            .map(|s| {
                let a = ix.line_of(s.start);
                // A span that ends with a line end ends on that line.
                let b = ix.line_of(s.end.saturating_sub(1).max(s.start));
                (a.saturating_sub(1), (b + 1).min(last_line).max(b))
            })
            .collect();
        ranges.sort_unstable();
        let mut blocks: Vec<(usize, usize)> = Vec::new();
        for (a, b) in ranges {
            match blocks.last_mut() {
                Some(last) if a <= last.1 + 1 + MAX_GAP => last.1 = last.1.max(b),
                _ => blocks.push((a, b)),
            }
        }
        let mut ex = Excerpt {
            name: name.to_string(),
            text: String::new(),
            lines: Vec::new(),
            blocks: Vec::new(),
            src_cols: Vec::new(),
            heads: Vec::new(),
        };
        for (a, b) in blocks {
            let first = ex.lines.len();
            for line in a..=b {
                let (ls, le) = ix.line_range(src, line);
                // The part of the line to show.
                let (mut from, mut to) = (ls, le);
                if le - ls > LONG_LINE {
                    let on_line: Vec<(usize, usize)> = spans
                        .iter()
                        .filter(|s| s.start <= le && s.end >= ls)
                        .map(|s| (s.start.max(ls), s.end.min(le)))
                        .collect();
                    let mut lo = on_line.iter().map(|x| x.0).min().unwrap_or(ls);
                    let hi = on_line.iter().map(|x| x.1).max().unwrap_or(ls);
                    // Labels too far apart for one window: the window is the primary's.
                    if hi - lo > WINDOW - LEAD
                        && let Some(p) = primary.and_then(|i| spans.get(i))
                        && p.start >= ls
                        && p.start <= le
                    {
                        lo = p.start;
                    }
                    from = floor_boundary(src, lo.saturating_sub(LEAD).max(ls));
                    to = floor_boundary(src, (from + WINDOW).min(le));
                }
                let at = ex.text.len();
                if from > ls {
                    ex.text.push('…');
                }
                let text_at = ex.text.len();
                for c in src.get(from..to).unwrap_or("").chars() {
                    // Control characters (a vertical tab, a form feed, ...) would move the
                    // terminal's cursor: shown as spaces of the same byte length.
                    if c.is_control() && c != '\t' || crate::text::is_vertical_space(c) {
                        ex.text.extend(std::iter::repeat_n(' ', c.len_utf8()));
                    } else {
                        ex.text.push(c);
                    }
                }
                if to < le {
                    ex.text.push('…');
                }
                ex.text.push('\n');
                ex.src_cols.push(ix.position(src, from).col_chars);
                ex.lines.push(ShownLine {
                    line,
                    at,
                    text_at,
                    from,
                    to,
                });
            }
            ex.blocks.push((first, ex.lines.len() - 1));
        }
        let moved: Vec<crate::diag::Span> = spans
            .iter()
            .map(|s| crate::diag::Span::new(ex.map(ix, s.start), ex.map(ix, s.end.max(s.start))))
            .collect();
        ex.heads = spans
            .iter()
            .zip(&moved)
            .map(|(s, m)| (m.start, m.end, ix.position(src, s.start).col_chars))
            .collect();
        (ex, moved)
    }

    /// A file offset in the excerpt's offsets (clamped to the shown part of its line).
    fn map(&self, ix: &crate::text::LineIndex, offset: usize) -> usize {
        let line = ix.line_of(offset);
        let i = self.lines.partition_point(|l| l.line < line);
        let Some(l) = self.lines.get(i).filter(|l| l.line == line) else {
            return self.text.len();
        };
        l.text_at + offset.clamp(l.from, l.to) - l.from
    }

    /// The excerpt line holding excerpt offset `at`.
    fn line_at(&self, at: usize) -> usize {
        self.lines.partition_point(|l| l.at <= at).saturating_sub(1)
    }

    /// Where excerpt line `i` ends, its line end included.
    fn line_end(&self, i: usize) -> usize {
        self.lines.get(i + 1).map_or(self.text.len(), |l| l.at)
    }
}

/// The largest char boundary at or before `i`.
fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The smallest char boundary at or after `i`.
fn ceil_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

impl miette::SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let start = span.offset();
        let end = start + span.len();
        if self.lines.is_empty() || end > self.text.len() {
            return Err(miette::MietteError::OutOfBounds);
        }
        let first = self.line_at(start);
        let last = self.line_at(end.saturating_sub(1).max(start));
        // Never across two blocks: they are not consecutive lines of the file.
        let Some(&(b0, b1)) = self.blocks.iter().find(|(a, b)| *a <= first && first <= *b) else {
            return Err(miette::MietteError::OutOfBounds);
        };
        if last > b1 {
            return Err(miette::MietteError::OutOfBounds);
        }
        let from_line = first.saturating_sub(before).max(b0);
        let to_line = (last + after).min(b1);
        let data_start = self.lines[from_line].at;
        let data_end = self.line_end(to_line);
        let column = if before == 0 {
            let head = self.heads.iter().find(|h| (h.0, h.1) == (start, end));
            head.map_or_else(
                || {
                    let l = &self.lines[first];
                    let shown = self.text.get(l.text_at..start.max(l.text_at)).unwrap_or("");
                    self.src_cols[first] + shown.chars().count()
                },
                |h| h.2,
            )
        } else {
            0
        };
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            &self.text.as_bytes()[data_start..data_end],
            (data_start, data_end - data_start).into(),
            self.lines[from_line].line,
            column,
            // Counted to the end of the block, so that miette joins every label of a block
            // into one snippet (and never two blocks: `read_span` refuses that above).
            b1 - from_line + 1,
        )))
    }
}

/// Render diagnostics for a terminal (or, with `color: false`, for logs and snapshots).
pub fn terminal(diags: &[Diagnostic], file_name: &str, src: &str, color: bool) -> String {
    let ix = crate::text::LineIndex::new(src);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if diags.len() < PARALLEL_FROM || threads < 2 {
        return render_part(diags, file_name, src, &ix, color, false);
    }
    // Many diagnostics: rendered in parts over the cores, joined in order (the same bytes).
    let chunk = diags.len().div_ceil(threads);
    let ix = &ix;
    let parts: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = diags
            .chunks(chunk)
            .map(|part| scope.spawn(move || render_part(part, file_name, src, ix, color, false)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    parts.concat()
}

/// The terminal width diagnostics are laid out for.
const WIDTH: usize = 100;

/// Past this many diagnostics, the rendering is split over the available cores.
const PARALLEL_FROM: usize = 2_000;

/// Can this text be laid out without wrapping, whatever the word separator? One line of
/// plain ASCII, no leading, trailing or doubled spaces, and short enough for its indentation
/// (`room` columns): textwrap then returns it as written after the indentation, which is what
/// miette's no-wrap layout does, so the cheaper handler gives the same bytes. (Unicode line
/// breaking is most of the cost of a short diagnostic.)
fn fits(text: &str, room: usize) -> bool {
    !text.is_empty()
        && text.len() <= room
        && text.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !text.starts_with(' ')
        && !text.ends_with(' ')
        && !text.contains("  ")
}

fn needs_wrapping(d: &Diagnostic) -> bool {
    // Message after "  ⚠ " (4 columns), help after "  help: " (8), both in WIDTH - 2, with
    // a column to spare.
    !(fits(&d.message, WIDTH - 2 - 4 - 1)
        && d.help.as_deref().is_none_or(|h| fits(h, WIDTH - 2 - 8 - 1)))
}

fn render_part(
    diags: &[Diagnostic],
    file_name: &str,
    src: &str,
    ix: &crate::text::LineIndex,
    color: bool,
    always_wrap: bool,
) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let wrapping = GraphicalReportHandler::new_themed(theme.clone()).with_width(WIDTH);
    let plain = GraphicalReportHandler::new_themed(theme)
        .with_width(WIDTH)
        .with_wrap_lines(false);
    let mut out = String::new();
    for d in diags {
        // Spans past the end (a truncated or undecodable file) are clamped to the text.
        let mut d = d.clone();
        let spans: Vec<crate::diag::Span> = d
            .labels
            .iter()
            .map(|l| {
                let start = floor_boundary(src, l.span.start.min(src.len()));
                crate::diag::Span::new(start, ceil_boundary(src, l.span.end.min(src.len())))
            })
            .collect();
        let primary = d.labels.iter().position(|l| l.primary);
        let (excerpt, moved) = Excerpt::new(file_name, src, ix, &spans, primary);
        for (l, s) in d.labels.iter_mut().zip(moved) {
            l.span = s;
        }
        let handler = if always_wrap || needs_wrapping(&d) {
            &wrapping
        } else {
            &plain
        };
        let w = WithSource {
            diag: &d,
            src: excerpt,
        };
        if handler.render_report(&mut out, &w).is_err() {
            out.push_str(&format!("{}: {}\n", d.code, d.message));
        }
    }
    out
}

/// The one-line summary after a check: `2 errors, 1 warning`.
pub fn summary(errors: usize, warnings: usize) -> String {
    use crate::text::count;
    format!("{}, {}", count(errors, "error"), count(warnings, "warning"))
}

/// A position as the JSON format writes it.
fn json_pos(ix: &crate::text::LineIndex, src: &str, offset: usize) -> serde_json::Value {
    let p = ix.position(src, offset);
    serde_json::json!({
        "offset": offset.min(src.len()),
        "line": p.line_no(),
        "column": p.column_no(),
        "column_utf16": p.col_utf16 + 1,
    })
}

/// A place in a policy as the JSON outputs of `explain` and `run` write it: `file`, `line`,
/// `column` (from 1, in characters), in that order; callers add their own keys after them.
pub fn json_place(
    file: &str,
    src: &str,
    ix: &crate::text::LineIndex,
    offset: usize,
) -> serde_json::Map<String, serde_json::Value> {
    let p = ix.position(src, offset);
    let mut m = serde_json::Map::new();
    m.insert("file".into(), file.into());
    m.insert("line".into(), p.line_no().into());
    m.insert("column".into(), p.column_no().into());
    m
}

/// One JSON object per diagnostic, one per line (JSON Lines); the schema is documented in
/// `docs/diagnostics-json.md`.
pub fn json(diags: &[Diagnostic], file_name: &str, src: &str) -> String {
    let ix = crate::text::LineIndex::new(src);
    let mut out = String::new();
    for d in diags {
        let labels: Vec<serde_json::Value> = d
            .labels
            .iter()
            .map(|l| {
                serde_json::json!({
                    "primary": l.primary,
                    "message": l.message,
                    "start": json_pos(&ix, src, l.span.start),
                    "end": json_pos(&ix, src, l.span.end),
                })
            })
            .collect();
        let fixes: Vec<serde_json::Value> = d
            .fixes
            .iter()
            .map(|f| {
                serde_json::json!({
                    "title": f.title,
                    "replacement": f.replacement,
                    "start": json_pos(&ix, src, f.span.start),
                    "end": json_pos(&ix, src, f.span.end),
                })
            })
            .collect();
        let v = serde_json::json!({
            "code": d.code.as_str(),
            "severity": match d.severity {
                crate::diag::Severity::Error => "error",
                crate::diag::Severity::Warning => "warning",
            },
            "message": d.message,
            "help": d.help,
            "file": file_name,
            "labels": labels,
            "fixes": fixes,
        });
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}

/// A SARIF region: 1-based lines, 1-based columns in UTF-16 code units (SARIF's default
/// `columnKind`, which the log also states), the end column exclusive. An empty span is an
/// insertion point (start and end equal), as SARIF defines it.
fn sarif_region(
    ix: &crate::text::LineIndex,
    src: &str,
    span: crate::diag::Span,
) -> serde_json::Value {
    let start = ix.position(src, span.start);
    let end = ix.position(src, span.end.max(span.start));
    serde_json::json!({
        "startLine": start.line + 1,
        "startColumn": start.col_utf16 + 1,
        "endLine": end.line + 1,
        "endColumn": end.col_utf16 + 1,
    })
}

/// The file name as a SARIF artifact URI: a relative reference for a relative path (GitHub code
/// scanning resolves it against the repository root), `file://` for an absolute one, with every
/// byte outside RFC 3986's unreserved set (and `/`) percent-encoded.
fn sarif_uri(file_name: &str) -> String {
    let mut out = String::new();
    if file_name.starts_with('/') {
        out.push_str("file://");
    }
    for b in file_name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The diagnostics of one file as a SARIF 2.1.0 log (one run of gbpc, one artifact), for GitHub
/// code scanning and other dashboards: every diagnostic code is a rule (`gbpc::E010`, level from
/// its letter); a result per diagnostic with its primary label as the location, secondary labels
/// as related locations and did-you-mean fixes as SARIF fixes. Always a whole log, also without
/// results. Documented in `docs/diagnostics-json.md`; validated against the OASIS schema
/// (`schemas/sarif-schema-2.1.0.json`) by the tests.
pub fn sarif(diags: &[Diagnostic], file_name: &str, src: &str) -> String {
    use crate::diag::{Code, Severity};
    let ix = crate::text::LineIndex::new(src);
    let uri = sarif_uri(file_name);
    let artifact = serde_json::json!({ "uri": uri, "index": 0 });
    let level = |s: Severity| match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let rules: Vec<serde_json::Value> = Code::ALL
        .iter()
        .map(|c| {
            let default = if c.as_str().starts_with("gbpc::W") {
                Severity::Warning
            } else {
                Severity::Error
            };
            serde_json::json!({
                "id": c.as_str(),
                "name": format!("{c:?}"),
                "shortDescription": { "text": c.summary() },
                "defaultConfiguration": { "level": level(default) },
            })
        })
        .collect();
    let location = |span: Option<crate::diag::Span>, message: Option<&str>| {
        let mut physical = serde_json::json!({ "artifactLocation": artifact });
        if let Some(s) = span {
            physical["region"] = sarif_region(&ix, src, s);
        }
        let mut loc = serde_json::json!({ "physicalLocation": physical });
        if let Some(m) = message.filter(|m| !m.is_empty()) {
            loc["message"] = serde_json::json!({ "text": m });
        }
        loc
    };
    let results: Vec<serde_json::Value> = diags
        .iter()
        .map(|d| {
            let primary = d.labels.iter().position(|l| l.primary);
            let main = match primary {
                Some(i) => location(Some(d.labels[i].span), Some(&d.labels[i].message)),
                // A finding about the whole input: the artifact, without a region.
                None => location(None, None),
            };
            let related: Vec<serde_json::Value> = d
                .labels
                .iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != primary)
                .enumerate()
                .map(|(id, (_, l))| {
                    let mut loc = location(Some(l.span), Some(&l.message));
                    loc["id"] = serde_json::json!(id + 1);
                    loc
                })
                .collect();
            let fixes: Vec<serde_json::Value> = d
                .fixes
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "description": { "text": f.title },
                        "artifactChanges": [{
                            "artifactLocation": artifact,
                            "replacements": [{
                                "deletedRegion": sarif_region(&ix, src, f.span),
                                "insertedContent": { "text": f.replacement },
                            }],
                        }],
                    })
                })
                .collect();
            let text = match &d.help {
                Some(h) => format!("{}\nhelp: {h}", d.message),
                None => d.message.clone(),
            };
            let mut r = serde_json::json!({
                "ruleId": d.code.as_str(),
                "ruleIndex": Code::ALL.iter().position(|c| *c == d.code).unwrap_or(0),
                "level": level(d.severity),
                "message": { "text": text },
                "locations": [main],
            });
            if !related.is_empty() {
                r["relatedLocations"] = serde_json::Value::Array(related);
            }
            if !fixes.is_empty() {
                r["fixes"] = serde_json::Value::Array(fixes);
            }
            r
        })
        .collect();
    let log = serde_json::json!({
        "$schema": "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "gbpc",
                    "version": env!("CARGO_PKG_VERSION"),
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                },
            },
            "artifacts": [{ "location": { "uri": uri }, "sourceLanguage": "gbp" }],
            "columnKind": "utf16CodeUnits",
            "results": results,
        }],
    });
    let mut out = serde_json::to_string_pretty(&log).unwrap_or_default();
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Code, Span};

    /// A small deterministic generator.
    struct Lcg(u64);
    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) % n.max(1) as u64) as usize
        }
    }

    const PIECES: [&str; 8] = ["a", "bc", " ", "\u{e9}", "\u{20ac}", "\n", "\r\n", "{"];

    fn text(rng: &mut Lcg) -> String {
        (0..rng.below(300) + 1)
            .map(|_| PIECES[rng.below(PIECES.len())])
            .collect()
    }

    fn boundary(t: &str, rng: &mut Lcg) -> usize {
        let mut i = rng.below(t.len() + 1);
        while !t.is_char_boundary(i) {
            i -= 1;
        }
        i
    }

    const WORDS: [&str; 12] = [
        "group",
        "`t/web`",
        "intra-group",
        "a",
        "has",
        "no-members:",
        "(nftables)",
        "198.18.0.0/15,",
        "\u{e9}t\u{e9}",
        "very-long-hyphenated-word-that-might-break",
        "x",
        "tenant/any",
    ];

    fn sentence(rng: &mut Lcg) -> String {
        let n = rng.below(30) + 1;
        let mut s: Vec<&str> = (0..n).map(|_| WORDS[rng.below(WORDS.len())]).collect();
        if rng.below(10) == 0 {
            s.push(" ");
        }
        s.join(if rng.below(15) == 0 { "  " } else { " " })
    }

    /// The shortcuts change no byte: short messages laid out without wrapping read as the
    /// wrapping layout gives them, and many diagnostics rendered in parallel parts read as
    /// one serial rendering; with and without colour.
    #[test]
    fn shortcuts_change_nothing() {
        let mut rng = Lcg(11);
        let mut all = Vec::new();
        let mut texts = Vec::new();
        for _ in 0..400 {
            let t = text(&mut rng);
            let mut diags = Vec::new();
            for _ in 0..rng.below(4) + 1 {
                let mut d = Diagnostic::warning(Code::EmptyGroup, sentence(&mut rng));
                for l in 0..rng.below(3) + 1 {
                    let a = boundary(&t, &mut rng);
                    let b = boundary(&t, &mut rng);
                    let sp = Span::new(a.min(b), a.max(b));
                    d = if l == 0 {
                        d.primary(sp, "here")
                    } else {
                        d.secondary(sp, sentence(&mut rng))
                    };
                }
                if rng.below(4) != 0 {
                    d = d.help(sentence(&mut rng));
                }
                diags.push(d);
            }
            let ix = crate::text::LineIndex::new(&t);
            for color in [false, true] {
                assert_eq!(
                    terminal(&diags, "f.gbp", &t, color),
                    render_part(&diags, "f.gbp", &t, &ix, color, true),
                    "{t:?}"
                );
            }
            texts.push(t);
            all.push(diags);
        }
        let t = texts.concat();
        let many: Vec<Diagnostic> = all
            .into_iter()
            .flatten()
            .cycle()
            .take(PARALLEL_FROM * 2 + 7)
            .collect();
        let ix = crate::text::LineIndex::new(&t);
        assert_eq!(
            terminal(&many, "f.gbp", &t, false),
            render_part(&many, "f.gbp", &t, &ix, false, true)
        );
    }

    /// A long line is shown as a window around the labels, with `…` where it is cut, and the
    /// header still names the primary label's real line and column.
    #[test]
    fn long_lines_are_cut_around_the_labels() {
        let src = format!(
            "tenant t {{\n{}x{}y\n}}\n",
            "a".repeat(5000),
            "b".repeat(5000)
        );
        let x = src.find('x').unwrap_or(0);
        let y = src.find('y').unwrap_or(0);
        let d = Diagnostic::error(Code::Syntax, "m")
            .primary(Span::new(y, y + 1), "primary")
            .secondary(Span::new(x, x + 1), "secondary");
        let out = terminal(&[d], "f.gbp", &src, false);
        assert!(out.lines().all(|l| l.chars().count() < 300), "{out}");
        assert!(out.contains("[f.gbp:2:10002]"), "{out}");
        assert!(out.contains("…bbbb") && out.contains("y"), "{out}");
        // Far apart on one line: the window is the primary's.
        assert!(out.contains("primary"), "{out}");
    }
}
