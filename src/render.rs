//! Renderers of the one diagnostic model. The terminal renderer uses miette; the binary picks
//! colour or not. Returns strings; never prints.

use miette::{GraphicalReportHandler, GraphicalTheme};

use crate::diag::Diagnostic;

/// The source text with the start of every line as miette counts lines (`\n`, `\r\n` and a
/// lone `\r` each end one), so that reading the lines around a span costs the size of those
/// lines. miette's own `SourceCode for str` scans the text from its start for every label it
/// reads, which made rendering N diagnostics cost N times the file: 50,000 warnings took
/// minutes.
struct Indexed<'a> {
    name: &'a str,
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Indexed<'a> {
    fn new(name: &'a str, text: &'a str) -> Self {
        let b = text.as_bytes();
        let mut starts = vec![0];
        for (i, &c) in b.iter().enumerate() {
            if c == b'\n' || (c == b'\r' && b.get(i + 1) != Some(&b'\n')) {
                starts.push(i + 1);
            }
        }
        Indexed { name, text, starts }
    }

    /// The 0-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        self.starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1)
    }
}

impl miette::SourceCode for Indexed<'_> {
    fn read_span<'b>(
        &'b self,
        span: &miette::SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'b> + 'b>, miette::MietteError> {
        let (start, len) = (span.offset(), span.len());
        let end = start.saturating_add(len);
        // A window of whole lines around the span, with a line to spare on each side; miette
        // reads it exactly as it would read the whole text, then the positions are shifted
        // back.
        let first = self.line(start).saturating_sub(before + 1);
        let last = self.line(end.max(start)).saturating_add(after + 2);
        let w0 = self.starts.get(first).copied().unwrap_or(0);
        let w1 = self
            .starts
            .get(last)
            .copied()
            .unwrap_or(self.text.len())
            .max(end.min(self.text.len()));
        if start < w0 || end > w1 {
            return self.text.read_span(span, before, after);
        }
        let window = &self.text.as_bytes()[w0..w1];
        let inner = window.read_span(
            &miette::SourceSpan::new((start - w0).into(), len),
            before,
            after,
        )?;
        let shifted = *inner.span();
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.to_string(),
            inner.data(),
            miette::SourceSpan::new((shifted.offset() + w0).into(), shifted.len()),
            inner.line() + first,
            inner.column(),
            inner.line_count() + first,
        )))
    }
}

/// A diagnostic bound to its source, as miette wants it.
#[derive(Debug)]
struct WithSource<'a, S> {
    diag: &'a Diagnostic,
    src: &'a S,
}

impl<S> std::fmt::Display for WithSource<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self.diag, f)
    }
}

impl<S: std::fmt::Debug> std::error::Error for WithSource<'_, S> {}

impl<S: miette::SourceCode + std::fmt::Debug> miette::Diagnostic for WithSource<'_, S> {
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
        Some(self.src)
    }
}

impl std::fmt::Debug for Indexed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexed").field("name", &self.name).finish()
    }
}

/// Render diagnostics for a terminal (or, with `color: false`, for logs and snapshots).
pub fn terminal(diags: &[Diagnostic], file_name: &str, src: &str, color: bool) -> String {
    let src_index = Indexed::new(file_name, src);
    render_with(diags, src, color, &src_index)
}

/// The terminal width diagnostics are laid out for.
const WIDTH: usize = 100;

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

/// Past this many diagnostics, the rendering is split over the available cores (each part in
/// order, joined in order: the output is the same).
const PARALLEL_FROM: usize = 2_000;

