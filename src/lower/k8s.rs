//! Kubernetes backend: the checked model lowered to `networking.k8s.io/v1` NetworkPolicy objects,
//! and deny subjects to `policy.networking.k8s.io/v1alpha1` AdminNetworkPolicy objects when asked.
//! The output is one JSON `List` or a multi-document YAML stream, sorted by (namespace, name).
//!
//! A tenant is a namespace. Each namespace gets a default-deny policy that selects every pod for
//! both directions, so a pod that no group selects gets nothing (the whitelist model). Each
//! internal group with `select` labels gets one policy, `gbpc-<group>`, that selects its pods
//! with both policy types and allows exactly what the evaluator allows through that group: an
//! ingress rule per (provided contract, permit subject) from the contract's consumers, an egress
//! rule per (consumed contract, permit subject) to its providers, and the intra-group default as
//! a same-selector peer. Every permit is written on both ends, so the verdict holds whichever
//! side the network plugin enforces.
//!
//! `any` is "every member of an internal group of the tenant", so it lowers to the groups it
//! stands for: the contracts `any` provides or consumes are folded into every group's policy,
//! and `any` as a peer is one peer per group selector. A pod of the namespace that no group
//! selects is not in `any` and gets nothing (a `podSelector: {}` would have given it `any`'s
//! permits).
//!
//! What NetworkPolicy cannot say is never dropped silently: a deny is an error unless it is
//! lowered to AdminNetworkPolicy (which Kubernetes evaluates before every NetworkPolicy, so deny
//! wins as in the evaluator); ICMP permits are left out with a warning (they fail closed); a group
//! without labels used in a contract is an error.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use super::{LowerResult, Lowered};
use crate::diag::{Code, Diagnostic, Span};
use crate::model::{Action, ContractId, EntryProto, GroupId, GroupKind, Policy, Subject};
use crate::net::{Cidr, range_to_cidrs};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Json,
    Yaml,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DenyMode {
    /// A deny subject is an error: NetworkPolicy can only allow.
    #[default]
    Error,
    /// Lower deny subjects to AdminNetworkPolicy.
    Admin,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub format: Format,
    pub deny: DenyMode,
    /// Add a `gbpc-allow-dns` policy per namespace: egress to the cluster resolver on port 53.
    pub allow_dns: bool,
}

/// The label every generated object carries.
pub const MANAGED_BY_KEY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "gbpc";
/// The label Kubernetes puts on every namespace (its name): how peers select a tenant.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// The per-namespace default-deny NetworkPolicy.
pub const DEFAULT_DENY: &str = "gbpc-default-deny";
/// The per-namespace DNS NetworkPolicy of `--allow-dns`.
pub const ALLOW_DNS: &str = "gbpc-allow-dns";
/// The prefix of a group's NetworkPolicy (`gbpc-<group>`) and of AdminNetworkPolicy names.
pub const PREFIX: &str = "gbpc-";
pub const ANP_API_VERSION: &str = "policy.networking.k8s.io/v1alpha1";
/// AdminNetworkPolicy priorities gbpc uses: `FIRST_PRIORITY..=MAX_PRIORITY` (0-9 are left to
/// the cluster's own policies).
pub const FIRST_PRIORITY: u32 = 10;
pub const MAX_PRIORITY: u32 = 1000;

/// AdminNetworkPolicy limits (v1alpha1 CRD).
const ANP_MAX_NETWORKS: usize = 25;
const ANP_MAX_PEERS: usize = 100;
const ANP_MAX_PORTS: usize = 100;
const ANP_RULE_NAME_MAX: usize = 100;
const ANP_MAX_RULES: usize = 100;
/// The JSON bytes of one direction's rules in one AdminNetworkPolicy, about.
const ANP_MAX_BYTES: usize = 512 * 1024;
/// Object names are DNS-1123 subdomains.
const NAME_MAX: usize = 253;

const DENY_HELP: &str = "NetworkPolicy can only allow; compile with `--k8s-deny admin` to lower denies to AdminNetworkPolicy";

/// A transport protocol NetworkPolicy can match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum L4 {
    Tcp,
    Udp,
    Sctp,
}

impl L4 {
    fn as_k8s(self) -> &'static str {
        match self {
            L4::Tcp => "TCP",
            L4::Udp => "UDP",
            L4::Sctp => "SCTP",
        }
    }
}

/// The ports of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ports {
    /// Every protocol and port (an `ip` entry): the rule has no `ports`.
    All,
    /// Per protocol, sorted: `None` is every port of the protocol, else an inclusive range.
    Some(Vec<(L4, Option<(u16, u16)>)>),
}

/// What a subject's filters lower to.
struct SubjectPorts {
    /// `None`: nothing expressible is left (only ICMP entries).
    ports: Option<Ports>,
    /// The ICMP entries that no port list can express.
    icmp: Vec<Span>,
}

