//! Syntax: source text to [`ast::File`], with every syntax error as a diagnostic.
//!
//! The whole file is parsed with the grammar's `file` rule first. When that fails, the file is
//! cut into tenants and declarations (see [`recover`]) and each declaration is parsed on its own,
//! so that a broken declaration yields its own error and the rest of the file still builds a
//! tree: an editor shows every problem at once.

pub mod ast;
mod build;
mod recover;

use crate::diag::{Code, Diagnostic, Span};

/// Inputs larger than this are refused before parsing (a policy of 10,000 groups and 30,000
/// contracts is about 5 MB).
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/gbp.pest"]
pub(crate) struct GbpParser;

/// The result of parsing: the tree (possibly partial) and the syntax errors.
#[derive(Debug, Default)]
pub struct Parsed {
    pub file: ast::File,
    pub errors: Vec<Diagnostic>,
}

/// Decode raw bytes as UTF-8, or say where they stop being UTF-8.
pub fn decode(bytes: &[u8]) -> Result<&str, Diagnostic> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::error(
            Code::TooLarge,
            format!(
                "the input is {} bytes; the limit is {} bytes",
                bytes.len(),
                MAX_FILE_BYTES
            ),
        )
        .help("split the policy into several files, or generate a smaller one"));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let bad = e.error_len().unwrap_or(1);
        Diagnostic::error(Code::NotUtf8, "the input is not valid UTF-8")
            .primary(Span::new(at, at + bad), "this byte is not UTF-8")
            .help("save the file as UTF-8")
    })
}

/// Parse a policy. Never panics; the tree holds whatever could be recovered.
pub fn parse(src: &str) -> Parsed {
    if src.len() > MAX_FILE_BYTES {
        return Parsed {
            file: ast::File::default(),
            errors: vec![
                Diagnostic::error(
                    Code::TooLarge,
                    format!(
                        "the input is {} bytes; the limit is {MAX_FILE_BYTES}",
                        src.len()
                    ),
                )
                .primary(Span::new(0, 0), "this file"),
            ],
        };
    }
    // Line ends other than LF and CRLF are reported first; the text is then read with each of
    // them as a line feed (same offsets), as an editor shows it, so the rest of the file is
    // still checked and no rule hides in a comment that one reader ends and another does not.
    let line_errors = line_end_errors(src);
    let lf = if line_errors.is_empty() {
        None
    } else {
        crate::text::with_stray_line_breaks_as_lf(src)
    };
    let text = lf.as_deref().unwrap_or(src);
    use pest::Parser;
    let mut parsed = match GbpParser::parse(Rule::file, text) {
        Ok(pairs) => {
            let mut b = build::Builder::new(0);
            let file = b.file(pairs);
            Parsed {
                file,
                errors: b.errors,
            }
        }
        Err(whole) => {
            let mut parsed = recover::parse_recovering(text);
            if !parsed.errors.iter().any(|d| d.is_error()) {
                parsed.errors.push(pest_error(&whole, 0, text));
            }
            parsed
        }
    };
    parsed.file.incomplete = parsed.errors.iter().any(|d| d.is_error());
    parsed.errors.extend(line_errors);
    crate::diag::sort(&mut parsed.errors);
    parsed
}

/// At most this many `E006` diagnostics per file (a file saved with CR line ends has one per
/// line); one more says how many were not shown.
const MAX_LINE_END_ERRORS: usize = 100;

