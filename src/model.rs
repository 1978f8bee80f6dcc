//! The checked model: every name resolved to an id, every number and address validated,
//! inheritance flattened, membership computed. Backends and the evaluator read only this.
//!
//! [`check`] builds it from a syntax tree and collects every finding; the model is built even
//! when there are errors (broken parts left out), so that later checks and the language server
//! still have something to work with. Backends must only run on a model without errors.

mod build;
pub mod classify;
mod graph;
mod implied;
pub mod validate;

use std::collections::BTreeMap;

use crate::diag::{Diagnostic, Span};
use crate::net::{Cidr, Family};
pub use crate::syntax::ast::{Action, EntryProto, Expect};

macro_rules! id {
    ($($name:ident),*) => {$(
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u32);
        impl $name {
            pub fn index(self) -> usize { self.0 as usize }
        }
    )*};
}
id!(TenantId, GroupId, ContractId, FilterId, EndpointId);

/// Upper bound on declarations of all kinds in one policy.
pub const MAX_OBJECTS: usize = 2_000_000;

#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub tenants: Vec<Tenant>,
    pub groups: Vec<Group>,
    pub contracts: Vec<Contract>,
    pub filters: Vec<Filter>,
    pub endpoints: Vec<Endpoint>,
    pub asserts: Vec<Assertion>,
    /// Address classes: how nftables sees membership.
    pub classes: classify::Classes,
    /// Label classes: how Kubernetes sees membership.
    pub label_classes: classify::LabelClasses,
}

