//! The syntax tree: what the user wrote, with a span on everything, before names are resolved.
//! Numbers and addresses are kept as text here; the checker validates them so it can say
//! precisely what is wrong.

use crate::diag::Span;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub text: String,
    pub span: Span,
}

/// `name` or `tenant/name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub tenant: Option<Ident>,
    pub name: Ident,
    pub span: Span,
}

impl Reference {
    pub fn display(&self) -> String {
        match &self.tenant {
            Some(t) => format!("{}/{}", t.text, self.name.text),
            None => self.name.text.clone(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct File {
    pub tenants: Vec<Tenant>,
    /// Names of declarations that failed to parse (`contract web {` with a broken body), so
    /// that the checker does not also call every use of them undefined.
    pub broken: Vec<String>,
    /// A syntax error left part of the file out of the tree: the checker does not prove
    /// assertions then (a missing subject would make them fail for nothing).
    pub incomplete: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub name: Ident,
    /// `tenant NAME unenforced`: where the keyword is.
    pub unenforced: Option<Span>,
    pub items: Vec<Item>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Filter(Filter),
    Contract(Contract),
    Group(Group),
    Any(AnyBlock),
    Assert(Assert),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub name: Ident,
    pub entries: Vec<Entry>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryProto {
    Tcp,
    Udp,
    Sctp,
    Icmp,
    Icmpv6,
    Ip,
}

impl EntryProto {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryProto::Tcp => "tcp",
            EntryProto::Udp => "udp",
            EntryProto::Sctp => "sctp",
            EntryProto::Icmp => "icmp",
            EntryProto::Icmpv6 => "icmpv6",
            EntryProto::Ip => "ip",
        }
    }
}

/// A port or range as written: numbers kept as text to be validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortText {
    pub lo: String,
    pub hi: Option<String>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub proto: EntryProto,
    /// Ports (tcp/udp/sctp) or ICMP types (icmp/icmpv6), as written. Empty: all.
    pub ports: Vec<PortText>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Permit,
    Deny,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Permit => "permit",
            Action::Deny => "deny",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contract {
    pub name: Ident,
    pub global: bool,
    pub subjects: Vec<Subject>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    pub name: Ident,
    pub action: Action,
    pub action_span: Span,
    pub filters: Vec<Reference>,
    /// `both-ways`: where the keyword is.
    pub both_ways: Option<Span>,
    pub log: bool,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupKind {
    Internal,
    External,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub kind: GroupKind,
    pub name: Ident,
    pub extends: Vec<Ident>,
    /// Spans of every `isolated` modifier (a repeated one is reported).
    pub isolated: Vec<Span>,
    /// Spans of every `preferred` modifier (a repeated one is reported).
    pub preferred: Vec<Span>,
    pub selects: Vec<LabelText>,
    pub addresses: Vec<AddressStmt>,
    pub endpoints: Vec<Endpoint>,
    pub provides: Vec<Reference>,
    pub consumes: Vec<Reference>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelText {
    pub key: String,
    pub key_span: Span,
    /// Unquoted value.
    pub value: String,
    pub value_span: Span,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddrText {
    pub text: String,
    pub span: Span,
}

/// `address A, B` (each with no exceptions) or `address A except X, Y`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressStmt {
    pub cidr: AddrText,
    pub except: Vec<AddrText>,
    pub except_span: Option<Span>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub name: Ident,
    pub addrs: Vec<AddrText>,
    pub labels: Vec<LabelText>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnyBlock {
    pub provides: Vec<Reference>,
    pub consumes: Vec<Reference>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Addr(AddrText),
    Ref(Reference),
}

impl Target {
    pub fn span(&self) -> Span {
        match self {
            Target::Addr(a) => a.span,
            Target::Ref(r) => r.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// `tcp`, `udp`, `sctp`, `icmp`, `icmpv6` or `ip`.
    pub proto: String,
    /// The part after `/`: a port, an ICMP type (number or name) or a protocol number.
    pub arg: Option<String>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    Allow,
    Deny,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assert {
    pub from: Target,
    pub to: Target,
    pub probe: Probe,
    pub expect: Expect,
    pub expect_span: Span,
    pub span: Span,
}
