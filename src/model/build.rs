//! Builds the checked model from the syntax tree, in passes: declare every name, resolve
//! references, validate values, flatten inheritance, compute membership, report unused
//! objects, prove assertions. Every pass keeps going after a finding.

use std::collections::{BTreeMap, HashMap};

use super::classify::{Classes, Range};
use super::validate::{self, Invalid};
use super::*;
use crate::diag::{Code, Diagnostic, Span};
use crate::eval::{self, Flow, Proto, Verdict};
use crate::net::{Cidr, CidrError, Family};
use crate::syntax::ast;

/// The closest candidate by edit distance, if it is close enough to be a plausible typo.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(name, c);
        if score > 0.8 && best.is_none_or(|(s, b)| score > s || (score == s && c < b)) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

struct Builder<'a> {
    file: &'a ast::File,
    p: Policy,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    tenant_ids: HashMap<&'a str, TenantId>,
    /// Per tenant: names of groups, contracts, filters, endpoints.
    groups: Vec<HashMap<&'a str, GroupId>>,
    contracts: Vec<HashMap<&'a str, ContractId>>,
    filters: Vec<HashMap<&'a str, FilterId>>,
    endpoints: Vec<HashMap<&'a str, EndpointId>>,
    /// Group id to its syntax (None for `any`).
    group_ast: Vec<Option<&'a ast::Group>>,
    contract_ast: Vec<&'a ast::Contract>,
    filter_used: Vec<bool>,
}

pub(super) fn build(file: &ast::File) -> Checked {
    let mut b = Builder {
        file,
        p: Policy::default(),
        errors: Vec::new(),
        warnings: Vec::new(),
        tenant_ids: HashMap::new(),
        groups: Vec::new(),
        contracts: Vec::new(),
        filters: Vec::new(),
        endpoints: Vec::new(),
        group_ast: Vec::new(),
        contract_ast: Vec::new(),
        filter_used: Vec::new(),
    };
    if b.too_many() {
        return Checked {
            policy: Policy::default(),
            errors: b.errors,
            warnings: Vec::new(),
        };
    }
    b.declare();
    b.resolve_filters();
    b.resolve_contracts();
    b.resolve_groups();
    super::graph::inheritance(&mut b.p, &mut b.errors);
    super::graph::implied(&mut b.p);
    super::implied::warnings(&b.p, &mut b.warnings);
    b.membership();
    b.externals_without_address();
    if file.broken.is_empty() {
        // With a declaration lost to a syntax error, "unused" would mostly be noise.
        super::graph::unused(&b.p, &b.filter_used, &mut b.warnings);
    }
    b.family_warnings();
    b.assertions();
    let mut errors = b.errors;
    let mut warnings = b.warnings;
    crate::diag::sort(&mut errors);
    crate::diag::sort(&mut warnings);
    Checked {
        policy: b.p,
        errors,
        warnings,
    }
}

fn invalid_diag(code: Code, span: Span, inv: Invalid) -> Diagnostic {
    let mut d = Diagnostic::error(code, inv.message)
        .primary(span, "")
        .help(inv.help);
    if let Some(s) = inv.suggestion {
        d = d.fix(span, s.clone(), format!("use `{s}`"));
    }
    d
}

impl<'a> Builder<'a> {
    fn too_many(&mut self) -> bool {
        let mut n = 0usize;
        for t in &self.file.tenants {
            n += 1 + t.items.len();
            for i in &t.items {
                if let ast::Item::Group(g) = i {
                    n += g.endpoints.len() + g.addresses.len();
                }
            }
        }
        if n > MAX_OBJECTS {
            self.errors.push(
                Diagnostic::error(
                    Code::TooLarge,
                    format!("the policy declares {n} objects; the limit is {MAX_OBJECTS}"),
                )
                .primary(Span::new(0, 0), "")
                .help("split the policy"),
            );
            return true;
        }
        false
    }

    fn name_ok(&mut self, what: &str, id: &ast::Ident) {
        if id.text.is_empty() {
            return; // a syntax error already said so
        }
        if let Err(inv) = validate::dns_label(what, &id.text) {
            self.errors.push(invalid_diag(Code::BadName, id.span, inv));
        }
    }

    fn duplicate(&mut self, what: &str, name: &ast::Ident, first: Span) {
        self.errors.push(
            Diagnostic::error(
                Code::Duplicate,
                format!("{what} `{}` is defined twice", name.text),
            )
            .primary(name.span, "defined again here")
            .secondary(first, "first defined here")
            .help(format!("rename one of them or remove the second {what}")),
        );
    }