#[derive(Clone, Debug)]
pub struct Tenant {
    pub name: String,
    pub span: Span,
    /// The tenant's `any` group (vzAny); always present.
    pub any: GroupId,
    /// `tenant NAME unenforced`: where the keyword is.
    pub unenforced: Option<Span>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupKind {
    Internal,
    External,
    /// The tenant-wide `any` group: every member of an internal group of the tenant.
    Any,
}

#[derive(Clone, Debug)]
pub struct Net {
    pub cidr: Cidr,
    pub except: Vec<Cidr>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Use {
    pub contract: ContractId,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Group {
    pub tenant: TenantId,
    pub name: String,
    pub span: Span,
    pub name_span: Span,
    pub kind: GroupKind,
    pub isolated: bool,
    /// `preferred`: where the modifier is.
    pub preferred: Option<Span>,
    pub parent: Option<GroupId>,
    /// `select` labels (all must match).
    pub selector: BTreeMap<String, String>,
    pub nets: Vec<Net>,
    /// Endpoints declared inside this group.
    pub endpoints: Vec<EndpointId>,
    pub provides: Vec<Use>,
    pub consumes: Vec<Use>,
    /// With inheritance: sorted, deduplicated.
    pub eff_provides: Vec<ContractId>,
    pub eff_consumes: Vec<ContractId>,
}

#[derive(Clone, Debug)]
pub struct Contract {
    pub tenant: TenantId,
    pub name: String,
    pub span: Span,
    pub name_span: Span,
    pub global: bool,
    pub subjects: Vec<Subject>,
    pub origin: Origin,
}

/// Where a contract comes from: written, or implied by a construct of the language. Implied
/// contracts come after every written one (their ids are larger), take part in the verdict
/// like any other, and are what makes `both-ways`, `preferred` and `unenforced` reach every
/// backend unchanged (semantics.md, "Implied contracts").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    Written,
    /// The provider-to-consumer half of the `both-ways` subjects of this written contract:
    /// provided by its consumers, consumed by its providers; its subjects are those subjects
    /// (same names and spans). Same name and tenant as the contract.
    Reverse(ContractId),
    /// `permit ip` between the members of the tenant's preferred groups: provided and consumed
    /// by every preferred group. Named `.preferred` (no written name can collide).
    Preferred,
    /// `permit ip` among the members of an unenforced tenant: provided and consumed by the
    /// tenant's `any`. Named `.unenforced`.
    Unenforced,
}

impl Contract {
    /// Written by the user (not implied by `both-ways`, `preferred` or `unenforced`).
    pub fn written(&self) -> bool {
        self.origin == Origin::Written
    }
}

#[derive(Clone, Debug)]
pub struct Subject {
    pub name: String,
    pub span: Span,
    pub action: Action,
    /// `both-ways`: also from provider to consumer.
    pub both_ways: bool,
    pub log: bool,
    pub filters: Vec<(FilterId, Span)>,
}

#[derive(Clone, Debug)]
pub struct Filter {
    pub tenant: TenantId,
    pub name: String,
    pub span: Span,
    pub name_span: Span,
    pub entries: Vec<FilterEntry>,
}

/// One filter entry. `ranges` are ports (tcp/udp/sctp) or ICMP types (icmp/icmpv6), sorted
/// and merged; empty means every port or type.
#[derive(Clone, Debug)]
pub struct FilterEntry {
    pub proto: EntryProto,
    pub ranges: Vec<(u16, u16)>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Endpoint {
    pub tenant: TenantId,
    pub name: String,
    pub span: Span,
    /// The group it is declared in.
    pub group: GroupId,
    pub addrs: Vec<Cidr>,
    /// Its own labels plus its group's `select` labels.
    pub labels: BTreeMap<String, String>,
    pub external: bool,
    /// Every group it belongs to (declared, by labels, by address, and `any`), sorted.
    pub groups: Vec<GroupId>,
}

/// Who an assertion talks about.
#[derive(Clone, Debug)]
pub enum Party {
    Endpoint(EndpointId),
    Address(Cidr),
}

#[derive(Clone, Debug)]
pub struct Assertion {
    pub tenant: TenantId,
    pub from: Party,
    pub to: Party,
    pub flow: crate::eval::Flow,
    pub expect: Expect,
    pub span: Span,
    pub text: String,
}

/// The result of checking: the model and every finding, errors and warnings apart.
#[derive(Debug, Default)]
pub struct Checked {
    pub policy: Policy,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl Checked {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// Errors and warnings together in reading order.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        let mut all: Vec<Diagnostic> = self.errors.iter().chain(&self.warnings).cloned().collect();
        crate::diag::sort(&mut all);
        all
    }
}

/// The keyword or name a mistyped word most likely meant: the same word in other case (`TCP`
/// is `tcp`: keywords are lowercase), else the closest by edit distance when close enough.
pub fn did_you_mean<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    if let Some(c) = candidates.iter().find(|c| c.eq_ignore_ascii_case(word)) {
        return Some(c);
    }
    build::closest(&word.to_ascii_lowercase(), candidates.iter().copied())
}

/// Check a parsed file: resolve, validate, build the graph, prove the assertions.
pub fn check(file: &crate::syntax::ast::File) -> Checked {
    let mut checked = build::build(file);
    checked.policy.label_classes = classify::LabelClasses::build(&checked.policy);
    checked
}

impl Policy {
    pub fn tenant(&self, id: TenantId) -> &Tenant {
        &self.tenants[id.index()]
    }
    pub fn group(&self, id: GroupId) -> &Group {
        &self.groups[id.index()]
    }
    pub fn contract(&self, id: ContractId) -> &Contract {
        &self.contracts[id.index()]
    }
    pub fn filter(&self, id: FilterId) -> &Filter {
        &self.filters[id.index()]
    }
    pub fn endpoint(&self, id: EndpointId) -> &Endpoint {
        &self.endpoints[id.index()]
    }

