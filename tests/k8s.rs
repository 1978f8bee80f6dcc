//! The Kubernetes backend: strict schema validation of every object, an independent
//! NetworkPolicy/AdminNetworkPolicy interpreter compared flow by flow with the evaluator,
//! determinism, and unit cases for each lowering rule.
//!
//! The interpreter below reads only the JSON objects and the declared endpoints (as pods:
//! namespace = tenant, labels = endpoint labels); it shares no code with `src/lower`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;

use gbpc::diag::{Code, Diagnostic, Severity};
use gbpc::eval::{self, Flow, Proto, Reason, Verdict};
use gbpc::lower::k8s::{self, DenyMode, Format, Options};
use gbpc::model::{EntryProto, GroupId, GroupKind, Policy};
use serde_json::{Value, json};

// ---- helpers --------------------------------------------------------------------------------

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn policy(src: &str) -> Policy {
    let checked = gbpc::check_source(src);
    assert!(
        checked.ok(),
        "policy does not check: {:#?}",
        checked
            .errors
            .iter()
            .map(|d| d.message.clone())
            .collect::<Vec<_>>()
    );
    checked.policy
}

fn opts(deny: DenyMode) -> Options {
    Options {
        format: Format::Json,
        deny,
        allow_dns: false,
    }
}

/// Lower to JSON and parse it back: the List and the warnings.
fn lower(p: &Policy, o: &Options) -> Result<(Value, Vec<Diagnostic>), Vec<Diagnostic>> {
    let l = k8s::lower(p, o)?;
    assert!(l.text.ends_with("}\n"), "JSON ends with one newline");
    let v: Value = serde_json::from_str(&l.text).expect("the output is JSON");
    assert_eq!(v["apiVersion"], "v1");
    assert_eq!(v["kind"], "List");
    Ok((v, l.warnings))
}

fn lower_ok(src: &str, o: &Options) -> (Value, Vec<Diagnostic>) {
    match lower(&policy(src), o) {
        Ok(x) => x,
        Err(e) => panic!(
            "lowering failed: {:#?}",
            e.iter().map(|d| &d.message).collect::<Vec<_>>()
        ),
    }
}

fn lower_err(src: &str, o: &Options) -> Vec<Diagnostic> {
    match lower(&policy(src), o) {
        Ok(_) => panic!("lowering should fail"),
        Err(e) => e,
    }
}

fn items(list: &Value) -> &[Value] {
    list["items"].as_array().map_or(&[], Vec::as_slice)
}

fn item<'a>(list: &'a Value, ns: Option<&str>, name: &str) -> &'a Value {
    items(list)
        .iter()
        .find(|i| i["metadata"]["name"] == name && i["metadata"]["namespace"].as_str() == ns)
        .unwrap_or_else(|| panic!("no object {ns:?}/{name}"))
}

/// The text a diagnostic's primary label covers.
fn primary_text<'a>(src: &'a str, d: &Diagnostic) -> &'a str {
    let s = d.primary_span().expect("a primary label");
    &src[s.start..s.end]
}

/// The example policies, by file name.
fn examples() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let dir = root().join("examples");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "gbp"))
        .collect();
    paths.sort();
    for p in paths {
        if let Ok(src) = std::fs::read_to_string(&p) {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            out.push((name.unwrap_or_default(), src));
        }
    }
    out
}

/// The deny modes whose output must agree with the evaluator.
const MODES: [DenyMode; 3] = [DenyMode::Subtract, DenyMode::Cluster, DenyMode::Admin];

/// Lower a policy the way a user would, in one deny mode. Every policy that checks compiles
/// with the default (`Subtract`); the cluster-tier modes may only fail for want of priorities
/// (E042). `None` when it cannot compile (printed, with the reason).
fn lower_example(name: &str, p: &Policy, allow_dns: bool, deny: DenyMode) -> Option<Value> {
    let mut o = opts(deny);
    o.allow_dns = allow_dns;
    match lower(p, &o) {
        Ok((v, _)) => Some(v),
        Err(errors) => {
            for e in &errors {
                assert!(
                    deny != DenyMode::Subtract,
                    "{name}: does not compile with the default options: {} {}",
                    e.code,
                    e.message
                );
                assert_eq!(
                    e.code,
                    Code::K8sUnsupported,
                    "{name}: unexpected error with {deny:?}: {}",
                    e.message
                );
                eprintln!("{name}: not expressible with {deny:?}: {}", e.message);
            }
            None
        }
    }
}

// ---- a policy that uses every construct ---------------------------------------------------

const KITCHEN_SINK: &str = r#"
tenant shop {
  filter web     { tcp 80, 8000-8099 }
  filter all     { ip }
  filter mixed   { tcp 22; icmp echo-request }
  filter anytcp  { tcp }
  filter sig     { sctp 3868; udp 5060-5061 }
  filter blocked { tcp 8081 }
  filter pg      { tcp 5432 }
  filter ping    { icmp echo-request }

  contract front { subject http permit web }
  contract ops   { subject ssh permit mixed  subject everything permit all }
  contract back  { subject sql permit pg  subject tcp permit anytcp  subject no-8081 deny blocked }
  contract out   { subject any-tcp permit anytcp  subject no-pg deny pg }
  contract pings { subject ping permit ping }
  global contract sig { subject s permit sig }

  group lb {
    select app=lb
    address 198.18.1.0/24
    endpoint lb1 198.18.1.10
    endpoint lb2 198.18.1.11
    provides front, sig
    consumes back
  }
  group app isolated {
    select app=app
    address 198.18.2.0/24
    endpoint app1 198.18.2.10
    endpoint app2 198.18.2.11
    provides back
    consumes out
  }
  group app-canary extends app {
    select app=app, track=canary
    address 198.18.3.0/24
    endpoint canary1 198.18.3.10
  }
  group ops {
    select role=ops
    address 198.18.9.0/24
    endpoint op1 198.18.9.10
    endpoint op2 198.18.9.11
    consumes ops, pings
  }
  any { provides ops, pings }

  external internet {
    address 0.0.0.0/0 except 198.18.0.0/15
    endpoint customer 203.0.113.10
    consumes front
  }
  external mirror {
    address 192.0.2.0/24 except 192.0.2.128/25
    endpoint m1 192.0.2.10
    provides out
  }
}

tenant tel {
  group pbx {
    select app=pbx
    address 198.18.20.0/24
    endpoint pbx1 198.18.20.10
    endpoint pbx2 198.18.20.11
    consumes shop/sig
  }
}
"#;

/// Denies in every position: over the intra-group default, through `any`, across tenants,
/// and an `ip` deny (every protocol).
const DENIES: &str = r#"
tenant a {
  filter ssh { tcp 22 }
  filter web { tcp 80-90 }
  filter w85 { tcp 85 }
  filter all { ip }
  global contract g { subject web permit web  subject no-85 deny w85 }
  contract self { subject no-ssh deny ssh }
  contract nuke { subject all deny all }
  group x {
    select app=x
    address 198.18.30.0/24
    endpoint x1 198.18.30.1
    endpoint x2 198.18.30.2
    provides g, self
    consumes self
  }
  group y { select app=y  address 198.18.31.0/24  endpoint y1 198.18.31.1 labels team=yz  consumes nuke }
  group z { select app=z  address 198.18.32.0/24  endpoint z1 198.18.32.1 labels team=yz  provides nuke }
  group yz { select team=yz }
  any { consumes g }
}
tenant b {
  group u {
    select app=u
    address 198.18.40.0/24
    endpoint u1 198.18.40.1
    endpoint u2 198.18.40.2
    consumes a/g
  }
}
"#;

/// Every policy the corpus tests run on: the examples and the inline policies above.
fn corpus() -> Vec<(String, String)> {
    let mut v = examples();
    v.push(("kitchen-sink".into(), KITCHEN_SINK.into()));
    v.push(("denies".into(), DENIES.into()));
    v
}

// ---- 1. strict schema validation -----------------------------------------------------------

struct Schemas {
    np: jsonschema::Validator,
    anp: jsonschema::Validator,
    /// Names and labels, for every kind (what the API server checks beyond OpenAPI).
    names: jsonschema::Validator,
    cnp: jsonschema::Validator,
}

fn schemas() -> Schemas {
    let load = |f: &str| -> jsonschema::Validator {
        let text = std::fs::read_to_string(root().join("schemas").join(f)).expect("schema file");
        let schema: Value = serde_json::from_str(&text).expect("schema JSON");
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .build(&schema)
            .expect("schema compiles")
    };
    Schemas {
        np: load("networkpolicy-networking-v1.json"),
        anp: load("adminnetworkpolicy-policy-v1alpha1.json"),
        names: load("k8s-names.json"),
        cnp: load("clusternetworkpolicy-policy-v1alpha2.json"),
    }
}