/// Sort and merge overlapping or adjacent ranges.
fn merge_ranges(mut v: Vec<(u16, u16)>) -> Vec<(u16, u16)> {
    v.sort_unstable();
    let mut out: Vec<(u16, u16)> = Vec::with_capacity(v.len());
    for (lo, hi) in v {
        match out.last_mut() {
            Some(last) if u32::from(lo) <= u32::from(last.1) + 1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

fn subject_ports(p: &Policy, s: &Subject) -> SubjectPorts {
    let mut all = false;
    let mut icmp = Vec::new();
    // Per protocol: `None` once an entry names every port.
    let mut per: BTreeMap<L4, Option<Vec<(u16, u16)>>> = BTreeMap::new();
    for &(f, _) in &s.filters {
        for e in &p.filter(f).entries {
            let l4 = match e.proto {
                EntryProto::Ip => {
                    all = true;
                    continue;
                }
                EntryProto::Icmp | EntryProto::Icmpv6 => {
                    icmp.push(e.span);
                    continue;
                }
                EntryProto::Tcp => L4::Tcp,
                EntryProto::Udp => L4::Udp,
                EntryProto::Sctp => L4::Sctp,
            };
            let slot = per.entry(l4).or_insert_with(|| Some(Vec::new()));
            if e.ranges.is_empty() {
                *slot = None;
            } else if let Some(v) = slot {
                // Port 0 is rejected by the checker; clamp anyway, Kubernetes wants 1-65535.
                v.extend(
                    e.ranges
                        .iter()
                        .map(|&(lo, hi)| (lo.max(1), hi))
                        .filter(|&(lo, hi)| lo <= hi),
                );
            }
        }
    }
    if all {
        // `ip` covers every protocol, ICMP included: nothing is left out.
        return SubjectPorts {
            ports: Some(Ports::All),
            icmp: Vec::new(),
        };
    }
    let mut out = Vec::new();
    for (l4, ranges) in per {
        match ranges {
            None => out.push((l4, None)),
            Some(v) => {
                for (lo, hi) in merge_ranges(v) {
                    if lo <= 1 && hi == u16::MAX {
                        out.push((l4, None));
                    } else {
                        out.push((l4, Some((lo, hi))));
                    }
                }
            }
        }
    }
    SubjectPorts {
        ports: (!out.is_empty()).then_some(Ports::Some(out)),
        icmp,
    }
}

/// A peer before it becomes an object; the order is the order peers are listed in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Peer {
    /// Pods of a namespace that carry every label of `selector`.
    Pods {
        namespace: String,
        selector: BTreeMap<String, String>,
    },
    /// Addresses outside the cluster: `cidr` without `except`.
    Block { cidr: Cidr, except: Vec<Cidr> },
}

/// A NetworkPolicy rule before it becomes an object.
struct Rule {
    /// Sort key: empty for the intra-group rule (listed first), else contract tenant, contract,
    /// subject.
    key: (String, String, String),
    peers: BTreeSet<Peer>,
    ports: Ports,
}

// ---- AdminNetworkPolicy (not in k8s-openapi) ----------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AdminNetworkPolicy {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: AnpSpec,
}

#[derive(Serialize)]
struct AnpSpec {
    priority: u32,
    subject: AnpSubject,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ingress: Vec<AnpIngressRule>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    egress: Vec<AnpEgressRule>,
}

#[derive(Serialize)]
struct AnpSubject {
    pods: AnpPods,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct AnpPods {
    namespace_selector: LabelSelector,
    pod_selector: LabelSelector,
}

#[derive(Serialize)]
struct AnpIngressRule {
    name: String,
    action: &'static str,
    from: Vec<AnpPeer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ports: Option<Vec<AnpPort>>,
}

#[derive(Serialize)]
struct AnpEgressRule {
    name: String,
    action: &'static str,
    to: Vec<AnpPeer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ports: Option<Vec<AnpPort>>,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
enum AnpPeer {
    Pods(AnpPods),
    Networks(Vec<String>),
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
enum AnpPort {
    PortNumber {
        protocol: &'static str,
        port: u16,
    },
    PortRange {
        protocol: &'static str,
        start: u16,
        end: u16,
    },
}

/// The deny rules of one group (the AdminNetworkPolicy subject) before they are packed into
/// AdminNetworkPolicies with final names and priorities.
struct Anp {
    /// Unambiguous identity of the group (`tenant/group`), hashed into the name when the
    /// readable name cannot be used.
    key: String,
    name: String,
    subject: AnpPods,
    ingress: Vec<AnpIngressRule>,
    egress: Vec<AnpEgressRule>,
    /// The first deny subject whose rules it holds.
    span: Span,
}

// ---- helpers ------------------------------------------------------------------------------

fn selector(labels: &BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: (!labels.is_empty()).then(|| labels.clone()),
        match_expressions: None,
    }
}

fn namespace_selector(ns: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            NAMESPACE_NAME_LABEL.to_string(),
            ns.to_string(),
        )])),
        match_expressions: None,
    }
}

fn metadata(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(BTreeMap::from([(
            MANAGED_BY_KEY.to_string(),
            MANAGED_BY.to_string(),
        )])),
        ..ObjectMeta::default()
    }
}

fn np_peer(policy_ns: &str, peer: &Peer) -> NetworkPolicyPeer {
    match peer {
        Peer::Pods {
            namespace,
            selector: sel,
        } => NetworkPolicyPeer {
            namespace_selector: (namespace != policy_ns).then(|| namespace_selector(namespace)),
            pod_selector: Some(selector(sel)),
            ip_block: None,
        },
        Peer::Block { cidr, except } => NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: cidr.to_string(),
                except: (!except.is_empty()).then(|| except.iter().map(Cidr::to_string).collect()),
            }),
            namespace_selector: None,
            pod_selector: None,
        },
    }
}

