//! Cluster-tier objects for deny subjects: `policy.networking.k8s.io/v1alpha2`
//! ClusterNetworkPolicy in the Admin tier (`--k8s-deny cluster`), or the legacy
//! `policy.networking.k8s.io/v1alpha1` AdminNetworkPolicy (`--k8s-deny anp-v1alpha1`).
//!
//! Both tiers are evaluated before every NetworkPolicy and a `Deny` there is final, which is
//! "a deny wins over every permit". A deny subject becomes `Deny` rules on the side that sees
//! every connection it must stop: an ingress rule on each provider group's pods, from the
//! consumer groups' pods, and, for external providers, an egress rule on each consumer
//! group's pods to the providers' `networks`. Every rule is a `Deny`, so the order of rules and
//! policies never changes a verdict; policies still get distinct priorities, because some
//! implementations reject or arbitrarily order ties.
//!
//! A deny these objects cannot carry (ICMP types, a consumer outside the cluster, which an
//! ingress peer cannot name) stays in the NetworkPolicies, compiled away like the default mode
//! does (W031 says so); see [`expressible`].
//!
//! The objects themselves, field for field as the API reads them, are in `cluster/objects.rs`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::Serialize;

use super::flows::{L4, Ports, deny_ports};
use super::names::{NAME_MAX, hashed_name, rule_name};
use super::units::pod_groups;
use super::{DenyMode, PREFIX, metadata, namespace_selector};
use crate::diag::{Code, Diagnostic, Span};
use crate::model::{Action, ContractId, GroupId, GroupKind, Policy};
use crate::net::{Cidr, Family, range_to_cidrs};

mod objects;

pub(super) use objects::TierObject;
pub use objects::{AdminNetworkPolicy, ClusterNetworkPolicy};
use objects::{
    AnpEgress, AnpIngress, AnpPort, AnpSpec, CnpEgress, CnpIngress, CnpL4, CnpPort, CnpProtocol,
    CnpSpec, NamespacedPod, PeerObj, Subject,
};

pub const CNP_API_VERSION: &str = "policy.networking.k8s.io/v1alpha2";
pub const ANP_API_VERSION: &str = "policy.networking.k8s.io/v1alpha1";
/// Priorities gbpc uses: `FIRST_PRIORITY..=MAX_PRIORITY` (0-9 are left to the cluster's own
/// policies).
pub const FIRST_PRIORITY: u32 = 10;
pub const MAX_PRIORITY: u32 = 1000;

/// The limits of one kind (its CRD's `maxItems` and `maxLength`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    rules: usize,
    peers: usize,
    networks: usize,
    ports: usize,
    rule_name: usize,
}

/// ClusterNetworkPolicy v1alpha2: 25 rules per direction, 25 peers and 25 protocols per rule,
/// 25 CIDRs per `networks` peer, rule names of 100 characters.
const CNP_LIMITS: Limits = Limits {
    rules: 25,
    peers: 25,
    networks: 25,
    ports: 25,
    rule_name: 100,
};
/// AdminNetworkPolicy v1alpha1: 100 rules, 100 peers, 100 ports, 25 CIDRs per `networks`.
const ANP_LIMITS: Limits = Limits {
    rules: 100,
    peers: 100,
    networks: 25,
    ports: 100,
    rule_name: 100,
};
/// The JSON bytes of one direction's rules in one object, about: an object stays far below
/// etcd's 1.5 MiB.
const MAX_BYTES: usize = 512 * 1024;

/// Can a deny subject be a cluster-tier rule? `Err` says why not.
pub(super) fn expressible(
    p: &Policy,
    users: &super::netpol::Users,
    c: ContractId,
    si: usize,
) -> Result<(), String> {
    let Some(s) = p.contract(c).subjects.get(si) else {
        return Err("it does not exist".into());
    };
    if deny_ports(p, s).is_none() {
        return Err("it matches ICMP, and cluster-tier rules match only TCP, UDP and SCTP ports (or every protocol)".into());
    }
    let pods_provide = users
        .providers(c)
        .iter()
        .any(|&g| !pod_groups(p, g).is_empty());
    if let Some(&ext) = users
        .consumers(c)
        .iter()
        .find(|&&g| p.group(g).kind == GroupKind::External)
        && pods_provide
    {
        return Err(format!(
            "its consumer `{}` is external, and an ingress rule cannot match addresses",
            p.group_name(ext)
        ));
    }
    Ok(())
}

