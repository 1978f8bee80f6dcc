//! Completion: the keywords valid where the cursor is, and the names in scope: filters after
//! `permit`/`deny`, contracts after `provides`/`consumes` (other tenants' global contracts as
//! `tenant/contract`), groups after `extends`, endpoints in assertions, ICMP type names in
//! filters.
//!
//! The text before the cursor is scanned into a few tokens (comments and strings skipped) and
//! walked with a stack of open blocks, so that completion works in a file that does not parse:
//! the user is usually in the middle of typing one. A declaration keyword at the start of a
//! line closes an unclosed block, as the parser's error recovery does.

use super::index::{Index, Kind};
use crate::diag::Span;

/// What a candidate is, for the editor's icon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    Keyword,
    Name(Kind),
    IcmpType,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub label: String,
    pub what: What,
    pub detail: String,
}

/// The candidates at `offset` of `src`, and the span of the partly typed word they replace.
/// The names come from `index`, which may be that of an earlier version of the text (the
/// cursor's context is always read from `src`).
pub fn complete(src: &str, index: &Index, offset: usize) -> (Span, Vec<Candidate>) {
    let text = src.get(..offset).unwrap_or("");
    let start = text
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/'))
        .last()
        .map_or(offset, |(i, _)| i);
    let replace = Span::new(start, offset);
    let Some(toks) = src.get(..start).and_then(lex) else {
        return (replace, Vec::new()); // inside a comment or a string
    };
    let ctx = walk(&toks);
    (replace, candidates(index, &ctx))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum T<'a> {
    Word(&'a str),
    Open,
    Close,
    Semi,
    Comma,
    Arrow,
}

#[derive(Clone, Copy, Debug)]
struct Tok<'a> {
    t: T<'a>,
    line_start: bool,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/' | b':' | b'=' | b'"')
}

/// Tokens of `text`; `None` when `text` ends inside a comment or a string.
fn lex(text: &str) -> Option<Vec<Tok<'_>>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line_start = true;
    while i < bytes.len() {
        let b = bytes[i];
        let two = bytes.get(i..i + 2);
        if b == b'#' || two == Some(b"//") {
            // Where the grammar ends a comment: at any vertical space (docs: "Line ends").
            i = crate::text::comment_end(text, i);
            if i == bytes.len() {
                return None;
            }
            continue;
        }
        if let Some(n) = crate::text::vertical_space_at(bytes, i) {
            line_start = true;
            i += n;
            continue;
        }
        let t = match b {
            b' ' | b'\t' => {
                i += 1;
                continue;
            }
            b'{' => T::Open,
            b'}' => T::Close,
            b';' => T::Semi,
            b',' => T::Comma,
            b'-' if bytes.get(i + 1) == Some(&b'>') => {
                i += 1;
                T::Arrow
            }
            _ if is_word_byte(b) => {
                let start = i;
                while i < bytes.len()
                    && is_word_byte(bytes[i])
                    && bytes.get(i..i + 2) != Some(b"//")
                {
                    if bytes[i] == b'"' {
                        i += 1;
                        while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                            i += 1;
                        }
                        if i >= bytes.len() {
                            return None;
                        }
                    }
                    i += 1;
                }
                out.push(Tok {
                    t: T::Word(text.get(start..i).unwrap_or("")),
                    line_start,
                });
                line_start = false;
                continue;
            }
            _ => {
                // Anything else (a stray character): skip the whole UTF-8 character.
                i += text
                    .get(i..)
                    .and_then(|r| r.chars().next())
                    .map_or(1, char::len_utf8);
                line_start = false;
                continue;
            }
        };
        out.push(Tok { t, line_start });
        line_start = false;
        i += 1;
    }
    Some(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    Tenant,
    Filter,
    Contract,
    Group,
    External,
    Any,
    Other,
}

/// Where the cursor is: the innermost open block (none: the top of the file), the tokens of
/// the statement it is in so far, and the names of the enclosing tenant and declaration.
#[derive(Debug)]
struct Context<'a> {
    block: Option<Block>,
    stmt: Vec<T<'a>>,
    tenant: Option<&'a str>,
}

const TENANT_ITEMS: &[&str] = &[
    "filter", "contract", "global", "group", "external", "any", "assert",
];
const PROTOCOLS: &[&str] = &["tcp", "udp", "sctp", "icmp", "icmpv6", "ip"];
const GROUP_STMTS: &[&str] = &["select", "address", "endpoint", "provides", "consumes"];
const EXTERNAL_STMTS: &[&str] = &["address", "endpoint", "provides", "consumes"];
const ANY_STMTS: &[&str] = &["provides", "consumes"];

