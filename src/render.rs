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
