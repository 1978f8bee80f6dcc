//! Error recovery: cut a file that failed to parse into tenants and declarations and parse each
//! declaration on its own.
//!
//! A light scan (aware of comments and strings) finds declaration boundaries: a declaration
//! keyword (`filter`, `contract`, `global`, `group`, `external`, `any`, `assert`) that starts a
//! line, or that follows the tenant's `{` or the previous declaration's `}` or `;`. A keyword
//! at the start of a line is a boundary even inside unbalanced braces, so a missing `}` costs
//! one declaration, not the rest of the file. Each piece is parsed with the grammar's
//! `item_alone` rule and its errors are moved to file offsets.

use pest::Parser;

use super::ast::{File, Ident, Tenant};
use super::build::Builder;
use super::{GbpParser, Parsed, Rule, pest_error};
use crate::diag::{Code, Diagnostic, Span};

const ITEM_KEYWORDS: &[&str] = &[
    "filter", "contract", "global", "group", "external", "any", "assert",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    Word(&'a str),
    Open,
    Close,
    Semi,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    tok: Tok<'a>,
    start: usize,
    end: usize,
    /// First token on its line.
    line_start: bool,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Tokens relevant to structure, one at a time (a file of ten million `{` is never held as
/// a list); comments and strings are skipped. Line ends are the language's: LF, and the LF of
/// CRLF (the parser hands over text whose other vertical space it has already reported and
/// replaced by line feeds; a CR is whitespace, and a comment ends at any vertical space).
struct Scanner<'a> {
    src: &'a str,
    i: usize,
    line_start: bool,
}

impl<'a> Iterator for Scanner<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let src = self.src;
        let bytes = src.as_bytes();
        while let Some(&b) = bytes.get(self.i) {
            let i = self.i;
            match b {
                b'\n' => {
                    self.line_start = true;
                    self.i += 1;
                }
                b' ' | b'\t' | b'\r' => self.i += 1,
                // U+FEFF (a byte-order mark) is whitespace to the grammar, so to the scanner too.
                0xEF if bytes[i..].starts_with("\u{FEFF}".as_bytes()) => self.i += 3,
                b'#' => self.i = crate::text::comment_end(src, i),
                b'/' if bytes.get(i + 1) == Some(&b'/') => {
                    self.i = crate::text::comment_end(src, i)
                }
                _ => {
                    let (tok, end) = match b {
                        b'"' => {
                            let mut j = i + 1;
                            while j < bytes.len()
                                && bytes[j] != b'"'
                                && crate::text::vertical_space_at(bytes, j).is_none()
                            {
                                j += 1;
                            }
                            if bytes.get(j) == Some(&b'"') {
                                j += 1;
                            }
                            (Tok::Other, j)
                        }
                        _ if is_word_byte(b) => {
                            let mut j = i;
                            while j < bytes.len() && is_word_byte(bytes[j]) {
                                j += 1;
                            }
                            (Tok::Word(&src[i..j]), j)
                        }
                        b'{' => (Tok::Open, i + 1),
                        b'}' => (Tok::Close, i + 1),
                        b';' => (Tok::Semi, i + 1),
                        // Step over a whole UTF-8 character.
                        _ => (
                            Tok::Other,
                            i + src[i..].chars().next().map_or(1, char::len_utf8),
                        ),
                    };
                    let t = Token {
                        tok,
                        start: i,
                        end,
                        line_start: self.line_start,
                    };
                    self.line_start = false;
                    self.i = end;
                    return Some(t);
                }
            }
        }
        None
    }
}

/// The token stream with two tokens of lookahead and the last token taken.
struct Cursor<'a> {
    scan: Scanner<'a>,
    /// The next token and the one after it, once looked at.
    next: Option<Token<'a>>,
    after: Option<Token<'a>>,
    prev: Option<Token<'a>>,
}