// ---- the rules before they become objects ---------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Peer {
    Pods {
        namespace: String,
        labels: BTreeMap<String, String>,
    },
    Networks(Vec<Cidr>),
}

#[derive(Clone, Debug)]
struct Rule {
    name: String,
    peers: Vec<Peer>,
    ports: Ports,
}

/// The deny rules one group's pods enforce.
struct Enforcer {
    /// `tenant/group`, unambiguous.
    key: String,
    name: String,
    namespace: String,
    labels: BTreeMap<String, String>,
    ingress: Vec<Rule>,
    egress: Vec<Rule>,
    /// The first deny subject it holds (where an error about it points).
    span: Span,
}

/// The cluster-tier objects of the deny subjects `denies` (expressible ones, in contract
/// order). Errors: too many objects for the priorities.
pub(super) fn objects(
    p: &Policy,
    users: &super::netpol::Users,
    denies: &[(ContractId, usize)],
    mode: DenyMode,
) -> Result<Vec<TierObject>, Diagnostic> {
    let limits = match mode {
        DenyMode::Admin => ANP_LIMITS,
        _ => CNP_LIMITS,
    };
    let mut by_group: BTreeMap<GroupId, Enforcer> = BTreeMap::new();
    for &(c, si) in denies {
        let contract = p.contract(c);
        let Some(s) = contract.subjects.get(si) else {
            continue;
        };
        debug_assert_eq!(s.action, Action::Deny);
        let Some(ports) = deny_ports(p, s) else {
            continue;
        };
        let providers = users.providers(c);
        let consumers = users.consumers(c);
        let prov_pods: Vec<GroupId> =
            sorted_groups(p, providers.iter().flat_map(|&g| pod_groups(p, g)));
        let cons_pods: Vec<GroupId> =
            sorted_groups(p, consumers.iter().flat_map(|&g| pod_groups(p, g)));
        // The reverse half of a `both-ways` deny is a rule of its own, named apart.
        let reverse = match contract.origin {
            crate::model::Origin::Reverse(_) => "/reverse",
            _ => "",
        };
        let name = rule_name(
            &format!(
                "{}/{}/{}{reverse}",
                p.tenant(contract.tenant).name,
                contract.name,
                s.name
            ),
            limits.rule_name,
        );
        let pods_of = |gs: &[GroupId]| -> Vec<Peer> {
            gs.iter()
                .filter(|g| !p.group(**g).selector.is_empty())
                .map(|&g| Peer::Pods {
                    namespace: p.tenant(p.group(g).tenant).name.clone(),
                    labels: p.group(g).selector.clone(),
                })
                .collect()
        };
        let from = pods_of(&cons_pods);
        let networks = networks(p, providers);
        if !from.is_empty() {
            for &g in &prov_pods {
                if let Some(e) = enforcer(p, &mut by_group, g, s.span) {
                    e.ingress.push(Rule {
                        name: name.clone(),
                        peers: from.clone(),
                        ports: ports.clone(),
                    });
                }
            }
        }
        if !networks.is_empty() {
            for &g in &cons_pods {
                if let Some(e) = enforcer(p, &mut by_group, g, s.span) {
                    e.egress.push(Rule {
                        name: name.clone(),
                        peers: networks
                            .chunks(limits.networks)
                            .map(|c| Peer::Networks(c.to_vec()))
                            .collect(),
                        ports: ports.clone(),
                    });
                }
            }
        }
    }
    pack(by_group.into_values().collect(), limits, mode)
}

/// The enforcer of a group's deny rules, created on first use; `None` for a group without
/// labels (reported as E041 elsewhere).
fn enforcer<'m>(
    p: &Policy,
    by_group: &'m mut BTreeMap<GroupId, Enforcer>,
    g: GroupId,
    span: Span,
) -> Option<&'m mut Enforcer> {
    let grp = p.group(g);
    if grp.selector.is_empty() {
        return None;
    }
    let tenant = &p.tenant(grp.tenant).name;
    Some(by_group.entry(g).or_insert_with(|| Enforcer {
        key: format!("{tenant}/{}", grp.name),
        name: format!("{PREFIX}{tenant}-{}-deny", grp.name),
        namespace: tenant.clone(),
        labels: grp.selector.clone(),
        ingress: Vec::new(),
        egress: Vec::new(),
        span,
    }))
}