/// Does a word start a statement in this block?
fn starts_statement(block: Option<Block>, w: &str) -> bool {
    match block {
        None => w == "tenant",
        Some(Block::Tenant) => TENANT_ITEMS.contains(&w),
        Some(Block::Filter) => PROTOCOLS.contains(&w),
        Some(Block::Contract) => w == "subject",
        Some(Block::Group) => GROUP_STMTS.contains(&w),
        Some(Block::External) => EXTERNAL_STMTS.contains(&w),
        Some(Block::Any) => ANY_STMTS.contains(&w),
        Some(Block::Other) => false,
    }
}

fn walk<'a>(toks: &[Tok<'a>]) -> Context<'a> {
    // Open blocks, each with its name (the tenant's name for a tenant).
    let mut stack: Vec<(Block, Option<&'a str>)> = Vec::new();
    let mut stmt: Vec<T<'a>> = Vec::new();
    for (i, tok) in toks.iter().enumerate() {
        let top = stack.last().map(|(b, _)| *b);
        match tok.t {
            T::Word(w) => {
                let decl = TENANT_ITEMS.contains(&w)
                    && (w != "any" || toks.get(i + 1).is_some_and(|n| n.t == T::Open));
                if tok.line_start && w == "tenant" {
                    stack.clear();
                } else if tok.line_start
                    && decl
                    && !matches!(top, None | Some(Block::Tenant))
                    && stack.iter().any(|(b, _)| *b == Block::Tenant)
                {
                    // An unclosed declaration: the parser recovers here, and so do we.
                    while stack.last().is_some_and(|(b, _)| *b != Block::Tenant) {
                        stack.pop();
                    }
                }
                let top = stack.last().map(|(b, _)| *b);
                let in_header = matches!(stmt.first(), Some(T::Word("group" | "external")));
                if starts_statement(top, w) && !(in_header && w == "any") {
                    stmt.clear();
                }
                stmt.push(tok.t);
            }
            T::Open => {
                let (block, name) = match stmt.as_slice() {
                    [T::Word("tenant"), rest @ ..] => (Block::Tenant, word(rest.first())),
                    [T::Word("filter"), ..] => (Block::Filter, None),
                    [T::Word("contract" | "global"), ..] => (Block::Contract, None),
                    [T::Word("group"), ..] => (Block::Group, None),
                    [T::Word("external"), ..] => (Block::External, None),
                    [T::Word("any")] => (Block::Any, None),
                    _ => (Block::Other, None),
                };
                stack.push((block, name));
                stmt.clear();
            }
            T::Close => {
                stack.pop();
                stmt.clear();
            }
            T::Semi => stmt.clear(),
            T::Comma | T::Arrow => stmt.push(tok.t),
        }
    }
    Context {
        block: stack.last().map(|(b, _)| *b),
        tenant: stack
            .iter()
            .rev()
            .find(|(b, _)| *b == Block::Tenant)
            .and_then(|(_, n)| *n),
        stmt,
    }
}

fn word<'a>(t: Option<&T<'a>>) -> Option<&'a str> {
    match t {
        Some(T::Word(w)) => Some(w),
        _ => None,
    }
}

fn keywords(words: &[&str]) -> Vec<Candidate> {
    words
        .iter()
        .map(|w| Candidate {
            label: (*w).to_string(),
            what: What::Keyword,
            detail: "keyword".to_string(),
        })
        .collect()
}

