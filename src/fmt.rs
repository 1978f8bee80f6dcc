//! The formatter: a policy's text in its one canonical layout, every comment kept in place.
//!
//! The layout (docs/language.md, "Formatting"): two-space indentation; one declaration per
//! line; a filter on one line (`filter NAME { tcp 80, 443; udp 53 }`); a contract or an `any`
//! block with exactly one subject or statement on one line, otherwise a block with one per line;
//! tenants and groups always as blocks; lists as `a, b, c`; group modifiers as
//! `isolated extends PARENT`; at most one blank line between declarations (single blank lines
//! are kept, runs collapsed, none after `{` or before `}`); trailing comments of consecutive
//! lines aligned two spaces after the longest line. Group statements keep the user's order:
//! sorting them would carry comments away from what they talk about. Tokens are copied as
//! written (`env="prod"` stays quoted); only whitespace, `;` separators and the order of
//! modifiers change. Lines are never wrapped.
//!
//! How: the text is parsed with the grammar, and the pairs' leaves plus the punctuation between
//! them become a token list; comments and blank lines live in the gaps between tokens (the
//! grammar's COMMENT is silent). The declarations are then walked and their tokens written in
//! source order, and each comment is written when the walk passes its place: after the token
//! before it when it ended a code line (trailing), on a line of its own otherwise. A comment
//! inside a one-line construct turns it into a block (or, between the words of a statement,
//! breaks the statement onto a continuation line indented four more spaces). The result is
//! re-lexed and compared with the input (same words, same comments) before it is returned, so a
//! bug here cannot lose text.

use pest::Parser;
use pest::iterators::Pair;

use crate::diag::{Code, Diagnostic, Span};
use crate::syntax::{self, GbpParser, Rule};

/// Indentation of one block level.
const INDENT: usize = 2;
/// Extra indentation of a statement continued on the next line (after a comment inside it).
const CONTINUE: usize = 4;
/// Spaces between the longest line of a run and its aligned trailing comments.
const COMMENT_GAP: usize = 2;

/// Format a policy: the canonical text, or the syntax errors (a file that does not parse is
/// never formatted). Idempotent: `format(format(x)) == format(x)`.
pub fn format(src: &str) -> Result<String, Vec<Diagnostic>> {
    let lexed = lex(src)?;
    let out = Writer::new(src, &lexed).file(&lexed)?;
    verify(&lexed, &out)?;
    Ok(out)
}

/// A word of the source: a leaf of the parse tree, or punctuation between leaves.
#[derive(Clone, Copy, Debug)]
struct Tok {
    start: usize,
    end: usize,
    /// A `;` separator: never written, the layout separates statements.
    semi: bool,
    /// A blank line separates this token from the previous token or comment.
    blank_before: bool,
}

#[derive(Clone, Copy, Debug)]
struct Comment<'a> {
    start: usize,
    /// The comment without its line end and trailing whitespace (`\r` of CRLF included).
    text: &'a str,
    /// On the same line as the token before it: it stays at the end of that token's line.
    trailing: bool,
    blank_before: bool,
    /// Index of the token before it.
    after: Option<usize>,
}

struct Lexed<'a> {
    src: &'a str,
    toks: Vec<Tok>,
    comments: Vec<Comment<'a>>,
    /// The `file` pair, for the walk.
    file: Pair<'a, Rule>,
}

/// Parse and cut the text into tokens and comments.
fn lex(src: &str) -> Result<Lexed<'_>, Vec<Diagnostic>> {
    if src.len() > syntax::MAX_FILE_BYTES {
        return Err(syntax::parse(src).errors);
    }
    let file = match GbpParser::parse(Rule::file, src) {
        Ok(mut pairs) => pairs.next(),
        Err(e) => {
            let mut errors: Vec<Diagnostic> = syntax::parse(src)
                .errors
                .into_iter()
                .filter(|d| d.is_error())
                .collect();
            if errors.is_empty() {
                errors.push(syntax::pest_error(&e, 0, src));
            }
            return Err(errors);
        }
    };
    let Some(file) = file else {
        return Err(vec![internal(0, "the parser returned no tree")]);
    };
    let mut leaves = Vec::new();
    collect_leaves(file.clone(), &mut leaves);
    let mut lx = Lexer {
        src,
        toks: Vec::new(),
        comments: Vec::new(),
        newlines: 0,
        since_tok: 0,
    };
    let mut at = 0;
    for (start, end) in leaves {
        lx.gap(at, start)?;
        lx.push(start, end, false);
        at = end;
    }
    lx.gap(at, src.len())?;
    Ok(Lexed {
        src,
        toks: lx.toks,
        comments: lx.comments,
        file,
    })
}

