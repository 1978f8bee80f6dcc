//! Kubernetes backend: the checked model lowered to `networking.k8s.io/v1` NetworkPolicy
//! objects, with deny subjects compiled away (the default), or as cluster-tier objects when
//! asked (`policy.networking.k8s.io/v1alpha2` ClusterNetworkPolicy, or the legacy v1alpha1
//! AdminNetworkPolicy). The output is one JSON `List` or a multi-document YAML stream, sorted by
//! (namespace, name); [`objects`] gives the objects themselves (one file per namespace in the
//! GitOps layout of `gbpc compile` without `--target`).
//!
//! A tenant is a namespace. Each namespace gets a default-deny policy that selects every pod for
//! both directions, so a pod that no group selects gets nothing (the whitelist model). Then one
//! NetworkPolicy per *pod unit* ([`units`]): by default an internal group with `select` labels,
//! or, where overlapping selectors meet a deny, a label class. Its rules allow exactly what the
//! evaluator allows between its group set and every other unit's ([`flows`], [`netpol`]):
//! `permit tcp 8000-8099` with `deny tcp 8081` becomes ports 8000-8080 and 8082-8099. Every
//! allowance is written on both ends, so the verdict holds whichever side the network plugin
//! enforces.
//!
//! What NetworkPolicy cannot say is never dropped silently: ICMP permits are left out with a
//! warning (they fail closed), and so is what a deny cuts out of an allowance of every protocol
//! (W030; NetworkPolicy has no "every protocol but"); a group without labels used in a contract
//! is an error; `--k8s-deny error` refuses every deny.
//!
//! Layout: [`flows`] asks the evaluator, [`units`] says who is selected, [`netpol`] writes the
//! NetworkPolicies, [`cluster`] the cluster-tier objects, [`names`] names them; this file holds
//! the options, the driver and the serialisation.

mod classes;
mod cluster;
pub mod fixture;
mod flows;
mod names;
mod netpol;
mod units;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use super::{LowerResult, Lowered};
use crate::diag::{Code, Diagnostic};
use crate::model::{Action, ContractId, EntryProto, GroupId, GroupKind, Policy, TenantId};

pub use cluster::{
    ANP_API_VERSION, AdminNetworkPolicy, CNP_API_VERSION, ClusterNetworkPolicy, FIRST_PRIORITY,
    MAX_PRIORITY,
};
pub use names::group_policy_name;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Json,
    Yaml,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DenyMode {
    /// Denies are compiled away: the NetworkPolicies allow exactly what the evaluator allows.
    #[default]
    Subtract,
    /// Denies as ClusterNetworkPolicy v1alpha2 `Deny` rules in the Admin tier (those it cannot
    /// carry stay in the NetworkPolicies).
    Cluster,
    /// Legacy: denies as AdminNetworkPolicy v1alpha1 `Deny` rules (those it cannot carry stay
    /// in the NetworkPolicies). `--k8s-deny anp-v1alpha1`.
    Admin,
    /// A deny subject is an error.
    Error,
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
/// The annotation naming the policy file an object was compiled from.
pub const SOURCE_ANNOTATION: &str = "gbpc/source";
/// The annotation holding `sha256:` and the hex digest of the object's `spec` (compact JSON):
/// it changes exactly when what the object says changes.
pub const HASH_ANNOTATION: &str = "gbpc/spec-hash";
/// The label Kubernetes puts on every namespace (its name): how peers select a tenant.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// The per-namespace default-deny NetworkPolicy.
pub const DEFAULT_DENY: &str = "gbpc-default-deny";
/// The per-namespace DNS NetworkPolicy of `--allow-dns`.
pub const ALLOW_DNS: &str = "gbpc-allow-dns";
/// The prefix of every object name gbpc generates.
pub const PREFIX: &str = "gbpc-";

const DENY_HELP: &str = "leave out `--k8s-deny error`: by default gbpc compiles denies away into the NetworkPolicies; `--k8s-deny cluster` makes them ClusterNetworkPolicy rules";

// ---- shared pieces --------------------------------------------------------------------------

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
                    pod_selector: Some(LabelSelector {
                        match_labels: Some(BTreeMap::from([(
                            "k8s-app".to_string(),
                            "kube-dns".to_string(),
                        )])),
                        match_expressions: None,
                    }),
                    ip_block: None,
                }]),
                ports: Some(vec![port("UDP"), port("TCP")]),
            }]),
        }),
    }
}

