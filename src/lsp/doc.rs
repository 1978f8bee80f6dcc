//! One open document as the language server sees it: the text, its syntax tree, the checked
//! model and the name index, all rebuilt on every change; and the conversions between byte
//! offsets and LSP positions, including the one mapping of a [`Diagnostic`] to an LSP
//! diagnostic.

use lsp_types as lsp;

use super::index::Index;
use crate::diag::{Code, Diagnostic, Severity, Span};
use crate::model::Checked;
use crate::syntax::{self, ast};
use crate::text::LineIndex;

/// How LSP positions count columns: UTF-16 code units (the protocol's default) or UTF-8 bytes
/// (when the client offers it in `general.positionEncodings`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
}

impl Encoding {
    /// The encoding to use, from what the client offers (`None`: the client said nothing, so
    /// UTF-16).
    pub fn negotiate(offered: Option<&[lsp::PositionEncodingKind]>) -> Encoding {
        match offered {
            Some(kinds) if kinds.contains(&lsp::PositionEncodingKind::UTF8) => Encoding::Utf8,
            _ => Encoding::Utf16,
        }
    }

    pub fn kind(self) -> lsp::PositionEncodingKind {
        match self {
            Encoding::Utf8 => lsp::PositionEncodingKind::UTF8,
            Encoding::Utf16 => lsp::PositionEncodingKind::UTF16,
        }
    }
}

/// An analysed document.
pub struct Doc {
    pub text: String,
    pub version: i32,
    pub lines: LineIndex,
    /// The syntax tree (partial when there are syntax errors).
    pub file: ast::File,
    /// The checked model; built even when there are errors.
    pub checked: Checked,
    /// Errors and warnings in reading order (what is published).
    pub diags: Vec<Diagnostic>,
    pub index: Index,
}

impl Doc {
    pub fn new(text: String, version: i32) -> Doc {
        let parsed = syntax::parse(&text);
        let checked = crate::check_parsed(&parsed);
        let diags = checked.diagnostics();
        let index = Index::build(&parsed.file);
        Doc {
            lines: LineIndex::new(&text),
            text,
            version,
            file: parsed.file,
            checked,
            diags,
            index,
        }
    }

    /// Text and line index only, without analysis: for position arithmetic.
    pub fn text_only(text: String) -> Doc {
        Doc {
            lines: LineIndex::new(&text),
            text,
            version: 0,
            file: ast::File::default(),
            checked: Checked::default(),
            diags: Vec::new(),
            index: Index::default(),
        }
    }

    pub fn position(&self, offset: usize, enc: Encoding) -> lsp::Position {
        let p = self.lines.position(&self.text, offset);
        let col = match enc {
            Encoding::Utf8 => p.col_bytes,
            Encoding::Utf16 => p.col_utf16,
        };
        lsp::Position {
            line: saturate(p.line),
            character: saturate(col),
        }
    }

    pub fn range(&self, span: Span, enc: Encoding) -> lsp::Range {
        lsp::Range {
            start: self.position(span.start, enc),
            end: self.position(span.end, enc),
        }
    }

    /// The byte offset of an LSP position, clamped to its line (a column past the end of the
    /// line is the end of the line; a line past the end is the end of the text).
    pub fn offset(&self, pos: lsp::Position, enc: Encoding) -> usize {
        let line = pos.line as usize;
        let col = pos.character as usize;
        match enc {
            Encoding::Utf16 => self.lines.offset_utf16(&self.text, line, col),
            Encoding::Utf8 => {
                let start = self.lines.offset_utf16(&self.text, line, 0);
                let end = self.lines.offset_utf16(&self.text, line, usize::MAX);
                let mut at = start.saturating_add(col).min(end);
                while at > start && !self.text.is_char_boundary(at) {
                    at -= 1;
                }
                at
            }
        }
    }

    pub fn span(&self, range: lsp::Range, enc: Encoding) -> Span {
        Span::new(self.offset(range.start, enc), self.offset(range.end, enc))
    }

    /// The text of a span (empty when the span is not on character boundaries).
    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or("")
    }

    /// The one mapping of a gbpc diagnostic to an LSP diagnostic: the range is the primary
    /// label's, secondary labels become related information, the help follows the message.
    pub fn to_lsp(&self, d: &Diagnostic, uri: &lsp::Uri, enc: Encoding) -> lsp::Diagnostic {
        let span = d.primary_span().unwrap_or_default();
        let related: Vec<lsp::DiagnosticRelatedInformation> = d
            .labels
            .iter()
            .filter(|l| !l.primary)
            .map(|l| lsp::DiagnosticRelatedInformation {
                location: lsp::Location {
                    uri: uri.clone(),
                    range: self.range(l.span, enc),
                },
                message: if l.message.is_empty() {
                    "related".to_string()
                } else {
                    l.message.clone()
                },
            })
            .collect();
        let mut message = d.message.clone();
        if let Some(primary) = d.labels.iter().find(|l| l.primary)
            && !primary.message.is_empty()
            && primary.message != "here"
        {
            message.push_str(&format!(" ({})", primary.message));
        }
        if let Some(help) = &d.help {
            message.push_str(&format!("\nhelp: {help}"));
        }
        lsp::Diagnostic {
            range: self.range(span, enc),
            severity: Some(match d.severity {
                Severity::Error => lsp::DiagnosticSeverity::ERROR,
                Severity::Warning => lsp::DiagnosticSeverity::WARNING,
            }),
            code: Some(lsp::NumberOrString::String(d.code.as_str().to_string())),
            code_description: None,
            source: Some("gbpc".to_string()),
            message,
            related_information: (!related.is_empty()).then_some(related),
            tags: (d.code == Code::UnusedFilter).then(|| vec![lsp::DiagnosticTag::UNNECESSARY]),
            data: None,
        }
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_in_both_encodings() {
        let doc = Doc::new("tenant t {\n  # \u{e9}\u{1F600} x\n}\n".to_string(), 1);
        let x = doc.text.find('x').unwrap_or(0);
        let p16 = doc.position(x, Encoding::Utf16);
        let p8 = doc.position(x, Encoding::Utf8);
        assert_eq!((p16.line, p16.character), (1, 8));
        assert_eq!((p8.line, p8.character), (1, 11));
        assert_eq!(doc.offset(p16, Encoding::Utf16), x);
        assert_eq!(doc.offset(p8, Encoding::Utf8), x);
        // Inside the emoji (UTF-8 byte 7 of the line): back to its start.
        let inside = lsp::Position {
            line: 1,
            character: 7,
        };
        assert_eq!(doc.offset(inside, Encoding::Utf8), x - 5);
        // Past the end of a line: the end of that line.
        let far = lsp::Position {
            line: 0,
            character: 99,
        };
        assert_eq!(doc.offset(far, Encoding::Utf8), 10);
        assert_eq!(doc.offset(far, Encoding::Utf16), 10);
    }

    #[test]
    fn negotiation_prefers_utf8_only_when_offered() {
        use lsp::PositionEncodingKind as K;
        assert_eq!(Encoding::negotiate(None), Encoding::Utf16);
        assert_eq!(Encoding::negotiate(Some(&[K::UTF16])), Encoding::Utf16);
        assert_eq!(
            Encoding::negotiate(Some(&[K::UTF16, K::UTF8])),
            Encoding::Utf8
        );
        assert_eq!(Encoding::negotiate(Some(&[K::UTF32])), Encoding::Utf16);
    }
}