/// What the CRDs check with CEL and the API server with its own validation, beyond the
/// OpenAPI schema: port ranges with start < end, CIDRs that parse (with no host bits), label
/// selector requirements with values exactly for In and NotIn, and no empty `NotIn` list.
fn validate_beyond_schema(what: &str, it: &Value, problems: &mut Vec<String>) {
    fn walk(v: &Value, path: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let (Some(start), Some(end)) = (m.get("start"), m.get("end"))
                    && path.ends_with("range")
                    && start.as_u64() >= end.as_u64()
                {
                    out.push(format!(
                        "{path}: range start {start} is not below end {end}"
                    ));
                }
                if let Some(op) = m.get("operator").and_then(Value::as_str) {
                    let n = m
                        .get("values")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len);
                    let ok = match op {
                        "In" | "NotIn" => n > 0,
                        "Exists" | "DoesNotExist" => n == 0,
                        _ => false,
                    };
                    if !ok {
                        out.push(format!("{path}: operator {op} with {n} values"));
                    }
                }
                for (k, x) in m {
                    let p = format!("{path}/{k}");
                    if k == "networks" || k == "except" {
                        for c in x.as_array().into_iter().flatten() {
                            let text = c.as_str().unwrap_or_default();
                            if gbpc::net::Cidr::parse(text).is_err() {
                                out.push(format!("{p}: {text} is not a CIDR"));
                            }
                        }
                    }
                    if k == "cidr" {
                        let text = x.as_str().unwrap_or_default();
                        if gbpc::net::Cidr::parse(text).is_err() {
                            out.push(format!("{p}: {text} is not a CIDR"));
                        }
                    }
                    walk(x, &p, out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, &format!("{path}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(it, "", &mut found);
    for f in found {
        problems.push(format!(
            "{what}: {} {}: {f}",
            it["kind"], it["metadata"]["name"]
        ));
    }
}

/// Every item validates against its kind's schema; returns the number of items checked.
fn validate(s: &Schemas, what: &str, list: &Value) -> usize {
    let mut problems = Vec::new();
    for it in items(list) {
        let v = match it["kind"].as_str() {
            Some("NetworkPolicy") => &s.np,
            Some("AdminNetworkPolicy") => &s.anp,
            Some("ClusterNetworkPolicy") => &s.cnp,
            k => panic!("{what}: unexpected kind {k:?}"),
        };
        validate_beyond_schema(what, it, &mut problems);
        for e in v.iter_errors(it).chain(s.names.iter_errors(it)) {
            problems.push(format!(
                "{what}: {} {}: {} at {}",
                it["kind"],
                it["metadata"]["name"],
                e,
                e.instance_path()
            ));
        }
        assert_eq!(
            it["metadata"]["labels"]["app.kubernetes.io/managed-by"], "gbpc",
            "{what}: every object is labelled"
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    items(list).len()
}

#[test]
fn every_object_validates_against_the_strict_schemas() {
    let s = schemas();
    let mut checked = 0;
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let sources = corpus();
    for (name, src) in &sources {
        let c = gbpc::check_source(src);
        if !c.ok() {
            eprintln!("{name}: does not check; skipped");
            continue;
        }
        for allow_dns in [false, true] {
            for deny in MODES {
                let Some(list) = lower_example(name, &c.policy, allow_dns, deny) else {
                    continue;
                };
                checked += validate(&s, name, &list);
                for i in items(&list) {
                    *kinds
                        .entry(i["kind"].as_str().unwrap_or("").into())
                        .or_default() += 1;
                }
            }
        }
    }
    assert!(checked > 0, "validated {checked} objects");
    for k in [
        "NetworkPolicy",
        "ClusterNetworkPolicy",
        "AdminNetworkPolicy",
    ] {
        assert!(
            kinds.get(k).is_some_and(|&n| n > 0),
            "no {k} validated: {kinds:?}"
        );
    }
}

/// The checks beyond the schemas catch what they claim to (a check that cannot fail proves
/// nothing).
#[test]
fn checks_beyond_the_schemas_can_fail() {
    let bad = json!({"kind": "ClusterNetworkPolicy", "metadata": {"name": "x"}, "spec": {
        "ingress": [{"protocols": [{"tcp": {"destinationPort": {"range": {"start": 9, "end": 9}}}}],
                     "from": [{"pods": {"podSelector": {"matchExpressions": [
                         {"key": "a", "operator": "NotIn", "values": []},
                         {"key": "b", "operator": "DoesNotExist", "values": ["x"]}]}}}]}],
        "egress": [{"to": [{"networks": ["10.0.0.1/8", "nonsense"]}]}]}});
    let mut problems = Vec::new();
    validate_beyond_schema("bad", &bad, &mut problems);
    assert_eq!(problems.len(), 5, "{problems:#?}");
}

#[test]
fn yaml_is_one_document_per_object() {
    let p = policy(KITCHEN_SINK);
    let mut o = opts(DenyMode::Admin);
    yaml_documents(&p, &mut o);
    let mut o = opts(DenyMode::Cluster);
    yaml_documents(&p, &mut o);
}

fn yaml_documents(p: &Policy, o: &mut Options) {
    let json = lower(p, o).expect("lowers").0;
    o.format = Format::Yaml;
    let yaml = k8s::lower(p, o).expect("lowers").text;
    let n = items(&json).len();
    assert!(n > 2);
    assert_eq!(yaml.matches("\n---\n").count(), n - 1, "{yaml}");
    assert!(!yaml.starts_with("---"));
    let tier = items(&json)
        .iter()
        .filter(|i| i["kind"] != "NetworkPolicy")
        .count();
    assert!(tier > 0);
    let kind = if o.deny == DenyMode::Admin {
        "AdminNetworkPolicy"
    } else {
        "ClusterNetworkPolicy"
    };
    assert_eq!(yaml.matches("kind: NetworkPolicy\n").count(), n - tier);
    assert_eq!(yaml.matches(&format!("kind: {kind}\n")).count(), tier);
    assert!(yaml.contains("app.kubernetes.io/managed-by: gbpc"));
    assert!(yaml.contains("endPort: 8099"));
    assert!(yaml.ends_with('\n'));
}

/// The YAML output read back as kubectl reads it (YAML 1.1, keys typed too) is the JSON
/// output's items, document for document; `what` names the case in failures.
fn assert_yaml_reads_back(what: &str, p: &Policy, o: &Options) {
    let json = lower(p, o)
        .unwrap_or_else(|e| panic!("{what}: JSON lowering failed: {e:#?}"))
        .0;
    let yaml = k8s::lower(
        p,
        &Options {
            format: Format::Yaml,
            ..o.clone()
        },
    )
    .unwrap_or_else(|e| panic!("{what}: YAML lowering failed: {e:#?}"))
    .text;
    let docs = crate::yaml_back::read_documents(&yaml)
        .unwrap_or_else(|e| panic!("{what}: the YAML does not read back: {e}\n{yaml}"));
    let want = items(&json);
    assert_eq!(docs.len(), want.len(), "{what}: documents");
    for (got, want) in docs.iter().zip(want) {
        assert_eq!(
            got, want,
            "{what}: a YAML document reads back different from the JSON item\n{yaml}"
        );
    }
}

/// Names and label words that break careless output (digit-first and number-like names,
/// every nftables keyword, YAML's special words, 63-character names everywhere at once,
/// label values like `true`, `null`, `0x1F`, `010`, `1e3`, empty): every generated policy
/// checks clean, and its objects pass the strict schemas and the name rules, in JSON and in
/// YAML read back as kubectl reads it.
#[test]
fn hostile_names_give_valid_objects_in_json_and_yaml() {
    let s = schemas();
    let mut objects = 0;
    for seed in 0..HOSTILE_SEEDS {
        let src = gbpc::synth::hostile_policy(seed, gbpc::synth::Size::DEFAULT);
        let c = gbpc::check_source(&src);
        assert!(
            c.ok(),
            "seed {seed}: a hostile policy does not check: {:#?}\n{src}",
            c.errors.iter().map(|d| &d.message).collect::<Vec<_>>()
        );
        for allow_dns in [false, true] {
            let o = Options {
                allow_dns,
                ..opts(DenyMode::Admin)
            };
            let what = format!("seed {seed} (allow_dns {allow_dns})");
            let list = match lower(&c.policy, &o) {
                Ok((list, _)) => list,
                Err(e) => panic!(
                    "{what}: a policy that checks clean does not lower: {:#?}\n{src}",
                    e.iter().map(|d| &d.message).collect::<Vec<_>>()
                ),
            };
            objects += validate(&s, &what, &list);
            assert_yaml_reads_back(&what, &c.policy, &o);
        }
    }
    assert!(objects > HOSTILE_SEEDS as usize * 4, "{objects} objects");
}

/// Hostile policies per property test (each is lowered twice, in JSON and YAML).
const HOSTILE_SEEDS: u64 = 60;

/// The words YAML reads as something else when plain, as namespaces, object names, label keys
/// and values (and an empty value): each comes back as the string it was.
#[test]
fn yaml_special_words_read_back_as_strings() {
    let words = gbpc::synth::YAML_LABEL_WORDS;
    let mut src = String::new();
    for (i, w) in gbpc::synth::YAML_NAMES.iter().enumerate() {
        let (k, v) = (words[i % words.len()], words[(i * 7 + 3) % words.len()]);
        src.push_str(&format!(
            "tenant {w} {{ filter {w} {{ tcp 80 }} contract {w} {{ subject {w} permit {w} }}
               group {w} {{ select {k}={v}, e{i}=\"\" address 198.18.{i}.0/24 provides {w} consumes {w} }} }}\n"
        ));
    }
    let p = policy(&src);
    for allow_dns in [false, true] {
        let o = Options {
            allow_dns,
            ..opts(DenyMode::Admin)
        };
        validate(&schemas(), "yaml words", &lower(&p, &o).unwrap().0);
        assert_yaml_reads_back("yaml words", &p, &o);
    }
}

// ---- 2. an independent interpreter ---------------------------------------------------------

/// A declared endpoint as Kubernetes sees it: a pod (namespace, labels) or an outside address.
struct Node {
    name: String,
    /// `None` for an external endpoint (not a pod).
    ns: Option<String>,
    labels: BTreeMap<String, String>,
    ips: Vec<IpAddr>,
    groups: Vec<gbpc::model::GroupId>,
}

fn nodes(p: &Policy) -> Vec<Node> {
    p.endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| Node {
            name: p.endpoint_name(gbpc::model::EndpointId(i as u32)),
            ns: (!e.external).then(|| p.tenant(e.tenant).name.clone()),
            labels: e.labels.clone(),
            ips: e.addrs.iter().map(|a| a.ip()).collect(),
            groups: e.groups.clone(),
        })
        .collect()
}

/// Pods for every label class of every tenant, found by brute force and independently of the
/// lowering: every combination of the selectors' keys (each absent, one of the values some
/// selector wants, or another value), one class per distinct set of groups whose selectors
/// the labels satisfy, two pods per class (so that two pods of one class meet). `None` when a
/// tenant has more than `max` classes or combinations to try.
fn class_pods(p: &Policy, max: usize) -> Option<Vec<Node>> {
    let mut out = Vec::new();
    for (ti, t) in p.tenants.iter().enumerate() {
        let tid = gbpc::model::TenantId(ti as u32);
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
        for mut i in 0..total {
            let mut labels = BTreeMap::new();
            for (k, c) in &choices {
                if let Some(v) = c[i % c.len()] {
                    labels.insert(k.to_string(), v.to_string());
                }
                i /= c.len();
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
            if seen.len() > max {
                return None;
            }
            for half in ["a", "b"] {
                out.push(Node {
                    name: format!("{}/class{}{half}", t.name, seen.len()),
                    ns: Some(t.name.clone()),
                    labels: labels.clone(),
                    ips: Vec::new(),
                    groups: set.clone(),
                });
            }
        }
    }
    Some(out)
}

fn ns_labels(ns: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("kubernetes.io/metadata.name".to_string(), ns.to_string())])
}

/// Kubernetes label selector semantics (an empty selector selects everything).
fn selects(sel: &Value, labels: &BTreeMap<String, String>) -> bool {
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            if labels.get(k).map(String::as_str) != v.as_str() {
                return false;
            }
        }
    }
    for req in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = req["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = req["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let have = labels.get(key).map(String::as_str);
        let ok = match req["operator"].as_str() {
            Some("In") => have.is_some_and(|h| values.contains(&h)),
            Some("NotIn") => have.is_none_or(|h| !values.contains(&h)),
            Some("Exists") => have.is_some(),
            Some("DoesNotExist") => have.is_none(),
            op => panic!("unknown operator {op:?}"),
        };
        if !ok {
            return false;
        }
    }
    true
}

fn in_cidr(cidr: &str, ip: IpAddr) -> bool {
    let (addr, len) = cidr.split_once('/').expect("CIDR with a length");
    let addr: IpAddr = addr.parse().expect("CIDR address");
    let len: u32 = len.parse().expect("CIDR length");
    match (addr, ip) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

fn in_ip_block(block: &Value, node: &Node) -> bool {
    let cidr = block["cidr"].as_str().expect("ipBlock.cidr");
    node.ips.iter().any(|&ip| {
        in_cidr(cidr, ip)
            && !block["except"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|x| in_cidr(x.as_str().unwrap_or_default(), ip))
    })
}

/// A NetworkPolicy peer (of a policy in `policy_ns`) matches a node.
fn np_peer_matches(policy_ns: &str, peer: &Value, node: &Node) -> bool {
    if let Some(block) = peer.get("ipBlock") {
        // ipBlock is for addresses outside the cluster; whether it matches pod addresses is up
        // to the plugin, so a separate test proves gbpc's blocks never contain a pod address.
        return node.ns.is_none() && in_ip_block(block, node);
    }
    let Some(ns) = &node.ns else {
        return false; // selectors match pods only
    };
    let ns_ok = match peer.get("namespaceSelector") {
        Some(sel) => selects(sel, &ns_labels(ns)),
        None => ns == policy_ns,
    };
    let pod_ok = match peer.get("podSelector") {
        Some(sel) => selects(sel, &node.labels),
        None => true,
    };
    ns_ok && pod_ok
}

fn k8s_proto(flow: Flow) -> Option<&'static str> {
    match flow.proto {
        Proto::Tcp => Some("TCP"),
        Proto::Udp => Some("UDP"),
        Proto::Sctp => Some("SCTP"),
        _ => None,
    }
}

/// A NetworkPolicy `ports` list (absent = every protocol and port) admits a flow.
fn np_ports_match(ports: Option<&Vec<Value>>, flow: Flow) -> bool {
    let Some(ports) = ports.filter(|v| !v.is_empty()) else {
        return true;
    };
    ports.iter().any(|pp| {
        let proto = pp["protocol"].as_str().unwrap_or("TCP");
        if k8s_proto(flow) != Some(proto) {
            return false;
        }
        match pp.get("port") {
            None => true,
            Some(Value::Number(n)) => {
                let lo = n.as_u64().expect("port number");
                let hi = pp["endPort"].as_u64().unwrap_or(lo);
                lo <= u64::from(flow.port) && u64::from(flow.port) <= hi
            }
            Some(other) => panic!("named ports are not emitted: {other}"),
        }
    })
}

/// An AdminNetworkPolicy v1alpha1 `ports` list (absent = every protocol and port).
fn anp_ports_match(ports: Option<&Vec<Value>>, flow: Flow) -> bool {
    let Some(ports) = ports else {
        return true;
    };
    ports.iter().any(|pp| {
        let (proto, lo, hi) = if let Some(n) = pp.get("portNumber") {
            let port = n["port"].as_u64().expect("port");
            (n["protocol"].as_str().unwrap_or("TCP"), port, port)
        } else {
            let r = &pp["portRange"];
            (
                r["protocol"].as_str().unwrap_or("TCP"),
                r["start"].as_u64().expect("start"),
                r["end"].as_u64().expect("end"),
            )
        };
        k8s_proto(flow) == Some(proto) && lo <= u64::from(flow.port) && u64::from(flow.port) <= hi
    })
}

/// A ClusterNetworkPolicy v1alpha2 `protocols` list (absent = all traffic, every protocol).
fn cnp_protocols_match(protocols: Option<&Vec<Value>>, flow: Flow) -> bool {
    let Some(protocols) = protocols else {
        return true;
    };
    protocols.iter().any(|pr| {
        let (name, body) = pr
            .as_object()
            .and_then(|m| m.iter().next())
            .expect("one protocol per entry");
        let proto = match name.as_str() {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "sctp" => Proto::Sctp,
            other => panic!("gbpc emits no {other} protocol match"),
        };
        if flow.proto != proto {
            return false;
        }
        let port = &body["destinationPort"];
        let (lo, hi) = if let Some(n) = port.get("number") {
            let n = n.as_u64().expect("number");
            (n, n)
        } else {
            let r = &port["range"];
            (
                r["start"].as_u64().expect("start"),
                r["end"].as_u64().expect("end"),
            )
        };
        lo <= u64::from(flow.port) && u64::from(flow.port) <= hi
    })
}

/// A cluster-tier subject or `pods`/`namespaces` peer selects a node.
fn tier_selects_pods(pods_or_ns: &Value, node: &Node) -> bool {
    let Some(ns) = &node.ns else {
        return false;
    };
    if let Some(sel) = pods_or_ns.get("namespaces") {
        return selects(sel, &ns_labels(ns));
    }
    let pods = &pods_or_ns["pods"];
    selects(&pods["namespaceSelector"], &ns_labels(ns))
        && selects(&pods["podSelector"], &node.labels)
}

fn tier_peer_matches(peer: &Value, node: &Node) -> bool {
    if let Some(nets) = peer.get("networks").and_then(Value::as_array) {
        // `networks` match pod addresses too (per the API's documentation).
        return nets.iter().any(|c| {
            node.ips
                .iter()
                .any(|&ip| in_cidr(c.as_str().unwrap_or_default(), ip))
        });
    }
    tier_selects_pods(peer, node)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    Accept,
    Deny,
    Pass,
}

/// One cluster-tier rule that applies to a pair at one end, ready to be ordered: (priority,
/// policy name, rule index) is the order of evaluation (ties between policies of one priority
/// are the implementation's choice; gbpc gives every policy its own).
struct TierRule<'a> {
    order: (u64, String, usize),
    action: Act,
    /// `true`: an AdminNetworkPolicy `ports` list; `false`: ClusterNetworkPolicy `protocols`.
    anp: bool,
    ports: Option<&'a Vec<Value>>,
}

impl TierRule<'_> {
    fn matches(&self, flow: Flow) -> bool {
        if self.anp {
            anp_ports_match(self.ports, flow)
        } else {
            cnp_protocols_match(self.ports, flow)
        }
    }
}

/// `policyTypes` of a NetworkPolicy, with the API's defaulting when absent.
fn policy_types(np: &Value) -> (bool, bool) {
    match np["spec"]["policyTypes"].as_array() {
        Some(t) => (
            t.iter().any(|x| x == "Ingress"),
            t.iter().any(|x| x == "Egress"),
        ),
        None => (true, np["spec"].get("egress").is_some()),
    }
}

fn np_selects(np: &Value, node: &Node) -> bool {
    node.ns.as_deref() == np["metadata"]["namespace"].as_str()
        && selects(&np["spec"]["podSelector"], &node.labels)
}

/// Everything about one (source, destination) pair that does not depend on the flow: the rules
/// of each tier that would decide it, at each end.
struct PairRules<'a> {
    /// Admin tier (ClusterNetworkPolicy `tier: Admin`, AdminNetworkPolicy): at the destination
    /// (ingress) and at the source (egress), in evaluation order.
    admin_in: Vec<TierRule<'a>>,
    admin_out: Vec<TierRule<'a>>,
    /// NetworkPolicy tier. `None`: no NetworkPolicy isolates that end (or it is not a pod).
    ingress: Option<Vec<Option<&'a Vec<Value>>>>,
    egress: Option<Vec<Option<&'a Vec<Value>>>>,
    /// Baseline tier (ClusterNetworkPolicy `tier: Baseline`).
    base_in: Vec<TierRule<'a>>,
    base_out: Vec<TierRule<'a>>,
}