fn np_ports(ports: &Ports) -> Option<Vec<NetworkPolicyPort>> {
    match ports {
        Ports::All => None,
        Ports::Some(v) => Some(
            v.iter()
                .map(|&(l4, range)| NetworkPolicyPort {
                    protocol: Some(l4.as_k8s().to_string()),
                    port: range.map(|(lo, _)| IntOrString::Int(i32::from(lo))),
                    end_port: range.and_then(|(lo, hi)| (hi > lo).then_some(i32::from(hi))),
                })
                .collect(),
        ),
    }
}

fn anp_ports(ports: &Ports) -> Option<Vec<AnpPort>> {
    match ports {
        Ports::All => None,
        Ports::Some(v) => Some(
            v.iter()
                .map(|&(l4, range)| {
                    let protocol = l4.as_k8s();
                    match range {
                        Some((lo, hi)) if lo == hi => AnpPort::PortNumber { protocol, port: lo },
                        Some((start, end)) => AnpPort::PortRange {
                            protocol,
                            start,
                            end,
                        },
                        None => AnpPort::PortRange {
                            protocol,
                            start: 1,
                            end: u16::MAX,
                        },
                    }
                })
                .collect(),
        ),
    }
}

/// Keep the prefixes that no other prefix of the list contains; sorted.
fn minimal(mut v: Vec<Cidr>) -> Vec<Cidr> {
    // Containing prefixes sort before the prefixes they contain (same family, lower or equal
    // first address, shorter length); prefixes are nested or disjoint, so comparing with the
    // last kept one is enough.
    v.sort_unstable_by_key(|c| (c.family, c.first(), c.len));
    let mut out: Vec<Cidr> = Vec::with_capacity(v.len());
    for c in v {
        if out.last().is_some_and(|k| k.contains(&c)) {
            continue;
        }
        out.push(c);
    }
    out
}

/// `cidr` without the (disjoint, sorted) `except` prefixes, as prefixes.
fn subtract(cidr: &Cidr, except: &[Cidr]) -> Vec<Cidr> {
    let (lo, hi) = (cidr.first(), cidr.last());
    let mut out = Vec::new();
    let mut cur = lo;
    for x in except {
        let (xl, xh) = (x.first(), x.last());
        if xh < cur {
            continue;
        }
        if xl > cur {
            out.extend(range_to_cidrs(cidr.family, cur, xl - 1));
        }
        match xh.checked_add(1) {
            Some(n) if n <= hi => cur = n,
            _ => return out,
        }
    }
    out.extend(range_to_cidrs(cidr.family, cur, hi));
    out
}

/// FNV-1a, 64 bits: a stable hash for shortened names (not for security).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A name shortened to fit, made unique by a hash of the full identity.
/// Ten hex digits of the hash of `key`: what tells apart names cut to fit a length limit.
fn hash_tag(key: &str) -> String {
    let mut hash = format!("{:016x}", fnv1a(key));
    hash.truncate(10);
    hash
}

fn hashed_name(readable: &str, key: &str) -> String {
    let tag = hash_tag(key);
    let keep = NAME_MAX - tag.len() - 1;
    let head = readable.get(..keep.min(readable.len())).unwrap_or(readable);
    format!("{}-{tag}", head.trim_end_matches(['-', '.']))
}

fn truncate(s: &str, max: usize) -> String {
    // Names are ASCII (DNS labels), so a byte cut is a character cut; fall back to chars.
    match s.get(..max.min(s.len())) {
        Some(t) => t.to_string(),
        None => s.chars().take(max).collect(),
    }
}

/// A group's deny rules in one direction, cut into the rule lists of successive
/// AdminNetworkPolicies: at most `ANP_MAX_RULES` rules (the CRD's limit) and about
/// `ANP_MAX_BYTES` of JSON each (a Kubernetes object must stay well under etcd's 1.5 MiB).
fn chunk_rules<R: Serialize>(rules: Vec<R>) -> Vec<Vec<R>> {
    let mut out: Vec<Vec<R>> = Vec::new();
    let mut bytes = 0usize;
    for r in rules {
        let size = serde_json::to_vec(&r).map_or(0, |v| v.len());
        match out.last_mut() {
            Some(last) if last.len() < ANP_MAX_RULES && bytes + size <= ANP_MAX_BYTES => {
                bytes += size;
                last.push(r);
            }
            _ => {
                bytes = size;
                out.push(vec![r]);
            }
        }
    }
    out
}

// ---- the lowering ------------------------------------------------------------------------

struct Lowerer<'a> {
    p: &'a Policy,
    o: &'a Options,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// Groups already reported as having no selector.
    no_selector: BTreeSet<GroupId>,
    /// Subjects already warned about for ICMP.
    icmp_warned: BTreeSet<(ContractId, usize)>,
    providers: Vec<Vec<GroupId>>,
    consumers: Vec<Vec<GroupId>>,
    /// Per external group: its prefixes with their exceptions, the fabric's own prefixes
    /// excepted too (an address in an internal group is never external).
    nets: BTreeMap<GroupId, Vec<(Cidr, Vec<Cidr>)>>,
    /// Per tenant, its internal groups (one pass over the groups, instead of one per tenant:
    /// 40,000 tenants were quadratic).
    tenant_groups: Vec<Vec<GroupId>>,
}