/// `E006` for every line end other than LF and CRLF (see [`crate::text`]).
fn line_end_errors(src: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut more = 0usize;
    let mut first_more = None;
    for (at, c) in crate::text::stray_line_breaks(src) {
        if out.len() == MAX_LINE_END_ERRORS {
            more += 1;
            first_more.get_or_insert(Span::new(at, at + c.len_utf8()));
            continue;
        }
        let span = Span::new(at, at + c.len_utf8());
        let name = crate::text::vertical_space_name(c);
        let help = if c == '\r' {
            "lines end with LF or CRLF; some tools show a lone CR as a line break and others do \
             not, so the text after it could hide in a comment. Replace it with a line feed \
             (or save the file with LF or CRLF line ends)"
        } else {
            "lines end with LF or CRLF, and this character is neither a line end nor whitespace \
             in a policy; some tools show it as a line break and others do not. Replace it with \
             a line feed, or remove it"
        };
        out.push(
            Diagnostic::error(Code::LineEnd, format!("{name} is not a line end"))
                .primary(span, "this character")
                .help(help)
                .fix(span, "\n", "replace with a line feed"),
        );
    }
    if let Some(span) = first_more {
        out.push(
            Diagnostic::error(
                Code::LineEnd,
                format!("{more} more line ends other than LF or CRLF are not shown"),
            )
            .primary(span, "the next one")
            .help("save the file with LF or CRLF line ends"),
        );
    }
    out
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// A pest error as a diagnostic; `base` is the offset of the parsed slice in `src`, the whole
/// file. An error at a word underlines the whole word (never from its middle) and names it;
/// when the word is a misspelt keyword or protocol that could come there (`tcpp`, `TCP`,
/// `permitt`), the help says which, with a fix.
pub(crate) fn pest_error(e: &pest::error::Error<Rule>, base: usize, src: &str) -> Diagnostic {
    use pest::error::{ErrorVariant, InputLocation};
    let file_len = src.len();
    let (start, end) = match e.location {
        InputLocation::Pos(p) => (p, p),
        InputLocation::Span((s, e)) => (s, e),
    };
    let mut start = (base + start).min(file_len);
    let mut end = (base + end).min(file_len);
    let bytes = src.as_bytes();
    let word_at = |i: usize| bytes.get(i).is_some_and(|&b| is_word_byte(b));
    if start == end && word_at(start) {
        while start > base && word_at(start - 1) {
            start -= 1;
        }
        end = start;
        while word_at(end) {
            end += 1;
        }
    }
    let word = src.get(start..end).unwrap_or("");
    let mut message = match &e.variant {
        ErrorVariant::ParsingError {
            positives,
            negatives,
        } => {
            let mut names: Vec<&str> = positives.iter().filter_map(|r| rule_name(*r)).collect();
            // Words first, punctuation (`{`, `}`, `->`) last.
            names.sort_unstable_by_key(|n| {
                (
                    n.starts_with("`{`") || n.starts_with("`}`") || n.starts_with("`->`"),
                    *n,
                )
            });
            names.dedup();
            if names.is_empty() {
                let neg: Vec<&str> = negatives.iter().filter_map(|r| rule_name(*r)).collect();
                if neg.is_empty() {
                    "unexpected input".to_string()
                } else {
                    format!("unexpected {}", neg.join(", "))
                }
            } else {
                format!("expected {}", one_of(&names))
            }
        }
        ErrorVariant::CustomError { message } => message.clone(),
    };
    if message.starts_with("expected") {
        match src.get(start..).and_then(|r| r.chars().next()) {
            _ if !word.is_empty() => {
                message.push_str(&format!(", found `{}`", crate::text::ellipsis(word, 40)))
            }
            None => message.push_str(", found the end of the file"),
            Some(c) if !c.is_whitespace() && !c.is_control() => {
                message.push_str(&format!(", found `{c}`"))
            }
            Some(_) => {}
        }
    }
    let span = Span::new(start, end);
    let mut d = Diagnostic::error(Code::Syntax, format!("syntax error: {message}")).primary(
        span,
        if word.is_empty() {
            "here"
        } else {
            "not expected here"
        },
    );
    if word == "both-ways" {
        // `subject s permit f log both-ways`: the option is right, its place is not.
        return d.help("a subject's options come in this order: `[both-ways] [log]`, as in `subject s permit f both-ways log`");
    }
    let keywords: Vec<&str> = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut k: Vec<&str> = positives
                .iter()
                .flat_map(|r| keywords(*r))
                .copied()
                .collect();
            k.sort_unstable();
            k.dedup();
            k
        }
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    match crate::model::did_you_mean(word, &keywords).filter(|k| *k != word) {
        Some(k) => {
            let why = if k.eq_ignore_ascii_case(word) {
                " (keywords are lowercase)"
            } else {
                ""
            };
            d = d.help(format!("did you mean `{k}`?{why}")).fix(
                span,
                k,
                format!("change to `{k}`"),
            );
        }
        None => d = d.help(syntax_help(&e.variant)),
    }
    d
}