/// The leaves of the tree in source order: atomic rules, and the compound-atomic ones whose
/// parts are written without spaces (`tenant/name`, `80-90`, `key=value`, `tcp/80`).
fn collect_leaves(p: Pair<'_, Rule>, out: &mut Vec<(usize, usize)>) {
    let span = p.as_span();
    let compound = matches!(
        p.as_rule(),
        Rule::qualified | Rule::port_item | Rule::label | Rule::probe
    );
    let mut inner = p.into_inner().peekable();
    if compound || inner.peek().is_none() {
        if span.end() > span.start() {
            out.push((span.start(), span.end()));
        }
        return;
    }
    for c in inner {
        collect_leaves(c, out);
    }
}

struct Lexer<'a> {
    src: &'a str,
    toks: Vec<Tok>,
    comments: Vec<Comment<'a>>,
    /// Line ends since the last token or comment (a `;` counts as space unless a blank line
    /// came before it).
    newlines: usize,
    /// Line ends since the last token of any kind.
    since_tok: usize,
}

impl<'a> Lexer<'a> {
    fn push(&mut self, start: usize, end: usize, semi: bool) {
        let blank = self.newlines >= 2;
        self.toks.push(Tok {
            start,
            end,
            semi,
            blank_before: blank,
        });
        if !(semi && blank) {
            self.newlines = 0;
        }
        self.since_tok = 0;
    }

    /// Between two leaves there is only space, comments and punctuation.
    fn gap(&mut self, from: usize, to: usize) -> Result<(), Vec<Diagnostic>> {
        let bytes = self.src.as_bytes();
        let mut i = from;
        while i < to {
            let rest = self.src.get(i..to).unwrap_or("");
            let Some(ch) = rest.chars().next() else {
                break;
            };
            match ch {
                '\n' => {
                    self.newlines += 1;
                    self.since_tok += 1;
                    i += 1;
                }
                // A CR here is the CR of a CRLF: the grammar rejects any other.
                ' ' | '\t' | '\r' | '\u{FEFF}' => i += ch.len_utf8(),
                '#' | '/' if ch == '#' || rest.starts_with("//") => {
                    // The grammar ends a comment where `text::comment_end` does.
                    let len = crate::text::comment_end(rest, 0);
                    let text = rest.get(..len).unwrap_or("").trim_end();
                    self.comments.push(Comment {
                        start: i,
                        text,
                        trailing: self.since_tok == 0 && !self.toks.is_empty(),
                        blank_before: self.newlines >= 2,
                        after: self.toks.len().checked_sub(1),
                    });
                    self.newlines = 0;
                    i += len;
                }
                '{' | '}' | ',' | ';' => {
                    self.push(i, i + 1, ch == ';');
                    i += 1;
                }
                '-' if bytes.get(i + 1) == Some(&b'>') => {
                    self.push(i, i + 2, false);
                    i += 2;
                }
                _ => return Err(vec![internal(i, "unexpected text between tokens")]),
            }
        }
        Ok(())
    }
}

/// A bug in the formatter, reported instead of writing a wrong file.
fn internal(at: usize, what: &str) -> Diagnostic {
    Diagnostic::error(
        Code::Internal,
        format!("internal error in the formatter: {what}; the file was not formatted"),
    )
    .primary(Span::new(at, at), "here")
    .help("please report this with the file; `gbpc check` is not affected")
}

/// An output line.
enum Line {
    Blank,
    Code {
        indent: usize,
        code: String,
        comment: Option<String>,
    },
    Comment {
        indent: usize,
        text: String,
    },
}

/// Walks the declarations and writes lines, passing each comment at its place.
struct Writer<'a, 'l> {
    src: &'a str,
    toks: &'l [Tok],
    comments: &'l [Comment<'a>],
    /// The next comment not yet written.
    next: usize,
    /// The last token written.
    last: Option<usize>,
    lines: Vec<Line>,
    /// The line being written: indentation and code.
    cur: Option<(usize, String)>,
    /// Indentation of the statement being written.
    base: usize,
    /// The statement has not started: comments met now are lines of the block.
    unit_start: bool,
    /// A blank line may come before the statement.
    blank_ok: bool,
    /// Nothing written since the block opened (no blank line there).
    block_start: bool,
}