/// The cluster-tier rules of one object that apply to (src, dst): ingress rules where the
/// subject selects `dst` and a `from` peer matches `src`, egress rules the other way round.
fn tier_rules<'a>(
    o: &'a Value,
    src: &Node,
    dst: &Node,
    ingress: &mut Vec<TierRule<'a>>,
    egress: &mut Vec<TierRule<'a>>,
) {
    let spec = &o["spec"];
    let anp = o["kind"] == "AdminNetworkPolicy";
    let priority = spec["priority"].as_u64().expect("priority");
    let name = o["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let action = |rule: &Value| match rule["action"].as_str() {
        Some("Accept" | "Allow") => Act::Accept,
        Some("Deny") => Act::Deny,
        Some("Pass") => Act::Pass,
        a => panic!("unknown action {a:?}"),
    };
    let ports_key = if anp { "ports" } else { "protocols" };
    for (dir, peers_key, subject_end, peer_end) in
        [("ingress", "from", dst, src), ("egress", "to", src, dst)]
    {
        if !tier_selects_pods(&spec["subject"], subject_end) {
            continue;
        }
        for (i, rule) in spec[dir].as_array().into_iter().flatten().enumerate() {
            let peers = rule[peers_key].as_array().expect("peers");
            if !peers.iter().any(|peer| tier_peer_matches(peer, peer_end)) {
                continue;
            }
            let r = TierRule {
                order: (priority, name.clone(), i),
                action: action(rule),
                anp,
                ports: rule[ports_key].as_array(),
            };
            if dir == "ingress" {
                ingress.push(r);
            } else {
                egress.push(r);
            }
        }
    }
}

