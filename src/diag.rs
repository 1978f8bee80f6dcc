//! The one diagnostic model: every finding of the parser, the checker, the assertion prover and
//! the backends is a [`Diagnostic`]. Renderers (terminal via miette, JSON, the language server)
//! read this model; no check maps its findings to labels twice.

use std::fmt;

/// A byte range in the source text (half-open).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span {
            start,
            end: end.max(start),
        }
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The smallest span covering both.
    pub fn join(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(s: Span) -> Self {
        miette::SourceSpan::new(s.start.into(), s.len())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

/// A labelled place in the source: the primary label says where the problem is, secondary
/// labels point at the other places involved (the first definition of a duplicate, the rule
/// that decided a failed assertion, the rest of a cycle).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
    pub primary: bool,
}

/// A suggested edit (did-you-mean): replace `span` with `replacement`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fix {
    pub span: Span,
    pub replacement: String,
    pub title: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Stable code such as `gbpc::E010`.
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub labels: Vec<Label>,
    pub help: Option<String>,
    pub fixes: Vec<Fix>,
}

impl Diagnostic {
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            labels: Vec::new(),
            help: None,
            fixes: Vec::new(),
        }
    }

    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    pub fn primary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: message.into(),
            primary: true,
        });
        self
    }

    pub fn secondary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: message.into(),
            primary: false,
        });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn fix(
        mut self,
        span: Span,
        replacement: impl Into<String>,
        title: impl Into<String>,
    ) -> Self {
        self.fixes.push(Fix {
            span,
            replacement: replacement.into(),
            title: title.into(),
        });
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The primary span (the first primary label), used for sorting and for editors.
    pub fn primary_span(&self) -> Option<Span> {
        self.labels.iter().find(|l| l.primary).map(|l| l.span)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.labels.iter().map(|l| {
            let text = (!l.message.is_empty()).then(|| l.message.clone());
            if l.primary {
                miette::LabeledSpan::new_primary_with_span(text, l.span)
            } else {
                miette::LabeledSpan::new_with_span(text, l.span)
            }
        })))
    }
}

/// Every diagnostic code gbpc emits, with its one-line meaning (`docs/diagnostics.md` is
/// generated from the same table by a test, so the two cannot drift).
macro_rules! codes {
    ($($name:ident = $code:literal : $summary:literal,)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $($name,)* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            /// The stable code, e.g. `gbpc::E010`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$name => concat!("gbpc::", $code),)* }
            }

            pub fn summary(self) -> &'static str {
                match self { $(Code::$name => $summary,)* }
            }
        }
    };
}

