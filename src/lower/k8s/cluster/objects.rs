//! The cluster-tier objects as the API reads them (not in k8s-openapi): ClusterNetworkPolicy
//! (`policy.networking.k8s.io/v1alpha2`) and the legacy AdminNetworkPolicy
//! (`policy.networking.k8s.io/v1alpha1`), serialised field for field. The rules that fill them
//! are built in the parent module.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::Serialize;

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::lower::k8s) struct NamespacedPod {
    pub(super) namespace_selector: LabelSelector,
    pub(super) pod_selector: LabelSelector,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterNetworkPolicy {
    pub(super) api_version: &'static str,
    pub(super) kind: &'static str,
    pub(in crate::lower::k8s) metadata: ObjectMeta,
    pub(in crate::lower::k8s) spec: CnpSpec,
}

#[derive(Serialize)]
pub(in crate::lower::k8s) struct CnpSpec {
    pub(super) tier: &'static str,
    pub(super) priority: u32,
    pub(super) subject: Subject,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) ingress: Vec<CnpIngress>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) egress: Vec<CnpEgress>,
}

#[derive(Clone, Serialize)]
pub(in crate::lower::k8s) struct Subject {
    pub(super) pods: NamespacedPod,
}

#[derive(Serialize)]
pub(super) struct CnpIngress {
    pub(super) name: String,
    pub(super) action: &'static str,
    pub(super) from: Vec<PeerObj>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) protocols: Option<Vec<CnpProtocol>>,
}

#[derive(Serialize)]
pub(super) struct CnpEgress {
    pub(super) name: String,
    pub(super) action: &'static str,
    pub(super) to: Vec<PeerObj>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) protocols: Option<Vec<CnpProtocol>>,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) enum PeerObj {
    Pods(NamespacedPod),
    Networks(Vec<String>),
}

/// `{"tcp": {"destinationPort": {"number": 80}}}` or `... {"range": {"start": 1, "end": 9}}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) enum CnpProtocol {
    Tcp(CnpL4),
    Udp(CnpL4),
    Sctp(CnpL4),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CnpL4 {
    pub(super) destination_port: CnpPort,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) enum CnpPort {
    Number(u16),
    Range { start: u16, end: u16 },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminNetworkPolicy {
    pub(super) api_version: &'static str,
    pub(super) kind: &'static str,
    pub(in crate::lower::k8s) metadata: ObjectMeta,
    pub(in crate::lower::k8s) spec: AnpSpec,
}

#[derive(Serialize)]
pub(in crate::lower::k8s) struct AnpSpec {
    pub(super) priority: u32,
    pub(super) subject: Subject,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) ingress: Vec<AnpIngress>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) egress: Vec<AnpEgress>,
}

#[derive(Serialize)]
pub(super) struct AnpIngress {
    pub(super) name: String,
    pub(super) action: &'static str,
    pub(super) from: Vec<PeerObj>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) ports: Option<Vec<AnpPort>>,
}

#[derive(Serialize)]
pub(super) struct AnpEgress {
    pub(super) name: String,
    pub(super) action: &'static str,
    pub(super) to: Vec<PeerObj>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) ports: Option<Vec<AnpPort>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) enum AnpPort {
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

/// One cluster-tier object of either kind.
pub(in crate::lower::k8s) enum TierObject {
    Cnp(Box<ClusterNetworkPolicy>),
    Anp(Box<AdminNetworkPolicy>),
}

impl TierObject {
    pub(in crate::lower::k8s) fn name(&self) -> &str {
        let m = match self {
            TierObject::Cnp(o) => &o.metadata,
            TierObject::Anp(o) => &o.metadata,
        };
        m.name.as_deref().unwrap_or_default()
    }
}