// ---- the objects ----------------------------------------------------------------------------

/// One generated object, serialized as itself (no intermediate `serde_json::Value` tree: at
/// thousands of groups building and freeing those trees was most of the lowering's time).
#[derive(Serialize)]
#[serde(untagged)]
enum Object {
    Np(Box<NetworkPolicy>),
    Cnp(Box<ClusterNetworkPolicy>),
    Anp(Box<AdminNetworkPolicy>),
}

impl Object {
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::Np(o) => &mut o.metadata,
            Object::Cnp(o) => &mut o.metadata,
            Object::Anp(o) => &mut o.metadata,
        }
    }

    fn spec_json(&self) -> Vec<u8> {
        match self {
            Object::Np(o) => serde_json::to_vec(&o.spec),
            Object::Cnp(o) => serde_json::to_vec(&o.spec),
            Object::Anp(o) => serde_json::to_vec(&o.spec),
        }
        .unwrap_or_default()
    }
}

/// One object of the output, with where it belongs.
pub struct Item {
    /// `None` for a cluster-scoped object.
    pub namespace: Option<String>,
    pub name: String,
    /// `NetworkPolicy`, `ClusterNetworkPolicy` or `AdminNetworkPolicy`.
    pub kind: &'static str,
    object: Object,
}

/// The objects of a policy, sorted by (namespace, name), cluster-scoped first.
pub struct Bundle {
    pub items: Vec<Item>,
    pub warnings: Vec<Diagnostic>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct List<'a> {
    api_version: &'static str,
    kind: &'static str,
    items: Vec<&'a Object>,
}

/// Serialize objects as one JSON `List` or a multi-document YAML stream.
pub fn render(items: &[&Item], format: Format) -> Result<String, Vec<Diagnostic>> {
    let objects: Vec<&Object> = items.iter().map(|i| &i.object).collect();
    let text = match format {
        Format::Json => {
            let list = List {
                api_version: "v1",
                kind: "List",
                items: objects,
            };
            serde_json::to_string_pretty(&list)
                .map(|s| s + "\n")
                .map_err(|e| e.to_string())
        }
        Format::Yaml => serde_saphyr::to_string_multiple(&objects).map_err(|e| e.to_string()),
    };
    text.map_err(|e| {
        vec![Diagnostic::error(
            Code::K8sUnsupported,
            format!("cannot serialize the Kubernetes objects: {e}"),
        )]
    })
}

/// Lower to one document: a JSON `List` or a YAML stream.
pub fn lower(p: &Policy, o: &Options) -> LowerResult {
    lower_named(p, o, None)
}

/// [`lower`], with `source` (the policy file's name) in every object's annotations.
pub fn lower_named(p: &Policy, o: &Options, source: Option<&str>) -> LowerResult {
    let mut b = objects(p, o, source)?;
    let items: Vec<&Item> = b.items.iter().collect();
    let text = render(&items, o.format)?;
    crate::diag::sort(&mut b.warnings);
    Ok(Lowered {
        text,
        warnings: b.warnings,
    })
}

/// The SHA-256 of some bytes, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

// ---- the driver -----------------------------------------------------------------------------