    /// Pass 1: every tenant, group, contract, filter and endpoint gets an id.
    fn declare(&mut self) {
        for t in &self.file.tenants {
            self.name_ok("tenant", &t.name);
            if let Some(&prev) = self.tenant_ids.get(t.name.text.as_str()) {
                let first = self.p.tenants[prev.index()].span;
                self.duplicate("tenant", &t.name, first);
                // Declarations of a duplicate tenant still get checked, in a tenant of their own.
            }
            let tid = TenantId(self.p.tenants.len() as u32);
            self.tenant_ids.entry(t.name.text.as_str()).or_insert(tid);
            let any = GroupId(self.p.groups.len() as u32);
            self.p.tenants.push(Tenant {
                name: t.name.text.clone(),
                span: t.name.span,
                any,
                unenforced: t.unenforced,
            });
            self.p.groups.push(Group {
                tenant: tid,
                name: "any".into(),
                span: t.name.span,
                name_span: t.name.span,
                kind: GroupKind::Any,
                isolated: false,
                preferred: None,
                parent: None,
                selector: BTreeMap::new(),
                nets: Vec::new(),
                endpoints: Vec::new(),
                provides: Vec::new(),
                consumes: Vec::new(),
                eff_provides: Vec::new(),
                eff_consumes: Vec::new(),
            });
            self.group_ast.push(None);
            let mut groups = HashMap::new();
            let mut contracts = HashMap::new();
            let mut filters = HashMap::new();
            let mut endpoints: HashMap<&str, EndpointId> = HashMap::new();
            for item in &t.items {
                match item {
                    ast::Item::Filter(f) => {
                        self.name_ok("filter", &f.name);
                        if let Some(&prev) = filters.get(f.name.text.as_str()) {
                            let first = self.p.filters[FilterId::index(prev)].name_span;
                            self.duplicate("filter", &f.name, first);
                            continue;
                        }
                        let id = FilterId(self.p.filters.len() as u32);
                        filters.insert(f.name.text.as_str(), id);
                        self.p.filters.push(Filter {
                            tenant: tid,
                            name: f.name.text.clone(),
                            span: f.span,
                            name_span: f.name.span,
                            entries: Vec::new(),
                        });
                        self.filter_used.push(false);
                    }
                    ast::Item::Contract(c) => {
                        self.name_ok("contract", &c.name);
                        if let Some(&prev) = contracts.get(c.name.text.as_str()) {
                            let first = self.p.contracts[ContractId::index(prev)].name_span;
                            self.duplicate("contract", &c.name, first);
                            continue;
                        }
                        let id = ContractId(self.p.contracts.len() as u32);
                        contracts.insert(c.name.text.as_str(), id);
                        self.p.contracts.push(Contract {
                            tenant: tid,
                            name: c.name.text.clone(),
                            span: c.span,
                            name_span: c.name.span,
                            global: c.global,
                            subjects: Vec::new(),
                            origin: crate::model::Origin::Written,
                        });
                        self.contract_ast.push(c);
                    }
                    ast::Item::Group(g) => {
                        let what = match g.kind {
                            ast::GroupKind::Internal => "group",
                            ast::GroupKind::External => "external group",
                        };
                        self.name_ok(what, &g.name);
                        if g.name.text == "any" {
                            self.errors.push(
                                Diagnostic::error(Code::BadName, "`any` is reserved for the tenant-wide group")
                                    .primary(g.name.span, "")
                                    .help("use an `any { ... }` block to provide or consume contracts for every group of the tenant"),
                            );
                            continue;
                        }
                        if let Some(&prev) = groups.get(g.name.text.as_str()) {
                            let first = self.p.groups[GroupId::index(prev)].name_span;
                            self.duplicate("group", &g.name, first);
                            continue;
                        }
                        let id = GroupId(self.p.groups.len() as u32);
                        groups.insert(g.name.text.as_str(), id);
                        self.p.groups.push(Group {
                            tenant: tid,
                            name: g.name.text.clone(),
                            span: g.span,
                            name_span: g.name.span,
                            kind: match g.kind {
                                ast::GroupKind::Internal => GroupKind::Internal,
                                ast::GroupKind::External => GroupKind::External,
                            },
                            isolated: !g.isolated.is_empty(),
                            preferred: g.preferred.first().copied(),
                            parent: None,
                            selector: BTreeMap::new(),
                            nets: Vec::new(),
                            endpoints: Vec::new(),
                            provides: Vec::new(),
                            consumes: Vec::new(),
                            eff_provides: Vec::new(),
                            eff_consumes: Vec::new(),
                        });
                        self.group_ast.push(Some(g));
                        for e in &g.endpoints {
                            self.name_ok("endpoint", &e.name);
                            if let Some(&prev) = endpoints.get(e.name.text.as_str()) {
                                let first = self.p.endpoints[EndpointId::index(prev)].span;
                                self.duplicate("endpoint", &e.name, first);
                                continue;
                            }
                            let eid = EndpointId(self.p.endpoints.len() as u32);
                            endpoints.insert(e.name.text.as_str(), eid);
                            self.p.endpoints.push(Endpoint {
                                tenant: tid,
                                name: e.name.text.clone(),
                                span: e.name.span,
                                group: id,
                                addrs: Vec::new(),
                                labels: BTreeMap::new(),
                                external: g.kind == ast::GroupKind::External,
                                groups: Vec::new(),
                            });
                            self.p.groups[id.index()].endpoints.push(eid);
                        }
                    }
                    ast::Item::Any(_) | ast::Item::Assert(_) => {}
                }
            }
            self.groups.push(groups);
            self.contracts.push(contracts);
            self.filters.push(filters);
            self.endpoints.push(endpoints);
        }
    }

