//! Test fixtures for the Kubernetes output (the NCA differential test, `scripts/nca-diff.sh`):
//! pods for every label class of a policy, found by brute force and independently of the
//! lowering's own classes, the Namespaces and Pods an analyser needs, and the evaluator's
//! allowed ports between every pair of pods.
//!
//! A *witness* pod carries a combination of labels; its groups are those whose `select` its
//! labels satisfy (membership as Kubernetes sees pods: labels only), with the tenant's `any`.
//! Every combination of the selectors' keys (each absent, one of the values a selector wants,
//! or another value) is tried, and each distinct group set gets two pods (so that two pods of
//! one class meet: analysers never report a pod's connections to itself).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use crate::eval::{self, Flow, Proto, Verdict};
use crate::model::{EntryProto, GroupId, GroupKind, Policy, TenantId};

/// A pod of the fixture.
#[derive(Clone, Debug)]
pub struct Pod {
    /// `tenant/name`.
    pub name: String,
    pub tenant: TenantId,
    pub labels: BTreeMap<String, String>,
    /// The groups the evaluator sees for it (sorted).
    pub groups: Vec<GroupId>,
    pub ip: String,
}

/// Two pods for every label class of every tenant; `None` when a tenant has more than
/// `max_classes` classes, or more than 100,000 label combinations to try.
pub fn witnesses(p: &Policy, max_classes: usize) -> Option<Vec<Pod>> {
    let mut out = Vec::new();
    let mut n = 0u32;
    for (ti, t) in p.tenants.iter().enumerate() {
        let tid = TenantId(ti as u32);
        let groups: Vec<(GroupId, &BTreeMap<String, String>)> = p
            .groups
            .iter()
            .enumerate()
            .filter(|(_, g)| {
                g.tenant == tid && g.kind == GroupKind::Internal && !g.selector.is_empty()
            })
            .map(|(i, g)| (GroupId(i as u32), &g.selector))
            .collect();
        let mut keys: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (_, sel) in &groups {
            for (k, v) in sel.iter() {
                keys.entry(k).or_default().insert(v);
            }
        }
        let choices: Vec<(&str, Vec<Option<&str>>)> = keys
            .iter()
            .map(|(k, vs)| {
                let mut c: Vec<Option<&str>> = vec![None, Some("gbpc-other")];
                c.extend(vs.iter().map(|v| Some(*v)));
                (*k, c)
            })
            .collect();
        let total = choices
            .iter()
            .try_fold(1usize, |acc, (_, c)| acc.checked_mul(c.len()))?;
        if total > 100_000 {
            return None;
        }
        let mut seen: BTreeSet<Vec<GroupId>> = BTreeSet::new();
        for i in 0..total {
            let mut rest = i;
            let mut labels = BTreeMap::new();
            for (k, c) in &choices {
                if let Some(v) = c[rest % c.len()] {
                    labels.insert(k.to_string(), v.to_string());
                }
                rest /= c.len();
            }
            let mut set: Vec<GroupId> = groups
                .iter()
                .filter(|(_, sel)| sel.iter().all(|(k, v)| labels.get(k) == Some(v)))
                .map(|(g, _)| *g)
                .collect();
            if set.is_empty() {
                continue;
            }
            set.push(t.any);
            set.sort_unstable();
            if !seen.insert(set.clone()) {
                continue;
            }
            if seen.len() > max_classes {
                return None;
            }
            for half in ["a", "b"] {
                n += 1;
                out.push(Pod {
                    name: format!("{}/gbpc-class{}{half}", t.name, seen.len()),
                    tenant: tid,
                    labels: labels.clone(),
                    groups: set.clone(),
                    // Inside 198.18.0.0/15, where no generated policy puts an address.
                    ip: format!("198.19.{}.{}", 200 + n / 250, 1 + n % 250),
                });
            }
        }
    }
    Some(out)
}

/// The pods of the differential test: every declared internal endpoint and, unless a tenant
/// has more than `max_classes` label classes, two witness pods per label class.
pub fn pods(p: &Policy, max_classes: usize) -> Vec<Pod> {
    let mut v = endpoint_pods(p);
    v.extend(witnesses(p, max_classes).unwrap_or_default());
    v
}