/// One generated object, serialized as itself (no intermediate `serde_json::Value` tree: at
/// thousands of groups building and freeing those trees was most of the lowering's time).
#[derive(Serialize)]
#[serde(untagged)]
enum Object {
    Np(Box<NetworkPolicy>),
    Anp(Box<AdminNetworkPolicy>),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct List<'a> {
    api_version: &'static str,
    kind: &'static str,
    items: &'a [Object],
}

pub fn lower(p: &Policy, o: &Options) -> LowerResult {
    let mut l = Lowerer::new(p, o);
    // (namespace, name, object): sorted by the first two for a stable order.
    let mut items: Vec<(Option<String>, String, Object)> = Vec::new();
    for (ti, t) in p.tenants.iter().enumerate() {
        let ns = t.name.as_str();
        let np = |o: NetworkPolicy| Object::Np(Box::new(o));
        items.push((Some(ns.into()), DEFAULT_DENY.into(), np(default_deny(ns))));
        if o.allow_dns {
            items.push((Some(ns.into()), ALLOW_DNS.into(), np(allow_dns(ns))));
        }
        for g in l.tenant_groups[ti].clone() {
            if let Some(policy) = l.group_policy(g) {
                let name = group_policy_name(&p.group(g).name);
                items.push((Some(ns.into()), name, np(policy)));
            }
        }
    }
    for anp in l.denies() {
        let name = anp.metadata.name.clone().unwrap_or_default();
        items.push((None, name, Object::Anp(Box::new(anp))));
    }
    if !l.errors.is_empty() {
        crate::diag::sort(&mut l.errors);
        return Err(l.errors);
    }
    items.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let objects: Vec<Object> = items.into_iter().map(|(_, _, v)| v).collect();
    let text = match o.format {
        Format::Json => {
            let list = List {
                api_version: "v1",
                kind: "List",
                items: &objects,
            };
            serde_json::to_string_pretty(&list)
                .map(|s| s + "\n")
                .map_err(|e| e.to_string())
        }
        Format::Yaml => serde_saphyr::to_string_multiple(&objects).map_err(|e| e.to_string()),
    };
    match text {
        Ok(text) => {
            crate::diag::sort(&mut l.warnings);
            Ok(Lowered {
                text,
                warnings: l.warnings,
            })
        }
        Err(e) => Err(vec![Diagnostic::error(
            Code::K8sUnsupported,
            format!("cannot serialize the Kubernetes objects: {e}"),
        )]),
    }
}

/// The NetworkPolicy of a group: `gbpc-<group>`, except for the two groups whose policy would
/// take the name of a policy gbpc generates in every namespace (`gbpc-default-deny`,
/// `gbpc-allow-dns`): theirs is `gbpc-group.<group>`, which no other group's can be (a group
/// name has no `.`). So every valid group name lowers, and no two policies share a name.
pub fn group_policy_name(group: &str) -> String {
    let name = format!("{PREFIX}{group}");
    if name == DEFAULT_DENY || name == ALLOW_DNS {
        format!("{PREFIX}group.{group}")
    } else {
        name
    }
}

fn default_deny(ns: &str) -> NetworkPolicy {
    NetworkPolicy {
        metadata: metadata(DEFAULT_DENY, Some(ns)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: None,
            egress: None,
        }),
    }
}

fn allow_dns(ns: &str) -> NetworkPolicy {
    let port = |proto: &str| NetworkPolicyPort {
        protocol: Some(proto.into()),
        port: Some(IntOrString::Int(53)),
        end_port: None,
    };
    NetworkPolicy {
        metadata: metadata(ALLOW_DNS, Some(ns)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Egress".into()]),
            ingress: None,
            egress: Some(vec![NetworkPolicyEgressRule {
                to: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(namespace_selector("kube-system")),
                    pod_selector: Some(selector(&BTreeMap::from([(
                        "k8s-app".to_string(),
                        "kube-dns".to_string(),
                    )]))),
                    ip_block: None,
                }]),
                ports: Some(vec![port("UDP"), port("TCP")]),
            }]),
        }),
    }
}