impl<'a> Cursor<'a> {
    fn new(src: &'a str) -> Self {
        Cursor {
            scan: Scanner {
                src,
                i: 0,
                line_start: true,
            },
            next: None,
            after: None,
            prev: None,
        }
    }

    #[inline]
    fn peek(&mut self) -> Option<Token<'a>> {
        if self.next.is_none() {
            self.next = self.scan.next();
        }
        self.next
    }

    fn peek2(&mut self) -> Option<Token<'a>> {
        self.peek()?;
        if self.after.is_none() {
            self.after = self.scan.next();
        }
        self.after
    }

    #[inline]
    fn bump(&mut self) {
        if let Some(t) = self.peek() {
            self.prev = Some(t);
            self.next = self.after.take();
        }
    }

    /// Skip to the next `tenant` that starts a line (or the end).
    fn skip_to_tenant(&mut self) {
        while let Some(n) = self.peek() {
            if n.line_start && n.tok == Tok::Word("tenant") {
                return;
            }
            self.prev = Some(n);
            self.next = self.after.take();
        }
    }

    fn prev_end(&self) -> usize {
        self.prev.map_or(0, |t| t.end)
    }

    /// Does the next token start a declaration? `at_top` says the brace depth is the
    /// tenant's own.
    fn at_boundary(&mut self, at_top: bool) -> bool {
        let Some(t) = self.peek() else { return false };
        let Tok::Word(w) = t.tok else { return false };
        if !ITEM_KEYWORDS.contains(&w) {
            return false;
        }
        if w == "any" && self.peek2().map(|n| n.tok) != Some(Tok::Open) {
            return false;
        }
        if t.line_start {
            return true;
        }
        at_top
            && matches!(
                self.prev.map(|p| p.tok),
                Some(Tok::Open | Tok::Close | Tok::Semi)
            )
    }
}

pub(super) fn parse_recovering(src: &str) -> Parsed {
    let mut cur = Cursor::new(src);
    let mut errors = Vec::new();
    let mut file = File::default();
    while let Some(t) = cur.peek() {
        if t.tok != Tok::Word("tenant") {
            // Skip to the next `tenant` that starts a line, reporting the stray text once.
            let start = t.start;
            cur.bump();
            cur.skip_to_tenant();
            // One character, not one byte: a span never cuts a UTF-8 character.
            let one = src.get(start..).and_then(|s| s.chars().next());
            let one = one.map_or(1, char::len_utf8);
            errors.push(
                Diagnostic::error(Code::Syntax, "syntax error: expected `tenant`")
                    .primary(Span::new(start, start + one), "here")
                    .help("a policy file is a list of `tenant NAME { ... }` blocks"),
            );
            continue;
        }
        // Header: `tenant NAME {`
        let header_start = t.start;
        cur.bump();
        while let Some(n) = cur.peek() {
            if n.tok == Tok::Open || cur.at_boundary(true) {
                break;
            }
            cur.bump();
        }
        let open = cur.peek().filter(|n| n.tok == Tok::Open);
        let header_end = open.map_or(cur.prev_end(), |o| o.end);
        let mut b = Builder::new(header_start);
        let header = &src[header_start..header_end];
        let (name, unenforced) = match GbpParser::parse(Rule::tenant_open, header) {
            Ok(pairs) => (b.tenant_header(pairs.clone()), b.tenant_unenforced(pairs)),
            Err(e) => {
                errors.push(pest_error(&e, header_start, src));
                (None, None)
            }
        };
        let name = name.unwrap_or(Ident {
            text: String::new(),
            span: Span::new(header_start, header_start),
        });
        let mut tenant = Tenant {
            name,
            unenforced,
            items: Vec::new(),
            span: Span::new(header_start, header_end),
        };
        let Some(open) = open else {
            file.tenants.push(tenant);
            continue;
        };
        // Body.
        cur.bump();
        let mut depth = 0usize;
        let mut item_start: Option<usize> = None;
        let mut closed = false;
        let mut stray_start: Option<usize> = None;
        while let Some(tk) = cur.peek() {
            if tk.tok == Tok::Word("tenant") && tk.line_start {
                break; // a new tenant starts: this one was not closed
            }
            if cur.at_boundary(depth == 0) {
                let end = cur.prev_end();
                if let Some(s) = item_start.take() {
                    parse_item(src, s, end, &mut tenant, &mut errors, &mut file.broken);
                }
                if let Some(s) = stray_start.take() {
                    stray(src, s, end, &mut errors);
                }
                item_start = Some(tk.start);
                depth = 0;
            }
            match tk.tok {
                Tok::Open => depth += 1,
                Tok::Close if depth == 0 => {
                    closed = true;
                    cur.bump();
                    break;
                }
                Tok::Close => depth -= 1,
                _ => {
                    if item_start.is_none() && stray_start.is_none() && tk.tok != Tok::Semi {
                        stray_start = Some(tk.start);
                    }
                }
            }
            cur.bump();
        }
        let body_end = cur.prev_end();
        let item_end = match cur.prev {
            Some(p) if closed => p.start,
            _ => body_end,
        };
        if let Some(s) = item_start.take() {
            parse_item(src, s, item_end, &mut tenant, &mut errors, &mut file.broken);
        }
        if let Some(s) = stray_start.take() {
            stray(src, s, item_end, &mut errors);
        }
        if !closed {
            errors.push(
                Diagnostic::error(Code::Syntax, "syntax error: this `{` is never closed")
                    .primary(Span::new(open.start, open.end), "opened here")
                    .help("add the missing `}`"),
            );
        }
        tenant.span = Span::new(header_start, body_end);
        file.tenants.push(tenant);
    }
    Parsed { file, errors }
}