impl<'a, 'l> Writer<'a, 'l> {
    fn new(src: &'a str, lexed: &'l Lexed<'a>) -> Self {
        Writer {
            src,
            toks: &lexed.toks,
            comments: &lexed.comments,
            next: 0,
            last: None,
            lines: Vec::new(),
            cur: None,
            base: 0,
            unit_start: true,
            blank_ok: true,
            block_start: true,
        }
    }

    // ---- token positions --------------------------------------------------------------------

    /// The token a pair starts with.
    fn first(&self, p: &Pair<'_, Rule>) -> usize {
        let s = p.as_span().start();
        self.toks.partition_point(|t| t.start < s)
    }

    /// The last token inside a pair (its span may end with skipped space and comments).
    fn last_of(&self, p: &Pair<'_, Rule>) -> usize {
        let e = p.as_span().end();
        self.toks.partition_point(|t| t.start < e).saturating_sub(1)
    }

    fn text(&self, i: usize) -> &'a str {
        let src: &'a str = self.src;
        self.toks
            .get(i)
            .and_then(|t| src.get(t.start..t.end))
            .unwrap_or("")
    }

    /// A comment lies between tokens `a` and `b`.
    fn comments_between(&self, a: usize, b: usize) -> bool {
        let (Some(ta), Some(tb)) = (self.toks.get(a), self.toks.get(b)) else {
            return false;
        };
        let i = self.comments.partition_point(|c| c.start < ta.end);
        self.comments.get(i).is_some_and(|c| c.start < tb.start)
    }

    // ---- writing ----------------------------------------------------------------------------

    /// Start a statement (or a declaration, or a closing brace) at `indent`.
    fn unit(&mut self, indent: usize, blank_ok: bool) {
        self.end_line();
        self.base = indent;
        self.unit_start = true;
        self.blank_ok = blank_ok;
    }

    /// Finish the current line, taking the trailing comment of its last token.
    fn end_line(&mut self) {
        let Some((indent, code)) = self.cur.take() else {
            return;
        };
        if code.is_empty() {
            return;
        }
        let mut comment = None;
        if let Some(c) = self.comments.get(self.next)
            && c.trailing
            && self.follows_last(c)
        {
            comment = Some(c.text.to_string());
            self.next += 1;
        }
        self.lines.push(Line::Code {
            indent,
            code,
            comment,
        });
    }

    /// The comment comes right after the last written token (or after `;`s that follow it).
    fn follows_last(&self, c: &Comment<'_>) -> bool {
        match (self.last, c.after) {
            (Some(l), Some(a)) if a >= l => self
                .toks
                .get(l + 1..=a)
                .is_some_and(|between| between.iter().all(|t| t.semi)),
            _ => false,
        }
    }

    /// Write a comment met before the next token.
    fn comment(&mut self, c: Comment<'_>) {
        if c.trailing
            && let Some((indent, code)) = self.cur.take()
        {
            if !code.is_empty() {
                self.lines.push(Line::Code {
                    indent,
                    code,
                    comment: Some(c.text.to_string()),
                });
                return;
            }
            self.cur = Some((indent, code));
        }
        if let Some((indent, code)) = self.cur.take()
            && !code.is_empty()
        {
            self.lines.push(Line::Code {
                indent,
                code,
                comment: None,
            });
        }
        let indent = if self.unit_start {
            if c.blank_before && !self.block_start {
                self.lines.push(Line::Blank);
            }
            self.base
        } else {
            self.base + CONTINUE
        };
        self.lines.push(Line::Comment {
            indent,
            text: c.text.to_string(),
        });
        self.block_start = false;
    }

    /// Write the comments that come before source offset `pos`.
    fn comments_before(&mut self, pos: usize) {
        while let Some(c) = self.comments.get(self.next).copied() {
            if c.start >= pos {
                break;
            }
            self.next += 1;
            self.comment(c);
        }
    }

    /// Write token `i`; `glue`: without a space before it.
    fn tok(&mut self, i: usize, glue: bool) {
        let Some(t) = self.toks.get(i).copied() else {
            return;
        };
        self.comments_before(t.start);
        if self.unit_start {
            if t.blank_before && self.blank_ok && !self.block_start {
                self.lines.push(Line::Blank);
            }
            self.unit_start = false;
            self.cur = Some((self.base, String::new()));
        }
        let base = self.base;
        let (_, code) = self
            .cur
            .get_or_insert_with(|| (base + CONTINUE, String::new()));
        if !code.is_empty() && !glue {
            code.push(' ');
        }
        let src: &str = self.src;
        code.push_str(src.get(t.start..t.end).unwrap_or(""));
        self.last = Some(i);
        self.block_start = false;
    }

    /// Text that is not in the source (a `;` between filter entries).
    fn raw(&mut self, text: &str) {
        if let Some((_, code)) = self.cur.as_mut() {
            code.push_str(text);
        }
    }

    /// Tokens `a..=b`, `;` left out, a space before each except commas.
    fn run(&mut self, a: usize, b: usize) {
        for i in a..=b {
            if self.toks.get(i).is_some_and(|t| t.semi) {
                continue;
            }
            let glue = self.text(i) == ",";
            self.tok(i, glue);
        }
    }

    fn span(&mut self, p: &Pair<'_, Rule>) {
        let (a, b) = (self.first(p), self.last_of(p));
        self.run(a, b);
    }

    /// A block: `{` has been written; the body writes its statements at `indent + INDENT`.
    fn block(&mut self, close: usize, indent: usize, body: impl FnOnce(&mut Self)) {
        self.end_line();
        self.block_start = true;
        body(self);
        // Comments after the last statement belong to the block.
        self.end_line();
        self.base = indent + INDENT;
        self.unit_start = true;
        let end = self.toks.get(close).map_or(usize::MAX, |t| t.start);
        self.comments_before(end);
        self.unit(indent, false);
        self.tok(close, false);
        self.end_line();
    }

    /// `{ ... }` of a declaration whose header is written: empty `{}`, the one `child` on the
    /// line when `one_line` allows and no comment is inside, or a block of `children`.
    fn braces(
        &mut self,
        open: usize,
        close: usize,
        indent: usize,
        children: &[Pair<'_, Rule>],
        one_line: bool,
    ) {
        let quiet = !self.comments_between(open, close);
        self.tok(open, false);
        if quiet && children.is_empty() {
            self.tok(close, true);
            self.end_line();
        } else if quiet && one_line && children.len() == 1 {
            for c in children {
                self.span(c);
            }
            self.tok(close, false);
            self.end_line();
        } else {
            self.block(close, indent, |w| {
                for c in children {
                    w.unit(indent + INDENT, true);
                    w.span(c);
                }
            });
        }
    }

    // ---- the declarations -------------------------------------------------------------------

    fn file(mut self, lexed: &Lexed<'a>) -> Result<String, Vec<Diagnostic>> {
        for t in lexed.file.clone().into_inner() {
            if t.as_rule() == Rule::tenant {
                self.tenant(t);
            }
        }
        self.end_line();
        self.base = 0;
        self.unit_start = true;
        self.comments_before(usize::MAX);
        self.end_line();
        if self.next != self.comments.len() {
            return Err(vec![internal(0, "a comment was not placed")]);
        }
        Ok(render(&self.lines))
    }

    fn tenant(&mut self, p: Pair<'_, Rule>) {
        let close = self.last_of(&p);
        let kids: Vec<Pair<'_, Rule>> = p.into_inner().collect();
        let Some(name) = kids.iter().find(|k| k.as_rule() == Rule::name) else {
            return;
        };
        // `tenant NAME [unenforced] {`: the brace is the first token after the header.
        let head = kids
            .iter()
            .find(|k| k.as_rule() == Rule::unenforced)
            .unwrap_or(name);
        let open = self.first(head) + 1;
        self.unit(0, true);
        let first = kids.first().map_or(open, |k| self.first(k));
        self.run(first, open - 1);
        let items: Vec<&Pair<'_, Rule>> = kids
            .iter()
            .filter(|k| {
                !matches!(
                    k.as_rule(),
                    Rule::kw_tenant | Rule::name | Rule::unenforced | Rule::lbrace | Rule::rbrace
                )
            })
            .collect();
        let quiet = !self.comments_between(open, close);
        self.tok(open, false);
        if quiet && items.is_empty() {
            self.tok(close, true);
            self.end_line();
            return;
        }
        self.block(close, 0, |w| {
            for item in items {
                w.item(item.clone(), INDENT);
            }
        });
    }

    fn item(&mut self, p: Pair<'_, Rule>, indent: usize) {
        match p.as_rule() {
            Rule::filter => self.filter(p, indent),
            Rule::contract | Rule::any_block => {
                let close = self.last_of(&p);
                let kids: Vec<Pair<'_, Rule>> = p.clone().into_inner().collect();
                // The header ends with the name (contract) or the keyword (any).
                let head_end = kids
                    .iter()
                    .filter(|k| matches!(k.as_rule(), Rule::name | Rule::kw_any))
                    .map(|k| self.first(k))
                    .next()
                    .unwrap_or(close);
                let body: Vec<Pair<'_, Rule>> = kids
                    .into_iter()
                    .filter(|k| {
                        matches!(k.as_rule(), Rule::subject | Rule::provides | Rule::consumes)
                    })
                    .collect();
                self.unit(indent, true);
                let first = self.first(&p);
                self.run(first, head_end);
                self.braces(head_end + 1, close, indent, &body, true);
            }
            Rule::group | Rule::external => {
                let close = self.last_of(&p);
                let kids: Vec<Pair<'_, Rule>> = p.clone().into_inner().collect();
                self.unit(indent, true);
                let mut head_end = self.first(&p);
                let mut body = Vec::new();
                let mut isolated = Vec::new();
                let mut extends = Vec::new();
                for k in kids {
                    match k.as_rule() {
                        Rule::kw_group | Rule::kw_external | Rule::name => {
                            head_end = head_end.max(self.last_of(&k));
                            self.span(&k);
                        }
                        Rule::modifier => {
                            head_end = head_end.max(self.last_of(&k));
                            let is_extends =
                                k.clone().into_inner().any(|m| m.as_rule() == Rule::extends);
                            if is_extends {
                                extends.push(k);
                            } else {
                                isolated.push(k);
                            }
                        }
                        Rule::lbrace | Rule::rbrace => {}
                        _ => body.push(k),
                    }
                }
                for m in isolated.iter().chain(&extends) {
                    self.span(m);
                }
                self.braces(head_end + 1, close, indent, &body, false);
            }
            _ => {
                // An assertion: one line.
                self.unit(indent, true);
                self.span(&p);
                self.end_line();
            }
        }
    }

    fn filter(&mut self, p: Pair<'_, Rule>, indent: usize) {
        let close = self.last_of(&p);
        let kids: Vec<Pair<'_, Rule>> = p.clone().into_inner().collect();
        let Some(name) = kids.iter().find(|k| k.as_rule() == Rule::name) else {
            return;
        };
        let open = self.first(name) + 1;
        let entries: Vec<&Pair<'_, Rule>> =
            kids.iter().filter(|k| k.as_rule() == Rule::entry).collect();
        self.unit(indent, true);
        let first = self.first(&p);
        self.run(first, open - 1);
        let quiet = !self.comments_between(open, close);
        self.tok(open, false);
        if quiet && entries.is_empty() {
            self.tok(close, true);
            self.end_line();
        } else if quiet {
            for (k, e) in entries.iter().enumerate() {
                if k > 0 {
                    self.raw(";");
                }
                self.span(e);
            }
            self.tok(close, false);
            self.end_line();
        } else {
            self.block(close, indent, |w| {
                let n = entries.len();
                for (k, e) in entries.iter().enumerate() {
                    w.unit(indent + INDENT, true);
                    w.span(e);
                    // `icmp` alone would take the next entry's protocol word as its type.
                    if k + 1 < n && bare_icmp(e) {
                        w.raw(";");
                    }
                }
            });
        }
    }
}