impl<'a> Lowerer<'a> {
    fn new(p: &'a Policy, o: &'a Options) -> Self {
        let mut providers = vec![Vec::new(); p.contracts.len()];
        let mut consumers = vec![Vec::new(); p.contracts.len()];
        for (gi, g) in p.groups.iter().enumerate() {
            for c in &g.eff_provides {
                if let Some(v) = providers.get_mut(c.index()) {
                    v.push(GroupId(gi as u32));
                }
            }
            for c in &g.eff_consumes {
                if let Some(v) = consumers.get_mut(c.index()) {
                    v.push(GroupId(gi as u32));
                }
            }
        }
        // The fabric: internal groups' prefixes and internal endpoints' addresses.
        let internal = minimal(
            p.groups
                .iter()
                .filter(|g| g.kind == GroupKind::Internal)
                .flat_map(|g| g.nets.iter().map(|n| n.cidr))
                .chain(
                    p.endpoints
                        .iter()
                        .filter(|e| !e.external)
                        .flat_map(|e| e.addrs.iter().copied()),
                )
                .collect(),
        );
        let mut nets = BTreeMap::new();
        for (gi, g) in p.groups.iter().enumerate() {
            if g.kind != GroupKind::External {
                continue;
            }
            let mut out = Vec::new();
            for n in &g.nets {
                if internal.iter().any(|i| i.contains(&n.cidr)) {
                    continue;
                }
                let except = minimal(
                    n.except
                        .iter()
                        .copied()
                        .chain(internal.iter().copied().filter(|i| n.cidr.contains(i)))
                        .collect(),
                );
                if except.iter().any(|x| x.contains(&n.cidr)) {
                    continue;
                }
                out.push((n.cidr, except));
            }
            out.sort();
            out.dedup();
            nets.insert(GroupId(gi as u32), out);
        }
        let mut tenant_groups = vec![Vec::new(); p.tenants.len()];
        for (gi, g) in p.groups.iter().enumerate() {
            if g.kind == GroupKind::Internal {
                tenant_groups[g.tenant.index()].push(GroupId(gi as u32));
            }
        }
        Lowerer {
            p,
            o,
            errors: Vec::new(),
            warnings: Vec::new(),
            no_selector: BTreeSet::new(),
            icmp_warned: BTreeSet::new(),
            providers,
            consumers,
            nets,
            tenant_groups,
        }
    }

    fn providers(&self, c: ContractId) -> &[GroupId] {
        self.providers.get(c.index()).map_or(&[], Vec::as_slice)
    }

    fn consumers(&self, c: ContractId) -> &[GroupId] {
        self.consumers.get(c.index()).map_or(&[], Vec::as_slice)
    }

    /// The groups whose pods a group stands for: itself, or every internal group for `any`,
    /// or none for an external group.
    fn pod_groups(&self, g: GroupId) -> Vec<GroupId> {
        let grp = self.p.group(g);
        match grp.kind {
            GroupKind::Internal => vec![g],
            GroupKind::Any => self.tenant_groups[grp.tenant.index()].clone(),
            GroupKind::External => Vec::new(),
        }
    }