fn parse_item(
    src: &str,
    start: usize,
    end: usize,
    tenant: &mut Tenant,
    errors: &mut Vec<Diagnostic>,
    broken: &mut Vec<String>,
) {
    let text = &src[start..end];
    match GbpParser::parse(Rule::item_alone, text) {
        Ok(mut pairs) => {
            let mut b = Builder::new(start);
            if let Some(p) = pairs.next()
                && let Some(item) = b.item(p)
            {
                tenant.items.push(item);
            }
            errors.extend(b.errors);
        }
        Err(e) => {
            errors.push(pest_error(&e, start, src));
            // `group NAME`, `global contract NAME`, ...: remember NAME.
            let mut words =
                text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'));
            let mut words = words.by_ref().filter(|w| !w.is_empty());
            let first = words.next().unwrap_or("");
            let name = if first == "global" {
                words.nth(1)
            } else {
                words.next()
            };
            if let Some(n) = name
                && first != "assert"
            {
                broken.push(n.to_string());
            }
        }
    }
}

fn stray(src: &str, start: usize, end: usize, errors: &mut Vec<Diagnostic>) {
    let text = &src[start..end];
    // Whitespace to Unicode but not to the grammar (a vertical tab, a no-break space, U+3000):
    // invisible in an editor, so name the character itself rather than the word after it.
    if let Some(c) = text.chars().next().filter(|c| c.is_whitespace()) {
        errors.push(
            Diagnostic::error(
                Code::Syntax,
                format!(
                    "syntax error: U+{:04X} is not whitespace in a policy",
                    u32::from(c)
                ),
            )
            .primary(Span::new(start, start + c.len_utf8()), "this character")
            .help("use spaces, tabs and newlines between words"),
        );
        return;
    }
    let first = text.split_whitespace().next().unwrap_or("");
    errors.push(
        Diagnostic::error(
            Code::Syntax,
            format!(
                "syntax error: `{}` does not start a declaration",
                crate::text::ellipsis(first, 40)
            ),
        )
        .primary(Span::new(start, start + first.len()), "here")
        .help("a tenant holds `filter`, `contract`, `group`, `external`, `any` and `assert` declarations"),
    );
}