    fn tenant_items(&self, tid: TenantId) -> &'a [ast::Item] {
        &self.file.tenants[tid.index()].items
    }

    /// Pass 2: filter entries.
    fn resolve_filters(&mut self) {
        for (ti, t) in self.file.tenants.iter().enumerate() {
            for item in &t.items {
                let ast::Item::Filter(f) = item else { continue };
                let Some(&fid) = self.filters[ti].get(f.name.text.as_str()) else {
                    continue;
                };
                if self.p.filters[fid.index()].span != f.span {
                    continue; // a duplicate
                }
                if f.entries.is_empty() {
                    self.errors.push(
                        Diagnostic::error(
                            Code::Empty,
                            format!("filter `{}` has no entries", f.name.text),
                        )
                        .primary(f.name.span, "this filter matches nothing")
                        .help(
                            "add entries such as `tcp 443`, `udp 53`, `icmp echo-request` or `ip`",
                        ),
                    );
                }
                let mut entries = Vec::new();
                for e in &f.entries {
                    let mut ranges = Vec::new();
                    for pt in &e.ports {
                        match e.proto {
                            EntryProto::Icmp | EntryProto::Icmpv6 => {
                                match validate::icmp_type(e.proto == EntryProto::Icmpv6, &pt.lo) {
                                    Ok(n) => {
                                        let flow = Flow {
                                            proto: if e.proto == EntryProto::Icmpv6 {
                                                Proto::Icmpv6
                                            } else {
                                                Proto::Icmp
                                            },
                                            port: n as u16,
                                        };
                                        if !eval::can_start(flow) {
                                            self.warnings.push(
                                                Diagnostic::warning(
                                                    Code::IcmpNotNew,
                                                    format!("{} type `{}` cannot start a connection", e.proto.as_str(), pt.lo),
                                                )
                                                .primary(pt.span, "never the first packet of a connection")
                                                .help("replies and errors of allowed connections pass anyway (the rules are stateful); filter the request, such as `echo-request`"),
                                            );
                                        }
                                        ranges.push((n as u16, n as u16))
                                    }
                                    Err(inv) => {
                                        self.errors.push(invalid_diag(Code::BadIcmp, pt.span, inv))
                                    }
                                }
                            }
                            _ => {
                                let lo = validate::port(&pt.lo);
                                let hi = pt.hi.as_deref().map(validate::port).transpose();
                                match (lo, hi) {
                                    (Ok(lo), Ok(None)) => ranges.push((lo, lo)),
                                    (Ok(lo), Ok(Some(hi))) if lo <= hi => ranges.push((lo, hi)),
                                    (Ok(lo), Ok(Some(hi))) => self.errors.push(
                                        Diagnostic::error(
                                            Code::BadPort,
                                            format!("port range {lo}-{hi} is empty"),
                                        )
                                        .primary(pt.span, "the first port is above the last")
                                        .help(format!("write the range low to high: {hi}-{lo}"))
                                        .fix(
                                            pt.span,
                                            format!("{hi}-{lo}"),
                                            "swap the bounds",
                                        ),
                                    ),
                                    (Err(inv), _) | (_, Err(inv)) => {
                                        self.errors.push(invalid_diag(Code::BadPort, pt.span, inv))
                                    }
                                }
                            }
                        }
                    }
                    ranges.sort_unstable();
                    let mut merged: Vec<(u16, u16)> = Vec::new();
                    for (lo, hi) in ranges {
                        match merged.last_mut() {
                            Some(last) if lo as u32 <= last.1 as u32 + 1 => last.1 = last.1.max(hi),
                            _ => merged.push((lo, hi)),
                        }
                    }
                    if !e.ports.is_empty() && merged.is_empty() {
                        continue; // every port was invalid: do not widen to "all ports"
                    }
                    entries.push(FilterEntry {
                        proto: e.proto,
                        ranges: merged,
                        span: e.span,
                    });
                }
                self.p.filters[fid.index()].entries = entries;
            }
        }
    }

    /// E010 for `r`; `candidates` are the names of its kind where it was looked up (for a
    /// did-you-mean), `elsewhere` the qualified names `tenant/name` of the same name in other
    /// tenants that could be used here (suggested first: the likelier mistake is a missing
    /// qualification, not a typo).
    fn undefined(
        &self,
        what: &str,
        r: &ast::Reference,
        candidates: Vec<&str>,
        elsewhere: Vec<String>,
        help: &str,
    ) -> Option<Diagnostic> {
        // The name of a declaration that failed to parse: its syntax error speaks for it.
        if self.file.broken.contains(&r.name.text) {
            return None;
        }
        let mut d = Diagnostic::error(
            Code::Undefined,
            format!("{what} `{}` is not defined", r.display()),
        )
        .primary(r.span, format!("no {what} with this name"));
        if !elsewhere.is_empty() {
            let list = elsewhere
                .iter()
                .map(|q| format!("`{q}`"))
                .collect::<Vec<_>>()
                .join(", ");
            d = d.help(match elsewhere.as_slice() {
                [one] => format!(
                    "did you mean `{one}`? A name of another tenant is written with its tenant"
                ),
                _ => format!(
                    "other tenants have it: {list}; a name of another tenant is written with \
                     its tenant"
                ),
            });
            for q in elsewhere {
                d = d.fix(r.span, q.clone(), format!("change to `{q}`"));
            }
            return Some(d);
        }
        match closest(&r.name.text, candidates.iter().copied()) {
            Some(best) => {
                let replacement = match &r.tenant {
                    Some(t) => format!("{}/{best}", t.text),
                    None => best.to_string(),
                };
                d = d.help(format!("did you mean `{replacement}`?")).fix(
                    r.span,
                    replacement.clone(),
                    format!("change to `{replacement}`"),
                );
            }
            None => d = d.help(help.to_string()),
        }
        Some(d)
    }

    /// Pass 3: subjects and their filters.
    fn resolve_contracts(&mut self) {
        for ci in 0..self.p.contracts.len() {
            let c = self.contract_ast[ci];
            let tid = self.p.contracts[ci].tenant;
            if c.subjects.is_empty() {
                self.errors.push(
                    Diagnostic::error(
                        Code::Empty,
                        format!("contract `{}` has no subjects", c.name.text),
                    )
                    .primary(c.name.span, "this contract permits and denies nothing")
                    .help("add a subject: `subject NAME permit FILTER`"),
                );
            }
            let mut seen: HashMap<&str, Span> = HashMap::new();
            let mut subjects = Vec::new();
            for s in &c.subjects {
                self.name_ok("subject", &s.name);
                if let Some(&first) = seen.get(s.name.text.as_str()) {
                    self.duplicate("subject", &s.name, first);
                }
                seen.insert(s.name.text.as_str(), s.name.span);
                let mut filters = Vec::new();
                for r in &s.filters {
                    if let Some(t) = &r.tenant {
                        self.errors.push(
                            Diagnostic::error(
                                Code::KindMismatch,
                                format!("filter `{}` names another tenant", r.display()),
                            )
                            .primary(t.span, "filters are used within their own tenant")
                            .help("declare the filter in this tenant, or use the other tenant's global contract"),
                        );
                        continue;
                    }
                    match self.filters[tid.index()].get(r.name.text.as_str()) {
                        Some(&f) => {
                            self.filter_used[f.index()] = true;
                            filters.push((f, r.span));
                        }
                        None => {
                            let cands: Vec<&str> =
                                self.filters[tid.index()].keys().copied().collect();
                            let d = self.undefined(
                                "filter",
                                r,
                                cands,
                                Vec::new(),
                                "declare it: `filter NAME { tcp 443 }`",
                            );
                            self.errors.extend(d);
                        }
                    }
                }
                subjects.push(Subject {
                    name: s.name.text.clone(),
                    span: s.span,
                    action: s.action,
                    both_ways: s.both_ways.is_some(),
                    log: s.log,
                    filters,
                });
            }
            self.p.contracts[ci].subjects = subjects;
        }
    }

    /// Resolve a contract reference from tenant `tid`; `consume` allows other tenants' global
    /// contracts.
    fn contract_ref(
        &mut self,
        tid: TenantId,
        r: &ast::Reference,
        consume: bool,
    ) -> Option<ContractId> {
        let target_tenant = match &r.tenant {
            None => tid,
            Some(t) => match self.tenant_ids.get(t.text.as_str()) {
                Some(&other) => other,
                None => {
                    let d = self.undefined_tenant(t);
                    self.errors.extend(d);
                    return None;
                }
            },
        };
        let Some(&c) = self.contracts[target_tenant.index()].get(r.name.text.as_str()) else {
            let cands: Vec<&str> = self.contracts[target_tenant.index()]
                .keys()
                .copied()
                .collect();
            // Consumed without its tenant: another tenant's global contract of that name (one
            // that is not global is named in the help: it needs `global` first).
            let global_in = |ti: usize, global: bool| {
                self.contracts[ti]
                    .get(r.name.text.as_str())
                    .is_some_and(|c| self.p.contracts[c.index()].global == global)
            };
            let (elsewhere, private) = if consume && r.tenant.is_none() {
                (
                    self.qualified_elsewhere(tid, &r.name.text, |ti| global_in(ti, true)),
                    self.qualified_elsewhere(tid, &r.name.text, |ti| global_in(ti, false)),
                )
            } else {
                (Vec::new(), Vec::new())
            };
            let help = match private.first() {
                Some(q) if elsewhere.is_empty() => format!(
                    "`{q}` has this name but is not global: declare it `global contract` in its \
                     tenant and consume it as `{q}`, or declare a contract here"
                ),
                _ => "declare it: `contract NAME { subject NAME permit FILTER }`".to_string(),
            };
            let d = self.undefined("contract", r, cands, elsewhere, &help);
            self.errors.extend(d);
            return None;
        };
        if target_tenant != tid {
            let contract = &self.p.contracts[c.index()];
            if !consume {
                self.errors.push(
                    Diagnostic::error(
                        Code::KindMismatch,
                        format!("`{}` belongs to another tenant and cannot be provided here", r.display()),
                    )
                    .primary(r.span, "provided from another tenant")
                    .secondary(contract.name_span, "declared here")
                    .help("a tenant provides its own contracts; other tenants consume them when they are global"),
                );
                return None;
            }
            if !contract.global {
                self.errors.push(
                    Diagnostic::error(
                        Code::NotGlobal,
                        format!(
                            "contract `{}` is not global, so tenant `{}` cannot consume it",
                            r.display(),
                            self.p.tenants[tid.index()].name
                        ),
                    )
                    .primary(r.span, "consumed from another tenant")
                    .secondary(contract.name_span, "declared here without `global`")
                    .help(format!(
                        "declare it `global contract {} {{ ... }}` to share it across tenants",
                        contract.name
                    )),
                );
                return None;
            }
        }
        Some(c)
    }

    /// `tenant/name` for every other tenant (by name, each once) for which `has` holds.
    fn qualified_elsewhere(
        &self,
        tid: TenantId,
        name: &str,
        has: impl Fn(usize) -> bool,
    ) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (ti, t) in self.p.tenants.iter().enumerate() {
            if ti == tid.index() || t.name == self.p.tenants[tid.index()].name || !has(ti) {
                continue;
            }
            out.push(format!("{}/{name}", t.name));
        }
        out.sort();
        out.dedup();
        out
    }

    fn undefined_tenant(&self, t: &ast::Ident) -> Option<Diagnostic> {
        let r = ast::Reference {
            tenant: None,
            name: t.clone(),
            span: t.span,
        };
        let cands: Vec<&str> = self.tenant_ids.keys().copied().collect();
        self.undefined(
            "tenant",
            &r,
            cands,
            Vec::new(),
            "declare the tenant, or fix the qualified name `tenant/name`",
        )
    }

    fn labels(&mut self, labels: &[ast::LabelText], out: &mut BTreeMap<String, String>) {
        for l in labels {
            if let Err(inv) = validate::label_key(&l.key) {
                self.errors
                    .push(invalid_diag(Code::BadLabel, l.key_span, inv));
                continue;
            }
            if let Err(inv) = validate::label_value(&l.value) {
                self.errors
                    .push(invalid_diag(Code::BadLabel, l.value_span, inv));
                continue;
            }
            if let Some(prev) = out.get(&l.key)
                && *prev != l.value
            {
                self.errors.push(
                    Diagnostic::error(
                        Code::BadLabel,
                        format!("label `{}` is given two values", l.key),
                    )
                    .primary(l.span, format!("`{}={}` here", l.key, l.value))
                    .help(format!(
                        "it is already `{}={prev}`; a label has one value",
                        l.key
                    )),
                );
                continue;
            }
            out.insert(l.key.clone(), l.value.clone());
        }
    }

    /// A single address where one is required (`who` takes one: an endpoint, an assertion).
    /// `198.18.2.10/24` is that address with a prefix length, so the suggestion is
    /// `198.18.2.10` (not the network `198.18.2.0/24`, which is no more an address).
    fn host(&mut self, a: &ast::AddrText, code: Code, who: &str, help: &str) -> Option<Cidr> {
        if let Some((ip, _)) = a.text.split_once('/')
            && let Ok(addr) = ip.parse::<std::net::IpAddr>()
            && matches!(Cidr::parse(&a.text), Err(CidrError::HostBits { .. }))
        {
            let fixed = addr.to_string();
            self.errors.push(
                Diagnostic::error(
                    code,
                    format!("{who} takes one address, and `{}` is a prefix", a.text),
                )
                .primary(a.span, "a prefix")
                .help(format!("did you mean `{fixed}`? ({help})"))
                .fix(a.span, fixed.clone(), format!("change to `{fixed}`")),
            );
            return None;
        }
        let c = self.cidr(a)?;
        if !c.is_host() {
            self.errors.push(
                Diagnostic::error(
                    code,
                    format!("{who} takes one address, and `{c}` is a prefix"),
                )
                .primary(a.span, "a prefix")
                .help(help.to_string()),
            );
            return None;
        }
        Some(c)
    }

    fn cidr(&mut self, a: &ast::AddrText) -> Option<Cidr> {
        match Cidr::parse(&a.text) {
            Ok(c) => Some(c),
            Err(e) => {
                let (msg, help, fix) = match e {
                    CidrError::Syntax => (
                        format!("`{}` is not an IP address or prefix", validate::truncate(&a.text, 60)),
                        "write an address such as 198.18.0.1, a prefix such as 198.18.0.0/24, or IPv6 2001:db8::/64".to_string(),
                        None,
                    ),
                    CidrError::Length { max } => (
                        format!("prefix length in `{}` is too long", a.text),
                        format!("the prefix length of this family is at most {max}"),
                        None,
                    ),
                    CidrError::HostBits { network } => (
                        format!("`{}` has host bits set", a.text),
                        format!("did you mean `{network}`?"),
                        Some(network.to_string()),
                    ),
                };
                let mut d = Diagnostic::error(Code::BadAddress, msg)
                    .primary(a.span, "")
                    .help(help);
                if let Some(f) = fix {
                    d = d.fix(a.span, f.clone(), format!("change to `{f}`"));
                }
                self.errors.push(d);
                None
            }
        }
    }

    /// Pass 4: groups: modifiers, selectors, addresses, endpoints, contract uses; `any` blocks.
    fn resolve_groups(&mut self) {
        for gi in 0..self.p.groups.len() {
            let Some(g) = self.group_ast[gi] else {
                continue;
            };
            let gid = GroupId(gi as u32);
            let tid = self.p.groups[gi].tenant;
            let external = g.kind == ast::GroupKind::External;
            if g.isolated.len() > 1 {
                self.errors.push(
                    Diagnostic::error(Code::Duplicate, "`isolated` is given twice")
                        .primary(g.isolated[1], "again here")
                        .secondary(g.isolated[0], "first here")
                        .help("remove one"),
                );
            }
            if g.preferred.len() > 1 {
                self.errors.push(
                    Diagnostic::error(Code::Duplicate, "`preferred` is given twice")
                        .primary(g.preferred[1], "again here")
                        .secondary(g.preferred[0], "first here")
                        .help("remove one"),
                );
            }
            if let (Some(&i), Some(&pr)) = (g.isolated.first(), g.preferred.first()) {
                self.errors.push(
                    Diagnostic::error(
                        Code::PreferredIsolated,
                        format!("group `{}` is both isolated and preferred", g.name.text),
                    )
                    .primary(pr, "preferred: members talk freely to each other")
                    .secondary(i, "isolated: members must not reach each other")
                    .help("drop one; a contract the group provides and consumes permits chosen flows between members of an isolated group"),
                );
            }
            if external && !g.isolated.is_empty() {
                self.errors.push(
                    Diagnostic::error(Code::Misplaced, "an external group cannot be isolated")
                        .primary(g.isolated[0], "")
                        .help("isolation is about endpoints inside the fabric; remove `isolated`"),
                );
            }
            if g.extends.len() > 1 {
                self.errors.push(
                    Diagnostic::error(Code::Duplicate, format!("group `{}` extends more than one group", g.name.text))
                        .primary(g.extends[1].span, "a second parent")
                        .secondary(g.extends[0].span, "first parent")
                        .help("a group has one parent; move shared contracts into the parent or an `any` block"),
                );
            }
            if let Some(parent) = g.extends.first() {
                match self.groups[tid.index()].get(parent.text.as_str()) {
                    Some(&pid) => {
                        let pk = self.p.groups[pid.index()].kind;
                        if pk != self.p.groups[gi].kind {
                            self.errors.push(
                                Diagnostic::error(
                                    Code::KindMismatch,
                                    format!("`{}` cannot extend `{}`: one is external and the other is not", g.name.text, parent.text),
                                )
                                .primary(parent.span, "")
                                .secondary(self.p.groups[pid.index()].name_span, "declared here")
                                .help("a group extends a group of the same kind"),
                            );
                        } else {
                            self.p.groups[gi].parent = Some(pid);
                        }
                    }
                    None => {
                        let r = ast::Reference {
                            tenant: None,
                            name: parent.clone(),
                            span: parent.span,
                        };
                        let cands: Vec<&str> = self.groups[tid.index()].keys().copied().collect();
                        let d = self.undefined(
                            "group",
                            &r,
                            cands,
                            Vec::new(),
                            "declare the parent group in the same tenant",
                        );
                        self.errors.extend(d);
                    }
                }
            }
            // select
            if external && !g.selects.is_empty() {
                self.errors.push(
                    Diagnostic::error(Code::Misplaced, "an external group cannot select by labels")
                        .primary(g.selects[0].span, "")
                        .help("external groups are addresses outside the fabric: use `address`"),
                );
            } else {
                let mut sel = BTreeMap::new();
                self.labels(&g.selects, &mut sel);
                self.p.groups[gi].selector = sel;
            }
            // addresses
            let mut nets = Vec::new();
            for a in &g.addresses {
                let Some(cidr) = self.cidr(&a.cidr) else {
                    continue;
                };
                let mut except = Vec::new();
                if !a.except.is_empty() && !external {
                    self.errors.push(
                        Diagnostic::error(Code::Misplaced, "`except` is only for external groups")
                            .primary(a.except_span.unwrap_or(a.except[0].span), "")
                            .help("an internal group lists the prefixes it holds; leave out the ones it does not"),
                    );
                }
                for x in &a.except {
                    let Some(xc) = self.cidr(x) else { continue };
                    if xc.family != cidr.family {
                        self.errors.push(
                            Diagnostic::error(
                                Code::Family,
                                format!(
                                    "`{xc}` is {}, but `{cidr}` is {}",
                                    xc.family.as_str(),
                                    cidr.family.as_str()
                                ),
                            )
                            .primary(x.span, "")
                            .secondary(a.cidr.span, "the prefix it is excepted from")
                            .help("an exception must be of the same address family as its prefix"),
                        );
                    } else if !cidr.contains(&xc) || xc == cidr {
                        self.errors.push(
                            Diagnostic::error(
                                Code::Family,
                                format!("`{xc}` is not strictly inside `{cidr}`"),
                            )
                            .primary(x.span, "")
                            .secondary(a.cidr.span, "the prefix it is excepted from")
                            .help("Kubernetes requires every `except` to lie inside its CIDR"),
                        );
                    } else {
                        except.push(xc);
                    }
                }
                nets.push(Net {
                    cidr,
                    except,
                    span: a.cidr.span,
                });
            }
            self.p.groups[gi].nets = nets;
            // endpoints
            let eids = self.p.groups[gi].endpoints.clone();
            let selector = self.p.groups[gi].selector.clone();
            for (k, e) in g.endpoints.iter().enumerate() {
                let Some(&eid) = self.endpoints[tid.index()].get(e.name.text.as_str()) else {
                    continue;
                };
                if !eids.contains(&eid) || self.p.endpoints[eid.index()].span != e.name.span {
                    continue; // a duplicate
                }
                let _ = k;
                let mut labels = selector.clone();
                if external && !e.labels.is_empty() {
                    self.errors.push(
                        Diagnostic::error(
                            Code::Misplaced,
                            "an external endpoint cannot carry labels",
                        )
                        .primary(e.labels[0].span, "")
                        .help("external endpoints are addresses outside the cluster"),
                    );
                } else {
                    self.labels(&e.labels, &mut labels);
                }
                let mut addrs: Vec<Cidr> = Vec::new();
                for a in &e.addrs {
                    let Some(c) = self.host(
                        a,
                        Code::BadAddress,
                        &format!("endpoint `{}`", e.name.text),
                        "an endpoint has single addresses; put prefixes in the group's `address`",
                    ) else {
                        continue;
                    };
                    if addrs.iter().any(|x| x.family == c.family) {
                        self.errors.push(
                            Diagnostic::error(
                                Code::Family,
                                format!(
                                    "endpoint `{}` has two {} addresses",
                                    e.name.text,
                                    c.family.as_str()
                                ),
                            )
                            .primary(a.span, "")
                            .help("an endpoint has at most one IPv4 and one IPv6 address"),
                        );
                        continue;
                    }
                    let nets = &self.p.groups[gi].nets;
                    if !nets.is_empty() && !inside(nets, &c) {
                        self.errors.push(
                            Diagnostic::error(
                                Code::Membership,
                                format!("endpoint `{}` at {} is outside the addresses of group `{}`", e.name.text, c.ip(), g.name.text),
                            )
                            .primary(a.span, "not in the group's prefixes")
                            .secondary(nets[0].span, "the group's addresses")
                            .help("give the endpoint an address inside the group, or add its prefix to the group's `address`"),
                        );
                        continue;
                    }
                    addrs.push(c);
                }
                let ep = &mut self.p.endpoints[eid.index()];
                ep.addrs = addrs;
                ep.labels = labels;
            }
            // contract uses
            let mut provides = Vec::new();
            for r in &g.provides {
                if let Some(c) = self.contract_ref(tid, r, false) {
                    provides.push(Use {
                        contract: c,
                        span: r.span,
                    });
                }
            }
            let mut consumes = Vec::new();
            for r in &g.consumes {
                if let Some(c) = self.contract_ref(tid, r, true) {
                    consumes.push(Use {
                        contract: c,
                        span: r.span,
                    });
                }
            }
            self.p.groups[gid.index()].provides = provides;
            self.p.groups[gid.index()].consumes = consumes;
        }
        // `any` blocks
        for ti in 0..self.p.tenants.len() {
            let tid = TenantId(ti as u32);
            let any = self.p.tenants[ti].any;
            let mut provides = Vec::new();
            let mut consumes = Vec::new();
            for item in self.tenant_items(tid) {
                let ast::Item::Any(a) = item else { continue };
                for r in &a.provides {
                    if let Some(c) = self.contract_ref(tid, r, false) {
                        provides.push(Use {
                            contract: c,
                            span: r.span,
                        });
                    }
                }
                for r in &a.consumes {
                    if let Some(c) = self.contract_ref(tid, r, true) {
                        consumes.push(Use {
                            contract: c,
                            span: r.span,
                        });
                    }
                }
            }
            self.p.groups[any.index()].provides = provides;
            self.p.groups[any.index()].consumes = consumes;
        }
    }

    /// Pass 6: classes and every endpoint's groups.
    fn membership(&mut self) {
        let p = &self.p;
        // Groups each endpoint is in without looking at addresses: declared and by labels.
        let mut by_label: HashMap<(TenantId, &str, &str), Vec<GroupId>> = HashMap::new();
        for (gi, g) in p.groups.iter().enumerate() {
            if g.kind != GroupKind::Internal {
                continue;
            }
            if let Some((k, v)) = g.selector.iter().next() {
                by_label
                    .entry((g.tenant, k.as_str(), v.as_str()))
                    .or_default()
                    .push(GroupId(gi as u32));
            }
        }
        let mut static_groups: Vec<Vec<GroupId>> = Vec::with_capacity(p.endpoints.len());
        for e in &p.endpoints {
            let mut gs = vec![e.group];
            if !e.external {
                for (k, v) in &e.labels {
                    if let Some(cands) = by_label.get(&(e.tenant, k.as_str(), v.as_str())) {
                        for &g in cands {
                            let sel = &p.groups[g.index()].selector;
                            if sel.iter().all(|(sk, sv)| e.labels.get(sk) == Some(sv)) {
                                gs.push(g);
                            }
                        }
                    }
                }
            }
            gs.sort_unstable();
            gs.dedup();
            static_groups.push(gs);
        }
        // Ranges: group prefixes (minus exceptions) and member addresses.
        let mut ranges = Vec::new();
        for (gi, g) in p.groups.iter().enumerate() {
            let external = g.kind == GroupKind::External;
            for n in &g.nets {
                for (lo, hi) in subtract(n.cidr.first(), n.cidr.last(), &n.except) {
                    ranges.push(Range {
                        family: n.cidr.family,
                        lo,
                        hi,
                        group: GroupId(gi as u32),
                        external,
                    });
                }
            }
        }
        for (ei, e) in p.endpoints.iter().enumerate() {
            for g in &static_groups[ei] {
                for a in &e.addrs {
                    ranges.push(Range {
                        family: a.family,
                        lo: a.addr,
                        hi: a.addr,
                        group: *g,
                        external: e.external,
                    });
                }
            }
        }
        let kinds: Vec<GroupKind> = p.groups.iter().map(|g| g.kind).collect();
        let anys: Vec<GroupId> = p
            .groups
            .iter()
            .map(|g| p.tenants[g.tenant.index()].any)
            .collect();
        let any_of = |g: GroupId| anys.get(g.index()).copied();
        let classes = Classes::build(&ranges, &kinds, &any_of);
        // Every endpoint's groups.
        let mut diags = Vec::new();
        let mut warnings = Vec::new();
        let mut all_groups = Vec::with_capacity(p.endpoints.len());
        for (ei, e) in p.endpoints.iter().enumerate() {
            let mut gs = static_groups[ei].clone();
            for a in &e.addrs {
                let found = classes.lookup(a.family, a.addr);
                if e.external
                    && found
                        .iter()
                        .any(|g| kinds[g.index()] == GroupKind::Internal)
                {
                    let g = found
                        .iter()
                        .find(|g| kinds[g.index()] == GroupKind::Internal)
                        .copied();
                    let mut d = Diagnostic::error(
                        Code::Membership,
                        format!(
                            "external endpoint `{}` at {} is inside the fabric",
                            e.name,
                            a.ip()
                        ),
                    )
                    .primary(e.span, "");
                    if let Some(g) = g {
                        d = d.secondary(
                            p.groups[g.index()].name_span,
                            format!(
                                "internal group `{}` holds this address",
                                p.groups[g.index()].name
                            ),
                        );
                    }
                    diags.push(d.help("external addresses must not belong to any internal group"));
                    continue;
                }
                for &g in found {
                    if !gs.contains(&g) {
                        let grp = &p.groups[g.index()];
                        // Two copies of one tenant (E011) overlap everywhere: not a finding.
                        let copies = grp.tenant != e.tenant
                            && p.tenants[grp.tenant.index()].name
                                == p.tenants[e.tenant.index()].name;
                        if grp.kind == GroupKind::Internal && !grp.selector.is_empty() && !copies {
                            warnings.push(
                                Diagnostic::warning(
                                    Code::LabelAddressDisagree,
                                    format!(
                                        "endpoint `{}` is in group `{}` by address but does not carry its labels",
                                        e.name,
                                        p.group_name(g)
                                    ),
                                )
                                .primary(e.span, "")
                                .secondary(grp.name_span, "this group selects by labels too")
                                .help("nftables classifies by address and Kubernetes by labels; give the endpoint the group's labels or move it out of the group's prefixes"),
                            );
                        }
                        gs.push(g);
                    }
                }
            }
            // The fabric classifies each address on its own: a dual-stack endpoint whose two
            // addresses fall in different groups would get different verdicts per family.
            if let [a, b] = e.addrs.as_slice() {
                let (ga, gb) = (
                    classes.lookup(a.family, a.addr),
                    classes.lookup(b.family, b.addr),
                );
                if ga != gb && !e.external {
                    let names = |gs: &[GroupId]| {
                        gs.iter()
                            .filter(|g| kinds[g.index()] != GroupKind::Any)
                            .map(|g| p.group_name(*g))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    diags.push(
                        Diagnostic::error(
                            Code::Membership,
                            format!(
                                "the addresses of endpoint `{}` are in different groups",
                                e.name
                            ),
                        )
                        .primary(e.span, "")
                        .help(format!(
                            "{} is in [{}] but {} is in [{}]; give both addresses the same groups",
                            a.ip(),
                            names(ga),
                            b.ip(),
                            names(gb)
                        )),
                    );
                }
            }
            if !e.external {
                let tenants: Vec<TenantId> = gs
                    .iter()
                    .filter(|g| kinds[g.index()] == GroupKind::Internal)
                    .map(|g| p.groups[g.index()].tenant)
                    .collect();
                for t in tenants {
                    gs.push(p.tenants[t.index()].any);
                }
            }
            gs.sort_unstable();
            gs.dedup();
            all_groups.push(gs);
        }
        for (e, gs) in self.p.endpoints.iter_mut().zip(all_groups) {
            e.groups = gs;
        }
        self.p.classes = classes;
        self.errors.extend(diags);
        self.warnings.extend(warnings);
    }

    /// W020: an external group has prefixes, yet no address is in it: every prefix is excepted
    /// entirely, or lies inside internal groups (which win). Its contracts can never apply.
    fn externals_without_address(&mut self) {
        let p = &self.p;
        let mut present = vec![false; p.groups.len()];
        for set in &p.classes.sets {
            for g in set {
                present[g.index()] = true;
            }
        }
        let mut out = Vec::new();
        for (gi, g) in p.groups.iter().enumerate() {
            if g.kind != GroupKind::External || g.nets.is_empty() || present[gi] {
                continue;
            }
            let all_excepted = g
                .nets
                .iter()
                .all(|n| subtract(n.cidr.first(), n.cidr.last(), &n.except).is_empty());
            let (why, help) = if all_excepted {
                (
                    "every prefix is excepted entirely",
                    "an `except` list that covers its whole prefix leaves nothing: remove the \
                     exception, or the prefix",
                )
            } else {
                (
                    "its addresses are all inside internal groups, which win",
                    "an address that an internal group holds is never a member of an external \
                     group; give it prefixes outside the fabric's",
                )
            };
            let mut d = Diagnostic::warning(
                Code::NoAddressLeft,
                format!("external group `{}` has no address: {why}", g.name),
            )
            .primary(g.name_span, "no address is in this group");
            for n in &g.nets {
                d = d.secondary(n.span, "");
            }
            out.push(d.help(format!("{help}; until then its contracts never apply")));
        }
        self.warnings.extend(out);
    }

    /// Subjects whose consumers and providers share no address family can never match.
    fn family_warnings(&mut self) {
        let p = &self.p;
        // Each tenant's internal groups, in one pass (a scan of every group per `any` was
        // quadratic in tenants).
        let mut internal: Vec<Vec<GroupId>> = vec![Vec::new(); p.tenants.len()];
        for (gi, grp) in p.groups.iter().enumerate() {
            if grp.kind == GroupKind::Internal
                && let Some(list) = internal.get_mut(grp.tenant.index())
            {
                list.push(GroupId(gi as u32));
            }
        }
        let fams = |g: GroupId| -> (bool, bool) {
            let grp = p.group(g);
            let members: Vec<GroupId> = if grp.kind == GroupKind::Any {
                internal
                    .get(grp.tenant.index())
                    .cloned()
                    .unwrap_or_default()
            } else {
                vec![g]
            };
            let mut v4 = false;
            let mut v6 = false;
            for m in members {
                let mg = p.group(m);
                for n in &mg.nets {
                    v4 |= n.cidr.family == Family::V4;
                    v6 |= n.cidr.family == Family::V6;
                }
                for e in &mg.endpoints {
                    for a in &p.endpoint(*e).addrs {
                        v4 |= a.family == Family::V4;
                        v6 |= a.family == Family::V6;
                    }
                }
            }
            (v4, v6)
        };
        let mut out = Vec::new();
        let (all_providers, all_consumers) = p.contract_users();
        for (ci, c) in p.contracts.iter().enumerate() {
            let (mut c4, mut c6, mut p4, mut p6) = (false, false, false, false);
            let consumers = all_consumers[ci].clone();
            let providers = all_providers[ci].clone();
            if consumers.is_empty() || providers.is_empty() {
                continue;
            }
            for g in consumers {
                let (a, b) = fams(g);
                c4 |= a;
                c6 |= b;
            }
            for g in providers {
                let (a, b) = fams(g);
                p4 |= a;
                p6 |= b;
            }
            let v4 = c4 && p4;
            let v6 = c6 && p6;
            if !(c4 || c6) || !(p4 || p6) {
                continue; // addresses unknown on one side (labels only): nothing to say
            }
            if !v4 && !v6 {
                out.push(
                    Diagnostic::warning(Code::FamilyMismatch, format!("contract `{}` joins groups with no address family in common", c.name))
                        .primary(c.name_span, "")
                        .help("its consumers and providers are addressed in different families, so no connection can match"),
                );
                continue;
            }
            for s in &c.subjects {
                for &(f, span) in &s.filters {
                    let entries = &p.filter(f).entries;
                    let only_icmp4 =
                        !entries.is_empty() && entries.iter().all(|e| e.proto == EntryProto::Icmp);
                    let only_icmp6 = !entries.is_empty()
                        && entries.iter().all(|e| e.proto == EntryProto::Icmpv6);
                    if (only_icmp4 && !v4) || (only_icmp6 && !v6) {
                        out.push(
                            Diagnostic::warning(
                                Code::FamilyMismatch,
                                format!(
                                    "filter `{}` can never match in contract `{}`",
                                    p.filter(f).name,
                                    c.name
                                ),
                            )
                            .primary(span, "")
                            .help(if only_icmp4 {
                                "icmp is IPv4 only, and these groups share only IPv6; use icmpv6"
                            } else {
                                "icmpv6 is IPv6 only, and these groups share only IPv4; use icmp"
                            }),
                        );
                    }
                }
            }
        }
        self.warnings.extend(out);
    }

    fn party(&mut self, tid: TenantId, t: &ast::Target) -> Option<Party> {
        match t {
            ast::Target::Addr(a) => {
                let c = self.host(
                    a,
                    Code::AssertTarget,
                    "an assertion",
                    "an assertion names one address, or an endpoint",
                )?;
                Some(Party::Address(c))
            }
            ast::Target::Ref(r) => {
                let target_tenant = match &r.tenant {
                    None => tid,
                    Some(t) => match self.tenant_ids.get(t.text.as_str()) {
                        Some(&x) => x,
                        None => {
                            let d = self.undefined_tenant(t);
                            self.errors.extend(d);
                            return None;
                        }
                    },
                };
                if let Some(&e) = self.endpoints[target_tenant.index()].get(r.name.text.as_str()) {
                    return Some(Party::Endpoint(e));
                }
                if self.groups[target_tenant.index()].contains_key(r.name.text.as_str()) {
                    self.errors.push(
                        Diagnostic::error(Code::AssertTarget, format!("`{}` is a group; an assertion names an endpoint or an address", r.display()))
                            .primary(r.span, "")
                            .help("name one of the group's endpoints, or declare one: `endpoint NAME ADDRESS`"),
                    );
                    return None;
                }
                let cands: Vec<&str> = self.endpoints[target_tenant.index()]
                    .keys()
                    .copied()
                    .collect();
                let elsewhere = if r.tenant.is_none() {
                    self.qualified_elsewhere(tid, &r.name.text, |ti| {
                        self.endpoints[ti].contains_key(r.name.text.as_str())
                    })
                } else {
                    Vec::new()
                };
                let d = self.undefined(
                    "endpoint",
                    r,
                    cands,
                    elsewhere,
                    "declare it inside a group: `endpoint NAME ADDRESS`",
                );
                self.errors.extend(d);
                None
            }
        }
    }

    fn probe(&mut self, pr: &ast::Probe) -> Option<Flow> {
        let bad = |msg: String, help: &str| {
            Diagnostic::error(Code::AssertTarget, msg)
                .primary(pr.span, "")
                .help(help.to_string())
        };
        let flow = match pr.proto.as_str() {
            "tcp" | "udp" | "sctp" => {
                let proto = match pr.proto.as_str() {
                    "tcp" => Proto::Tcp,
                    "udp" => Proto::Udp,
                    _ => Proto::Sctp,
                };
                let Some(arg) = &pr.arg else {
                    self.errors.push(bad(
                        format!("`{}` needs a port", pr.proto),
                        "write it as tcp/443",
                    ));
                    return None;
                };
                match validate::port(arg) {
                    Ok(port) => Flow { proto, port },
                    Err(inv) => {
                        self.errors.push(invalid_diag(Code::BadPort, pr.span, inv));
                        return None;
                    }
                }
            }
            "icmp" | "icmpv6" => {
                let v6 = pr.proto == "icmpv6";
                let proto = if v6 { Proto::Icmpv6 } else { Proto::Icmp };
                let port = match &pr.arg {
                    None => {
                        if v6 {
                            128
                        } else {
                            8
                        }
                    }
                    Some(a) => match validate::icmp_type(v6, a) {
                        Ok(n) => n as u16,
                        Err(inv) => {
                            self.errors.push(invalid_diag(Code::BadIcmp, pr.span, inv));
                            return None;
                        }
                    },
                };
                Flow { proto, port }
            }
            _ => {
                let Some(n) = pr.arg.as_ref().and_then(|a| a.parse::<u8>().ok()) else {
                    self.errors.push(bad(
                        "`ip` needs a protocol number 0-255".to_string(),
                        "write it as ip/47 (GRE); use tcp/N, udp/N, sctp/N, icmp/TYPE for those protocols",
                    ));
                    return None;
                };
                if let Some(own) = validate::own_form(n) {
                    let mut d = Diagnostic::error(
                        Code::ProbeForm,
                        format!(
                            "`ip/{n}` is {}: probe it as `{own}`",
                            validate::proto_title(own)
                        ),
                    )
                    .primary(
                        pr.span,
                        format!("{} has a form of its own", validate::proto_title(own)),
                    )
                    .help(validate::own_form_help(own));
                    // ICMP without a type is its echo request; a port cannot be guessed.
                    if own.starts_with("icmp") {
                        d = d.fix(pr.span, own, format!("change to `{own}`"));
                    }
                    self.errors.push(d);
                    return None;
                }
                Flow {
                    proto: Proto::Other(n),
                    port: 0,
                }
            }
        };
        Some(flow)
    }

    /// Pass 7: assertions, proved against the evaluator (only when the policy has no errors,
    /// since a broken policy has no meaning to prove).
    fn assertions(&mut self) {
        for ti in 0..self.file.tenants.len() {
            let tid = TenantId(ti as u32);
            for item in self.tenant_items(tid) {
                let ast::Item::Assert(a) = item else { continue };
                let from = self.party(tid, &a.from);
                let to = self.party(tid, &a.to);
                let flow = self.probe(&a.probe);
                let (Some(from), Some(to), Some(flow)) = (from, to, flow) else {
                    continue;
                };
                if let Some(d) = self.cross_family(a, &from, &to, flow) {
                    self.errors.push(d);
                    continue;
                }
                self.p.asserts.push(Assertion {
                    tenant: tid,
                    from,
                    to,
                    flow,
                    expect: a.expect,
                    span: a.span,
                    text: format!(
                        "{} -> {} {}",
                        target_text(&a.from),
                        target_text(&a.to),
                        flow
                    ),
                });
            }
        }
        if !self.errors.is_empty() || self.file.incomplete {
            return;
        }
        let mut out = Vec::new();
        for a in &self.p.asserts {
            if let Some(d) = prove(&self.p, a) {
                out.push(d);
            }
        }
        self.errors.extend(out);
    }
}