fn pair_rules<'a>(objs: &'a [Value], src: &Node, dst: &Node) -> PairRules<'a> {
    let mut r = PairRules {
        admin_in: Vec::new(),
        admin_out: Vec::new(),
        ingress: None,
        egress: None,
        base_in: Vec::new(),
        base_out: Vec::new(),
    };
    for o in objs {
        match o["kind"].as_str() {
            Some("AdminNetworkPolicy") => {
                tier_rules(o, src, dst, &mut r.admin_in, &mut r.admin_out);
            }
            Some("ClusterNetworkPolicy") => match o["spec"]["tier"].as_str() {
                Some("Admin") => tier_rules(o, src, dst, &mut r.admin_in, &mut r.admin_out),
                Some("Baseline") => tier_rules(o, src, dst, &mut r.base_in, &mut r.base_out),
                t => panic!("unknown tier {t:?}"),
            },
            Some("NetworkPolicy") => {
                let ns = o["metadata"]["namespace"].as_str().expect("namespace");
                let (ing, egr) = policy_types(o);
                if ing && np_selects(o, dst) {
                    let admitted = r.ingress.get_or_insert_with(Vec::new);
                    for rule in o["spec"]["ingress"].as_array().into_iter().flatten() {
                        let from = rule["from"].as_array().filter(|v| !v.is_empty());
                        if from.is_none_or(|f| f.iter().any(|peer| np_peer_matches(ns, peer, src)))
                        {
                            admitted.push(rule["ports"].as_array());
                        }
                    }
                }
                if egr && np_selects(o, src) {
                    let admitted = r.egress.get_or_insert_with(Vec::new);
                    for rule in o["spec"]["egress"].as_array().into_iter().flatten() {
                        let to = rule["to"].as_array().filter(|v| !v.is_empty());
                        if to.is_none_or(|t| t.iter().any(|peer| np_peer_matches(ns, peer, dst))) {
                            admitted.push(rule["ports"].as_array());
                        }
                    }
                }
            }
            k => panic!("unexpected kind {k:?}"),
        }
    }
    for v in [
        &mut r.admin_in,
        &mut r.admin_out,
        &mut r.base_in,
        &mut r.base_out,
    ] {
        v.sort_by(|a, b| a.order.cmp(&b.order));
    }
    r
}

/// One end's verdict: the Admin tier's first matching rule (Accept or Deny decide, Pass goes on
/// to the next tier), then the NetworkPolicies if any isolates the pod (they decide: some rule
/// admits, or denied), then the Baseline tier's first match, then allowed (Kubernetes'
/// default). An end that is not a pod is not restricted.
fn end_allows(
    pod: bool,
    admin: &[TierRule],
    np: &Option<Vec<Option<&Vec<Value>>>>,
    base: &[TierRule],
    flow: Flow,
) -> bool {
    if !pod {
        return true;
    }
    if let Some(r) = admin.iter().find(|r| r.matches(flow)) {
        match r.action {
            Act::Accept => return true,
            Act::Deny => return false,
            Act::Pass => {}
        }
    }
    if let Some(rules) = np {
        return rules.iter().any(|ports| np_ports_match(*ports, flow));
    }
    if let Some(r) = base.iter().find(|r| r.matches(flow)) {
        return r.action != Act::Deny;
    }
    true
}

/// Kubernetes' verdict: both ends must let the connection through.
fn k8s_allows(r: &PairRules, src: &Node, dst: &Node, flow: Flow) -> bool {
    end_allows(src.ns.is_some(), &r.admin_out, &r.egress, &r.base_out, flow)
        && end_allows(dst.ns.is_some(), &r.admin_in, &r.ingress, &r.base_in, flow)
}

/// The flows worth probing: every port a filter names, the ports just outside each range and
/// one port no filter names, for tcp, udp and sctp; ICMP types; one other protocol.
fn flows(p: &Policy) -> Vec<Flow> {
    let mut ports: BTreeSet<u16> = BTreeSet::new();
    // Echo requests, and one reply type of each family (never a new connection).
    let mut icmp: BTreeSet<u16> = BTreeSet::from([0, 8]);
    let mut icmp6: BTreeSet<u16> = BTreeSet::from([128, 129]);
    let mut ranges = Vec::new();
    for f in &p.filters {
        for e in &f.entries {
            match e.proto {
                EntryProto::Tcp | EntryProto::Udp | EntryProto::Sctp => {
                    for &(lo, hi) in &e.ranges {
                        ranges.push((lo, hi));
                        ports.extend([lo, hi]);
                        ports.extend(lo.checked_sub(1).filter(|&x| x > 0));
                        ports.extend(hi.checked_add(1));
                    }
                }
                EntryProto::Icmp => icmp.extend(e.ranges.iter().map(|r| r.0)),
                EntryProto::Icmpv6 => icmp6.extend(e.ranges.iter().map(|r| r.0)),
                EntryProto::Ip => {}
            }
        }
    }
    let unused = (1..=u16::MAX).find(|&x| !ranges.iter().any(|&(lo, hi)| lo <= x && x <= hi));
    ports.extend(unused);
    let mut out = Vec::new();
    for &port in &ports {
        for proto in [Proto::Tcp, Proto::Udp, Proto::Sctp] {
            out.push(Flow { proto, port });
        }
    }
    out.extend(icmp.iter().map(|&port| Flow {
        proto: Proto::Icmp,
        port,
    }));
    out.extend(icmp6.iter().map(|&port| Flow {
        proto: Proto::Icmpv6,
        port,
    }));
    out.push(Flow {
        proto: Proto::Other(47),
        port: 0,
    });
    out
}

/// Compare the interpreter with the evaluator on every pair of declared endpoints and every
/// flow. Returns (comparisons, disagreements).
fn compare(what: &str, p: &Policy, list: &Value, warnings: &[Diagnostic]) -> (usize, Vec<String>) {
    compare_nodes(what, p, list, warnings, &nodes(p))
}

/// [`compare`] on the given nodes.
fn compare_nodes(
    what: &str,
    p: &Policy,
    list: &Value,
    warnings: &[Diagnostic],
    nodes: &[Node],
) -> (usize, Vec<String>) {
    let objs = items(list);
    let flows = flows(p);
    let holes_reported = warnings.iter().any(|w| w.code == Code::K8sProtocolHole);
    // The evaluator's decisions depend on the two group sets only.
    let mut memo: HashMap<(Vec<GroupId>, Vec<GroupId>), Vec<eval::Decision>> = HashMap::new();
    let mut n = 0;
    let mut bad = Vec::new();
    for src in nodes {
        for dst in nodes {
            if std::ptr::eq(src, dst) || (src.ns.is_none() && dst.ns.is_none()) {
                continue; // a pod reaches itself; two outside addresses never cross the cluster
            }
            let rules = pair_rules(objs, src, dst);
            let decisions = memo
                .entry((src.groups.clone(), dst.groups.clone()))
                .or_insert_with(|| {
                    flows
                        .iter()
                        .map(|&f| decide_both(p, &src.groups, &dst.groups, f))
                        .collect()
                });
            // Does the evaluator deny some port here? Then an allowance of every protocol has a
            // hole, which NetworkPolicy writes as TCP, UDP and SCTP ports only (W030).
            let holed = decisions
                .iter()
                .any(|d| d.verdict == Verdict::Deny && d.reason != Reason::NotNew);
            for (&flow, ev) in flows.iter().zip(decisions.iter()) {
                if !eval::can_start(flow) {
                    // An ICMP reply or error is never a new connection: stateful plugins pass
                    // it only as part of an allowed one, and the evaluator denies it as new.
                    // NetworkPolicy rules are about connections, so there is nothing to compare.
                    assert_eq!(ev.reason, Reason::NotNew);
                    continue;
                }
                let k = k8s_allows(&rules, src, dst, flow);
                let ev_allow = ev.verdict == Verdict::Allow;
                if !flow.proto.has_ports() && ev_allow && !k && holed && holes_reported {
                    // Fails closed where a deny cut a hole into an allowance of every protocol,
                    // and the lowering said so (W030).
                    continue;
                }
                if flow.proto.is_icmp() {
                    // NetworkPolicy cannot name ICMP: an ICMP permit is left out (fails closed),
                    // but a k8s allow must still be an evaluator allow, and whatever the
                    // evaluator allows by other means (an `ip` entry, the intra-group default)
                    // must be allowed.
                    let by_icmp_entry = match ev.reason {
                        Reason::Subject(m) => {
                            let e = &p.filter(m.filter).entries[m.entry];
                            matches!(e.proto, EntryProto::Icmp | EntryProto::Icmpv6)
                        }
                        _ => false,
                    };
                    if ev_allow && !k && by_icmp_entry {
                        continue;
                    }
                }
                n += 1;
                if k != ev_allow {
                    bad.push(format!(
                        "{what}: {} -> {} {flow}: k8s {}, evaluator {} ({})",
                        src.name,
                        dst.name,
                        if k { "allows" } else { "denies" },
                        ev.verdict.as_str(),
                        ev.describe(p)
                    ));
                }
            }
        }
    }
    (n, bad)
}