/// Every object of the Kubernetes output, with the warnings; errors mean nothing is emitted.
pub fn objects(p: &Policy, o: &Options, source: Option<&str>) -> Result<Bundle, Vec<Diagnostic>> {
    let mut errors: Vec<Diagnostic> = Vec::new();
    let mut warnings: Vec<Diagnostic> = Vec::new();
    let users = netpol::Users::new(p);
    no_selector_errors(p, &users, &mut errors);
    icmp_warnings(p, &users, &mut warnings);

    // Which denies the NetworkPolicies carry, and which become cluster-tier rules.
    let reaching = reaching_denies(p, &users);
    let mut tier_denies: Vec<(ContractId, usize)> = Vec::new();
    match o.deny {
        DenyMode::Error => {
            for &(c, si) in &reaching {
                let s = &p.contract(c).subjects[si];
                errors.push(
                    Diagnostic::error(
                        Code::K8sDeny,
                        format!(
                            "deny subject `{}` of contract `{}` refused by `--k8s-deny error`",
                            s.name,
                            p.contract_name(c)
                        ),
                    )
                    .primary(s.span, "this deny")
                    .help(DENY_HELP),
                );
            }
        }
        DenyMode::Subtract => {}
        DenyMode::Cluster | DenyMode::Admin => {
            let kind = if o.deny == DenyMode::Admin {
                "an AdminNetworkPolicy"
            } else {
                "a ClusterNetworkPolicy"
            };
            for &(c, si) in &reaching {
                match cluster::expressible(p, &users, c, si) {
                    Ok(()) => tier_denies.push((c, si)),
                    Err(why) => {
                        let s = &p.contract(c).subjects[si];
                        warnings.push(
                            Diagnostic::warning(
                                Code::K8sDenyKept,
                                format!(
                                    "deny subject `{}` of contract `{}` cannot be {kind} rule: {why}; the NetworkPolicies carry it instead",
                                    s.name,
                                    p.contract_name(c)
                                ),
                            )
                            .primary(s.span, "compiled into the NetworkPolicies")
                            .help("the verdict is the same; only cluster-tier denies hold against other NetworkPolicies someone adds to the namespace"),
                        );
                    }
                }
            }
        }
    }
    // The policy whose verdicts the NetworkPolicies carry: without the cluster-tier denies.
    let stripped;
    let np_policy: &Policy = if tier_denies.is_empty() {
        p
    } else {
        stripped = without_subjects(p, &tier_denies);
        &stripped
    };

    // Units: by group, unless overlapping selectors meet a deny the NetworkPolicies carry.
    let kept: Vec<(ContractId, usize)> = reaching
        .iter()
        .copied()
        .filter(|d| !tier_denies.contains(d))
        .collect();
    let by_class = class_units(p, &users, &kept, &mut errors);
    if !errors.is_empty() {
        crate::diag::sort(&mut errors);
        return Err(errors);
    }
    let mut pods = units::group_units(p, |t| !by_class.contains_key(&t));
    pods.extend(by_class.into_values().flatten());
    let addrs = units::addr_units(p);
    let all_units = units::Units::new(pods, addrs, p.groups.len());
    let mut fs = flows::FlowSpace::new(np_policy);
    let (nps, holes) = netpol::policies(np_policy, &mut fs, &all_units);
    hole_warnings(np_policy, &all_units, &holes, &mut warnings);

    let mut items: Vec<(Option<String>, String, Object)> = Vec::new();
    for t in &p.tenants {
        let ns = t.name.as_str();
        items.push((
            Some(ns.into()),
            DEFAULT_DENY.into(),
            Object::Np(Box::new(default_deny(ns))),
        ));
        if o.allow_dns {
            items.push((
                Some(ns.into()),
                ALLOW_DNS.into(),
                Object::Np(Box::new(allow_dns(ns))),
            ));
        }
    }
    for (ns, name, np) in nps {
        items.push((Some(ns), name, Object::Np(Box::new(np))));
    }
    if !tier_denies.is_empty() {
        match cluster::objects(p, &users, &tier_denies, o.deny) {
            Ok(objs) => {
                for obj in objs {
                    let name = obj.name().to_string();
                    let object = match obj {
                        cluster::TierObject::Cnp(x) => Object::Cnp(x),
                        cluster::TierObject::Anp(x) => Object::Anp(x),
                    };
                    items.push((None, name, object));
                }
            }
            Err(e) => return Err(vec![e]),
        }
    }
    uniquify(&mut items);
    items.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let items = items
        .into_iter()
        .map(|(namespace, name, mut object)| {
            let hash = format!("sha256:{}", sha256_hex(&object.spec_json()));
            let meta = object.metadata_mut();
            let mut ann = BTreeMap::new();
            if let Some(src) = source {
                ann.insert(SOURCE_ANNOTATION.to_string(), src.to_string());
            }
            ann.insert(HASH_ANNOTATION.to_string(), hash);
            meta.annotations = Some(ann);
            let kind = match object {
                Object::Np(_) => "NetworkPolicy",
                Object::Cnp(_) => "ClusterNetworkPolicy",
                Object::Anp(_) => "AdminNetworkPolicy",
            };
            Item {
                namespace,
                name,
                kind,
                object,
            }
        })
        .collect();
    crate::diag::sort(&mut warnings);
    Ok(Bundle { items, warnings })
}