impl Builder<'_> {
    /// E032: an assertion whose ends no connection can join (different address families, or
    /// an ICMP version that does not exist in theirs). `None` when the ends and the probe
    /// share a family, or when an end has no valid address (already an error of its own).
    fn cross_family(
        &self,
        a: &ast::Assert,
        from: &Party,
        to: &Party,
        flow: Flow,
    ) -> Option<Diagnostic> {
        let (src, dst) = (self.p.party_end(from), self.p.party_end(to));
        if src.families.is_empty() || dst.families.is_empty() {
            return None;
        }
        let x = eval::Conn::new(src, dst, flow).err()?;
        let probe = match &a.probe.arg {
            Some(arg) => format!("{}/{arg}", a.probe.proto),
            None => a.probe.proto.clone(),
        };
        let what = format!(
            "`{} -> {} {probe}` cannot be a connection",
            target_text(&a.from),
            target_text(&a.to),
        );
        let mut d = Diagnostic::error(Code::CrossFamily, what);
        if let Some(proto) = x.suggestion() {
            let pspan = Span::new(a.probe.span.start, a.probe.span.start + a.probe.proto.len());
            d = d
                .primary(pspan, format!("{} only", flow.families().describe()))
                .secondary(
                    a.from.span().join(a.to.span()),
                    format!("{} in common", src.families.and(dst.families).describe()),
                );
            // The same probe in the other ICMP: by name when the name exists there; a type
            // number means something else in the other family, so no edit is offered.
            let v6 = proto == "icmpv6";
            let same = match &a.probe.arg {
                None => true,
                Some(arg) => {
                    !arg.bytes().all(|b| b.is_ascii_digit()) && validate::icmp_type(v6, arg).is_ok()
                }
            };
            if same {
                d = d.help(format!("{}; write `{proto}`", x.describe())).fix(
                    pspan,
                    proto,
                    format!("change to `{proto}`"),
                );
            } else {
                d = d.help(format!(
                    "{}; write `{proto}` with its own type (ICMP and ICMPv6 number their types \
                     differently: echo-request is 8 and 128)",
                    x.describe()
                ));
            }
        } else {
            d = d
                .primary(a.to.span(), dst.families.describe())
                .secondary(a.from.span(), src.families.describe())
                .help(format!(
                    "{}; assert between ends of one family (an endpoint may have one IPv4 and \
                     one IPv6 address)",
                    x.describe()
                ));
        }
        Some(d)
    }
}