#[test]
fn kubernetes_agrees_with_the_evaluator() {
    let sources = corpus();
    let mut total = 0;
    let mut bad = Vec::new();
    let mut compiled = 0;
    let mut classes = 0;
    for (name, src) in &sources {
        let c = gbpc::check_source(src);
        if !c.ok() {
            eprintln!("{name}: does not check; skipped");
            continue;
        }
        for allow_dns in [false, true] {
            for deny in MODES {
                if allow_dns && deny != DenyMode::Subtract {
                    continue; // --allow-dns adds one policy per namespace, the same in every mode
                }
                let mut o = opts(deny);
                o.allow_dns = allow_dns;
                let Some(list) = lower_example(name, &c.policy, allow_dns, deny) else {
                    continue;
                };
                let warnings = k8s::lower(&c.policy, &o)
                    .map(|l| l.warnings)
                    .unwrap_or_default();
                compiled += 1;
                let what = format!("{name} ({deny:?}, allow_dns {allow_dns})");
                let mut all = nodes(&c.policy);
                match class_pods(&c.policy, 40) {
                    Some(extra) => {
                        classes += extra.len() / 2;
                        all.extend(extra);
                    }
                    None => eprintln!(
                        "{name}: too many label classes to probe; declared endpoints only"
                    ),
                }
                let (n, b) = compare_nodes(&what, &c.policy, &list, &warnings, &all);
                total += n;
                bad.extend(b);
            }
        }
    }
    eprintln!(
        "{compiled} lowerings, {classes} label classes probed, {total} flows compared, {} disagreements",
        bad.len()
    );
    assert!(compiled > 0 && total > 0 && classes > 0);
    assert!(
        bad.is_empty(),
        "{} disagreements:\n{}",
        bad.len(),
        bad.iter().take(50).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// The class of bugs, not the examples: generated policies (overlapping selectors, denies in
/// every position, `any`, externals, several tenants), every deny mode, the declared endpoints
/// and two pods of every label class, against the evaluator.
#[test]
fn generated_policies_agree_with_the_evaluator() {
    let mut total = 0;
    let mut classes = 0;
    let mut class_mode = 0;
    let mut bad = Vec::new();
    for seed in 1..=GENERATED_SEEDS {
        let src = gbpc::synth::policy(seed, gbpc::synth::Size::DEFAULT);
        let c = gbpc::check_source(&src);
        assert!(c.ok(), "seed {seed}");
        let mut all = nodes(&c.policy);
        if let Some(extra) = class_pods(&c.policy, 60) {
            classes += extra.len() / 2;
            all.extend(extra);
        }
        for deny in MODES {
            let Some(list) = lower_example(&format!("seed {seed}"), &c.policy, false, deny) else {
                continue;
            };
            if deny == DenyMode::Subtract
                && items(&list).iter().any(|i| i.to_string().contains("NotIn"))
            {
                class_mode += 1;
            }
            let warnings = k8s::lower(&c.policy, &opts(deny))
                .map(|l| l.warnings)
                .unwrap_or_default();
            let (n, b) = compare_nodes(
                &format!("seed {seed} {deny:?}"),
                &c.policy,
                &list,
                &warnings,
                &all,
            );
            total += n;
            bad.extend(b);
        }
    }
    eprintln!(
        "{GENERATED_SEEDS} generated policies ({class_mode} by label class), {classes} label classes probed, {total} flows compared, {} disagreements",
        bad.len()
    );
    assert!(
        class_mode > 3 && classes > 100,
        "the generator exercises label classes"
    );
    assert!(
        bad.is_empty(),
        "{} disagreements:\n{}",
        bad.len(),
        bad.iter().take(50).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// Generated policies in [`generated_policies_agree_with_the_evaluator`].
const GENERATED_SEEDS: u64 = 20;

/// The interpreter treats `ipBlock` as outside addresses only, which is what the API promises;
/// this proves the premise: no block or network gbpc emits contains a pod (internal endpoint)
/// address, so plugins that do match pod addresses against ipBlock decide the same.
#[test]
fn no_block_contains_a_pod_address() {
    let mut sources = corpus();
    sources.push((
        "no-except".into(),
        r#"tenant t {
             filter https { tcp 443 }
             contract web { subject s permit https }
             contract up  { subject s permit https  subject d deny https }
             group web { select app=web  address 198.18.1.0/24  endpoint w1 198.18.1.10  provides web  consumes up }
             group odd { select app=odd  endpoint o1 203.0.113.77 }
             external all { address 0.0.0.0/0  endpoint x 203.0.113.9  consumes web  provides up }
           }"#
        .into(),
    ));
    for (name, src) in &sources {
        let c = gbpc::check_source(src);
        if !c.ok() {
            continue;
        }
        for deny in MODES {
            let Some(list) = lower_example(name, &c.policy, false, deny) else {
                continue;
            };
            let pods: Vec<Node> = nodes(&c.policy)
                .into_iter()
                .filter(|n| n.ns.is_some())
                .collect();
            let text = list.to_string();
            let v: Value = serde_json::from_str(&text).expect("JSON");
            let mut blocks = Vec::new();
            collect(&v, &mut blocks);
            for b in blocks {
                for pod in &pods {
                    let inside = match &b {
                        Value::String(cidr) => pod.ips.iter().any(|&ip| in_cidr(cidr, ip)),
                        block => in_ip_block(block, pod),
                    };
                    assert!(!inside, "{name} ({deny:?}): {b} contains pod {}", pod.name);
                }
            }
        }
    }

    fn collect(v: &Value, out: &mut Vec<Value>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match k.as_str() {
                        "ipBlock" => out.push(x.clone()),
                        "networks" => out.extend(x.as_array().into_iter().flatten().cloned()),
                        _ => collect(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
            _ => {}
        }
    }
}

// ---- 3. determinism ------------------------------------------------------------------------

#[test]
fn lowering_is_deterministic() {
    let sources = corpus();
    for (name, src) in &sources {
        let c = gbpc::check_source(src);
        if !c.ok() {
            continue;
        }
        for format in [Format::Json, Format::Yaml] {
            for deny in [
                DenyMode::Error,
                DenyMode::Subtract,
                DenyMode::Cluster,
                DenyMode::Admin,
            ] {
                let o = Options {
                    format,
                    deny,
                    allow_dns: true,
                };
                let a = k8s::lower(&c.policy, &o)
                    .map(|l| l.text)
                    .map_err(|e| e.len());
                let again = gbpc::check_source(src);
                let b = k8s::lower(&again.policy, &o)
                    .map(|l| l.text)
                    .map_err(|e| e.len());
                assert_eq!(a, b, "{name}: {format:?} {deny:?}");
            }
        }
    }
}

/// The output is sorted by name, not by declaration order: the same policy written in another
/// order gives the same bytes.
#[test]
fn declaration_order_does_not_matter() {
    let a = r#"
      tenant b { group z { select app=z  consumes a/c } }
      tenant a {
        filter f { tcp 80; udp 53 }
        filter g { tcp 443 }
        global contract c { subject s permit f  subject t permit g }
        contract d { subject s permit g }
        group x { select app=x  provides c, d }
        group y { select app=y  consumes c, d }
        external e { address 203.0.113.0/24, 192.0.2.0/24  consumes c }
      }"#;
    let b = r#"
      tenant a {
        external e { address 192.0.2.0/24, 203.0.113.0/24  consumes c }
        group y { select app=y  consumes d, c }
        group x { select app=x  provides d, c }
        contract d { subject s permit g }
        global contract c { subject t permit g  subject s permit f }
        filter g { tcp 443 }
        filter f { udp 53; tcp 80 }
      }
      tenant b { group z { select app=z  consumes a/c } }"#;
    let o = opts(DenyMode::Error);
    let ta = k8s::lower(&policy(a), &o).expect("lowers").text;
    let tb = k8s::lower(&policy(b), &o).expect("lowers").text;
    assert_eq!(ta, tb);
}

// ---- 4. unit cases -------------------------------------------------------------------------

const THREE: &str = r#"
tenant shop {
  filter api      { tcp 8000-8099 }
  filter actuator { tcp 8081 }
  contract app-api {
    subject api         permit api
    subject no-actuator deny actuator
  }
  group web { select tier=web  address 198.18.2.0/24  endpoint web1 198.18.2.10  consumes app-api }
  group app { select tier=app  address 198.18.3.0/24  endpoint app1 198.18.3.10  provides app-api }
}
"#;

/// The worked example of the documentation: the deny is compiled away, the permitted range
/// split around it, with no CRD.
#[test]
fn three_tier_deny_is_compiled_away() {
    let (list, warnings) = lower_ok(THREE, &opts(DenyMode::Subtract));
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert!(items(&list).iter().all(|i| i["kind"] == "NetworkPolicy"));
    let split = json!([{"endPort": 8080, "port": 8000, "protocol": "TCP"},
                       {"endPort": 8099, "port": 8082, "protocol": "TCP"}]);
    let app = item(&list, Some("shop"), "gbpc-app");
    assert_eq!(
        app["spec"]["ingress"],
        json!([{"from": [{"podSelector": {"matchLabels": {"tier": "app"}}}]},
               {"from": [{"podSelector": {"matchLabels": {"tier": "web"}}}], "ports": split}])
    );
    let web = item(&list, Some("shop"), "gbpc-web");
    assert_eq!(
        web["spec"]["egress"][1],
        json!({"to": [{"podSelector": {"matchLabels": {"tier": "app"}}}], "ports": split})
    );
}

#[test]
fn deny_with_error_mode_is_an_error_naming_the_subject() {
    let errors = lower_err(THREE, &opts(DenyMode::Error));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = &errors[0];
    assert_eq!(e.code, Code::K8sDeny);
    assert_eq!(e.severity, Severity::Error);
    assert!(e.message.contains("`no-actuator`") && e.message.contains("`shop/app-api`"));
    assert!(e.message.contains("--k8s-deny error"));
    assert!(primary_text(THREE, e).starts_with("subject no-actuator deny actuator"));
    assert!(
        e.help
            .as_deref()
            .is_some_and(|h| h.contains("--k8s-deny cluster"))
    );
}

/// A deny that cuts ports out of an allowance of every protocol (here the intra-group
/// default): NetworkPolicy writes what is left as TCP, UDP and SCTP ports, so other protocols
/// and ICMP are denied there, and W030 says so. With `--k8s-deny cluster` the allowance stays
/// whole and the deny is a ClusterNetworkPolicy rule.
#[test]
fn a_deny_inside_an_all_protocol_allowance_is_w030() {
    let src = r#"
      tenant t {
        filter ssh { tcp 22 }
        contract self { subject no-ssh deny ssh }
        group x { select app=x  provides self  consumes self }
      }"#;
    let (list, warnings) = lower_ok(src, &opts(DenyMode::Subtract));
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].code, Code::K8sProtocolHole);
    assert!(warnings[0].message.contains("`no-ssh`"));
    assert!(primary_text(src, &warnings[0]).starts_with("subject no-ssh"));
    let x = item(&list, Some("t"), "gbpc-x");
    assert_eq!(
        x["spec"]["ingress"][0]["ports"],
        json!([{"endPort": 21, "port": 1, "protocol": "TCP"},
               {"endPort": 65535, "port": 23, "protocol": "TCP"},
               {"protocol": "UDP"}, {"protocol": "SCTP"}])
    );
    let (list, warnings) = lower_ok(src, &opts(DenyMode::Cluster));
    assert!(warnings.is_empty(), "{warnings:#?}");
    let x = item(&list, Some("t"), "gbpc-x");
    assert!(x["spec"]["ingress"][0].get("ports").is_none());
    let cnp = item(&list, None, "gbpc-t-x-deny");
    assert_eq!(cnp["spec"]["tier"], "Admin");
    assert_eq!(
        cnp["spec"]["ingress"][0]["protocols"],
        json!([{"tcp": {"destinationPort": {"number": 22}}}])
    );
}

/// The denies of one group share a cluster-tier policy (its rules in contract order), so the
/// priorities bound the groups that enforce denies, not the denies; past the CRD's rules per
/// direction (25 for ClusterNetworkPolicy, 100 for the legacy AdminNetworkPolicy) the group
/// gets another.
#[test]
fn denies_of_one_group_share_a_cluster_tier_policy() {
    let mut src = String::from("tenant t {\n  filter f { tcp 9999 }\n  filter p { tcp 80 }\n");
    for i in 0..120 {
        src.push_str(&format!(
            "  contract c{i:03} {{ subject ok permit p  subject no deny f }}\n  group g{i:03} {{ select app=g{i:03}  consumes c{i:03} }}\n"
        ));
    }
    src.push_str("  group db { select app=db ");
    for i in 0..120 {
        src.push_str(&format!(" provides c{i:03}"));
    }
    src.push_str(" }\n}\n");
    for (deny, per, kind) in [
        (DenyMode::Admin, 100, "AdminNetworkPolicy"),
        (DenyMode::Cluster, 25, "ClusterNetworkPolicy"),
    ] {
        let (list, _) = lower_ok(&src, &opts(deny));
        let tier: Vec<&Value> = items(&list).iter().filter(|i| i["kind"] == kind).collect();
        // Only the provider enforces (ingress rules, one per deny): 120 rules in 120/per
        // policies; consumers reach only pods, so they need no egress rules.
        assert_eq!(tier.len(), 120usize.div_ceil(per), "{deny:?}");
        let db = item(&list, None, "gbpc-t-db-deny");
        let rules = db["spec"]["ingress"].as_array().unwrap();
        assert_eq!(rules.len(), per);
        assert_eq!(rules[0]["name"], "t/c000/no");
        assert_eq!(rules[per - 1]["name"], format!("t/c{:03}/no", per - 1));
        let db2 = item(&list, None, "gbpc-t-db-deny-2");
        assert_eq!(db2["spec"]["subject"], db["spec"]["subject"]);
        let prios: BTreeSet<u64> = tier
            .iter()
            .filter_map(|i| i["spec"]["priority"].as_u64())
            .collect();
        assert_eq!(prios.len(), tier.len(), "distinct priorities");
        // The permit is whole in the NetworkPolicies: the tier carves the deny out.
        let g = item(&list, Some("t"), "gbpc-g007");
        assert_eq!(
            g["spec"]["egress"][1]["ports"],
            json!([{"port": 80, "protocol": "TCP"}])
        );
    }
}

/// A rule with more peers than a rule may hold (25) is split into rules of the same name.
#[test]
fn cluster_rules_split_at_25_peers() {
    let mut src = String::from(
        "tenant t {\n  filter f { tcp 9999 }\n  contract c { subject no deny f }\n  group db { select app=db  provides c }\n",
    );
    for i in 0..30 {
        src.push_str(&format!(
            "  group g{i:02} {{ select app=g{i:02}  consumes c }}\n"
        ));
    }
    src.push_str("}\n");
    let (list, _) = lower_ok(&src, &opts(DenyMode::Cluster));
    let db = item(&list, None, "gbpc-t-db-deny");
    let rules = db["spec"]["ingress"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0]["from"].as_array().unwrap().len(), 25);
    assert_eq!(rules[1]["from"].as_array().unwrap().len(), 5);
    assert_eq!(rules[0]["name"], rules[1]["name"]);
    validate(&schemas(), "split", &list);
}

/// Rule names longer than the CRD's 100 characters keep their head and get a hash of the
/// whole name, so two denies of one group never share a rule name.
#[test]
fn long_rule_names_stay_distinct() {
    let t = "t".repeat(50);
    let (c1, c2) = ("a".repeat(60) + "1", "a".repeat(60) + "2");
    let subj = "deny-".to_string() + &"x".repeat(40);
    let src = format!(
        "tenant {t} {{\n  filter f {{ tcp 9999 }}\n  filter p {{ tcp 80 }}\n  contract {c1} {{ subject ok permit p  subject {subj} deny f }}\n  contract {c2} {{ subject ok permit p  subject {subj} deny f }}\n  group db {{ select app=db  provides {c1}  provides {c2} }}\n  group web {{ select app=web  consumes {c1}  consumes {c2} }}\n}}\n"
    );
    for deny in [DenyMode::Cluster, DenyMode::Admin] {
        let (list, _) = lower_ok(&src, &opts(deny));
        let db = item(&list, None, &format!("gbpc-{t}-db-deny"));
        let names: Vec<&str> = db["spec"]["ingress"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 2);
        assert_ne!(names[0], names[1]);
        for n in &names {
            assert!(n.len() <= 100, "{n}");
            assert!(n.starts_with(&format!("{t}/{}", "a".repeat(38))), "{n}");
        }
    }
}

/// Past the 991 priorities the lowering fails with a diagnostic that counts policies and
/// groups, and writes nothing; the default mode has no such limit.
#[test]
fn too_many_cluster_tier_policies_is_an_error() {
    let mut src = String::from("tenant t {\n  filter f { tcp 9999 }\n");
    for i in 0..992 {
        src.push_str(&format!(
            "  contract c{i} {{ subject no deny f }}\n  group p{i} {{ select app=p{i}  provides c{i} }}\n"
        ));
    }
    src.push_str("  group q { select app=q  consumes ");
    src.push_str(
        &(0..992)
            .map(|i| format!("c{i}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    src.push_str(" }\n}\n");
    for (deny, kind) in [
        (DenyMode::Cluster, "ClusterNetworkPolicies"),
        (DenyMode::Admin, "AdminNetworkPolicies"),
    ] {
        let errors = lower_err(&src, &opts(deny));
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(errors[0].code, Code::K8sUnsupported);
        assert!(
            errors[0]
                .message
                .contains(&format!("992 {kind} for the 992 groups")),
            "{}",
            errors[0].message
        );
        assert!(primary_text(&src, &errors[0]).starts_with("subject no deny f"));
    }
    let (list, _) = lower_ok(&src, &opts(DenyMode::Subtract));
    assert!(items(&list).iter().all(|i| i["kind"] == "NetworkPolicy"));
}

#[test]
fn cluster_mode_denies_on_the_providers_ingress() {
    for (deny, api, kind) in [
        (
            DenyMode::Cluster,
            "policy.networking.k8s.io/v1alpha2",
            "ClusterNetworkPolicy",
        ),
        (
            DenyMode::Admin,
            "policy.networking.k8s.io/v1alpha1",
            "AdminNetworkPolicy",
        ),
    ] {
        let (list, warnings) = lower_ok(THREE, &opts(deny));
        assert!(warnings.is_empty(), "{warnings:#?}");
        let ing = item(&list, None, "gbpc-shop-app-deny");
        assert_eq!(ing["apiVersion"], api);
        assert_eq!(ing["kind"], kind);
        assert_eq!(
            ing["spec"]["subject"],
            json!({"pods": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}},
                "podSelector": {"matchLabels": {"tier": "app"}}}})
        );
        let ports = if deny == DenyMode::Cluster {
            (
                "protocols",
                json!([{"tcp": {"destinationPort": {"number": 8081}}}]),
            )
        } else {
            (
                "ports",
                json!([{"portNumber": {"protocol": "TCP", "port": 8081}}]),
            )
        };
        let mut rule = json!({
            "name": "shop/app-api/no-actuator", "action": "Deny",
            "from": [{"pods": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}},
                "podSelector": {"matchLabels": {"tier": "web"}}}}]});
        rule[ports.0] = ports.1;
        assert_eq!(ing["spec"]["ingress"], json!([rule]));
        assert!(ing["spec"].get("egress").is_none());
        assert_eq!(ing["spec"]["priority"], 10);
        if deny == DenyMode::Cluster {
            assert_eq!(ing["spec"]["tier"], "Admin");
        }
        // One object: the consumer enforces nothing (its provider's ingress sees every
        // connection).
        assert_eq!(items(&list).iter().filter(|i| i["kind"] == kind).count(), 1);
        // The permit is whole: the NetworkPolicy allows the range, the tier carves 8081 out.
        let app = item(&list, Some("shop"), "gbpc-app");
        assert_eq!(
            app["spec"]["ingress"][1],
            json!({"from": [{"podSelector": {"matchLabels": {"tier": "web"}}}],
                   "ports": [{"endPort": 8099, "port": 8000, "protocol": "TCP"}]})
        );
    }
}