/// Names shared by two objects of one namespace (a class name equal to a group's, say) are
/// replaced by a hashed form; the fixed per-namespace names keep theirs.
fn uniquify(items: &mut [(Option<String>, String, Object)]) {
    let mut seen: BTreeMap<(Option<String>, String), usize> = BTreeMap::new();
    for (ns, name, _) in items.iter() {
        *seen.entry((ns.clone(), name.clone())).or_default() += 1;
    }
    for (i, (ns, name, obj)) in items.iter_mut().enumerate() {
        let fixed = ns.is_some() && (name == DEFAULT_DENY || name == ALLOW_DNS);
        let dup = seen
            .get(&(ns.clone(), name.clone()))
            .is_some_and(|&n| n > 1);
        if (dup && !fixed) || name.len() > names::NAME_MAX {
            let key = format!("{}/{name}/{i}", ns.as_deref().unwrap_or(""));
            *name = names::hashed_name(name, &key);
            obj.metadata_mut().name = Some(name.clone());
        }
    }
}

/// A copy of the policy without some subjects (ids stay; subject indices of the contracts
/// that lose some shift).
fn without_subjects(p: &Policy, drop: &[(ContractId, usize)]) -> Policy {
    let drop: BTreeSet<(ContractId, usize)> = drop.iter().copied().collect();
    let mut q = p.clone();
    for (ci, c) in q.contracts.iter_mut().enumerate() {
        let id = ContractId(ci as u32);
        let mut i = 0;
        c.subjects.retain(|_| {
            let keep = !drop.contains(&(id, i));
            i += 1;
            keep
        });
    }
    q
}

/// Every deny subject of a contract that reaches a pod (some provider or consumer has pods),
/// in contract order (tenant, name), then subject order.
fn reaching_denies(p: &Policy, users: &netpol::Users) -> Vec<(ContractId, usize)> {
    let mut order: Vec<ContractId> = (0..p.contracts.len())
        .map(|i| ContractId(i as u32))
        .collect();
    order.sort_by_key(|&c| {
        let k = p.contract(c);
        (&p.tenant(k.tenant).name, &k.name)
    });
    let mut out = Vec::new();
    for c in order {
        let (prov, cons) = (users.providers(c), users.consumers(c));
        if prov.is_empty() || cons.is_empty() {
            continue;
        }
        let pods = |gs: &[GroupId]| gs.iter().any(|&g| !units::pod_groups(p, g).is_empty());
        if !pods(prov) && !pods(cons) {
            continue; // between external groups: outside the cluster
        }
        for (si, s) in p.contract(c).subjects.iter().enumerate() {
            if s.action == Action::Deny {
                out.push((c, si));
            }
        }
    }
    out
}

/// The contracts a group provides (or consumes) in Kubernetes: its own after inheritance and
/// those of its tenant's `any`, which stands for every internal group.
fn folded(p: &Policy, g: GroupId, provides: bool) -> BTreeSet<ContractId> {
    let grp = p.group(g);
    let any = p.group(p.tenant(grp.tenant).any);
    let pick = |x: &crate::model::Group| -> Vec<ContractId> {
        if provides {
            x.eff_provides.clone()
        } else {
            x.eff_consumes.clone()
        }
    };
    pick(grp).into_iter().chain(pick(any)).collect()
}