fn target_text(t: &ast::Target) -> String {
    match t {
        ast::Target::Addr(a) => a.text.clone(),
        ast::Target::Ref(r) => r.display(),
    }
}

/// Check one assertion against the evaluator; a diagnostic when it does not hold.
pub fn prove(p: &Policy, a: &Assertion) -> Option<Diagnostic> {
    // Assertions across families were reported (E032) and never kept.
    let d = p.decide_assertion(a)?;
    let expected = match a.expect {
        Expect::Allow => Verdict::Allow,
        Expect::Deny => Verdict::Deny,
    };
    if d.verdict == expected {
        return None;
    }
    let mut diag = Diagnostic::error(
        Code::AssertFailed,
        format!(
            "assertion failed: {} is {}, expected {}",
            a.text,
            match d.verdict {
                Verdict::Allow => "allowed",
                Verdict::Deny => "denied",
            },
            expected.as_str()
        ),
    )
    .primary(a.span, format!("expected {}", expected.as_str()));
    if let Some(span) = d.span(p) {
        diag = diag.secondary(span, "decided here");
    }
    Some(diag.help(d.describe(p)))
}

fn inside(nets: &[Net], c: &Cidr) -> bool {
    nets.iter()
        .any(|n| n.cidr.contains(c) && !n.except.iter().any(|x| x.contains(c)))
}

/// `lo..=hi` minus the exceptions, as disjoint ranges.
fn subtract(lo: u128, hi: u128, except: &[Cidr]) -> Vec<(u128, u128)> {
    let mut xs: Vec<(u128, u128)> = except.iter().map(|x| (x.first(), x.last())).collect();
    xs.sort_unstable();
    let mut out = Vec::new();
    let mut cur = lo;
    let mut done = false;
    for (xl, xh) in xs {
        if done || xh < cur {
            continue;
        }
        if xl > cur {
            out.push((cur, xl - 1));
        }
        match xh.checked_add(1) {
            Some(n) if n <= hi => cur = n,
            _ => done = true,
        }
    }
    if !done && cur <= hi {
        out.push((cur, hi));
    }
    out
}