fn candidates(index: &Index, ctx: &Context<'_>) -> Vec<Candidate> {
    let stmt = ctx.stmt.as_slice();
    let first = word(stmt.first());
    let last = stmt.last().copied();
    let after_list = |kw: &str| last == Some(T::Word(kw)) || last == Some(T::Comma);
    match ctx.block {
        None => match stmt {
            [] => keywords(&["tenant"]),
            [T::Word("tenant"), T::Word(_)] => keywords(&["unenforced"]),
            _ => Vec::new(),
        },
        Some(Block::Tenant) => match first {
            None => keywords(TENANT_ITEMS),
            Some("global") if stmt.len() == 1 => keywords(&["contract"]),
            Some("global" | "filter" | "contract" | "any") => Vec::new(),
            Some(kind @ ("group" | "external")) => match stmt.len() {
                1 => Vec::new(),
                _ if last == Some(T::Word("extends")) => {
                    parents(index, ctx, kind, word(stmt.get(1)))
                }
                _ if kind == "group" => keywords(&["isolated", "preferred", "extends"]),
                _ => keywords(&["preferred", "extends"]),
            },
            Some("assert") => match stmt.len() {
                1 => endpoints(index, ctx),
                _ if last == Some(T::Arrow) => endpoints(index, ctx),
                4 => keywords(PROTOCOLS),
                5 => keywords(&["allow", "deny"]),
                n if n >= 6 => keywords(TENANT_ITEMS),
                _ => Vec::new(),
            },
            Some(_) => keywords(TENANT_ITEMS),
        },
        Some(Block::Filter) => match first {
            Some(p @ ("icmp" | "icmpv6")) if after_list(p) => {
                let mut out = icmp_types(p == "icmpv6");
                if last == Some(T::Word(p)) {
                    out.extend(keywords(PROTOCOLS));
                }
                out
            }
            _ if last == Some(T::Comma) => Vec::new(),
            _ => keywords(PROTOCOLS),
        },
        Some(Block::Contract) => match stmt {
            [] => keywords(&["subject"]),
            [_] => Vec::new(),
            [_, _] => keywords(&["permit", "deny"]),
            _ if last == Some(T::Word("log")) => keywords(&["subject"]),
            _ if last == Some(T::Word("both-ways")) => keywords(&["log", "subject"]),
            [_, _, _] => names(index, ctx, Kind::Filter),
            _ if last == Some(T::Comma) => names(index, ctx, Kind::Filter),
            _ => keywords(&["both-ways", "log", "subject"]),
        },
        Some(b @ (Block::Group | Block::External | Block::Any)) => {
            let stmts = match b {
                Block::Group => GROUP_STMTS,
                Block::External => EXTERNAL_STMTS,
                _ => ANY_STMTS,
            };
            match first {
                None => keywords(stmts),
                Some(v @ ("provides" | "consumes")) if after_list(v) => {
                    contracts(index, ctx, v == "consumes")
                }
                Some(v @ ("select" | "address")) if after_list(v) => Vec::new(),
                Some("address") if last == Some(T::Word("except")) => Vec::new(),
                Some("address") if b == Block::External && stmt.len() == 2 => {
                    let mut out = keywords(&["except"]);
                    out.extend(keywords(stmts));
                    out
                }
                Some("endpoint") if stmt.len() < 3 || after_list("labels") => Vec::new(),
                Some("endpoint") if !stmt.contains(&T::Word("labels")) && b == Block::Group => {
                    let mut out = keywords(&["labels"]);
                    out.extend(keywords(stmts));
                    out
                }
                _ => keywords(stmts),
            }
        }
        Some(Block::Other) => Vec::new(),
    }
}

/// Names of a kind declared in the cursor's tenant.
fn names(index: &Index, ctx: &Context<'_>, kind: Kind) -> Vec<Candidate> {
    let Some(tenant) = ctx.tenant else {
        return Vec::new();
    };
    index
        .names(kind, tenant)
        .into_iter()
        .map(|n| Candidate {
            label: n.to_string(),
            what: What::Name(kind),
            detail: kind.as_str().to_string(),
        })
        .collect()
}

/// Groups of the tenant of the same kind (`group` or `external`) as the one being declared,
/// other than itself: the possible parents.
fn parents(index: &Index, ctx: &Context<'_>, keyword: &str, own: Option<&str>) -> Vec<Candidate> {
    let external = keyword == "external";
    let Some(tenant) = ctx.tenant.and_then(|t| index.lookup(t)) else {
        return Vec::new();
    };
    let mut out: Vec<Candidate> = index
        .declarations(Kind::Group)
        .filter(|o| o.key.tenant == tenant && o.flag == external)
        .map(|o| index.name(o.key.name))
        .filter(|&name| name != "any" && Some(name) != own)
        .map(|name| Candidate {
            label: name.to_string(),
            what: What::Name(Kind::Group),
            detail: keyword.to_string(),
        })
        .collect();
    out.sort_by(|a, b| a.label.cmp(&b.label));
    out.dedup();
    out
}

/// Contracts of the tenant, and for `consumes` the global contracts of the other tenants.
fn contracts(index: &Index, ctx: &Context<'_>, consumes: bool) -> Vec<Candidate> {
    let mut out = names(index, ctx, Kind::Contract);
    if consumes {
        for o in index.declarations(Kind::Contract) {
            let tenant = index.name(o.key.tenant);
            if o.flag && Some(tenant) != ctx.tenant {
                out.push(Candidate {
                    label: format!("{tenant}/{}", index.name(o.key.name)),
                    what: What::Name(Kind::Contract),
                    detail: format!("global contract of tenant {tenant}"),
                });
            }
        }
    }
    out
}

/// Endpoints of the tenant, and those of other tenants as `tenant/endpoint`.
fn endpoints(index: &Index, ctx: &Context<'_>) -> Vec<Candidate> {
    let mut out = names(index, ctx, Kind::Endpoint);
    for t in index.declarations(Kind::Tenant) {
        let tenant = index.name(t.key.name);
        if Some(tenant) == ctx.tenant {
            continue;
        }
        for n in index.names(Kind::Endpoint, tenant) {
            out.push(Candidate {
                label: format!("{tenant}/{n}"),
                what: What::Name(Kind::Endpoint),
                detail: format!("endpoint of tenant {tenant}"),
            });
        }
    }
    out
}