/// E041: an internal group without labels that takes part in a contract with another side.
fn no_selector_errors(p: &Policy, users: &netpol::Users, errors: &mut Vec<Diagnostic>) {
    for (gi, grp) in p.groups.iter().enumerate() {
        let g = GroupId(gi as u32);
        if grp.kind != GroupKind::Internal || !grp.selector.is_empty() {
            continue;
        }
        let needs = folded(p, g, true)
            .iter()
            .any(|&c| !users.consumers(c).is_empty())
            || folded(p, g, false)
                .iter()
                .any(|&c| !users.providers(c).is_empty());
        if !needs {
            continue;
        }
        let mut d = Diagnostic::error(
            Code::K8sNoSelector,
            format!(
                "group `{}` has no `select` labels, so Kubernetes cannot select its pods",
                p.group_name(g)
            ),
        )
        .primary(grp.name_span, "used in a contract, but selects no pods");
        if let Some(u) = grp.provides.iter().chain(&grp.consumes).next() {
            d = d.secondary(u.span, "contract used here");
        }
        errors.push(d.help(
            "add `select key=value` with the labels its pods carry, or keep the group out of contracts for the k8s target",
        ));
    }
}

/// W010: a permit subject with ICMP entries that reaches the cluster (NetworkPolicy cannot
/// match ICMP; an `ip` entry covers it).
fn icmp_warnings(p: &Policy, users: &netpol::Users, warnings: &mut Vec<Diagnostic>) {
    for (ci, contract) in p.contracts.iter().enumerate() {
        let c = ContractId(ci as u32);
        let (prov, cons) = (users.providers(c), users.consumers(c));
        let pods = |gs: &[GroupId]| gs.iter().any(|&g| !units::pod_groups(p, g).is_empty());
        if prov.is_empty() || cons.is_empty() || (!pods(prov) && !pods(cons)) {
            continue;
        }
        for s in contract
            .subjects
            .iter()
            .filter(|s| s.action == Action::Permit)
        {
            let mut icmp = Vec::new();
            let mut other = false;
            let mut all = false;
            for &(f, _) in &s.filters {
                for e in &p.filter(f).entries {
                    match e.proto {
                        EntryProto::Ip => all = true,
                        EntryProto::Icmp | EntryProto::Icmpv6 => icmp.push(e.span),
                        _ => other = true,
                    }
                }
            }
            if all || icmp.is_empty() {
                continue;
            }
            let (message, help) = if !other {
                (
                    format!(
                        "subject `{}` of contract `{}` permits only ICMP, which NetworkPolicy cannot match: it is left out, so this traffic is denied in Kubernetes",
                        s.name,
                        p.contract_name(c)
                    ),
                    "nftables enforces it; NetworkPolicy matches only TCP, UDP and SCTP ports (an `ip` entry would allow every protocol)",
                )
            } else {
                (
                    format!(
                        "the ICMP entries of subject `{}` of contract `{}` are left out: NetworkPolicy cannot match ICMP, so that traffic is denied in Kubernetes",
                        s.name,
                        p.contract_name(c)
                    ),
                    "the subject's other entries are lowered; nftables enforces the ICMP ones",
                )
            };
            let mut d = Diagnostic::warning(Code::K8sIcmp, message).primary(s.span, "");
            for span in icmp {
                d = d.secondary(span, "ICMP entry");
            }
            warnings.push(d.help(help));
        }
    }
}

/// W030: a deny took ports out of an allowance of every protocol, which NetworkPolicy can only
/// write as TCP, UDP and SCTP ports: other protocols and ICMP are denied there (fail closed).
fn hole_warnings(
    p: &Policy,
    units: &units::Units,
    holes: &netpol::Holes,
    warnings: &mut Vec<Diagnostic>,
) {
    let describe = |u: units::UnitId| -> String {
        let names: Vec<String> = units
            .groups(u)
            .iter()
            .filter(|g| p.group(**g).kind != GroupKind::Any)
            .map(|g| format!("`{}`", p.group_name(*g)))
            .collect();
        names.join(" and ")
    };
    for (&(c, si), &(src, dst)) in holes {
        let Some(s) = p.contract(c).subjects.get(si) else {
            continue;
        };
        warnings.push(
            Diagnostic::warning(
                Code::K8sProtocolHole,
                format!(
                    "deny subject `{}` of contract `{}` cuts ports out of traffic allowed on every protocol (from {} to {}): NetworkPolicy cannot say \"every protocol but these ports\", so Kubernetes allows only the remaining TCP, UDP and SCTP ports there and denies other protocols and ICMP",
                    s.name,
                    p.contract_name(c),
                    describe(src),
                    describe(dst)
                ),
            )
            .primary(s.span, "this deny")
            .help("nftables enforces the exact verdict; with `--k8s-deny cluster` the deny is a ClusterNetworkPolicy rule and the allowance stays whole"),
        );
    }
}