/// The declared internal endpoints as pods (their own groups: both views of membership).
pub fn endpoint_pods(p: &Policy) -> Vec<Pod> {
    p.endpoints
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.external)
        .map(|(i, e)| Pod {
            name: p.endpoint_name(crate::model::EndpointId(i as u32)),
            tenant: e.tenant,
            labels: e.labels.clone(),
            groups: e.groups.clone(),
            ip: e
                .addrs
                .first()
                .map(|a| a.ip().to_string())
                .unwrap_or_default(),
        })
        .collect()
}

/// The Namespaces and Pods as a Kubernetes `List` (JSON). Every pod also carries a unique
/// `gbpc.test/endpoint` label, so that no two pods look alike to an analyser.
pub fn fixture(p: &Policy, pods: &[Pod]) -> String {
    let mut items = Vec::new();
    for t in &p.tenants {
        items.push(json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": t.name, "labels": {super::NAMESPACE_NAME_LABEL: t.name}},
        }));
    }
    for pod in pods {
        let mut labels = serde_json::Map::new();
        for (k, v) in &pod.labels {
            labels.insert(k.clone(), json!(v));
        }
        let short = pod.name.rsplit('/').next().unwrap_or(&pod.name);
        labels.insert("gbpc.test/endpoint".into(), json!(short));
        items.push(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": short, "namespace": p.tenant(pod.tenant).name, "labels": labels},
            "spec": {"containers": [{"name": "main", "image": "registry.invalid/gbpc-test"}]},
            "status": {"podIP": pod.ip, "podIPs": [{"ip": pod.ip}], "hostIP": "192.0.2.1"},
        }));
    }
    serde_json::to_string_pretty(&json!({"apiVersion": "v1", "kind": "List", "items": items}))
        .unwrap_or_default()
}

/// The evaluator's allowed destination ports between every ordered pair of distinct pods, per
/// protocol (tcp, udp, sctp): `{"pairs": [{"src": "t/e", "dst": "t/e", "allow": {"tcp":
/// [[lo, hi], ...], ...}, "allow_without_denies": {...}}]}`. `allow_without_denies` is the
/// evaluator's verdict on the policy with every deny subject left out (for statistics: where
/// a deny changes the verdict).
pub fn matrix(p: &Policy, pods: &[Pod]) -> String {
    let mut nodeny = p.clone();
    for c in &mut nodeny.contracts {
        c.subjects
            .retain(|s| s.action != crate::model::Action::Deny);
    }
    let with = allowed(p, pods);
    let without = allowed(&nodeny, pods);
    let pairs: Vec<serde_json::Value> = with
        .into_iter()
        .zip(without)
        .map(|((src, dst, allow), (_, _, nodeny))| {
            json!({"src": src, "dst": dst, "allow": allow, "allow_without_denies": nodeny})
        })
        .collect();
    serde_json::to_string_pretty(&json!({ "pairs": pairs, "external": external(p, pods) }))
        .unwrap_or_default()
}

/// The evaluator's allowed ports between every pod and every range of addresses outside the
/// cluster (the address classes of external groups only), both ways, where anything is
/// allowed: `[{"pod": "t/e", "dir": "out" | "in", "lo": "192.0.2.0", "hi": "192.0.2.127",
/// "allow": {...}}]`. Addresses of the fabric (internal groups) and of no group are never
/// reachable through an `ipBlock`: nothing is listed for them.
fn external(p: &Policy, pods: &[Pod]) -> Vec<serde_json::Value> {
    let cls = &p.classes;
    let external: Vec<bool> = cls
        .sets
        .iter()
        .map(|s| {
            !s.is_empty()
                && s.iter().all(|g| {
                    p.groups
                        .get(g.index())
                        .is_some_and(|x| x.kind == GroupKind::External)
                })
        })
        .collect();
    let mut memo: BTreeMap<(bool, &[GroupId], u32), Option<serde_json::Value>> = BTreeMap::new();
    let mut out = Vec::new();
    for pod in pods {
        for (family, table) in [
            (crate::net::Family::V4, &cls.v4),
            (crate::net::Family::V6, &cls.v6),
        ] {
            for &(lo, hi, c) in table.iter() {
                if external.get(c as usize) != Some(&true) {
                    continue;
                }
                let set = &cls.sets[c as usize];
                for egress in [true, false] {
                    let allow = memo
                        .entry((egress, pod.groups.as_slice(), c))
                        .or_insert_with(|| {
                            let (src, dst): (&[GroupId], &[GroupId]) = if egress {
                                (&pod.groups, set)
                            } else {
                                (set, &pod.groups)
                            };
                            let a = ports_between(p, src, dst);
                            let any = a.as_object().is_some_and(|m| {
                                m.values()
                                    .any(|v| v.as_array().is_some_and(|x| !x.is_empty()))
                            });
                            any.then_some(a)
                        })
                        .clone();
                    if let Some(allow) = allow {
                        out.push(json!({
                            "pod": pod.name,
                            "dir": if egress { "out" } else { "in" },
                            "lo": crate::net::addr_to_ip(family, lo).to_string(),
                            "hi": crate::net::addr_to_ip(family, hi).to_string(),
                            "allow": allow,
                        }));
                    }
                }
            }
        }
    }
    out
}