/// An `icmp` or `icmpv6` entry without types.
fn bare_icmp(e: &Pair<'_, Rule>) -> bool {
    e.clone()
        .into_inner()
        .next()
        .is_some_and(|k| k.as_rule() == Rule::icmp_entry && k.into_inner().count() == 1)
}

/// The lines as text; trailing comments of consecutive lines at the same indentation aligned.
fn render(lines: &[Line]) -> String {
    // (indentation, width) of a code line with a trailing comment.
    let commented = |l: &Line| match l {
        Line::Code {
            indent,
            code,
            comment: Some(_),
        } => Some((*indent, indent + code.chars().count())),
        _ => None,
    };
    let mut out = String::new();
    let mut i = 0;
    while let Some(line) = lines.get(i) {
        // The run of lines with trailing comments starting here.
        let mut col = 0;
        let mut j = i;
        let run_indent = commented(line).map(|(ind, _)| ind);
        while let Some((ind, w)) = lines.get(j).and_then(commented) {
            if Some(ind) != run_indent {
                break;
            }
            col = col.max(w + COMMENT_GAP);
            j += 1;
        }
        let run_end = j.max(i + 1);
        for l in lines.get(i..run_end).unwrap_or(std::slice::from_ref(line)) {
            match l {
                Line::Blank => {}
                Line::Code {
                    indent,
                    code,
                    comment,
                } => {
                    push_indent(&mut out, *indent);
                    out.push_str(code);
                    if let Some(c) = comment {
                        let w = indent + code.chars().count();
                        push_indent(&mut out, col.saturating_sub(w));
                        out.push_str(c);
                    }
                }
                Line::Comment { indent, text } => {
                    push_indent(&mut out, *indent);
                    out.push_str(text);
                }
            }
            out.push('\n');
        }
        i = run_end;
    }
    out
}