fn sorted_groups(p: &Policy, gs: impl Iterator<Item = GroupId>) -> Vec<GroupId> {
    let mut v: Vec<GroupId> = gs.collect();
    v.sort_by_key(|&g| {
        let grp = p.group(g);
        (p.tenant(grp.tenant).name.clone(), grp.name.clone())
    });
    v.dedup();
    v
}

/// The addresses of the external groups among `groups`, as the fabric classifies them (the
/// address classes that hold one of them), as the fewest prefixes.
fn networks(p: &Policy, groups: &[GroupId]) -> Vec<Cidr> {
    let ext: Vec<GroupId> = groups
        .iter()
        .copied()
        .filter(|g| p.group(*g).kind == GroupKind::External)
        .collect();
    if ext.is_empty() {
        return Vec::new();
    }
    let cls = &p.classes;
    let hit: Vec<bool> = cls
        .sets
        .iter()
        .map(|s| s.iter().any(|g| ext.contains(g)))
        .collect();
    let mut out = Vec::new();
    for (family, table) in [(Family::V4, &cls.v4), (Family::V6, &cls.v6)] {
        let mut run: Option<(u128, u128)> = None;
        for &(lo, hi, c) in table.iter() {
            if hit.get(c as usize) != Some(&true) {
                continue;
            }
            run = match run {
                Some((a, b)) if b.checked_add(1) == Some(lo) => Some((a, hi)),
                Some((a, b)) => {
                    out.extend(range_to_cidrs(family, a, b));
                    Some((lo, hi))
                }
                None => Some((lo, hi)),
            };
        }
        if let Some((a, b)) = run {
            out.extend(range_to_cidrs(family, a, b));
        }
    }
    out
}

/// Split a rule so that it stays within the limits of peers and ports per rule.
fn split(rule: Rule, limits: Limits) -> Vec<Rule> {
    let port_chunks: Vec<Ports> = match &rule.ports {
        Ports::All => vec![Ports::All],
        Ports::Some(v) => v
            .chunks(limits.ports)
            .map(|c| Ports::Some(c.to_vec()))
            .collect(),
    };
    let mut out = Vec::new();
    for peers in rule.peers.chunks(limits.peers) {
        for ports in &port_chunks {
            out.push(Rule {
                name: rule.name.clone(),
                peers: peers.to_vec(),
                ports: ports.clone(),
            });
        }
    }
    out
}

