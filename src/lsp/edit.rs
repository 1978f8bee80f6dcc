//! Edits the server offers: quick fixes from the diagnostics' own did-you-mean fixes, and
//! whole-document formatting.

use std::collections::HashMap;

use lsp_types as lsp;

use super::doc::{Doc, Encoding};
use crate::diag::Span;

/// The edits that format the document as `gbpc fmt` does: one edit replacing the whole text,
/// none when it is already formatted, `None` when it does not parse (a broken file is never
/// formatted).
pub fn format(doc: &Doc, enc: Encoding) -> Option<Vec<lsp::TextEdit>> {
    let formatted = crate::fmt::format(&doc.text).ok()?;
    if formatted == doc.text {
        return Some(Vec::new());
    }
    Some(vec![lsp::TextEdit {
        range: doc.range(Span::new(0, doc.text.len()), enc),
        new_text: formatted,
    }])
}

/// Quick fixes for the diagnostics whose primary span touches `range`.
pub fn code_actions(
    doc: &Doc,
    uri: &lsp::Uri,
    enc: Encoding,
    range: Span,
) -> Vec<lsp::CodeActionOrCommand> {
    let mut out = Vec::new();
    for d in &doc.diags {
        let Some(span) = d.primary_span() else {
            continue;
        };
        if span.start > range.end || range.start > span.end {
            continue;
        }
        for fix in &d.fixes {
            let edit = lsp::TextEdit {
                range: doc.range(fix.span, enc),
                new_text: fix.replacement.clone(),
            };
            out.push(lsp::CodeActionOrCommand::CodeAction(lsp::CodeAction {
                title: fix.title.clone(),
                kind: Some(lsp::CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![doc.to_lsp(d, uri, enc)]),
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
