//! Builds the syntax tree from pest's pairs. The grammar guarantees the shape of each pair, so
//! the walk only picks children by rule; anything unexpected is skipped rather than trusted.

use pest::iterators::{Pair, Pairs};

use super::Rule;
use super::ast::*;
use crate::diag::{Diagnostic, Span};

pub(crate) struct Builder {
    /// Offset of the parsed slice in the whole file (non-zero when recovering).
    base: usize,
    pub errors: Vec<Diagnostic>,
}

impl Builder {
    pub fn new(base: usize) -> Self {
        Builder {
            base,
            errors: Vec::new(),
        }
    }

    /// The span of a pair without the whitespace and comments pest's implicit rules may have
    /// consumed at its end (an optional trailing element such as `log?` tries, and fails, after
    /// skipping them), so that labels underline exactly the construct.
    fn span(&self, p: &Pair<Rule>) -> Span {
        let s = p.as_span();
        let len = trimmed_len(p.as_str());
        Span::new(self.base + s.start(), self.base + s.start() + len)
    }

    fn ident(&self, p: &Pair<Rule>) -> Ident {
        Ident {
            text: p.as_str().to_string(),
            span: self.span(p),
        }
    }

    pub fn file(&mut self, pairs: Pairs<Rule>) -> File {
        let mut file = File::default();
        // Tenants are children of `file` (not a walk of the whole tree: that costs a pair per
        // token of the file).
        for p in pairs {
            match p.as_rule() {
                Rule::tenant => file.tenants.push(self.tenant(p)),
                Rule::file => {
                    for t in p.into_inner().filter(|t| t.as_rule() == Rule::tenant) {
                        file.tenants.push(self.tenant(t));
                    }
                }
                _ => {}
            }
        }
        file
    }

