//! A document as the language server sees it: a version of its text ([`Text`]) with the
//! conversions between byte offsets and LSP positions (including the one mapping of a
//! [`Diagnostic`] to an LSP diagnostic), and the analysis of a version ([`Doc`]): the checked
//! model, the diagnostics, the name index and the outline.

use lsp_types as lsp;

use std::sync::Arc;

use super::index::Index;
use super::navigate::{self, Outline};
use crate::diag::{Code, Diagnostic, Severity, Span};
use crate::model::Policy;
use crate::syntax;
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

/// One version of a document's text with its line index: what positions are computed on.
/// Shared (`Arc`) between the document as the client last sent it and the analysis of that
/// version.
pub struct Text {
    pub src: String,
    pub lines: LineIndex,
}

/// An analysed version of a document: what requests are answered from. It keeps what the
/// requests need and nothing that can be recomputed cheaply: no syntax tree (the name index
/// and the outline are extracted from it), no copy of the diagnostics, and the checked model
/// only while the document is among the recently used ones (hover is its only reader).
pub struct Doc {
    pub text: Arc<Text>,
    pub version: i32,
    /// The checked model; built even when there are errors. `None` once dropped to save
    /// memory; a hover has it rebuilt.
    pub policy: Option<Policy>,
    /// Errors and warnings in reading order (what is published).
    pub diags: Vec<Diagnostic>,
    pub index: Index,
    pub outline: Outline,
}

impl Doc {
    /// Analyse a text at once (tests).
    #[cfg(test)]
    pub fn new(text: String, version: i32) -> Doc {
        match Doc::analyse(Arc::new(Text::new(text)), version, || false) {
            Some(doc) => doc,
            None => unreachable!("never superseded"),
        }
    }

    /// Parse and check a text, and extract what the requests need. Between the costly steps
    /// `superseded` is asked whether a newer version is waiting; if so the work is abandoned
    /// (`None`).
    pub fn analyse(
        text: Arc<Text>,
        version: i32,
        mut superseded: impl FnMut() -> bool,
    ) -> Option<Doc> {
        let parsed = syntax::parse(&text.src);
        if superseded() {
            return None;
        }
        let checked = crate::check_parsed(&parsed);
        if superseded() {
            return None;
        }
        let index = Index::build(&parsed.file);
        let outline = navigate::outline(&parsed.file, &text.src);
        drop(parsed);
        let mut diags = checked.errors;
        diags.extend(checked.warnings);
        crate::diag::sort(&mut diags);
        diags.shrink_to_fit();
        Some(Doc {
            text,
            version,
            policy: Some(checked.policy),
            diags,
            index,
            outline,
        })
    }

    pub fn range(&self, span: Span, enc: Encoding) -> lsp::Range {
        self.text.range(span, enc)
    }

    /// The text of a span (empty when the span is not on character boundaries).
    pub fn slice(&self, span: Span) -> &str {
        self.text.slice(span)
    }
}

impl Text {
    pub fn new(src: String) -> Text {
        Text {
            lines: LineIndex::new(&src),
            src,
        }
    }

    pub fn position(&self, offset: usize, enc: Encoding) -> lsp::Position {
        let p = self.lines.position(&self.src, offset);
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
            Encoding::Utf16 => self.lines.offset_utf16(&self.src, line, col),
            Encoding::Utf8 => {
                let start = self.lines.offset_utf16(&self.src, line, 0);
                let end = self.lines.offset_utf16(&self.src, line, usize::MAX);
                let mut at = start.saturating_add(col).min(end);
                while at > start && !self.src.is_char_boundary(at) {
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
        self.src.get(span.start..span.end).unwrap_or("")
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

/// How a newer version of a text differs from an older one, as one changed region between a
/// common prefix and a common suffix: offsets and spans outside the region map from one
/// version to the other. This lets requests be answered from the last analysis while a newer
/// version is being checked (typing changes one place at a time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shift {
    /// The common prefix's length.
    prefix: usize,
    /// Where the common suffix starts, in the older and the newer text.
    old_tail: usize,
    new_tail: usize,
    identical: bool,
}

impl Shift {
    pub fn between(old: &str, new: &str) -> Shift {
        let (a, b) = (old.as_bytes(), new.as_bytes());
        let boundary = |i: usize, j: usize| old.is_char_boundary(i) && new.is_char_boundary(j);
        let mut p = common_len(a, b, true);
        while p > 0 && !boundary(p, p) {
            p -= 1;
        }
        let room = a.len().min(b.len()) - p;
        let mut s = common_len(a, b, false).min(room);
        while s > 0 && !boundary(a.len() - s, b.len() - s) {
            s -= 1;
        }
        Shift {
            prefix: p,
            old_tail: a.len() - s,
            new_tail: b.len() - s,
            identical: a == b,
        }
    }

    /// An offset of the newer text in the older one (`None`: inside the changed region).
    pub fn old_offset_of(&self, at: usize) -> Option<usize> {
        if self.identical || at <= self.prefix {
            Some(at)
        } else if at >= self.new_tail {
            Some(at - self.new_tail + self.old_tail)
        } else {
            None
        }
    }

    /// A span of the older text in the newer one, when it does not touch the changed region
    /// (a name that ends where the change begins may have been extended by it).
    pub fn span_to_new(&self, span: Span) -> Option<Span> {
        if self.identical || span.end < self.prefix {
            Some(span)
        } else if span.start > self.old_tail {
            let shift = |at: usize| at - self.old_tail + self.new_tail;
            Some(Span::new(shift(span.start), shift(span.end)))
        } else {
            None
        }
    }

    /// A diagnostic of the older text in the newer one, if none of its spans touches the
    /// changed region.
    pub fn diagnostic_to_new(&self, d: &Diagnostic) -> Option<Diagnostic> {
        let mut d = d.clone();
        for l in &mut d.labels {
            l.span = self.span_to_new(l.span)?;
        }
        for f in &mut d.fixes {
            f.span = self.span_to_new(f.span)?;
        }
        Some(d)
    }
}

/// The length of the common start of two byte sequences (iterated forwards or backwards),
/// comparing 64-byte blocks first.
fn common_len(a: &[u8], b: &[u8], forwards: bool) -> usize {
    const BLOCK: usize = 64;
    let max = a.len().min(b.len());
    let block = |i: usize| {
        if forwards {
            (&a[i..i + BLOCK], &b[i..i + BLOCK])
        } else {
            (
                &a[a.len() - i - BLOCK..a.len() - i],
                &b[b.len() - i - BLOCK..b.len() - i],
            )
        }
    };
    let mut n = 0;
    while n + BLOCK <= max {
        let (x, y) = block(n);
        if x != y {
            break;
        }
        n += BLOCK;
    }
    let byte = |i: usize| {
        if forwards {
            (a[i], b[i])
        } else {
            (a[a.len() - 1 - i], b[b.len() - 1 - i])
        }
    };
    while n < max {
        let (x, y) = byte(n);
        if x != y {
            break;
        }
        n += 1;
    }
    n
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
        let doc = &doc.text;
        let x = doc.src.find('x').unwrap_or(0);
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