fn render_with<S: miette::SourceCode + std::fmt::Debug + Sync>(
    diags: &[Diagnostic],
    src: &str,
    color: bool,
    source: &S,
) -> String {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if diags.len() < PARALLEL_FROM || threads < 2 {
        return render_part(diags, src, color, source);
    }
    let chunk = diags.len().div_ceil(threads);
    let parts: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = diags
            .chunks(chunk)
            .map(|part| scope.spawn(move || render_part(part, src, color, source)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    parts.concat()
}

fn render_part<S: miette::SourceCode + std::fmt::Debug>(
    diags: &[Diagnostic],
    src: &str,
    color: bool,
    source: &S,
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
        for l in &mut d.labels {
            l.span.start = l.span.start.min(src.len());
            l.span.end = l.span.end.min(src.len());
        }
        let w = WithSource {
            diag: &d,
            src: source,
        };
        let handler = if needs_wrapping(&d) {
            &wrapping
        } else {
            &plain
        };
        if handler.render_report(&mut out, &w).is_err() {
            out.push_str(&format!("{}: {}\n", d.code, d.message));
        }
    }
    out
}

/// The one-line summary after a check: `2 errors, 1 warning`.
pub fn summary(errors: usize, warnings: usize) -> String {
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

/// A position as the JSON format writes it.
fn json_pos(ix: &crate::text::LineIndex, src: &str, offset: usize) -> serde_json::Value {
    let p = ix.position(src, offset);
    serde_json::json!({
        "offset": offset.min(src.len()),
        "line": p.line + 1,
        "column": p.col_chars + 1,
        "column_utf16": p.col_utf16 + 1,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Code, Span};
    use miette::SourceCode;

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

    const PIECES: [&str; 9] = [
        "a", "bc", " ", "\u{e9}", "\u{20ac}", "\n", "\r", "\r\n", "{",
    ];

    fn text(rng: &mut Lcg) -> String {
        (0..rng.below(120) + 1)
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

    /// The indexed source reads every span exactly as miette reads the whole text: line
    /// ends of every kind, multi-byte characters, spans at the ends, any context.
    #[test]
    fn indexed_reads_like_miette() {
        let mut rng = Lcg(7);
        for _ in 0..3000 {
            let t = text(&mut rng);
            let ix = Indexed::new("f.gbp", &t);
            let whole = miette::NamedSource::new("f.gbp", t.clone());
            let a = boundary(&t, &mut rng);
            let b = boundary(&t, &mut rng);
            let (a, b) = (a.min(b), a.max(b));
            let span = miette::SourceSpan::new(a.into(), b - a);
            let (before, after) = (rng.below(4), rng.below(4));
            let got = ix.read_span(&span, before, after);
            let want = whole.read_span(&span, before, after);
            match (got, want) {
                (Ok(g), Ok(w)) => {
                    assert_eq!(g.data(), w.data(), "{t:?} {a}..{b} {before} {after}");
                    assert_eq!(g.span(), w.span(), "{t:?} {a}..{b}");
                    assert_eq!(g.line(), w.line(), "{t:?} {a}..{b}");
                    assert_eq!(g.column(), w.column(), "{t:?} {a}..{b}");
                    assert_eq!(g.line_count(), w.line_count(), "{t:?} {a}..{b}");
                    assert_eq!(g.name(), w.name());
                }
                (g, w) => assert_eq!(g.is_ok(), w.is_ok(), "{t:?} {a}..{b}"),
            }
        }
    }

    /// The rendering of before: miette's default handler on the whole text, one by one.
    fn oracle(diags: &[Diagnostic], name: &str, src: &str, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme).with_width(WIDTH);
        let whole = miette::NamedSource::new(name, src.to_string());
        let mut out = String::new();
        for d in diags {
            let mut d = d.clone();
            for l in &mut d.labels {
                l.span.start = l.span.start.min(src.len());
                l.span.end = l.span.end.min(src.len());
            }
            let w = WithSource {
                diag: &d,
                src: &whole,
            };
            if handler.render_report(&mut out, &w).is_err() {
                out.push_str(&format!("{}: {}\n", d.code, d.message));
            }
        }
        out
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

    /// Whole reports are byte-identical to the rendering of before (miette's default handler
    /// reading the whole text), with and without colour, for short messages (laid out
    /// without wrapping) and long ones (wrapped), and in parallel parts.
    #[test]
    fn reports_are_unchanged() {
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
            for color in [false, true] {
                assert_eq!(
                    terminal(&diags, "f.gbp", &t, color),
                    oracle(&diags, "f.gbp", &t, color),
                    "{t:?}"
                );
            }
            texts.push(t);
            all.push(diags);
        }
        // Many diagnostics on one text: rendered in parallel parts, joined in order.
        let t = texts.concat();
        let many: Vec<Diagnostic> = all
            .into_iter()
            .flatten()
            .cycle()
            .take(PARALLEL_FROM * 2 + 7)
            .collect();
        assert_eq!(
            terminal(&many, "f.gbp", &t, false),
            oracle(&many, "f.gbp", &t, false)
        );
    }
}