/// A direction's rules cut into the rule lists of successive objects: at most `limits.rules`
/// rules and about `MAX_BYTES` of JSON each.
pub(super) fn chunk_rules<R: Serialize>(rules: Vec<R>, max: usize) -> Vec<Vec<R>> {
    let mut out: Vec<Vec<R>> = Vec::new();
    let mut bytes = 0usize;
    for r in rules {
        let size = serde_json::to_vec(&r).map_or(0, |v| v.len());
        match out.last_mut() {
            Some(last) if last.len() < max && bytes + size <= MAX_BYTES => {
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

fn peer_obj(p: &Peer) -> PeerObj {
    match p {
        Peer::Pods { namespace, labels } => PeerObj::Pods(NamespacedPod {
            namespace_selector: namespace_selector(namespace),
            pod_selector: LabelSelector {
                match_labels: Some(labels.clone()),
                match_expressions: None,
            },
        }),
        Peer::Networks(n) => PeerObj::Networks(n.iter().map(Cidr::to_string).collect()),
    }
}

fn cnp_protocols(ports: &Ports) -> Option<Vec<CnpProtocol>> {
    let Ports::Some(v) = ports else {
        return None;
    };
    Some(
        v.iter()
            .map(|&(l4, range)| {
                let destination_port = match range {
                    Some((lo, hi)) if lo == hi => CnpPort::Number(lo),
                    Some((start, end)) => CnpPort::Range { start, end },
                    None => CnpPort::Range {
                        start: 1,
                        end: u16::MAX,
                    },
                };
                let x = CnpL4 { destination_port };
                match l4 {
                    L4::Tcp => CnpProtocol::Tcp(x),
                    L4::Udp => CnpProtocol::Udp(x),
                    L4::Sctp => CnpProtocol::Sctp(x),
                }
            })
            .collect(),
    )
}

fn anp_ports(ports: &Ports) -> Option<Vec<AnpPort>> {
    let Ports::Some(v) = ports else {
        return None;
    };
    Some(
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
    )
}

/// One direction's rules of one object, in the object's own shape.
enum Dir {
    CnpIn(Vec<CnpIngress>),
    CnpOut(Vec<CnpEgress>),
    AnpIn(Vec<AnpIngress>),
    AnpOut(Vec<AnpEgress>),
}

/// One object before packing: (name, key, span, subject, ingress chunk, egress chunk).
type Part = (String, String, Span, Subject, Option<Dir>, Option<Dir>);

/// Pack each group's rules into objects within the limits, name them (readable unless too
/// long or ambiguous) and give them distinct priorities in name order.
fn pack(
    enforcers: Vec<Enforcer>,
    limits: Limits,
    mode: DenyMode,
) -> Result<Vec<TierObject>, Diagnostic> {
    let groups = enforcers.len();
    let mut parts: Vec<Part> = Vec::new();
    for e in enforcers {
        let subject = Subject {
            pods: NamespacedPod {
                namespace_selector: namespace_selector(&e.namespace),
                pod_selector: LabelSelector {
                    match_labels: Some(e.labels.clone()),
                    match_expressions: None,
                },
            },
        };
        let ing: Vec<Rule> = e
            .ingress
            .into_iter()
            .flat_map(|r| split(r, limits))
            .collect();
        let egr: Vec<Rule> = e
            .egress
            .into_iter()
            .flat_map(|r| split(r, limits))
            .collect();
        let (mut ing, mut egr): (Vec<Dir>, Vec<Dir>) = match mode {
            DenyMode::Admin => (
                chunk_rules(
                    ing.iter()
                        .map(|r| AnpIngress {
                            name: r.name.clone(),
                            action: "Deny",
                            from: r.peers.iter().map(peer_obj).collect(),
                            ports: anp_ports(&r.ports),
                        })
                        .collect(),
                    limits.rules,
                )
                .into_iter()
                .map(Dir::AnpIn)
                .collect(),
                chunk_rules(
                    egr.iter()
                        .map(|r| AnpEgress {
                            name: r.name.clone(),
                            action: "Deny",
                            to: r.peers.iter().map(peer_obj).collect(),
                            ports: anp_ports(&r.ports),
                        })
                        .collect(),
                    limits.rules,
                )
                .into_iter()
                .map(Dir::AnpOut)
                .collect(),
            ),
            _ => (
                chunk_rules(
                    ing.iter()
                        .map(|r| CnpIngress {
                            name: r.name.clone(),
                            action: "Deny",
                            from: r.peers.iter().map(peer_obj).collect(),
                            protocols: cnp_protocols(&r.ports),
                        })
                        .collect(),
                    limits.rules,
                )
                .into_iter()
                .map(Dir::CnpIn)
                .collect(),
                chunk_rules(
                    egr.iter()
                        .map(|r| CnpEgress {
                            name: r.name.clone(),
                            action: "Deny",
                            to: r.peers.iter().map(peer_obj).collect(),
                            protocols: cnp_protocols(&r.ports),
                        })
                        .collect(),
                    limits.rules,
                )
                .into_iter()
                .map(Dir::CnpOut)
                .collect(),
            ),
        };
        ing.reverse();
        egr.reverse();
        let mut i = 0;
        loop {
            let (a, b) = (ing.pop(), egr.pop());
            if a.is_none() && b.is_none() {
                break;
            }
            let (name, key) = if i == 0 {
                (e.name.clone(), e.key.clone())
            } else {
                (
                    format!("{}-{}", e.name, i + 1),
                    format!("{}/{}", e.key, i + 1),
                )
            };
            parts.push((name, key, e.span, subject.clone(), a, b));
            i += 1;
        }
    }
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for part in &parts {
        *count.entry(part.0.clone()).or_default() += 1;
    }
    for part in &mut parts {
        if part.0.len() > NAME_MAX || count.get(&part.0).is_some_and(|&n| n > 1) {
            part.0 = hashed_name(&part.0, &part.1);
        }
    }
    parts.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let capacity = (MAX_PRIORITY - FIRST_PRIORITY + 1) as usize;
    let kind = match mode {
        DenyMode::Admin => "AdminNetworkPolicies",
        _ => "ClusterNetworkPolicies",
    };
    if let Some(part) = parts.get(capacity) {
        return Err(Diagnostic::error(
            Code::K8sUnsupported,
            format!(
                "the denies need {} {kind} for the {groups} groups that enforce them, more than the {capacity} priorities {FIRST_PRIORITY}-{MAX_PRIORITY}",
                parts.len()
            ),
        )
        .primary(part.2, "a deny of the first policy without a priority")
        .help("leave `--k8s-deny` at its default (`subtract`): the NetworkPolicies then carry every deny themselves, with no limit on their number"));
    }
    Ok(parts
        .into_iter()
        .enumerate()
        .map(|(i, (name, _, _, subject, ing, egr))| {
            let priority = FIRST_PRIORITY + i as u32;
            let meta: ObjectMeta = metadata(&name, None);
            match mode {
                DenyMode::Admin => TierObject::Anp(Box::new(AdminNetworkPolicy {
                    api_version: ANP_API_VERSION,
                    kind: "AdminNetworkPolicy",
                    metadata: meta,
                    spec: AnpSpec {
                        priority,
                        subject,
                        ingress: match ing {
                            Some(Dir::AnpIn(v)) => v,
                            _ => Vec::new(),
                        },
                        egress: match egr {
                            Some(Dir::AnpOut(v)) => v,
                            _ => Vec::new(),
                        },
                    },
                })),
                _ => TierObject::Cnp(Box::new(ClusterNetworkPolicy {
                    api_version: CNP_API_VERSION,
                    kind: "ClusterNetworkPolicy",
                    metadata: meta,
                    spec: CnpSpec {
                        tier: "Admin",
                        priority,
                        subject,
                        ingress: match ing {
                            Some(Dir::CnpIn(v)) => v,
                            _ => Vec::new(),
                        },
                        egress: match egr {
                            Some(Dir::CnpOut(v)) => v,
                            _ => Vec::new(),
                        },
                    },
                })),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rules are cut at the limit per policy, and earlier when their JSON would pass the size
    /// budget; order is kept and nothing is lost.
    #[test]
    fn chunks_respect_the_rule_count_and_the_size_budget() {
        let small: Vec<String> = (0..250).map(|i| format!("r{i}")).collect();
        let sizes: Vec<usize> = chunk_rules(small.clone(), 100)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert_eq!(chunk_rules(small.clone(), 25).len(), 10);
        assert_eq!(chunk_rules(small.clone(), 100).concat(), small);

        let big: Vec<String> = (0..10)
            .map(|i| format!("{i}{}", "x".repeat(200 * 1024)))
            .collect();
        let chunks = chunk_rules(big.clone(), 100);
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            [2, 2, 2, 2, 2]
        );
        assert_eq!(chunks.concat(), big);
    }

    /// A rule with more peers or ports than one rule may hold becomes several rules with the
    /// same name, every (peer, port) pair kept.
    #[test]
    fn rules_split_at_the_peer_and_port_limits() {
        let peers: Vec<Peer> = (0..30)
            .map(|i| Peer::Pods {
                namespace: "t".into(),
                labels: BTreeMap::from([("app".to_string(), format!("a{i}"))]),
            })
            .collect();
        let ports = Ports::Some(
            (1..=60)
                .map(|i| (L4::Tcp, Some((i * 10, i * 10))))
                .collect(),
        );
        let rule = Rule {
            name: "t/c/s".into(),
            peers: peers.clone(),
            ports: ports.clone(),
        };
        let parts = split(rule, CNP_LIMITS);
        // 2 peer chunks (25 + 5) x 3 port chunks (25 + 25 + 10).
        assert_eq!(parts.len(), 6);
        assert!(
            parts
                .iter()
                .all(|r| r.peers.len() <= 25 && r.name == "t/c/s")
        );
        let mut pairs = 0;
        for r in &parts {
            if let Ports::Some(v) = &r.ports {
                assert!(v.len() <= 25);
                pairs += r.peers.len() * v.len();
            }
        }
        assert_eq!(pairs, 30 * 60);
    }
}