/// `--k8s-deny admin` is a usage error naming both replacements; the flag values are
/// documented.
#[test]
fn k8s_deny_values() {
    use std::process::Command;
    let bin = env!("CARGO_BIN_EXE_gbpc");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.gbp");
    std::fs::write(&f, THREE).unwrap();
    let run = |deny: &str| {
        Command::new(bin)
            .args([
                "compile",
                f.to_str().unwrap(),
                "--target",
                "k8s",
                "--k8s-deny",
                deny,
            ])
            .output()
            .unwrap()
    };
    let o = run("admin");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--k8s-deny cluster") && err.contains("anp-v1alpha1"),
        "{err}"
    );
    for (deny, code, kind) in [
        ("subtract", 0, "NetworkPolicy"),
        ("cluster", 0, "ClusterNetworkPolicy"),
        ("anp-v1alpha1", 0, "AdminNetworkPolicy"),
        ("error", 1, ""),
    ] {
        let o = run(deny);
        assert_eq!(o.status.code(), Some(code), "{deny}");
        assert!(String::from_utf8_lossy(&o.stdout).contains(kind), "{deny}");
    }
}

#[test]
fn group_without_labels_is_k8s_no_selector() {
    let src = r#"
      tenant t {
        filter f { tcp 80 }
        contract c { subject s permit f }
        group vms { address 198.18.5.0/24  endpoint vm1 198.18.5.10  consumes c }
        group web { select app=web  provides c }
      }"#;
    let errors = lower_err(src, &opts(DenyMode::Error));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].code, Code::K8sNoSelector);
    assert_eq!(primary_text(src, &errors[0]), "vms");
    assert!(errors[0].message.contains("`t/vms`"));
    assert!(
        errors[0]
            .help
            .as_deref()
            .is_some_and(|h| h.contains("select key=value"))
    );
}