fn icmp_types(v6: bool) -> Vec<Candidate> {
    (0..=255u8)
        .filter_map(|n| {
            crate::model::validate::icmp_type_name(v6, n).map(|name| Candidate {
                label: name.to_string(),
                what: What::IcmpType,
                detail: format!("{} type {n}", if v6 { "icmpv6" } else { "icmp" }),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels offered at the `|` in `src`.
    fn at(src: &str) -> Vec<String> {
        let offset = src.find('|').unwrap_or(0);
        let text = src.replacen('|', "", 1);
        let index = Index::build(&crate::syntax::parse(&text).file);
        complete(&text, &index, offset)
            .1
            .into_iter()
            .map(|c| c.label)
            .collect()
    }

    const POLICY: &str = "tenant shared {\n  filter dns { udp 53 }\n  global contract dns { subject s permit dns }\n  contract local { subject s permit dns }\n  group res { endpoint r1 198.18.9.1 provides dns }\n}\n";

    #[test]
    fn keywords_at_statement_starts() {
        assert_eq!(at("|"), vec!["tenant"]);
        assert_eq!(at("tenant t {\n  |\n}"), TENANT_ITEMS);
        assert_eq!(at("tenant t {\n  group g {\n    |"), GROUP_STMTS);
        assert_eq!(at("tenant t {\n  external g {\n    |"), EXTERNAL_STMTS);
        assert_eq!(
            at("tenant t {\n  group g { select a=b\n    |\n  }\n}"),
            GROUP_STMTS
        );
        assert_eq!(at("tenant t {\n  contract c {\n    |"), vec!["subject"]);
        assert_eq!(
            at("tenant t {\n  contract c { subject s |"),
            vec!["permit", "deny"]
        );
        assert_eq!(at("tenant t {\n  filter f { tcp 80, 443 |"), PROTOCOLS);
        assert_eq!(
            at("tenant t {\n  group g isolated |"),
            vec!["isolated", "preferred", "extends"]
        );
        assert_eq!(
            at("tenant t {\n  external g |"),
            vec!["preferred", "extends"]
        );
        assert_eq!(
            at("tenant t {\n  contract c { subject s permit f |"),
            vec!["both-ways", "log", "subject"]
        );
        assert_eq!(
            at("tenant t {\n  contract c { subject s permit f both-ways |"),
            vec!["log", "subject"]
        );
        assert_eq!(at("tenant t |"), vec!["unenforced"]);
        assert_eq!(at("tenant t {\n  global |"), vec!["contract"]);
        assert_eq!(
            at("tenant t {\n  assert a -> b tcp/80 |"),
            vec!["allow", "deny"]
        );
        assert!(at("tenant t {\n  group g { select |").is_empty());
        assert!(at("tenant t {\n  # a comment |").is_empty());
    }

    #[test]
    fn names_in_scope() {
        let src = format!(
            "{POLICY}tenant shop {{\n  filter web {{ tcp 80 }}\n  filter api {{ tcp 8080 }}\n  contract web {{ subject s permit web, |"
        );
        assert_eq!(at(&src), vec!["api", "web"]);
        let src = format!(
            "{POLICY}tenant shop {{\n  contract web {{ subject s permit web }}\n  group g {{ consumes |"
        );
        assert_eq!(at(&src), vec!["web", "shared/dns"]);
        let src = format!(
            "{POLICY}tenant shop {{\n  contract web {{ subject s permit web }}\n  group g {{ provides w|"
        );
        assert_eq!(at(&src), vec!["web"]);
        let src = format!(
            "{POLICY}tenant shop {{\n  group a {{ }}\n  external x {{ }}\n  group b extends |"
        );
        assert_eq!(at(&src), vec!["a"]);
        let src = format!(
            "{POLICY}tenant shop {{\n  group a {{ }}\n  external x {{ }}\n  external y extends |"
        );
        assert_eq!(at(&src), vec!["x"]);
        let src = format!(
            "{POLICY}tenant shop {{\n  group a {{ endpoint a1 198.18.0.1 }}\n  assert a1 -> |"
        );
        assert_eq!(at(&src), vec!["a1", "shared/r1"]);
    }

    #[test]
    fn an_unclosed_block_ends_at_the_next_declaration() {
        let src = "tenant t {\n  filter f { tcp 80\n  group g {\n    |";
        assert_eq!(at(src), GROUP_STMTS);
        let src = "tenant t {\n  group g {\n    provides x\n  |";
        assert_eq!(at(src), GROUP_STMTS);
    }

    #[test]
    fn icmp_type_names_after_icmp() {
        let got = at("tenant t {\n  filter f { icmp echo-request, |");
        assert!(got.contains(&"echo-request".to_string()));
        assert!(!got.contains(&"tcp".to_string()));
    }
}