    /// `tenant/name` for messages.
    pub fn group_name(&self, id: GroupId) -> String {
        let g = self.group(id);
        format!("{}/{}", self.tenant(g.tenant).name, g.name)
    }
    /// `tenant/name`; an implied contract by what implies it: `tenant/(preferred groups)`,
    /// `tenant/(unenforced)` (a `both-ways` half keeps its contract's name).
    pub fn contract_name(&self, id: ContractId) -> String {
        let c = self.contract(id);
        let t = &self.tenant(c.tenant).name;
        match c.origin {
            Origin::Written | Origin::Reverse(_) => format!("{t}/{}", c.name),
            Origin::Preferred => format!("{t}/(preferred groups)"),
            Origin::Unenforced => format!("{t}/(unenforced)"),
        }
    }
    pub fn endpoint_name(&self, id: EndpointId) -> String {
        let e = self.endpoint(id);
        format!("{}/{}", self.tenant(e.tenant).name, e.name)
    }

    /// Groups (with `any`) that an address belongs to, as the fabric classifies it.
    pub fn address_groups(&self, family: Family, addr: u128) -> Vec<GroupId> {
        self.classes.lookup(family, addr).to_vec()
    }

    /// Groups of a party.
    pub fn party_groups(&self, p: &Party) -> Vec<GroupId> {
        match p {
            Party::Endpoint(e) => self.endpoint(*e).groups.clone(),
            Party::Address(c) => self.address_groups(c.family, c.addr),
        }
    }

    /// One end of an assertion as the evaluator sees it: its groups and address families.
    pub fn party_end(&self, p: &Party) -> crate::eval::End<'_> {
        match p {
            Party::Endpoint(e) => crate::eval::End::endpoint(self.endpoint(*e)),
            Party::Address(c) => crate::eval::End::address(self, c.family, c.addr),
        }
    }

    /// The connection an assertion is about. Only an assertion across address families has
    /// none, and the checker reports those (E032) instead of keeping them.
    pub fn assertion_conn(
        &self,
        a: &Assertion,
    ) -> Result<crate::eval::Conn<'_>, crate::eval::CrossFamily> {
        crate::eval::Conn::new(self.party_end(&a.from), self.party_end(&a.to), a.flow)
    }

    /// The evaluator's decision for an assertion (`None`: see [`Policy::assertion_conn`]).
    pub fn decide_assertion(&self, a: &Assertion) -> Option<crate::eval::Decision> {
        let c = self.assertion_conn(a).ok()?;
        Some(crate::eval::decide(self, &c))
    }

    /// Every group that provides `c`, after inheritance; `any` groups included.
    pub fn providers(&self, c: ContractId) -> Vec<GroupId> {
        self.groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.eff_provides.binary_search(&c).is_ok())
            .map(|(i, _)| GroupId(i as u32))
            .collect()
    }

    /// Every group that consumes `c`, after inheritance; `any` groups included.
    pub fn consumers(&self, c: ContractId) -> Vec<GroupId> {
        self.groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.eff_consumes.binary_search(&c).is_ok())
            .map(|(i, _)| GroupId(i as u32))
            .collect()
    }

    /// Providers and consumers of every contract at once (one pass over the groups), indexed
    /// by contract: use this instead of [`Policy::providers`] in loops over contracts.
    pub fn contract_users(&self) -> (Vec<Vec<GroupId>>, Vec<Vec<GroupId>>) {
        let mut prov = vec![Vec::new(); self.contracts.len()];
        let mut cons = vec![Vec::new(); self.contracts.len()];
        for (i, g) in self.groups.iter().enumerate() {
            for c in &g.eff_provides {
                prov[c.index()].push(GroupId(i as u32));
            }
            for c in &g.eff_consumes {
                cons[c.index()].push(GroupId(i as u32));
            }
        }
        (prov, cons)
    }

    /// The internal groups of a tenant (what its `any` stands for).
    pub fn internal_groups(&self, t: TenantId) -> impl Iterator<Item = GroupId> + '_ {
        self.groups
            .iter()
            .enumerate()
            .filter(move |(_, g)| g.tenant == t && g.kind == GroupKind::Internal)
            .map(|(i, _)| GroupId(i as u32))
    }
}
