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

/// Tokens relevant to structure; comments and strings are skipped.
fn scan(src: &str) -> Vec<Token<'_>> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line_start = true;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\n' => {
                line_start = true;
                i += 1;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            // U+FEFF (a byte-order mark) is whitespace to the grammar, so to the scanner too.
            0xEF if bytes[i..].starts_with("\u{FEFF}".as_bytes()) => i += 3,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += 1;
                }
                if i < bytes.len() && bytes[i] == b'"' {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Other,
                    start,
                    end: i,
                    line_start,
                });
                line_start = false;
            }
            _ if is_word_byte(b) => {
                let start = i;
                while i < bytes.len() && is_word_byte(bytes[i]) {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Word(&src[start..i]),
                    start,
                    end: i,
                    line_start,
                });
                line_start = false;
            }
            _ => {
                let tok = match b {
                    b'{' => Tok::Open,
                    b'}' => Tok::Close,
                    b';' => Tok::Semi,
                    _ => Tok::Other,
                };
                // Step over a whole UTF-8 character.
                let len = src[i..].chars().next().map_or(1, char::len_utf8);
                out.push(Token {
                    tok,
                    start: i,
                    end: i + len,
                    line_start,
                });
                line_start = false;
                i += len;
            }
        }
    }
    out
}

pub(super) fn parse_recovering(src: &str) -> Parsed {
    let toks = scan(src);
    let mut errors = Vec::new();
    let mut file = File::default();
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        if t.tok != Tok::Word("tenant") {
            // Skip to the next `tenant` that starts a line, reporting the stray text once.
            let start = t.start;
            let mut j = i + 1;
            while j < toks.len() && !(toks[j].tok == Tok::Word("tenant") && toks[j].line_start) {
                j += 1;
            }
            let end = toks[j - 1].end;
            // One character, not one byte: a span never cuts a UTF-8 character.
            let one = src.get(start..).and_then(|s| s.chars().next());
            let one = one.map_or(1, char::len_utf8);
            errors.push(
                Diagnostic::error(Code::Syntax, "syntax error: expected `tenant`")
                    .primary(Span::new(start, end.min(start + one).max(start)), "here")
                    .help("a policy file is a list of `tenant NAME { ... }` blocks"),
            );
            i = j;
            continue;
        }
        // Header: `tenant NAME {`
        let header_start = t.start;
        let mut j = i + 1;
        while j < toks.len() && toks[j].tok != Tok::Open && !is_boundary(&toks, j, true) {
            j += 1;
        }
        let header_end = if j < toks.len() && toks[j].tok == Tok::Open {
            toks[j].end
        } else {
            toks[j.saturating_sub(1)].end
        };
        let mut b = Builder::new(header_start);
        let header = &src[header_start..header_end];
        let name = match GbpParser::parse(Rule::tenant_open, header) {
            Ok(pairs) => b.tenant_header(pairs),
            Err(e) => {
                errors.push(pest_error(&e, header_start, src.len()));
                None
            }
        };
        let name = name.unwrap_or(Ident {
            text: String::new(),
            span: Span::new(header_start, header_start),
        });
        let mut tenant = Tenant {
            name,
            items: Vec::new(),
            span: Span::new(header_start, header_end),
        };
        if j >= toks.len() || toks[j].tok != Tok::Open {
            i = j;
            file.tenants.push(tenant);
            continue;
        }
        // Body.
        let open = toks[j];
        j += 1;
        let mut depth = 0usize;
        let mut item_start: Option<usize> = None;
        let mut closed = false;
        let mut stray_start: Option<usize> = None;
        while j < toks.len() {
            let tk = toks[j];
            if tk.tok == Tok::Word("tenant") && tk.line_start {
                break; // a new tenant starts: this one was not closed
            }
            let boundary = is_boundary(&toks, j, depth == 0);
            if boundary {
                if let Some(s) = item_start.take() {
                    parse_item(
                        src,
                        s,
                        toks[j - 1].end,
                        &mut tenant,
                        &mut errors,
                        &mut file.broken,
                    );
                }
                if let Some(s) = stray_start.take() {
                    stray(src, s, toks[j - 1].end, &mut errors);
                }
                item_start = Some(tk.start);
                depth = 0;
            }
            match tk.tok {
                Tok::Open => depth += 1,
                Tok::Close if depth == 0 => {
                    closed = true;
                    j += 1;
                    break;
                }
                Tok::Close => depth -= 1,
                _ => {
                    if item_start.is_none() && stray_start.is_none() && tk.tok != Tok::Semi {
                        stray_start = Some(tk.start);
                    }
                }
            }
            j += 1;
        }
        let body_end = toks[j.saturating_sub(1)].end;
        let item_end = if closed { toks[j - 1].start } else { body_end };
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
        i = j;
    }
    Parsed { file, errors }
}

/// Does token `j` start a declaration? `at_top` says the brace depth is the tenant's own.
fn is_boundary(toks: &[Token<'_>], j: usize, at_top: bool) -> bool {
    let t = toks[j];
    let Tok::Word(w) = t.tok else { return false };
    if !ITEM_KEYWORDS.contains(&w) {
        return false;
    }
    if w == "any" && toks.get(j + 1).map(|n| n.tok) != Some(Tok::Open) {
        return false;
    }
    if t.line_start {
        return true;
    }
    at_top && j > 0 && matches!(toks[j - 1].tok, Tok::Open | Tok::Close | Tok::Semi)
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
            errors.push(pest_error(&e, start, src.len()));
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
            format!("syntax error: `{first}` does not start a declaration"),
        )
        .primary(Span::new(start, start + first.len()), "here")
        .help("a tenant holds `filter`, `contract`, `group`, `external`, `any` and `assert` declarations"),
    );
}