    fn tenant(&mut self, p: Pair<Rule>) -> Tenant {
        let span = self.span(&p);
        let mut name = None;
        let mut unenforced = None;
        let mut items = Vec::new();
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::name => name = Some(self.ident(&c)),
                Rule::unenforced => unenforced = Some(self.span(&c)),
                _ => {
                    if let Some(item) = self.item(c) {
                        items.push(item);
                    }
                }
            }
        }
        Tenant {
            name: name.unwrap_or_else(|| Ident {
                text: String::new(),
                span,
            }),
            unenforced,
            items,
            span,
        }
    }

    /// The name of a `tenant NAME {` header parsed on its own.
    pub fn tenant_header(&mut self, pairs: Pairs<Rule>) -> Option<Ident> {
        pairs
            .flatten()
            .find(|p| p.as_rule() == Rule::name)
            .map(|p| self.ident(&p))
    }

    /// Where `unenforced` is in a `tenant NAME unenforced {` header parsed on its own.
    pub fn tenant_unenforced(&mut self, pairs: Pairs<Rule>) -> Option<Span> {
        pairs
            .flatten()
            .find(|p| p.as_rule() == Rule::unenforced)
            .map(|p| self.span(&p))
    }

    pub fn item(&mut self, p: Pair<Rule>) -> Option<Item> {
        Some(match p.as_rule() {
            Rule::filter => Item::Filter(self.filter(p)),
            Rule::contract => Item::Contract(self.contract(p)),
            Rule::group => Item::Group(self.group(p, GroupKind::Internal)),
            Rule::external => Item::Group(self.group(p, GroupKind::External)),
            Rule::any_block => Item::Any(self.any_block(p)),
            Rule::assertion => Item::Assert(self.assertion(p)?),
            Rule::item_alone => return p.into_inner().find_map(|c| self.item(c)),
            _ => return None,
        })
    }

    fn filter(&mut self, p: Pair<Rule>) -> Filter {
        let span = self.span(&p);
        let mut name = None;
        let mut entries = Vec::new();
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::name => name = Some(self.ident(&c)),
                Rule::entry => {
                    if let Some(e) = self.entry(c) {
                        entries.push(e);
                    }
                }
                _ => {}
            }
        }
        Filter {
            name: name.unwrap_or_else(|| missing(span)),
            entries,
            span,
        }
    }

    fn entry(&mut self, p: Pair<Rule>) -> Option<Entry> {
        let span = self.span(&p);
        let inner = p.into_inner().next()?;
        let mut proto = EntryProto::Ip;
        let mut ports = Vec::new();
        for c in inner.into_inner() {
            match c.as_rule() {
                Rule::port_proto | Rule::icmp_proto => {
                    proto = match c.as_str().trim() {
                        "tcp" => EntryProto::Tcp,
                        "udp" => EntryProto::Udp,
                        "sctp" => EntryProto::Sctp,
                        "icmp" => EntryProto::Icmp,
                        "icmpv6" => EntryProto::Icmpv6,
                        _ => EntryProto::Ip,
                    }
                }
                Rule::port_list => {
                    for item in c.into_inner() {
                        let ispan = self.span(&item);
                        let mut nums = item.into_inner().map(|n| n.as_str().to_string());
                        if let Some(lo) = nums.next() {
                            ports.push(PortText {
                                lo,
                                hi: nums.next(),
                                span: ispan,
                            });
                        }
                    }
                }
                Rule::icmp_list => {
                    for t in c.into_inner() {
                        ports.push(PortText {
                            lo: t.as_str().to_string(),
                            hi: None,
                            span: self.span(&t),
                        });
                    }
                }
                _ => {}
            }
        }
        Some(Entry { proto, ports, span })
    }

    fn contract(&mut self, p: Pair<Rule>) -> Contract {
        let span = self.span(&p);
        let mut name = None;
        let mut global = false;
        let mut subjects = Vec::new();
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::name => name = Some(self.ident(&c)),
                Rule::global => global = true,
                Rule::subject => subjects.push(self.subject(c)),
                _ => {}
            }
        }
        Contract {
            name: name.unwrap_or_else(|| missing(span)),
            global,
            subjects,
            span,
        }
    }

    fn subject(&mut self, p: Pair<Rule>) -> Subject {
        let span = self.span(&p);
        let mut name = None;
        let mut action = Action::Permit;
        let mut action_span = span;
        let mut filters = Vec::new();
        let mut log = false;
        let mut both_ways = None;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::name => name = Some(self.ident(&c)),
                Rule::action => {
                    action_span = self.span(&c);
                    action = if c.as_str().starts_with("deny") {
                        Action::Deny
                    } else {
                        Action::Permit
                    };
                }
                Rule::ref_list => filters = self.ref_list(c),
                Rule::log => log = true,
                Rule::both_ways => both_ways = Some(self.span(&c)),
                _ => {}
            }
        }
        Subject {
            name: name.unwrap_or_else(|| missing(span)),
            action,
            action_span,
            filters,
            both_ways,
            log,
            span,
        }
    }

    fn ref_list(&mut self, p: Pair<Rule>) -> Vec<Reference> {
        p.into_inner()
            .filter(|c| c.as_rule() == Rule::reference)
            .filter_map(|c| self.reference(c))
            .collect()
    }

    fn reference(&mut self, p: Pair<Rule>) -> Option<Reference> {
        let span = self.span(&p);
        let inner = p.into_inner().next()?;
        match inner.as_rule() {
            Rule::qualified => {
                let mut names = inner.into_inner().map(|n| self.ident(&n));
                let tenant = names.next()?;
                let name = names.next()?;
                Some(Reference {
                    tenant: Some(tenant),
                    name,
                    span,
                })
            }
            _ => Some(Reference {
                tenant: None,
                name: self.ident(&inner),
                span,
            }),
        }
    }

    fn group(&mut self, p: Pair<Rule>, kind: GroupKind) -> Group {
        let span = self.span(&p);
        let mut g = Group {
            kind,
            name: missing(span),
            extends: Vec::new(),
            isolated: Vec::new(),
            preferred: Vec::new(),
            selects: Vec::new(),
            addresses: Vec::new(),
            endpoints: Vec::new(),
            provides: Vec::new(),
            consumes: Vec::new(),
            span,
        };
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::name => g.name = self.ident(&c),
                Rule::modifier => {
                    for m in c.into_inner() {
                        match m.as_rule() {
                            Rule::isolated => g.isolated.push(self.span(&m)),
                            Rule::preferred => g.preferred.push(self.span(&m)),
                            Rule::extends => {
                                if let Some(n) = m.into_inner().find(|n| n.as_rule() == Rule::name)
                                {
                                    g.extends.push(self.ident(&n));
                                }
                            }
                            _ => {}
                        }
                    }
                }
                Rule::select => {
                    for l in c.into_inner().filter(|l| l.as_rule() == Rule::label_list) {
                        g.selects.extend(self.labels(l));
                    }
                }
                Rule::address => self.address(c, &mut g.addresses),
                Rule::endpoint => g.endpoints.push(self.endpoint(c)),
                Rule::provides => g.provides.extend(self.refs_in(c)),
                Rule::consumes => g.consumes.extend(self.refs_in(c)),
                _ => {}
            }
        }
        g
    }

    fn refs_in(&mut self, p: Pair<Rule>) -> Vec<Reference> {
        let mut out = Vec::new();
        for c in p.into_inner().filter(|c| c.as_rule() == Rule::ref_list) {
            out.extend(self.ref_list(c));
        }
        out
    }

    fn labels(&mut self, p: Pair<Rule>) -> Vec<LabelText> {
        let mut out = Vec::new();
        for l in p.into_inner().filter(|l| l.as_rule() == Rule::label) {
            let span = self.span(&l);
            let mut key = None;
            let mut value = None;
            for part in l.into_inner() {
                match part.as_rule() {
                    Rule::label_key => key = Some((part.as_str().to_string(), self.span(&part))),
                    Rule::label_value => {
                        let raw = part.as_str();
                        let unquoted = raw
                            .strip_prefix('"')
                            .and_then(|r| r.strip_suffix('"'))
                            .unwrap_or(raw);
                        value = Some((unquoted.to_string(), self.span(&part)));
                    }
                    _ => {}
                }
            }
            if let Some((key, key_span)) = key {
                let (value, value_span) =
                    value.unwrap_or_else(|| (String::new(), Span::new(span.end, span.end)));
                out.push(LabelText {
                    key,
                    key_span,
                    value,
                    value_span,
                    span,
                });
            }
        }
        out
    }

    fn addr(&self, p: &Pair<Rule>) -> AddrText {
        AddrText {
            text: p.as_str().to_string(),
            span: self.span(p),
        }
    }

    fn address(&mut self, p: Pair<Rule>, out: &mut Vec<AddressStmt>) {
        let mut except_span = None;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::cidr => out.push(AddressStmt {
                    cidr: self.addr(&c),
                    except: Vec::new(),
                    except_span: None,
                }),
                Rule::except => except_span = Some(self.span(&c)),
                Rule::cidr_list => {
                    let except: Vec<AddrText> = c.into_inner().map(|a| self.addr(&a)).collect();
                    if let Some(last) = out.last_mut() {
                        last.except = except;
                        last.except_span = except_span;
                    }
                }
                _ => {}
            }
        }
    }

    fn endpoint(&mut self, p: Pair<Rule>) -> Endpoint {
        let span = self.span(&p);
        let mut e = Endpoint {
            name: missing(span),
            addrs: Vec::new(),
            labels: Vec::new(),
            span,
        };
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::name => e.name = self.ident(&c),
                Rule::ip_list => e.addrs = c.into_inner().map(|a| self.addr(&a)).collect(),
                Rule::label_list => e.labels = self.labels(c),
                _ => {}
            }
        }
        e
    }

    fn any_block(&mut self, p: Pair<Rule>) -> AnyBlock {
        let span = self.span(&p);
        let mut a = AnyBlock {
            provides: Vec::new(),
            consumes: Vec::new(),
            span,
        };
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::provides => a.provides.extend(self.refs_in(c)),
                Rule::consumes => a.consumes.extend(self.refs_in(c)),
                _ => {}
            }
        }
        a
    }

    fn assertion(&mut self, p: Pair<Rule>) -> Option<Assert> {
        let span = self.span(&p);
        let mut targets = Vec::new();
        let mut probe = None;
        let mut expect = None;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::target => {
                    let t = c.into_inner().next()?;
                    targets.push(match t.as_rule() {
                        Rule::cidr => Target::Addr(self.addr(&t)),
                        _ => Target::Ref(self.reference(t)?),
                    });
                }
                Rule::probe => {
                    let pspan = self.span(&c);
                    let mut parts = c.into_inner();
                    let proto = parts.next()?.as_str().to_string();
                    let arg = parts.next().map(|a| a.as_str().to_string());
                    probe = Some(Probe {
                        proto,
                        arg,
                        span: pspan,
                    });
                }
                Rule::verdict => {
                    let v = if c.as_str().starts_with("allow") {
                        Expect::Allow
                    } else {
                        Expect::Deny
                    };
                    expect = Some((v, self.span(&c)));
                }
                _ => {}
            }
        }
        let mut targets = targets.into_iter();
        let (expect, expect_span) = expect?;
        Some(Assert {
            from: targets.next()?,
            to: targets.next()?,
            probe: probe?,
            expect,
            expect_span,
            span,
        })
    }
}

fn missing(span: Span) -> Ident {
    Ident {
        text: String::new(),
        span: Span::new(span.start, span.start),
    }
}

/// Length of `text` without trailing whitespace and trailing line comments.
fn trimmed_len(text: &str) -> usize {
    let mut t = text;
    loop {
        let trimmed = t.trim_end();
        let line_start = trimmed.rfind('\n').map_or(0, |i| i + 1);
        let line = &trimmed[line_start..];
        match comment_start(line) {
            Some(c) => t = &trimmed[..line_start + c],
            None => return trimmed.len(),
        }
    }
}

/// Where a `#` or `//` comment starts in a line, outside double quotes.
fn comment_start(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    let mut in_str = false;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'"' => in_str = !in_str,
            b'#' if !in_str => return Some(i),
            b'/' if !in_str && b.get(i + 1) == Some(&b'/') => return Some(i),
            _ => {}
        }
    }
    None
}