codes! {
    Syntax = "E001": "syntax error",
    NotUtf8 = "E002": "the input is not UTF-8",
    TooLarge = "E003": "the input exceeds a hard limit (size, objects, name length)",
    Internal = "E004": "an internal error of gbpc (please report it); nothing was written",
    EmptyRuleset = "E005": "compile: the policy declares no tenant, so its ruleset would drop every flow (`--allow-empty` compiles it anyway)",
    LineEnd = "E006": "a line end other than LF or CRLF: a lone CR, or other vertical space (VT, FF, NEL, U+2028, U+2029)",
    Undefined = "E010": "a name is used but not defined",
    Duplicate = "E011": "a name is defined twice in the same scope",
    Cycle = "E012": "`extends` forms a cycle",
    BadPort = "E013": "invalid port or port range",
    BadAddress = "E014": "invalid address or CIDR",
    BadIcmp = "E015": "invalid ICMP type",
    BadName = "E016": "a name Kubernetes or nftables would reject",
    BadLabel = "E017": "a label key or value Kubernetes would reject",
    NotGlobal = "E018": "a contract of another tenant is used but is not global",
    Family = "E019": "address families that cannot work together",
    Empty = "E020": "an empty filter, contract or group declaration",
    Misplaced = "E021": "a statement that does not belong in this kind of group",
    Membership = "E022": "an endpoint outside its group's addresses or in conflicting groups",
    KindMismatch = "E023": "a reference to the wrong kind of object",
    AssertFailed = "E030": "an assertion does not hold",
    AssertTarget = "E031": "an assertion names something that is not an endpoint or address",
    CrossFamily = "E032": "an assertion between ends that no connection can join: different address families, or an ICMP version of the other family",
    ProbeForm = "E033": "a probe `ip/N` for a protocol that has its own form (tcp, udp, sctp, icmp, icmpv6)",
    K8sDeny = "E040": "a deny refused by `--k8s-deny error`",
    K8sNoSelector = "E041": "a group without labels cannot select pods in Kubernetes",
    K8sUnsupported = "E042": "more cluster-tier objects (ClusterNetworkPolicy, AdminNetworkPolicy) than their priorities can order",
    K8sOverlap = "E043": "overlapping selectors meet a deny, and the pods they share cannot be selected exactly",
    PreferredIsolated = "E050": "a group both `isolated` and `preferred`: its members cannot be kept apart and talk freely at once",
    UnusedFilter = "W001": "a filter no subject uses",
    UnusedContract = "W002": "a contract nobody provides or consumes, or one side missing",
    LabelAddressDisagree = "W003": "an endpoint is a member by address but not by labels",
    FamilyMismatch = "W004": "a subject that can never match because the address families differ",
    IcmpNotNew = "W005": "an ICMP type that cannot start a connection, so a filter entry naming it never matches",
    NoTenant = "W006": "the policy declares no tenant (the file is empty, or only comments and whitespace)",
    K8sIcmp = "W010": "an ICMP permit that NetworkPolicy cannot express (left out)",
    NftNoAddress = "W011": "a group with no addresses that nftables cannot see",
    NoAddressLeft = "W020": "an external group whose prefixes are all excepted or inside internal groups, so no address is in it",
    K8sProtocolHole = "W030": "a deny cuts ports out of an allowance of every protocol, which NetworkPolicy can only write as TCP, UDP and SCTP ports",
    K8sDenyKept = "W031": "a deny a cluster-tier rule cannot carry, compiled into the NetworkPolicies instead",
    ShadowedPermit = "W101": "a permit subject that a deny overrides everywhere it applies",
    DenyNoEffect = "W102": "a deny subject that takes away no permit and no intra-group default",
    RedundantSubject = "W103": "a subject covered by another subject of the same action between the same groups",
    OverlappingGroups = "W104": "internal groups whose address prefixes overlap, so an address is in both",
    EmptyGroup = "W105": "a group with no members: no select, address or endpoint",
    IntraGroupContract = "W106": "a contract a group both provides and consumes that changes nothing between its members",
    TrivialAssertion = "W107": "an assertion that cannot fail whatever the contracts say",
    LabelClassLimit = "W108": "a tenant whose selectors combine into more label classes than the analysis enumerates",
    AciOrder = "W120": "a deny that applies through `any` overrides a group-to-group permit, where ACI would let the more specific permit win",
    UnenforcedNoEffect = "W121": "`isolated` or `preferred` in an unenforced tenant, where every flow among its members is allowed anyway",
    BothWaysNoEffect = "W122": "a `both-ways` subject of a contract whose consumers are exactly its providers, so the reverse half adds nothing",
    LonePreferred = "W123": "the only preferred group of its tenant, with no other preferred group to talk to",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sort diagnostics into the order users read them: by position, errors before warnings at
/// the same place, then by code and message (a total order, so output is deterministic).
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        let sa = a.primary_span().map(|s| (s.start, s.end));
        let sb = b.primary_span().map(|s| (s.start, s.end));
        sa.cmp(&sb)
            .then(a.severity.cmp(&b.severity))
            .then(a.code.cmp(&b.code))
            .then(a.message.cmp(&b.message))
    });
}