#[test]
fn group_without_labels_outside_contracts_is_fine() {
    let src = r#"
      tenant t {
        group vms { address 198.18.5.0/24  endpoint vm1 198.18.5.10 }
        group web { select app=web }
      }"#;
    let (list, _) = lower_ok(src, &opts(DenyMode::Error));
    let names: Vec<&str> = items(&list)
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["gbpc-default-deny", "gbpc-web"]);
}

const PEERS: &str = r#"
tenant shared {
  filter dns { udp 53; tcp 53 }
  filter web { tcp 8000-8099, 443 }
  filter sig { sctp 3868 }
  filter any-udp { udp }
  global contract dns { subject lookup permit dns }
  contract web { subject http permit web  subject sig permit sig  subject u permit any-udp }
  group resolvers { select app=coredns  address 198.18.0.0/28  endpoint dns1 198.18.0.2  provides dns }
  group front { select app=front  address 198.18.0.16/28  endpoint f1 198.18.0.20  provides web }
  external internet {
    address 0.0.0.0/0 except 198.18.0.0/15, 192.0.2.0/24
    address ::/0 except 2001:db8::/32
    endpoint probe 203.0.113.10
    consumes web
  }
}
tenant shop {
  group web { select app=shop, tier=web  address 198.18.10.0/24  endpoint web1 198.18.10.10  consumes shared/dns }
}
"#;

#[test]
fn port_range_gives_end_port() {
    let (list, _) = lower_ok(PEERS, &opts(DenyMode::Error));
    let front = item(&list, Some("shared"), "gbpc-front");
    let ports: Vec<&Value> = front["spec"]["ingress"]
        .as_array()
        .expect("ingress")
        .iter()
        .filter_map(|r| r.get("ports"))
        .collect();
    // The three subjects open these ports to the same peer (the internet): one rule.
    assert_eq!(
        ports,
        [&json!([
            {"port": 443, "protocol": "TCP"},
            {"endPort": 8099, "port": 8000, "protocol": "TCP"},
            {"protocol": "UDP"},
            {"port": 3868, "protocol": "SCTP"}
        ])]
    );
}

#[test]
fn external_consumer_gives_ip_blocks_with_except() {
    let (list, _) = lower_ok(PEERS, &opts(DenyMode::Error));
    let front = item(&list, Some("shared"), "gbpc-front");
    let http = &front["spec"]["ingress"][1];
    assert_eq!(
        http["from"],
        json!([
            {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["192.0.2.0/24", "198.18.0.0/15"]}},
            {"ipBlock": {"cidr": "::/0", "except": ["2001:db8::/32"]}},
        ])
    );
}