/// The allowed TCP, UDP and SCTP ports from `src` to `dst` (group sets), as JSON.
fn ports_between(p: &Policy, src: &[GroupId], dst: &[GroupId]) -> serde_json::Value {
    let mut allow = serde_json::Map::new();
    let segs = crate::analysis::sweep(p, src, dst, None);
    for (space, name) in [
        (crate::analysis::Space::Tcp, "tcp"),
        (crate::analysis::Space::Udp, "udp"),
        (crate::analysis::Space::Sctp, "sctp"),
    ] {
        let mut a: Vec<(u32, u32)> = Vec::new();
        for s in segs
            .iter()
            .filter(|s| s.space == space && s.decision.verdict == Verdict::Allow)
        {
            crate::analysis::push_range(&mut a, s.lo, s.hi);
        }
        allow.insert(name.into(), json!(a));
    }
    serde_json::Value::Object(allow)
}

/// (src, dst, allowed ports per protocol) for every ordered pair of distinct pods.
fn allowed<'a>(p: &Policy, pods: &'a [Pod]) -> Vec<(&'a str, &'a str, serde_json::Value)> {
    let protos = [
        (Proto::Tcp, EntryProto::Tcp, "tcp"),
        (Proto::Udp, EntryProto::Udp, "udp"),
        (Proto::Sctp, EntryProto::Sctp, "sctp"),
    ];
    // Segments of 1..=65535 on which every filter entry of the protocol is constant.
    let segments: Vec<Vec<(u16, u16)>> = protos
        .iter()
        .map(|&(_, ep, _)| {
            let mut cuts: Vec<u32> = vec![1, 65536];
            for f in &p.filters {
                for e in f.entries.iter().filter(|e| e.proto == ep) {
                    for &(lo, hi) in &e.ranges {
                        cuts.push(u32::from(lo));
                        cuts.push(u32::from(hi) + 1);
                    }
                }
            }
            cuts.retain(|&c| (1..=65536).contains(&c));
            cuts.sort_unstable();
            cuts.dedup();
            cuts.windows(2)
                .map(|w| (w[0] as u16, (w[1] - 1) as u16))
                .collect()
        })
        .collect();
    let mut memo: BTreeMap<(&[GroupId], &[GroupId]), serde_json::Value> = BTreeMap::new();
    let mut pairs = Vec::new();
    for (si, s) in pods.iter().enumerate() {
        for (di, d) in pods.iter().enumerate() {
            if si == di {
                continue;
            }
            let allow = memo
                .entry((s.groups.as_slice(), d.groups.as_slice()))
                .or_insert_with(|| {
                    let app = eval::applicable(p, &s.groups, &d.groups);
                    let mut allow = serde_json::Map::new();
                    for (pi, &(proto, _, pname)) in protos.iter().enumerate() {
                        let mut a: Vec<(u16, u16)> = Vec::new();
                        for &(lo, hi) in &segments[pi] {
                            let flow = Flow { proto, port: lo };
                            // Pods: a NetworkPolicy peer has no address family.
                            let both = eval::Families::BOTH;
                            let conn = eval::Conn::new(
                                eval::End::new(&s.groups, both),
                                eval::End::new(&d.groups, both),
                                flow,
                            );
                            if conn.is_ok_and(|c| {
                                eval::decide_with(p, &app, &c).verdict == Verdict::Allow
                            }) {
                                match a.last_mut() {
                                    Some((_, h)) if u32::from(*h) + 1 == u32::from(lo) => *h = hi,
                                    _ => a.push((lo, hi)),
                                }
                            }
                        }
                        allow.insert(pname.into(), json!(a));
                    }
                    serde_json::Value::Object(allow)
                })
                .clone();
            pairs.push((s.name.as_str(), d.name.as_str(), allow));
        }
    }
    pairs
}
