//! Renderers of the one diagnostic model. The terminal renderer uses miette; the binary picks
//! colour or not. Returns strings; never prints.

use miette::{GraphicalReportHandler, GraphicalTheme, NamedSource};

use crate::diag::Diagnostic;

/// A diagnostic bound to its source, as miette wants it.
#[derive(Debug)]
struct WithSource<'a> {
    diag: &'a Diagnostic,
    src: NamedSource<String>,
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

/// Render diagnostics for a terminal (or, with `color: false`, for logs and snapshots).
pub fn terminal(diags: &[Diagnostic], file_name: &str, src: &str, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
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
            src: NamedSource::new(file_name, src.to_string()),
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