#[test]
fn cross_namespace_consumer_gives_namespace_selector() {
    let (list, _) = lower_ok(PEERS, &opts(DenyMode::Error));
    let resolvers = item(&list, Some("shared"), "gbpc-resolvers");
    assert_eq!(
        resolvers["spec"]["ingress"][1],
        json!({
            "from": [{
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}},
                "podSelector": {"matchLabels": {"app": "shop", "tier": "web"}},
            }],
            "ports": [{"port": 53, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
        })
    );
    let web = item(&list, Some("shop"), "gbpc-web");
    assert_eq!(
        web["spec"]["egress"][1]["to"],
        json!([{
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shared"}},
            "podSelector": {"matchLabels": {"app": "coredns"}},
        }])
    );
    // Same namespace: the intra-group peer is a bare podSelector.
    assert_eq!(
        web["spec"]["ingress"],
        json!([{"from": [{"podSelector": {"matchLabels": {"app": "shop", "tier": "web"}}}]}])
    );
    assert_eq!(web["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
}

#[test]
fn default_deny_and_allow_dns() {
    let mut o = opts(DenyMode::Error);
    o.allow_dns = true;
    let (list, _) = lower_ok(PEERS, &o);
    let dd = item(&list, Some("shop"), "gbpc-default-deny");
    assert_eq!(
        dd["spec"],
        json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    );
    let dns = item(&list, Some("shop"), "gbpc-allow-dns");
    assert_eq!(
        dns["spec"],
        json!({
            "egress": [{
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                "to": [{
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }],
            }],
            "podSelector": {},
            "policyTypes": ["Egress"],
        })
    );
    // With the interpreter: a grouped pod reaches kube-dns on 53 only, and without the switch
    // not at all.
    let p = policy(PEERS);
    let web1 = nodes(&p)
        .into_iter()
        .find(|n| n.name == "shop/web1")
        .expect("web1");
    let kube_dns = Node {
        name: "kube-system/coredns".into(),
        ns: Some("kube-system".into()),
        labels: BTreeMap::from([("k8s-app".into(), "kube-dns".into())]),
        ips: vec![],
        groups: vec![],
    };
    let udp53 = Flow {
        proto: Proto::Udp,
        port: 53,
    };
    let tcp80 = Flow {
        proto: Proto::Tcp,
        port: 80,
    };
    let r = pair_rules(items(&list), &web1, &kube_dns);
    assert!(k8s_allows(&r, &web1, &kube_dns, udp53));
    assert!(!k8s_allows(&r, &web1, &kube_dns, tcp80));
    let (plain, _) = lower_ok(PEERS, &opts(DenyMode::Error));
    assert!(!k8s_allows(
        &pair_rules(items(&plain), &web1, &kube_dns),
        &web1,
        &kube_dns,
        udp53
    ));
    assert!(
        !items(&plain)
            .iter()
            .any(|i| i["metadata"]["name"] == "gbpc-allow-dns")
    );
}

#[test]
fn icmp_is_left_out_with_a_warning() {
    let src = r#"
      tenant t {
        filter ping  { icmp echo-request; icmpv6 echo-request }
        filter mixed { tcp 22; icmp }
        contract c { subject ping permit ping  subject ssh permit mixed }
        group a { select app=a  provides c }
        group b { select app=b  consumes c }
      }"#;
    let (list, warnings) = lower_ok(src, &opts(DenyMode::Error));
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings
            .iter()
            .all(|w| w.code == Code::K8sIcmp && !w.is_error())
    );
    assert!(warnings[0].message.contains("`ping`") && warnings[0].message.contains("only ICMP"));
    assert!(
        warnings[1]
            .message
            .contains("ICMP entries of subject `ssh`")
    );
    let a = item(&list, Some("t"), "gbpc-a");
    assert_eq!(
        a["spec"]["ingress"][1],
        json!({"from": [{"podSelector": {"matchLabels": {"app": "b"}}}],
               "ports": [{"port": 22, "protocol": "TCP"}]})
    );
    assert_eq!(a["spec"]["ingress"].as_array().map(Vec::len), Some(2));
}

#[test]
fn ip_entry_has_no_ports_and_covers_icmp() {
    let src = r#"
      tenant t {
        filter all { ip }
        filter ping { icmp }
        contract c { subject all permit all, ping }
        group a isolated { select app=a  provides c }
        group b isolated { select app=b  consumes c }
      }"#;
    let (list, warnings) = lower_ok(src, &opts(DenyMode::Error));
    assert!(warnings.is_empty(), "{warnings:#?}");
    let a = item(&list, Some("t"), "gbpc-a");
    assert_eq!(
        a["spec"]["ingress"],
        json!([{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}])
    );
    assert!(
        a["spec"].get("egress").is_none(),
        "isolated: no intra-group rule"
    );
}

#[test]
fn any_stands_for_the_tenants_groups() {
    let src = r#"
      tenant t {
        filter m { tcp 9100 }
        contract metrics { subject scrape permit m }
        group a { select app=a }
        group b { select app=b }
        group prom { select app=prom  consumes metrics }
        any { provides metrics }
      }"#;
    let (list, _) = lower_ok(src, &opts(DenyMode::Error));
    let prom = item(&list, Some("t"), "gbpc-prom");
    // prom reaches itself on every port (the intra-group default, the first rule), and the
    // other groups on 9100.
    assert_eq!(
        prom["spec"]["egress"][1],
        json!({"to": [
            {"podSelector": {"matchLabels": {"app": "a"}}},
            {"podSelector": {"matchLabels": {"app": "b"}}},
        ], "ports": [{"port": 9100, "protocol": "TCP"}]})
    );
    for g in ["a", "b"] {
        let np = item(&list, Some("t"), &format!("gbpc-{g}"));
        assert_eq!(
            np["spec"]["ingress"][1]["from"],
            json!([{"podSelector": {"matchLabels": {"app": "prom"}}}]),
            "{g}"
        );
    }
    assert!(
        !items(&list)
            .iter()
            .any(|i| i["spec"]["podSelector"] == json!({})
                && i["metadata"]["name"] != "gbpc-default-deny")
    );
}

#[test]
fn fabric_addresses_are_excepted_from_external_blocks() {
    let src = r#"
      tenant t {
        filter f { tcp 443 }
        contract c { subject s permit f }
        group web { select app=web  address 198.18.1.0/24  endpoint w1 198.18.1.10  provides c }
        group lone { select app=lone  endpoint l1 203.0.113.50 }
        external all { address 0.0.0.0/0 except 10.0.0.0/8  consumes c }
      }"#;
    let (list, _) = lower_ok(src, &opts(DenyMode::Error));
    let web = item(&list, Some("t"), "gbpc-web");
    assert_eq!(
        web["spec"]["ingress"][1]["from"],
        json!([{"ipBlock": {"cidr": "0.0.0.0/0",
                "except": ["10.0.0.0/8", "198.18.1.0/24", "203.0.113.50/32"]}}])
    );
}

#[test]
fn deny_to_an_external_provider_lowers_to_networks() {
    let src = r#"
      tenant t {
        filter https { tcp 443 }
        filter http  { tcp 80 }
        contract out { subject s permit https, http  subject no-http deny http }
        group app { select app=app  address 198.18.1.0/24  consumes out }
        external partner { address 192.0.2.0/24 except 192.0.2.0/26  provides out }
      }"#;
    let (list, _) = lower_ok(src, &opts(DenyMode::Admin));
    let anp = item(&list, None, "gbpc-t-app-deny");
    assert_eq!(
        anp["spec"]["egress"],
        json!([{"name": "t/out/no-http", "action": "Deny",
                "to": [{"networks": ["192.0.2.64/26", "192.0.2.128/25"]}],
                "ports": [{"portNumber": {"protocol": "TCP", "port": 80}}]}])
    );
    assert!(anp["spec"].get("ingress").is_none());
}

/// A deny a cluster-tier rule cannot carry (an external consumer: ingress peers cannot be
/// addresses; ICMP) stays in the NetworkPolicies, compiled away there, with W031.
#[test]
fn denies_the_cluster_tier_cannot_carry_stay_in_the_network_policies() {
    let from_outside = r#"
      tenant t {
        filter ssh { tcp 22 }
        filter all { tcp 1-1024 }
        contract c { subject ok permit all  subject no-ssh deny ssh }
        group app { select app=app  provides c }
        external internet { address 203.0.113.0/24  consumes c }
      }"#;
    let icmp = r#"
      tenant t {
        filter ping { icmp echo-request }
        filter every { ip }
        contract c { subject ok permit every  subject no-ping deny ping }
        group a { select app=a  provides c }
        group b { select app=b  consumes c }
      }"#;
    for deny in [DenyMode::Cluster, DenyMode::Admin] {
        let (list, warnings) = lower_ok(from_outside, &opts(deny));
        let kept: Vec<&Diagnostic> = warnings
            .iter()
            .filter(|w| w.code == Code::K8sDenyKept)
            .collect();
        assert_eq!(kept.len(), 1, "{warnings:#?}");
        assert!(kept[0].message.contains("`no-ssh`") && kept[0].message.contains("external"));
        assert!(primary_text(from_outside, kept[0]).starts_with("subject no-ssh"));
        assert!(items(&list).iter().all(|i| i["kind"] == "NetworkPolicy"));
        let app = item(&list, Some("t"), "gbpc-app");
        assert_eq!(
            app["spec"]["ingress"][1]["ports"],
            json!([{"endPort": 21, "port": 1, "protocol": "TCP"},
                   {"endPort": 1024, "port": 23, "protocol": "TCP"}])
        );

        let (list, warnings) = lower_ok(icmp, &opts(deny));
        let codes: BTreeSet<Code> = warnings.iter().map(|w| w.code).collect();
        assert_eq!(
            codes,
            BTreeSet::from([Code::K8sDenyKept, Code::K8sProtocolHole]),
            "{warnings:#?}"
        );
        let w = warnings
            .iter()
            .find(|w| w.code == Code::K8sDenyKept)
            .unwrap();
        assert!(w.message.contains("`no-ping`") && w.message.contains("ICMP"));
        // `ip` minus ICMP: every TCP, UDP and SCTP port, nothing else (W030).
        let a = item(&list, Some("t"), "gbpc-a");
        assert_eq!(
            a["spec"]["ingress"][1]["ports"],
            json!([{"protocol": "TCP"}, {"protocol": "UDP"}, {"protocol": "SCTP"}])
        );
    }
}

#[test]
fn a_group_named_like_a_fixed_policy_gets_a_name_of_its_own() {
    // `gbpc-default-deny` and `gbpc-allow-dns` are generated in every namespace; the groups
    // that would take those names get `gbpc-group.<group>` (group names have no `.`).
    let src = r#"tenant t { filter f { tcp 80 } contract c { subject s permit f }
        group default-deny { select app=x provides c }
        group allow-dns { select app=y consumes c } }"#;
    for allow_dns in [false, true] {
        let o = Options {
            allow_dns,
            ..opts(DenyMode::Error)
        };
        let (list, _) = lower_ok(src, &o);
        let mut names: Vec<&str> = items(&list)
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap())
            .collect();
        names.sort_unstable();
        let mut want = vec![
            "gbpc-default-deny",
            "gbpc-group.allow-dns",
            "gbpc-group.default-deny",
        ];
        if allow_dns {
            want.insert(0, "gbpc-allow-dns");
        }
        assert_eq!(names, want);
        let dd = item(&list, Some("t"), "gbpc-group.default-deny");
        assert_eq!(dd["spec"]["podSelector"]["matchLabels"]["app"], "x");
        validate(&schemas(), "fixed names", &list);
    }
}

#[test]
fn items_are_sorted_by_namespace_and_name() {
    let (list, _) = lower_ok(KITCHEN_SINK, &opts(DenyMode::Admin));
    let keys: Vec<(String, String)> = items(&list)
        .iter()
        .map(|i| {
            (
                i["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                i["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

/// The one divergence by design: Kubernetes selects pods by labels only, so an endpoint that is
/// a member of a group by address alone (the checker warns, W003) is not a member there. The
/// comparison finds exactly the flows that depend on that membership, and Kubernetes is the
/// stricter side (it fails closed).
#[test]
fn address_only_membership_is_the_known_divergence() {
    let src = r#"
      tenant t {
        filter f { tcp 80 }
        contract c { subject s permit f }
        group web { select app=web  address 198.18.1.0/24  endpoint w1 198.18.1.10  provides c }
        group cli { select app=cli  endpoint c1 198.18.2.10  endpoint c2 198.18.1.20  consumes c }
      }"#;
    let checked = gbpc::check_source(src);
    assert!(checked.ok());
    assert!(
        checked
            .warnings
            .iter()
            .any(|w| w.code == Code::LabelAddressDisagree && primary_text(src, w).contains("c2"))
    );
    let (list, _) = lower(&checked.policy, &opts(DenyMode::Error)).expect("lowers");
    let (_, bad) = compare("w003", &checked.policy, &list, &[]);
    assert!(!bad.is_empty());
    for b in &bad {
        eprintln!("{b}");
        assert!(b.contains("t/c2"), "{b}");
        assert!(b.contains("k8s denies, evaluator allow"), "{b}");
    }
}

/// The verdict between two group sets whose addresses do not constrain the flow (pods: a
/// NetworkPolicy peer has no address family).
fn decide_both(
    p: &Policy,
    s: &[gbpc::model::GroupId],
    d: &[gbpc::model::GroupId],
    flow: eval::Flow,
) -> eval::Decision {
    let both = eval::Families::BOTH;
    let conn = eval::Conn::new(eval::End::new(s, both), eval::End::new(d, both), flow)
        .expect("either family: every flow is a connection");
    eval::decide(p, &conn)
}