/// The keywords (and protocol words) a rule may start with, for did-you-mean.
fn keywords(r: Rule) -> &'static [&'static str] {
    const PROTOS: &[&str] = &["tcp", "udp", "sctp", "icmp", "icmpv6", "ip"];
    const ITEMS: &[&str] = &[
        "filter", "contract", "global", "group", "external", "any", "assert",
    ];
    const STMTS: &[&str] = &["select", "address", "endpoint", "provides", "consumes"];
    match r {
        Rule::kw_tenant | Rule::tenant => &["tenant"],
        Rule::entry
        | Rule::port_entry
        | Rule::port_proto
        | Rule::icmp_entry
        | Rule::icmp_proto
        | Rule::any_ip_entry
        | Rule::probe
        | Rule::probe_proto => PROTOS,
        Rule::filter
        | Rule::kw_filter
        | Rule::contract
        | Rule::kw_contract
        | Rule::global
        | Rule::group
        | Rule::kw_group
        | Rule::external
        | Rule::kw_external
        | Rule::any_block
        | Rule::kw_any
        | Rule::assertion
        | Rule::kw_assert => ITEMS,
        Rule::select
        | Rule::kw_select
        | Rule::address
        | Rule::kw_address
        | Rule::endpoint
        | Rule::kw_endpoint
        | Rule::provides
        | Rule::kw_provides
        | Rule::consumes
        | Rule::kw_consumes => STMTS,
        Rule::subject | Rule::kw_subject => &["subject"],
        Rule::action => &["permit", "deny"],
        Rule::verdict => &["allow", "deny"],
        Rule::modifier | Rule::isolated | Rule::preferred | Rule::extends | Rule::kw_extends => {
            &["isolated", "preferred", "extends"]
        }
        Rule::log => &["log"],
        Rule::both_ways => &["both-ways"],
        Rule::unenforced => &["unenforced"],
        Rule::kw_labels => &["labels"],
        Rule::except => &["except"],
        _ => &[],
    }
}

fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

fn syntax_help(v: &pest::error::ErrorVariant<Rule>) -> String {
    use pest::error::ErrorVariant;
    if let ErrorVariant::ParsingError { positives, .. } = v {
        if positives.contains(&Rule::kw_tenant) {
            return "a policy file is a list of `tenant NAME { ... }` blocks".into();
        }
        if positives.contains(&Rule::subject) {
            return "a contract holds subjects: `subject NAME permit|deny FILTER, ... [both-ways] [log]`"
                .into();
        }
        if positives.contains(&Rule::both_ways) || positives.contains(&Rule::log) {
            return "a subject ends with its options, in this order: `[both-ways] [log]`".into();
        }
        if positives.contains(&Rule::unenforced) {
            return "a tenant reads `tenant NAME [unenforced] { ... }`".into();
        }
        if positives.contains(&Rule::entry) {
            return "a filter holds entries such as `tcp 80, 443`, `udp 53`, `icmp echo-request` or `ip`".into();
        }
        if positives.contains(&Rule::modifier) {
            return "a group reads `group NAME [isolated | preferred] [extends PARENT] { ... }`"
                .into();
        }
        if positives.contains(&Rule::select) || positives.contains(&Rule::provides) {
            return "a group holds `select`, `address`, `endpoint`, `provides` and `consumes` statements".into();
        }
        if positives.contains(&Rule::probe) || positives.contains(&Rule::verdict) {
            return "an assertion reads `assert FROM -> TO tcp/443 allow`".into();
        }
    }
    "see docs/language.md for the syntax".into()
}

