//! NetworkPolicy objects: one per pod unit (per cell of a label class), selecting its pods with
//! both policy types, with an ingress rule per distinct set of ports some units may open to it
//! and an egress rule per distinct set of ports it may open to others. The ports between two
//! units are what the evaluator allows between their group sets ([`super::flows`]), so denies
//! are already taken out: `permit tcp 8000-8099` with `deny tcp 8081` is `8000-8080` and
//! `8082-8099`. Every allowance is written on both ends, so the verdict holds whichever side
//! the network plugin enforces.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::flows::{Allowed, FlowSpace, Ports};
use super::units::{Sel, UnitId, Units};
use super::{metadata, namespace_selector};
use crate::model::{ContractId, GroupKind, Policy};
use crate::net::Cidr;

/// A peer before it becomes an object; the order is the order peers are listed in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Peer {
    /// Pods of a namespace that `sel` selects.
    Pods { namespace: String, sel: Sel },
    /// Addresses outside the cluster: `cidr` without `except`.
    Block { cidr: Cidr, except: Vec<Cidr> },
}

/// A unit's rules in one direction: the ports, and the peers they are open to.
type Rules = BTreeMap<Ports, BTreeSet<Peer>>;

/// Pairs where the evaluator allows more than NetworkPolicy can carry because a deny cut a
/// hole into an all-protocol allowance: per deny subject, the first such pair (for W030).
pub(super) type Holes = BTreeMap<(ContractId, usize), (UnitId, UnitId)>;

fn np_peer(policy_ns: &str, peer: &Peer) -> NetworkPolicyPeer {
    match peer {
        Peer::Pods { namespace, sel } => NetworkPolicyPeer {
            namespace_selector: (namespace != policy_ns).then(|| namespace_selector(namespace)),
            pod_selector: Some(sel.to_k8s()),
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

pub(super) fn np_ports(ports: &Ports) -> Option<Vec<NetworkPolicyPort>> {
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

/// The peers that stand for a unit.
fn peers_of(p: &Policy, units: &Units, u: UnitId) -> Vec<Peer> {
    match u {
        UnitId::Pods(i) => {
            let Some(unit) = units.pods.get(i as usize) else {
                return Vec::new();
            };
            let ns = &p.tenant(unit.tenant).name;
            unit.cells
                .iter()
                .map(|sel| Peer::Pods {
                    namespace: ns.clone(),
                    sel: sel.clone(),
                })
                .collect()
        }
        UnitId::Addrs(i) => units
            .addrs
            .get(i as usize)
            .map(|a| {
                a.blocks
                    .iter()
                    .map(|(cidr, except)| Peer::Block {
                        cidr: *cidr,
                        except: except.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The units a unit may open connections to (`egress`) or receive them from: the units of the
/// other side of every contract its groups use, and the units sharing one of its open groups.
fn candidates(p: &Policy, users: &Users, units: &Units, u: usize, egress: bool) -> Vec<UnitId> {
    let Some(unit) = units.pods.get(u) else {
        return Vec::new();
    };
    let mut out: BTreeSet<UnitId> = BTreeSet::new();
    for &g in &unit.groups {
        let grp = p.group(g);
        let uses = if egress {
            &grp.eff_consumes
        } else {
            &grp.eff_provides
        };
        for &c in uses {
            let others = if egress {
                users.providers(c)
            } else {
                users.consumers(c)
            };
            for &o in others {
                out.extend(units.of(o).iter().copied());
            }
        }
        if grp.kind == GroupKind::Internal && !grp.isolated {
            out.extend(units.of(g).iter().copied());
        }
    }
    out.into_iter().collect()
}

/// Providers and consumers of every contract.
pub(super) struct Users {
    providers: Vec<Vec<crate::model::GroupId>>,
    consumers: Vec<Vec<crate::model::GroupId>>,
}

impl Users {
    pub(super) fn new(p: &Policy) -> Users {
        let (providers, consumers) = p.contract_users();
        Users {
            providers,
            consumers,
        }
    }
    pub(super) fn providers(&self, c: ContractId) -> &[crate::model::GroupId] {
        self.providers.get(c.index()).map_or(&[], Vec::as_slice)
    }
    pub(super) fn consumers(&self, c: ContractId) -> &[crate::model::GroupId] {
        self.consumers.get(c.index()).map_or(&[], Vec::as_slice)
    }
}

/// The NetworkPolicies of every pod unit (one per cell), as (namespace, name, object), with
/// the holes a deny cut into all-protocol allowances. `flows` decides with the policy whose
/// denies the NetworkPolicies must carry.
pub(super) fn policies(
    p: &Policy,
    flows: &mut FlowSpace,
    units: &Units,
) -> (Vec<(String, String, NetworkPolicy)>, Holes) {
    let users = Users::new(p);
    let mut holes = Holes::new();
    let mut out = Vec::new();
    for (ui, unit) in units.pods.iter().enumerate() {
        let me = UnitId::Pods(ui as u32);
        let mut dirs: [Rules; 2] = [Rules::new(), Rules::new()];
        for (d, egress) in [(0, false), (1, true)] {
            for other in candidates(p, &users, units, ui, egress) {
                let (src, dst) = if egress { (me, other) } else { (other, me) };
                let a: std::rc::Rc<Allowed> = flows.allowed(units.groups(src), units.groups(dst));
                if a.lost_other {
                    for &den in &a.denies {
                        holes.entry(den).or_insert((src, dst));
                    }
                }
                let Some(ports) = &a.ports else {
                    continue;
                };
                dirs[d]
                    .entry(ports.clone())
                    .or_default()
                    .extend(peers_of(p, units, other));
            }
        }
        let ns = p.tenant(unit.tenant).name.clone();
        let rules = |r: &Rules| -> Vec<(Vec<NetworkPolicyPeer>, Option<Vec<NetworkPolicyPort>>)> {
            r.iter()
                .map(|(ports, peers)| {
                    (
                        peers.iter().map(|x| np_peer(&ns, x)).collect(),
                        np_ports(ports),
                    )
                })
                .collect()
        };
        let ingress: Vec<NetworkPolicyIngressRule> = rules(&dirs[0])
            .into_iter()
            .map(|(from, ports)| NetworkPolicyIngressRule {
                from: Some(from),
                ports,
            })
            .collect();
        let egress: Vec<NetworkPolicyEgressRule> = rules(&dirs[1])
            .into_iter()
            .map(|(to, ports)| NetworkPolicyEgressRule {
                to: Some(to),
                ports,
            })
            .collect();
        for (cell, name) in unit.cells.iter().zip(&unit.names) {
            out.push((
                ns.clone(),
                name.clone(),
                NetworkPolicy {
                    metadata: metadata(name, Some(&ns)),
                    spec: Some(NetworkPolicySpec {
                        pod_selector: Some(cell.to_k8s()),
                        policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
                        ingress: (!ingress.is_empty()).then(|| ingress.clone()),
                        egress: (!egress.is_empty()).then(|| egress.clone()),
                    }),
                },
            ));
        }
    }
    (out, holes)
}