    /// The contracts a group provides (or consumes) in Kubernetes: its own after inheritance and
    /// those of its tenant's `any`, which stands for every internal group.
    fn folded(&self, g: GroupId, provides: bool) -> BTreeSet<ContractId> {
        let grp = self.p.group(g);
        let any = self.p.group(self.p.tenant(grp.tenant).any);
        let pick = |x: &'a crate::model::Group| {
            if provides {
                &x.eff_provides
            } else {
                &x.eff_consumes
            }
        };
        pick(grp).iter().chain(pick(any)).copied().collect()
    }

    /// The selector of an internal group; a group without one is reported (once).
    fn selector_of(&mut self, g: GroupId) -> Option<BTreeMap<String, String>> {
        let grp = self.p.group(g);
        if !grp.selector.is_empty() {
            return Some(grp.selector.clone());
        }
        if self.no_selector.insert(g) {
            let mut d = Diagnostic::error(
                Code::K8sNoSelector,
                format!(
                    "group `{}` has no `select` labels, so Kubernetes cannot select its pods",
                    self.p.group_name(g)
                ),
            )
            .primary(grp.name_span, "used in a contract, but selects no pods");
            if let Some(u) = grp.provides.iter().chain(&grp.consumes).next() {
                d = d.secondary(u.span, "contract used here");
            }
            self.errors.push(d.help(
                "add `select key=value` with the labels its pods carry, or keep the group out of contracts for the k8s target",
            ));
        }
        None
    }

    fn peers(&mut self, groups: &[GroupId]) -> BTreeSet<Peer> {
        let mut out = BTreeSet::new();
        for &g in groups {
            if self.p.group(g).kind == GroupKind::External {
                for (cidr, except) in self.nets.get(&g).into_iter().flatten() {
                    out.insert(Peer::Block {
                        cidr: *cidr,
                        except: except.clone(),
                    });
                }
                continue;
            }
            for pg in self.pod_groups(g) {
                if let Some(sel) = self.selector_of(pg) {
                    out.insert(Peer::Pods {
                        namespace: self.p.tenant(self.p.group(pg).tenant).name.clone(),
                        selector: sel,
                    });
                }
            }
        }
        out
    }

    fn warn_icmp(&mut self, c: ContractId, si: usize, sp: &SubjectPorts) {
        if sp.icmp.is_empty() || !self.icmp_warned.insert((c, si)) {
            return;
        }
        let Some(s) = self.p.contract(c).subjects.get(si) else {
            return;
        };
        let (message, help) = if sp.ports.is_none() {
            (
                format!(
                    "subject `{}` of contract `{}` permits only ICMP, which NetworkPolicy cannot match: it is left out, so this traffic is denied in Kubernetes",
                    s.name,
                    self.p.contract_name(c)
                ),
                "nftables enforces it; NetworkPolicy matches only TCP, UDP and SCTP ports (an `ip` entry would allow every protocol)",
            )
        } else {
            (
                format!(
                    "the ICMP entries of subject `{}` of contract `{}` are left out: NetworkPolicy cannot match ICMP, so that traffic is denied in Kubernetes",
                    s.name,
                    self.p.contract_name(c)
                ),
                "the subject's other entries are lowered; nftables enforces the ICMP ones",
            )
        };
        let mut d = Diagnostic::warning(Code::K8sIcmp, message).primary(s.span, "");
        for &span in &sp.icmp {
            d = d.secondary(span, "ICMP entry");
        }
        self.warnings.push(d.help(help));
    }

    /// Does this internal group take part in a contract that reaches the cluster? Then it needs
    /// a selector.
    fn needs_pods(&self, g: GroupId) -> bool {
        self.folded(g, true)
            .iter()
            .any(|&c| !self.consumers(c).is_empty())
            || self
                .folded(g, false)
                .iter()
                .any(|&c| !self.providers(c).is_empty())
    }

    /// Rules for one direction: one per (contract, permit subject), peers the other side.
    fn contract_rules(&mut self, g: GroupId, ingress: bool) -> Vec<Rule> {
        let mut rules = Vec::new();
        for c in self.folded(g, ingress) {
            let others = if ingress {
                self.consumers(c).to_vec()
            } else {
                self.providers(c).to_vec()
            };
            // Never an empty peer list: Kubernetes reads it as "everyone".
            let peers = self.peers(&others);
            if peers.is_empty() {
                continue;
            }
            let contract = self.p.contract(c);
            for (si, s) in contract.subjects.iter().enumerate() {
                if s.action != Action::Permit {
                    continue;
                }
                let sp = subject_ports(self.p, s);
                self.warn_icmp(c, si, &sp);
                let Some(ports) = sp.ports else {
                    continue;
                };
                rules.push(Rule {
                    key: (
                        self.p.tenant(contract.tenant).name.clone(),
                        contract.name.clone(),
                        s.name.clone(),
                    ),
                    peers: peers.clone(),
                    ports,
                });
            }
        }
        rules
    }

    /// The NetworkPolicy of an internal group, if it has a selector.
    fn group_policy(&mut self, g: GroupId) -> Option<NetworkPolicy> {
        let grp = self.p.group(g);
        if grp.selector.is_empty() {
            if self.needs_pods(g) {
                self.selector_of(g);
            }
            return None;
        }
        let ns = self.p.tenant(grp.tenant).name.clone();
        let mut ingress = self.contract_rules(g, true);
        let mut egress = self.contract_rules(g, false);
        if !grp.isolated {
            for rules in [&mut ingress, &mut egress] {
                rules.push(Rule {
                    key: Default::default(),
                    peers: BTreeSet::from([Peer::Pods {
                        namespace: ns.clone(),
                        selector: grp.selector.clone(),
                    }]),
                    ports: Ports::All,
                });
            }
        }
        ingress.sort_by(|a, b| a.key.cmp(&b.key));
        egress.sort_by(|a, b| a.key.cmp(&b.key));
        let peers = |r: &Rule| -> Vec<NetworkPolicyPeer> {
            r.peers.iter().map(|peer| np_peer(&ns, peer)).collect()
        };
        let ingress: Vec<NetworkPolicyIngressRule> = ingress
            .iter()
            .map(|r| NetworkPolicyIngressRule {
                from: Some(peers(r)),
                ports: np_ports(&r.ports),
            })
            .collect();
        let egress: Vec<NetworkPolicyEgressRule> = egress
            .iter()
            .map(|r| NetworkPolicyEgressRule {
                to: Some(peers(r)),
                ports: np_ports(&r.ports),
            })
            .collect();
        Some(NetworkPolicy {
            metadata: metadata(&group_policy_name(&grp.name), Some(&ns)),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(selector(&grp.selector)),
                policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
                ingress: (!ingress.is_empty()).then_some(ingress),
                egress: (!egress.is_empty()).then_some(egress),
            }),
        })
    }

    fn anp_pods(&self, g: GroupId, sel: &BTreeMap<String, String>) -> AnpPods {
        AnpPods {
            namespace_selector: namespace_selector(&self.p.tenant(self.p.group(g).tenant).name),
            pod_selector: selector(sel),
        }
    }

    fn unsupported(&mut self, c: ContractId, s: &Subject, why: String, help: &str) {
        self.errors.push(
            Diagnostic::error(
                Code::K8sUnsupported,
                format!(
                    "deny subject `{}` of contract `{}` cannot be expressed as an AdminNetworkPolicy: {why}",
                    s.name,
                    self.p.contract_name(c)
                ),
            )
            .primary(s.span, "this deny")
            .help(help.to_string()),
        );
    }

    /// The AdminNetworkPolicies of the deny subjects (or, in `DenyMode::Error`, an error per
    /// deny subject that reaches the cluster).
    fn denies(&mut self) -> Vec<AdminNetworkPolicy> {
        let p = self.p;
        let mut order: Vec<ContractId> = (0..p.contracts.len())
            .map(|i| ContractId(i as u32))
            .collect();
        order.sort_by_key(|&c| {
            let k = p.contract(c);
            (&p.tenant(k.tenant).name, &k.name)
        });
        let mut anps: Vec<Anp> = Vec::new();
        for c in order {
            let contract = p.contract(c);
            let providers = self.providers(c).to_vec();
            let consumers = self.consumers(c).to_vec();
            if providers.is_empty() || consumers.is_empty() {
                continue;
            }
            let prov_pods: BTreeSet<GroupId> =
                providers.iter().flat_map(|&g| self.pod_groups(g)).collect();
            let cons_pods: BTreeSet<GroupId> =
                consumers.iter().flat_map(|&g| self.pod_groups(g)).collect();
            if prov_pods.is_empty() && cons_pods.is_empty() {
                continue; // between external groups: outside the cluster
            }
            for s in contract
                .subjects
                .iter()
                .filter(|s| s.action == Action::Deny)
            {
                if self.o.deny == DenyMode::Error {
                    self.errors.push(
                        Diagnostic::error(
                            Code::K8sDeny,
                            format!(
                                "deny subject `{}` of contract `{}` cannot be expressed by NetworkPolicy",
                                s.name,
                                p.contract_name(c)
                            ),
                        )
                        .primary(s.span, "this deny")
                        .help(DENY_HELP),
                    );
                    continue;
                }
                if let Some(anp) = self.deny_policies(c, s, &providers, &prov_pods, &cons_pods) {
                    anps.extend(anp);
                }
            }
        }
        self.finish_anps(anps)
    }

    fn deny_policies(
        &mut self,
        c: ContractId,
        s: &Subject,
        providers: &[GroupId],
        prov_pods: &BTreeSet<GroupId>,
        cons_pods: &BTreeSet<GroupId>,
    ) -> Option<Vec<Anp>> {
        let p = self.p;
        let sp = subject_ports(p, s);
        if !sp.icmp.is_empty() {
            self.unsupported(
                c,
                s,
                "it matches ICMP, and AdminNetworkPolicy ports are TCP, UDP and SCTP only".into(),
                "deny ICMP with nftables, or use an `ip` entry to deny every protocol",
            );
            return None;
        }
        let ports = sp.ports.as_ref().and_then(anp_ports);
        if ports.as_ref().is_some_and(|v| v.len() > ANP_MAX_PORTS) {
            self.unsupported(
                c,
                s,
                format!("it needs more than {ANP_MAX_PORTS} port entries"),
                "merge its port ranges",
            );
            return None;
        }
        if let Some(&ext) = self
            .consumers(c)
            .iter()
            .find(|&&g| p.group(g).kind == GroupKind::External)
            && !prov_pods.is_empty()
        {
            self.unsupported(
                c,
                s,
                format!(
                    "its consumer `{}` is external, and AdminNetworkPolicy ingress rules cannot match addresses",
                    p.group_name(ext)
                ),
                "deny this traffic with nftables, or leave the external group out of the contract",
            );
            return None;
        }
        // Peers: consumers (for the providers' ingress) and providers (for the consumers'
        // egress).
        let mut from = Vec::new();
        for &g in cons_pods {
            if let Some(sel) = self.selector_of(g) {
                from.push(AnpPeer::Pods(self.anp_pods(g, &sel)));
            }
        }
        let mut to = Vec::new();
        for &g in prov_pods {
            if let Some(sel) = self.selector_of(g) {
                to.push(AnpPeer::Pods(self.anp_pods(g, &sel)));
            }
        }
        let mut networks: Vec<Cidr> = Vec::new();
        for &g in providers {
            for (cidr, except) in self.nets.get(&g).into_iter().flatten() {
                networks.extend(subtract(cidr, except));
            }
        }
        let networks = minimal(networks);
        for chunk in networks.chunks(ANP_MAX_NETWORKS) {
            to.push(AnpPeer::Networks(
                chunk.iter().map(Cidr::to_string).collect(),
            ));
        }
        if from.len() > ANP_MAX_PEERS || to.len() > ANP_MAX_PEERS {
            self.unsupported(
                c,
                s,
                format!(
                    "a rule would need more than {ANP_MAX_PEERS} peers ({} networks are {ANP_MAX_NETWORKS} to a peer)",
                    networks.len()
                ),
                "use fewer groups or shorter address lists in this contract",
            );
            return None;
        }
        let contract = p.contract(c);
        let ctenant = &p.tenant(contract.tenant).name;
        // Rules of many denies share a group's policy: a name too long for the CRD keeps its
        // head and gets a hash of the whole, so two long names never become the same rule name.
        let full = format!("{ctenant}/{}/{}", contract.name, s.name);
        let rule_name = if full.len() > ANP_RULE_NAME_MAX {
            let tag = hash_tag(&full);
            format!(
                "{}-{tag}",
                truncate(&full, ANP_RULE_NAME_MAX - tag.len() - 1)
            )
        } else {
            full
        };
        let mut enforcing: Vec<GroupId> = prov_pods.union(cons_pods).copied().collect();
        enforcing.sort_by_key(|&g| {
            let grp = p.group(g);
            (&p.tenant(grp.tenant).name, &grp.name)
        });
        let mut out = Vec::new();
        for g in enforcing {
            let Some(sel) = self.selector_of(g) else {
                continue;
            };
            let grp = p.group(g);
            let gtenant = &p.tenant(grp.tenant).name;
            let ingress = (prov_pods.contains(&g) && !from.is_empty()).then(|| AnpIngressRule {
                name: rule_name.clone(),
                action: "Deny",
                from: from.clone(),
                ports: ports.clone(),
            });
            let egress = (cons_pods.contains(&g) && !to.is_empty()).then(|| AnpEgressRule {
                name: rule_name.clone(),
                action: "Deny",
                to: to.clone(),
                ports: ports.clone(),
            });
            if ingress.is_none() && egress.is_none() {
                continue;
            }
            out.push(Anp {
                key: format!("{gtenant}/{}", grp.name),
                name: format!("{PREFIX}{gtenant}-{}-deny", grp.name),
                subject: self.anp_pods(g, &sel),
                ingress: ingress.into_iter().collect(),
                egress: egress.into_iter().collect(),
                span: s.span,
            });
        }
        Some(out)
    }

    /// Packs the deny rules per group: one AdminNetworkPolicy per group whose pods enforce a
    /// deny, holding its rules in contract order (more only past the CRD's 100 rules per
    /// direction or `ANP_MAX_BYTES`), so the 991 priorities gbpc uses bound about the number of
    /// such groups, not the number of denies. Then final names (readable unless too long or ambiguous) and
    /// priorities (by name). Every rule is a Deny, so their order does not change a verdict;
    /// the priorities are distinct because implementations reject or order ties arbitrarily.
    fn finish_anps(&mut self, parts: Vec<Anp>) -> Vec<AdminNetworkPolicy> {
        let mut by_group: BTreeMap<String, Anp> = BTreeMap::new();
        for a in parts {
            match by_group.entry(a.key.clone()) {
                Entry::Vacant(v) => {
                    v.insert(a);
                }
                Entry::Occupied(mut o) => {
                    let g = o.get_mut();
                    g.ingress.extend(a.ingress);
                    g.egress.extend(a.egress);
                }
            }
        }
        let groups = by_group.len();
        let mut anps: Vec<Anp> = Vec::new();
        for (_, a) in by_group {
            let mut ingress = chunk_rules(a.ingress).into_iter();
            let mut egress = chunk_rules(a.egress).into_iter();
            let mut i = 0;
            loop {
                let (ing, egr) = (ingress.next(), egress.next());
                if ing.is_none() && egr.is_none() {
                    break;
                }
                let (name, key) = if i == 0 {
                    (a.name.clone(), a.key.clone())
                } else {
                    (
                        format!("{}-{}", a.name, i + 1),
                        format!("{}/{}", a.key, i + 1),
                    )
                };
                anps.push(Anp {
                    key,
                    name,
                    subject: a.subject.clone(),
                    ingress: ing.unwrap_or_default(),
                    egress: egr.unwrap_or_default(),
                    span: a.span,
                });
                i += 1;
            }
        }
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        for a in &anps {
            *count.entry(a.name.clone()).or_default() += 1;
        }
        for a in &mut anps {
            if a.name.len() > NAME_MAX || count.get(&a.name).is_some_and(|&n| n > 1) {
                a.name = hashed_name(&a.name, &a.key);
            }
        }
        anps.sort_by(|a, b| a.name.cmp(&b.name).then(a.key.cmp(&b.key)));
        let capacity = (MAX_PRIORITY - FIRST_PRIORITY + 1) as usize;
        if let Some(a) = anps.get(capacity) {
            self.errors.push(
                Diagnostic::error(
                    Code::K8sUnsupported,
                    format!(
                        "the denies need {} AdminNetworkPolicies for the {groups} groups that enforce them, more than the {capacity} priorities {FIRST_PRIORITY}-{MAX_PRIORITY}",
                        anps.len()
                    ),
                )
                .primary(a.span, "a deny of the first policy without a priority")
                .help("deny between fewer groups, or enforce the denies with nftables (`--target nft`)"),
            );
            return Vec::new();
        }
        anps.into_iter()
            .enumerate()
            .map(|(i, a)| AdminNetworkPolicy {
                api_version: ANP_API_VERSION,
                kind: "AdminNetworkPolicy",
                metadata: metadata(&a.name, None),
                spec: AnpSpec {
                    priority: FIRST_PRIORITY + i as u32,
                    subject: AnpSubject { pods: a.subject },
                    ingress: a.ingress,
                    egress: a.egress,
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rules are cut at the CRD's 100 per policy, and earlier when their JSON would pass the
    /// size budget; order is kept and nothing is lost.
    #[test]
    fn chunks_respect_the_rule_count_and_the_size_budget() {
        let small: Vec<String> = (0..250).map(|i| format!("r{i}")).collect();
        let sizes: Vec<usize> = chunk_rules(small.clone()).iter().map(Vec::len).collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert_eq!(chunk_rules(small.clone()).concat(), small);

        let big: Vec<String> = (0..10)
            .map(|i| format!("{i}{}", "x".repeat(200 * 1024)))
            .collect();
        let chunks = chunk_rules(big.clone());
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            [2, 2, 2, 2, 2]
        );
        assert_eq!(chunks.concat(), big);
    }
}
