//! Edits the server offers: quick fixes from the diagnostics' own did-you-mean fixes, and
//! whole-document formatting.

use std::collections::HashMap;

use lsp_types as lsp;

use super::doc::{Encoding, Text};
use crate::diag::{Diagnostic, Span};

/// The edits that format the document as `gbpc fmt` does: one edit replacing the whole text,
/// none when it is already formatted, `None` when it does not parse (a broken file is never
/// formatted).
///
/// Always of the latest text the client sent, never of the last analysed one.
pub fn format(text: &Text, enc: Encoding) -> Option<Vec<lsp::TextEdit>> {
    let formatted = crate::fmt::format(&text.src).ok()?;
    if formatted == text.src {
        return Some(Vec::new());
    }
    Some(vec![lsp::TextEdit {
        range: text.range(Span::new(0, text.src.len()), enc),
        new_text: formatted,
    }])
}

/// Quick fixes for the diagnostics (of `text`) whose primary span touches `range`.
pub fn code_actions<'a>(
    diags: impl IntoIterator<Item = &'a Diagnostic>,
    text: &Text,
    uri: &lsp::Uri,
    enc: Encoding,
    range: Span,
) -> Vec<lsp::CodeActionOrCommand> {
    let mut out = Vec::new();
    for d in diags {
        let Some(span) = d.primary_span() else {
            continue;
        };
        if span.start > range.end || range.start > span.end {
            continue;
        }
        for fix in &d.fixes {
            let edit = lsp::TextEdit {
                range: text.range(fix.span, enc),
                new_text: fix.replacement.clone(),
            };
            out.push(lsp::CodeActionOrCommand::CodeAction(lsp::CodeAction {
                title: fix.title.clone(),
                kind: Some(lsp::CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![text.to_lsp(d, uri, enc)]),
                edit: Some(lsp::WorkspaceEdit {
                    changes: Some(HashMap::from([(uri.clone(), vec![edit])])),
                    ..Default::default()
                }),
                is_preferred: Some(d.fixes.len() == 1),
                ..Default::default()
            }));
        }
    }
    out
}