/// At most this many label-class cells (NetworkPolicies) per tenant.
pub const MAX_TENANT_CELLS: usize = 1024;

/// The pod units of the tenants whose overlapping selectors meet a deny the NetworkPolicies
/// carry: a pod in two groups gets the union of their policies, so one group's permit could
/// override the other's deny. Those tenants are lowered by label class, each pod selected
/// exactly once; E043 when the classes would be too many.
fn class_units(
    p: &Policy,
    users: &netpol::Users,
    kept: &[(ContractId, usize)],
    errors: &mut Vec<Diagnostic>,
) -> BTreeMap<TenantId, Vec<units::PodUnit>> {
    let mut out = BTreeMap::new();
    if kept.is_empty() {
        return out;
    }
    let contracts: BTreeSet<ContractId> = kept.iter().map(|d| d.0).collect();
    // The groups with labels that take part in one of those contracts (`any`: all of them).
    let mut deny_users: BTreeSet<GroupId> = BTreeSet::new();
    for &c in &contracts {
        for &g in users.providers(c).iter().chain(users.consumers(c)) {
            for pg in units::pod_groups(p, g) {
                if !p.group(pg).selector.is_empty() {
                    deny_users.insert(pg);
                }
            }
        }
    }
    let of_interest: Vec<GroupId> = deny_users.into_iter().collect();
    let mut first: BTreeMap<TenantId, (GroupId, GroupId)> = BTreeMap::new();
    for (g, h) in units::overlapping(p, &of_interest) {
        first.entry(p.group(g).tenant).or_insert((g, h));
    }
    for (t, (g, h)) in first {
        let Some(classes) = classes::label_classes(p, t, MAX_TENANT_CELLS) else {
            errors.push(overflow(p, t, g, h, kept, users));
            continue;
        };
        let units = classes
            .into_iter()
            .map(|k| {
                let mut names: Vec<&str> = k
                    .groups
                    .iter()
                    .filter(|g| p.group(**g).kind != GroupKind::Any)
                    .map(|g| p.group(*g).name.as_str())
                    .collect();
                names.sort_unstable();
                units::PodUnit {
                    tenant: t,
                    names: (0..k.cells.len())
                        .map(|i| names::class_policy_name(&names, i))
                        .collect(),
                    groups: k.groups,
                    cells: k.cells,
                }
            })
            .collect();
        out.insert(t, units);
    }
    out
}

/// E043: the label classes of a tenant are too many to select exactly.
fn overflow(
    p: &Policy,
    t: TenantId,
    g: GroupId,
    h: GroupId,
    kept: &[(ContractId, usize)],
    users: &netpol::Users,
) -> Diagnostic {
    let grp = p.group(g);
    let other = p.group(h);
    let labels = |x: &crate::model::Group| -> String {
        x.selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let deny = kept.iter().find(|(c, _)| {
        users
            .providers(*c)
            .iter()
            .chain(users.consumers(*c))
            .any(|&x| units::pod_groups(p, x).contains(&g))
    });
    let mut d = Diagnostic::error(
        Code::K8sOverlap,
        format!(
            "the selectors of tenant `{}` combine into more than {MAX_TENANT_CELLS} label classes, too many to select exactly; groups such as `{}` (select {}) and `{}` (select {}) can select the same pods, and `{}` takes part in a contract with a deny",
            p.tenant(t).name,
            p.group_name(g),
            labels(grp),
            p.group_name(h),
            labels(other),
            grp.name
        ),
    )
    .primary(grp.name_span, "this group")
    .secondary(other.name_span, "overlaps this one");
    if let Some(&(c, si)) = deny
        && let Some(s) = p.contract(c).subjects.get(si)
    {
        d = d.secondary(s.span, "the deny");
    }
    d.help(
        "give the selectors a label that tells them apart (one key with a value per group, e.g. `tier=web`, `tier=db`), or compile with `--k8s-deny cluster` so that the denies are ClusterNetworkPolicy rules",
    )
}
