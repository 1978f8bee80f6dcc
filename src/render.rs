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