/// What the user should read for each rule in "expected ..." messages.
fn rule_name(r: Rule) -> Option<&'static str> {
    Some(match r {
        Rule::EOI => "end of file",
        Rule::kw_tenant | Rule::tenant => "`tenant`",
        Rule::filter | Rule::kw_filter => "`filter`",
        Rule::contract | Rule::kw_contract | Rule::global => "`contract`",
        Rule::group | Rule::kw_group => "`group`",
        Rule::external | Rule::kw_external => "`external`",
        Rule::any_block | Rule::kw_any => "`any`",
        Rule::assertion | Rule::kw_assert => "`assert`",
        Rule::name | Rule::reference | Rule::qualified | Rule::ref_list => "a name",
        Rule::entry | Rule::port_entry | Rule::port_proto => {
            "a filter entry (tcp, udp, sctp, icmp, icmpv6, ip)"
        }
        Rule::icmp_proto | Rule::icmp_entry => "icmp",
        Rule::any_ip_entry => "ip",
        Rule::port_list | Rule::port_item | Rule::number => "a port",
        Rule::icmp_list | Rule::icmp_type => "an ICMP type",
        Rule::subject | Rule::kw_subject => "`subject`",
        Rule::action => "`permit` or `deny`",
        Rule::log => "`log`",
        Rule::both_ways => "`both-ways`",
        Rule::unenforced => "`unenforced`",
        Rule::preferred => "`preferred`",
        Rule::modifier => "`isolated`, `preferred`, `extends`",
        Rule::extends | Rule::kw_extends => "`extends`",
        Rule::isolated => "`isolated`",
        Rule::select | Rule::kw_select => "`select`",
        Rule::address | Rule::kw_address => "`address`",
        Rule::endpoint | Rule::kw_endpoint => "`endpoint`",
        Rule::provides | Rule::kw_provides => "`provides`",
        Rule::consumes | Rule::kw_consumes => "`consumes`",
        Rule::kw_labels => "`labels`",
        Rule::label_list | Rule::label | Rule::label_key => "a label `key=value`",
        Rule::label_value | Rule::string => "a label value",
        Rule::except => "`except`",
        Rule::cidr | Rule::cidr_list | Rule::ip_list | Rule::addr_chars => "an address",
        Rule::target => "an endpoint name or address",
        Rule::probe | Rule::probe_proto => "a probe such as tcp/443",
        Rule::verdict => "`allow` or `deny`",
        Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::arrow => "`->`",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_small_policy() {
        let p = parse(
            "tenant t { filter f { tcp 80, 1000-2000 udp } contract c { subject s permit f log }\n\
             group g isolated extends h { select app=web; address 198.18.0.0/24 endpoint e 198.18.0.1 labels a=\"b\" provides c consumes x/y }\n\
             external ext { address 0.0.0.0/0 except 198.18.0.0/15, 192.0.2.0/24 }\n\
             any { consumes c }\n assert e -> 198.18.0.2 tcp/80 allow }",
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.file.tenants.len(), 1);
        assert_eq!(p.file.tenants[0].items.len(), 6);
    }

    #[test]
    fn recovers_after_a_broken_declaration() {
        let p = parse(
            "tenant t {\n  filter f { tcp 80 }\n  contract c { subject s allow f }\n  group g { provides c consumes }\n  filter ok { udp 53 }\n}\n",
        );
        assert_eq!(p.errors.len(), 2, "{:?}", p.errors);
        // the good filters survive
        let filters = p.file.tenants[0]
            .items
            .iter()
            .filter(|i| matches!(i, ast::Item::Filter(_)))
            .count();
        assert_eq!(filters, 2);
    }

    #[test]
    fn keywords_need_a_boundary() {
        let p = parse("tenantx { }");
        assert!(!p.errors.is_empty());
    }
}