fn push_indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// The output holds the input's words (modifiers may move) and its comments, in order.
fn verify(input: &Lexed<'_>, out: &str) -> Result<(), Vec<Diagnostic>> {
    let Ok(output) = lex(out) else {
        return Err(vec![internal(0, "the formatted text does not parse")]);
    };
    fn words<'x>(l: &Lexed<'x>) -> Vec<&'x str> {
        let src: &'x str = l.src;
        let mut w: Vec<&'x str> = l
            .toks
            .iter()
            .filter(|t| !t.semi)
            .filter_map(|t| src.get(t.start..t.end))
            .collect();
        w.sort_unstable();
        w
    }
    let comments =
        |l: &Lexed<'_>| -> Vec<String> { l.comments.iter().map(|c| c.text.to_string()).collect() };
    if words(input) != words(&output) {
        return Err(vec![internal(0, "the formatted text has other words")]);
    }
    if comments(input) != comments(&output) {
        return Err(vec![internal(0, "the formatted text has other comments")]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(s: &str) -> String {
        match format(s) {
            Ok(t) => t,
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn one_line_declarations() {
        let src = "tenant t{filter f{tcp 80,443 udp 53}contract c{subject s permit f}\
                   group g extends h isolated{select a=b;provides c}any{consumes c}\
                   assert a -> b tcp/80 allow}";
        assert_eq!(
            fmt(src),
            "tenant t {\n  filter f { tcp 80, 443; udp 53 }\n  contract c { subject s permit f }\n  \
             group g isolated extends h {\n    select a=b\n    provides c\n  }\n  any { consumes c }\n  \
             assert a -> b tcp/80 allow\n}\n"
        );
    }

    #[test]
    fn unenforced_preferred_and_both_ways() {
        let src = "tenant t   unenforced\n{contract c{subject s permit f   both-ways log}\
                   group g extends h preferred{select a=b}}\n\ntenant u unenforced{}";
        let out = fmt(src);
        assert_eq!(
            out,
            "tenant t unenforced {\n  contract c { subject s permit f both-ways log }\n  \
             group g preferred extends h {\n    select a=b\n  }\n}\n\ntenant u unenforced {}\n"
        );
        assert_eq!(fmt(&out), out);
    }

    #[test]
    fn empty_input_and_comments_only() {
        assert_eq!(fmt(""), "");
        assert_eq!(fmt("\n\n  # a\r\n\n\n// b  \n\n"), "# a\n\n// b\n");
        assert_eq!(fmt("tenant t { }"), "tenant t {}\n");
    }

    #[test]
    fn bare_icmp_keeps_its_separator() {
        let src = "tenant t { filter f { icmp; # any type\n tcp 80 } }";
        let out = fmt(src);
        assert_eq!(
            out,
            "tenant t {\n  filter f {\n    icmp;  # any type\n    tcp 80\n  }\n}\n"
        );
        assert_eq!(fmt(&out), out);
    }

    #[test]
    fn syntax_errors_are_returned() {
        let Err(e) = format("tenant t { filter f { tcp 80 80 } }") else {
            panic!("a broken file must not be formatted");
        };
        assert!(e.iter().all(|d| d.code == Code::Syntax), "{e:?}");
    }
}
