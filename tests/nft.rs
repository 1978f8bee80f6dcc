//! The nftables backend in a real kernel.
//!
//! Every example and a few inline policies are compiled (fabric and per-endpoint enforcement),
//! checked with `nft -c`, loaded twice with `nft -f` (the second load must replace the table)
//! and read back with `nft -j list`, always inside a throwaway network namespace
//! (`unshare --net`), never in the host's. The listing is then run through an interpreter
//! written here, independent of the backend: it executes the base chains' rules as the kernel
//! would for the first packet of a flow (conntrack's view of it, the class maps into
//! `meta mark` / `ct mark`, the verdict maps, the intra set, the chain policy) and the result
//! is compared with [`gbpc::eval::decide`] for every pair of endpoints and a set of flows, plus
//! addresses in no group and in external groups. Finally a small routed fabric of named
//! namespaces carries real TCP connections and ICMP messages, with no rules, with the fabric
//! script and with the per-endpoint script.
//!
//! Where conntrack, not the policy, decides (ICMP types that cannot open a connection;
//! neighbour discovery in the per-endpoint chains), the kernel's behaviour is stated in
//! [`expected_kernel`], counted apart and printed: the evaluator does not model it yet.
//!
//! As root, `nft` must be installed (CI installs it). Without root, or on a kernel without
//! nf_tables, each kernel test skips with one line (`tests/support.rs`); `.ci/run` makes a skip a
//! failure.

// Tests fail by panicking; these lints are for the library.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use gbpc::eval::{self, Flow, Proto, Verdict};
use gbpc::lower::nft::{Enforce, Layout, Options, lower};
use gbpc::model::{EntryProto, GroupId, GroupKind, Policy};
use gbpc::net::{Family, addr_to_ip};
use serde_json::Value;

// ---- the environment ---------------------------------------------------------------------

/// Whether the kernel tests can run (root, `nft`, nf_tables); otherwise the test skips with one
/// line (a failure under `GBPC_REQUIRE_ROOT_TESTS=1`, as in CI). See `tests/support.rs`.
pub(crate) use crate::support::kernel_ready;

/// Run a shell script (`sh -ec`) in a new, anonymous network namespace; its `$1...` are
/// `args`. Returns stdout, or the exit status and stderr.
fn in_netns(script: &str, args: &[&Path]) -> Result<String, String> {
    let out = Command::new("unshare")
        .args(["--net", "sh", "-ec", script, "sh"])
        .args(args)
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("nft printed invalid JSON ({e}):\n{text}"))
}

/// The listing with what legitimately differs between two loads removed: handles and
/// counter values.
fn strip_volatile(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "handle" | "packets" | "bytes"))
                .map(|(k, v)| (k.clone(), strip_volatile(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_volatile).collect()),
        v => v.clone(),
    }
}

/// What the kernel holds after loading a script twice.
struct Loaded {
    /// `nft -j list table` (names for protocols, ICMP types, ...).
    named: Value,
    /// `nft -n -j list table` (numbers).
    numeric: Value,
}

/// `nft -c -f`, then `nft -f` twice in a fresh namespace; the second load must give the same
/// table as the first (replaced, not merged or refused).
fn load(script: &str, table: &str) -> Result<Loaded, String> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("policy.nft");
    std::fs::write(&f, script).unwrap();
    let [first, second, numeric] =
        ["first.json", "second.json", "numeric.json"].map(|n| dir.path().join(n));
    let sh = format!(
        "nft -c -f \"$1\" || {{ echo 'nft -c failed' >&2; exit 3; }}
         nft -f \"$1\" || {{ echo 'first load failed' >&2; exit 4; }}
         nft -j list table inet {table} > \"$2\"
         nft -f \"$1\" || {{ echo 'second load (replacing the table) failed' >&2; exit 5; }}
         nft -j list table inet {table} > \"$3\"
         nft -n -j list table inet {table} > \"$4\""
    );
    in_netns(&sh, &[&f, &first, &second, &numeric])?;
    let (first, named) = (read_json(&first), read_json(&second));
    if strip_volatile(&first) != strip_volatile(&named) {
        return Err(format!(
            "the second load did not leave the same table as the first:\nfirst:  {first}\nsecond: {named}"
        ));
    }
    Ok(Loaded {
        named,
        numeric: read_json(&numeric),
    })
}

// ---- compiling -------------------------------------------------------------------------

fn check(name: &str, src: &str) -> Policy {
    let c = gbpc::check_source(src);
    assert!(c.ok(), "{name}: the policy has errors: {:#?}", c.errors);
    c.policy
}

fn compile(name: &str, p: &Policy, enforce: Enforce) -> String {
    compile_layout(name, p, enforce, Layout::default())
}

fn compile_layout(name: &str, p: &Policy, enforce: Enforce, layout: Layout) -> String {
    let o = Options {
        enforce,
        layout,
        ..Options::default()
    };
    match lower(p, &o) {
        Ok(l) => l.text,
        Err(e) => panic!("{name}: the nftables backend refused the policy: {e:#?}"),
    }
}

fn examples() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "gbp"))
        .map(|p: PathBuf| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

// ---- the kernel's tables, from JSON ------------------------------------------------------

/// A value type nft prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    Ipv4,
    Ipv6,
    Mark,
    Proto,
    Service,
    Icmp,
    Icmpv6,
    CtState,
    Iface,
    Nfproto,
    Verdict,
    Counter,
}

fn ty(name: &str) -> Ty {
    match name {
        "ipv4_addr" => Ty::Ipv4,
        "ipv6_addr" => Ty::Ipv6,
        "mark" => Ty::Mark,
        "inet_proto" => Ty::Proto,
        "inet_service" => Ty::Service,
        "icmp_type" => Ty::Icmp,
        "icmpv6_type" => Ty::Icmpv6,
        "ct_state" => Ty::CtState,
        "iface_index" | "ifname" => Ty::Iface,
        "nf_proto" => Ty::Nfproto,
        "verdict" => Ty::Verdict,
        "counter" => Ty::Counter,
        other => panic!("the interpreter does not know nft type `{other}`"),
    }
}

/// nft's ICMP type names (src/proto.c, icmp_type_tbl).
const ICMP_NAMES: &[(&str, u8)] = &[
    ("echo-reply", 0),
    ("destination-unreachable", 3),
    ("source-quench", 4),
    ("redirect", 5),
    ("echo-request", 8),
    ("router-advertisement", 9),
    ("router-solicitation", 10),
    ("time-exceeded", 11),
    ("parameter-problem", 12),
    ("timestamp-request", 13),
    ("timestamp-reply", 14),
    ("info-request", 15),
    ("info-reply", 16),
    ("address-mask-request", 17),
    ("address-mask-reply", 18),
];

/// nft's ICMPv6 type names (icmp6_type_tbl).
const ICMPV6_NAMES: &[(&str, u8)] = &[
    ("destination-unreachable", 1),
    ("packet-too-big", 2),
    ("time-exceeded", 3),
    ("parameter-problem", 4),
    ("echo-request", 128),
    ("echo-reply", 129),
    ("mld-listener-query", 130),
    ("mld-listener-report", 131),
    ("mld-listener-done", 132),
    ("mld-listener-reduction", 132),
    ("nd-router-solicit", 133),
    ("nd-router-advert", 134),
    ("nd-neighbor-solicit", 135),
    ("nd-neighbor-advert", 136),
    ("nd-redirect", 137),
    ("router-renumbering", 138),
    ("ind-neighbor-solicit", 141),
    ("ind-neighbor-advert", 142),
    ("mld2-listener-report", 143),
];

const CT_STATES: &[(&str, u128)] = &[
    ("invalid", 1),
    ("established", 2),
    ("related", 4),
    ("new", 8),
    ("untracked", 64),
];

/// Protocol names as nft prints them: from /etc/protocols (names and aliases) when present,
/// else numbers; a few common ones are known anyway.
fn proto_number(name: &str) -> Option<u128> {
    static TABLE: OnceLock<BTreeMap<String, u128>> = OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut t: BTreeMap<String, u128> = [
            ("ip", 0),
            ("icmp", 1),
            ("igmp", 2),
            ("ipencap", 4),
            ("tcp", 6),
            ("udp", 17),
            ("gre", 47),
            ("esp", 50),
            ("ah", 51),
            ("ipv6-icmp", 58),
            ("sctp", 132),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect();
        let text = std::fs::read_to_string("/etc/protocols").unwrap_or_default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(name), Some(num)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(num) = num.parse::<u128>() else {
                continue;
            };
            for n in std::iter::once(name).chain(words) {
                t.entry(n.to_string()).or_insert(num);
            }
        }
        t
    });
    t.get(name).copied()
}

/// One value or range of a component, inclusive.
type Span2 = (u128, u128);
/// A set element or a literal: one range per component of the key.
type Key = Vec<Span2>;

fn named(s: &str, table: &[(&str, u8)]) -> Option<u128> {
    table.iter().find(|(n, _)| *n == s).map(|&(_, v)| v as u128)
}

fn parse_name(s: &str, t: Ty) -> u128 {
    let num = || -> Option<u128> {
        match s.strip_prefix("0x") {
            Some(h) => u128::from_str_radix(h, 16).ok(),
            None => s.parse().ok(),
        }
    };
    let v = match t {
        Ty::Ipv4 => s.parse::<Ipv4Addr>().ok().map(|a| u32::from(a) as u128),
        Ty::Ipv6 => s.parse::<Ipv6Addr>().ok().map(u128::from),
        Ty::Mark | Ty::Service => num(),
        Ty::Proto => num().or_else(|| proto_number(s)),
        Ty::Icmp => num().or_else(|| named(s, ICMP_NAMES)),
        Ty::Icmpv6 => num().or_else(|| named(s, ICMPV6_NAMES)),
        Ty::CtState => num().or_else(|| CT_STATES.iter().find(|(n, _)| *n == s).map(|x| x.1)),
        // The packets modelled here never use the loopback interface (index 1).
        Ty::Iface => Some(if s == "lo" {
            1
        } else {
            num().unwrap_or(u128::MAX)
        }),
        Ty::Nfproto => match s {
            "ipv4" => Some(2),
            "ipv6" => Some(10),
            _ => num(),
        },
        Ty::Verdict | Ty::Counter => None,
    };
    v.unwrap_or_else(|| panic!("cannot read `{s}` as a value of type {t:?}"))
}

fn parse_scalar(v: &Value, t: Ty) -> Span2 {
    match v {
        Value::Number(n) => {
            let n = n.as_u64().unwrap_or_else(|| panic!("bad number {n}")) as u128;
            (n, n)
        }
        Value::String(s) => {
            let n = parse_name(s, t);
            (n, n)
        }
        Value::Object(m) if m.contains_key("prefix") => {
            let p = &m["prefix"];
            let a = parse_name(p["addr"].as_str().unwrap(), t);
            let bits: u32 = match t {
                Ty::Ipv4 => 32,
                Ty::Ipv6 => 128,
                _ => panic!("a prefix of type {t:?}: {v}"),
            };
            let len = p["len"].as_u64().unwrap() as u32;
            let host = if bits - len >= 128 {
                u128::MAX
            } else {
                (1u128 << (bits - len)) - 1
            };
            (a & !host, a | host)
        }
        Value::Object(m) if m.contains_key("range") => {
            let r = m["range"].as_array().unwrap();
            (parse_scalar(&r[0], t).0, parse_scalar(&r[1], t).1)
        }
        Value::Object(m) if m.contains_key("elem") => parse_scalar(&m["elem"]["val"], t),
        _ => panic!("cannot read {v} as type {t:?}"),
    }
}

fn parse_key(v: &Value, tys: &[Ty]) -> Key {
    if let Some(inner) = v.get("elem") {
        return parse_key(&inner["val"], tys);
    }
    if tys.len() == 1 {
        return vec![parse_scalar(v, tys[0])];
    }
    let parts = v["concat"]
        .as_array()
        .unwrap_or_else(|| panic!("expected a concatenation of {tys:?}: {v}"));
    assert_eq!(parts.len(), tys.len(), "concatenation {v} against {tys:?}");
    parts
        .iter()
        .zip(tys)
        .map(|(p, t)| parse_scalar(p, *t))
        .collect()
}

/// A verdict as nft prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum KVerdict {
    Accept,
    Drop,
    Continue,
    Return,
    Jump(String),
    Goto(String),
}

fn parse_verdict(v: &Value) -> Option<KVerdict> {
    let m = v.as_object()?;
    let (k, arg) = m.iter().next()?;
    Some(match k.as_str() {
        "accept" => KVerdict::Accept,
        "drop" => KVerdict::Drop,
        "continue" => KVerdict::Continue,
        "return" => KVerdict::Return,
        "jump" => KVerdict::Jump(arg["target"].as_str()?.to_string()),
        "goto" => KVerdict::Goto(arg["target"].as_str()?.to_string()),
        _ => return None,
    })
}

/// What a map element maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Data {
    Num(u128),
    Verdict(KVerdict),
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct NSet {
    key: Vec<Ty>,
    data: Option<Ty>,
    elems: Vec<(Key, Option<Data>)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    IpSaddr,
    IpDaddr,
    Ip6Saddr,
    Ip6Daddr,
    /// `th dport`, and `tcp|udp|sctp dport` (with the protocol it depends on).
    Dport(Option<u8>),
    IcmpType,
    Icmpv6Type,
    Ip6Hoplimit,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Expr {
    MetaMark,
    MetaL4proto,
    MetaNfproto,
    MetaIif,
    MetaOif,
    CtMark,
    CtState,
    Payload(Field),
    Concat(Vec<Expr>),
    Map(Box<Expr>, String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Rhs {
    Set(String),
    Anon(Vec<Key>),
    Value(Key),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    In,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Stmt {
    Match { op: Op, left: Expr, right: Rhs },
    SetMetaMark(Expr),
    SetCtMark(Expr),
    Counter,
    CounterMap(Expr, String),
    Log,
    Vmap(Expr, String),
    Verdict(KVerdict),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct NChain {
    hook: Option<String>,
    policy: Option<String>,
    rules: Vec<Vec<Stmt>>,
}

/// How a set is searched: the kernel's own lookups are not linear, and neither may the
/// interpreter's be for policies with thousands of elements.
enum Index {
    /// One component, intervals sorted by start (checked disjoint).
    Intervals(Vec<usize>),
    /// The first `k` components are single values in every element: buckets by them.
    Prefix(usize, HashMap<Vec<u128>, Vec<usize>>),
    /// The first component's ranges are equal or disjoint (the address ranges of classes, in
    /// the address layout): buckets by that range, sorted by start.
    Ranges(Vec<((u128, u128), Vec<usize>)>),
}

/// The parts of one table the interpreter runs.
struct Ruleset {
    sets: BTreeMap<String, NSet>,
    chains: BTreeMap<String, NChain>,
    index: BTreeMap<String, Index>,
}

impl PartialEq for Ruleset {
    fn eq(&self, o: &Ruleset) -> bool {
        self.sets == o.sets && self.chains == o.chains
    }
}

impl std::fmt::Debug for Ruleset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sets {:?}, chains {:?}", self.sets, self.chains)
    }
}

fn build_index(name: &str, s: &NSet) -> Index {
    if s.key.len() == 1 {
        let mut idx: Vec<usize> = (0..s.elems.len()).collect();
        idx.sort_by_key(|&i| s.elems[i].0[0].0);
        for w in idx.windows(2) {
            let (a, b) = (&s.elems[w[0]].0, &s.elems[w[1]].0);
            assert!(
                a[0].1 < b[0].0,
                "@{name} has overlapping elements {} and {}",
                fmt_key(a, &s.key),
                fmt_key(b, &s.key)
            );
        }
        return Index::Intervals(idx);
    }
    let exact = |c: usize| s.elems.iter().all(|(k, _)| k[c].0 == k[c].1);
    let k = (0..s.key.len() - 1).take_while(|&c| exact(c)).count();
    if k == 0 {
        let mut by: BTreeMap<(u128, u128), Vec<usize>> = BTreeMap::new();
        for (i, (key, _)) in s.elems.iter().enumerate() {
            by.entry(key[0]).or_default().push(i);
        }
        let buckets: Vec<((u128, u128), Vec<usize>)> = by.into_iter().collect();
        if buckets.windows(2).all(|w| w[0].0.1 < w[1].0.0) {
            return Index::Ranges(buckets);
        }
    }
    let mut map: HashMap<Vec<u128>, Vec<usize>> = HashMap::new();
    for (i, (key, _)) in s.elems.iter().enumerate() {
        map.entry(key[..k].iter().map(|r| r.0).collect())
            .or_default()
            .push(i);
    }
    Index::Prefix(k, map)
}

fn type_list(v: &Value) -> Vec<Ty> {
    match v {
        Value::String(s) => vec![ty(s)],
        Value::Array(a) => a.iter().map(|x| ty(x.as_str().unwrap())).collect(),
        _ => panic!("bad type {v}"),
    }
}

fn set_ref(v: &Value) -> String {
    v.as_str()
        .and_then(|s| s.strip_prefix('@'))
        .unwrap_or_else(|| panic!("expected a named set `@name`, got {v}"))
        .to_string()
}

impl Ruleset {
    fn parse(listing: &Value) -> Ruleset {
        let items = listing["nftables"]
            .as_array()
            .unwrap_or_else(|| panic!("not an nft JSON listing: {listing}"));
        let mut rs = Ruleset {
            sets: BTreeMap::new(),
            chains: BTreeMap::new(),
            index: BTreeMap::new(),
        };
        for it in items {
            let Some(s) = it.get("set").or_else(|| it.get("map")) else {
                continue;
            };
            let key = type_list(&s["type"]);
            let data = s.get("map").map(|d| ty(d.as_str().unwrap()));
            let mut elems = Vec::new();
            for e in s
                .get("elem")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                elems.push(match data {
                    None => (parse_key(e, &key), None),
                    Some(dt) => {
                        let pair = e.as_array().unwrap_or_else(|| panic!("map element {e}"));
                        let d = match dt {
                            Ty::Verdict => Data::Verdict(
                                parse_verdict(&pair[1])
                                    .unwrap_or_else(|| panic!("verdict {}", pair[1])),
                            ),
                            Ty::Counter => Data::Name(pair[1].as_str().unwrap().to_string()),
                            t => Data::Num(parse_scalar(&pair[1], t).0),
                        };
                        (parse_key(&pair[0], &key), Some(d))
                    }
                });
            }
            let name = s["name"].as_str().unwrap().to_string();
            let set = NSet { key, data, elems };
            rs.index.insert(name.clone(), build_index(&name, &set));
            rs.sets.insert(name, set);
        }
        for it in items {
            if let Some(c) = it.get("chain") {
                rs.chains.insert(
                    c["name"].as_str().unwrap().to_string(),
                    NChain {
                        hook: c.get("hook").and_then(Value::as_str).map(String::from),
                        policy: c.get("policy").and_then(Value::as_str).map(String::from),
                        rules: Vec::new(),
                    },
                );
            }
        }
        for it in items {
            if let Some(r) = it.get("rule") {
                let chain = r["chain"].as_str().unwrap();
                let stmts = r["expr"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| rs.stmt(s))
                    .collect();
                rs.chains.get_mut(chain).unwrap().rules.push(stmts);
            }
        }
        rs
    }

    fn expr(&self, v: &Value) -> Expr {
        if let Some(m) = v.get("meta") {
            return match m["key"].as_str().unwrap() {
                "mark" => Expr::MetaMark,
                "l4proto" => Expr::MetaL4proto,
                "nfproto" => Expr::MetaNfproto,
                "iif" => Expr::MetaIif,
                "oif" => Expr::MetaOif,
                k => panic!("the interpreter does not know `meta {k}`"),
            };
        }
        if let Some(c) = v.get("ct") {
            return match c["key"].as_str().unwrap() {
                "mark" => Expr::CtMark,
                "state" => Expr::CtState,
                k => panic!("the interpreter does not know `ct {k}`"),
            };
        }
        if let Some(p) = v.get("payload") {
            let f = match (
                p["protocol"].as_str().unwrap(),
                p["field"].as_str().unwrap(),
            ) {
                ("ip", "saddr") => Field::IpSaddr,
                ("ip", "daddr") => Field::IpDaddr,
                ("ip6", "saddr") => Field::Ip6Saddr,
                ("ip6", "daddr") => Field::Ip6Daddr,
                ("th", "dport") => Field::Dport(None),
                ("tcp", "dport") => Field::Dport(Some(6)),
                ("udp", "dport") => Field::Dport(Some(17)),
                ("sctp", "dport") => Field::Dport(Some(132)),
                ("icmp", "type") => Field::IcmpType,
                ("icmpv6", "type") => Field::Icmpv6Type,
                ("ip6", "hoplimit") => Field::Ip6Hoplimit,
                (pr, f) => panic!("the interpreter does not know payload `{pr} {f}`"),
            };
            return Expr::Payload(f);
        }
        if let Some(c) = v.get("concat") {
            return Expr::Concat(c.as_array().unwrap().iter().map(|x| self.expr(x)).collect());
        }
        if let Some(m) = v.get("map") {
            let name = set_ref(&m["data"]);
            assert!(
                self.sets.contains_key(&name),
                "map lookup in unknown @{name}"
            );
            return Expr::Map(Box::new(self.expr(&m["key"])), name);
        }
        panic!("the interpreter does not know the expression {v}")
    }

    fn types(&self, e: &Expr) -> Vec<Ty> {
        match e {
            Expr::MetaMark | Expr::CtMark => vec![Ty::Mark],
            Expr::MetaL4proto => vec![Ty::Proto],
            Expr::MetaNfproto => vec![Ty::Nfproto],
            Expr::MetaIif | Expr::MetaOif => vec![Ty::Iface],
            Expr::CtState => vec![Ty::CtState],
            Expr::Payload(f) => vec![match f {
                Field::IpSaddr | Field::IpDaddr => Ty::Ipv4,
                Field::Ip6Saddr | Field::Ip6Daddr => Ty::Ipv6,
                Field::Dport(_) => Ty::Service,
                Field::IcmpType => Ty::Icmp,
                Field::Icmpv6Type => Ty::Icmpv6,
                Field::Ip6Hoplimit => Ty::Proto,
            }],
            Expr::Concat(es) => es.iter().flat_map(|e| self.types(e)).collect(),
            Expr::Map(_, name) => vec![self.sets[name].data.expect("a map")],
        }
    }

    /// A key expression used with a named set or map must have the set's key type.
    fn typed_lookup(&self, key: &Value, data: &Value) -> (Expr, String) {
        let e = self.expr(key);
        let name = set_ref(data);
        let set = self
            .sets
            .get(&name)
            .unwrap_or_else(|| panic!("lookup in unknown @{name}"));
        assert_eq!(
            self.types(&e),
            set.key,
            "the key {key} does not have the type of @{name}"
        );
        (e, name)
    }

    fn stmt(&self, v: &Value) -> Stmt {
        if let Some(k) = parse_verdict(v) {
            return Stmt::Verdict(k);
        }
        let m = v.as_object().unwrap();
        let (k, a) = m.iter().next().unwrap();
        match k.as_str() {
            "match" => {
                let op = match a["op"].as_str().unwrap() {
                    "==" => Op::Eq,
                    "!=" => Op::Ne,
                    "in" => Op::In,
                    o => panic!("the interpreter does not know the operator `{o}`"),
                };
                let left = self.expr(&a["left"]);
                let right = &a["right"];
                let right = if right.as_str().is_some_and(|s| s.starts_with('@')) {
                    let (_, name) = self.typed_lookup(&a["left"], right);
                    Rhs::Set(name)
                } else {
                    let tys = self.types(&left);
                    let items = match right {
                        Value::Object(o) if o.contains_key("set") => o["set"].as_array(),
                        Value::Array(a) => Some(a),
                        _ => None,
                    };
                    match items {
                        Some(items) => {
                            Rhs::Anon(items.iter().map(|x| parse_key(x, &tys)).collect())
                        }
                        None => Rhs::Value(parse_key(right, &tys)),
                    }
                };
                Stmt::Match { op, left, right }
            }
            "mangle" => {
                let value = self.expr(&a["value"]);
                match self.expr(&a["key"]) {
                    Expr::MetaMark => Stmt::SetMetaMark(value),
                    Expr::CtMark => Stmt::SetCtMark(value),
                    other => panic!("the interpreter does not know how to set {other:?}"),
                }
            }
            "counter" => match a.get("map") {
                Some(m) => {
                    let (e, name) = self.typed_lookup(&m["key"], &m["data"]);
                    Stmt::CounterMap(e, name)
                }
                None => Stmt::Counter,
            },
            "log" => Stmt::Log,
            "vmap" => {
                let (e, name) = self.typed_lookup(&a["key"], &a["data"]);
                assert_eq!(self.sets[&name].data, Some(Ty::Verdict), "vmap @{name}");
                Stmt::Vmap(e, name)
            }
            _ => panic!("the interpreter does not know the statement {v}"),
        }
    }

    fn lookup(&self, set: &str, key: &[u128]) -> Option<&(Key, Option<Data>)> {
        let s = &self.sets[set];
        assert_eq!(
            key.len(),
            s.key.len(),
            "a key of the wrong length for @{set}"
        );
        let candidates: &[usize] = match &self.index[set] {
            Index::Intervals(idx) => {
                let i = idx.partition_point(|&i| s.elems[i].0[0].1 < key[0]);
                return idx
                    .get(i)
                    .map(|&i| &s.elems[i])
                    .filter(|(k, _)| k[0].0 <= key[0]);
            }
            Index::Prefix(k, map) => map.get(&key[..*k])?,
            Index::Ranges(buckets) => {
                let i = buckets.partition_point(|(r, _)| r.1 < key[0]);
                match buckets.get(i) {
                    Some((r, idx)) if r.0 <= key[0] => idx,
                    _ => return None,
                }
            }
        };
        let mut hits = candidates
            .iter()
            .map(|&i| &s.elems[i])
            .filter(|(k, _)| k.iter().zip(key).all(|(&(lo, hi), &v)| lo <= v && v <= hi));
        let first = hits.next();
        if let Some(other) = hits.next() {
            panic!(
                "@{set} has overlapping elements for {}: {} and {}",
                fmt_vals(key, &s.key),
                fmt_key(&first.unwrap().0, &s.key),
                fmt_key(&other.0, &s.key)
            );
        }
        first
    }

    fn base_chain(&self, hook: &str) -> &str {
        let mut it = self
            .chains
            .iter()
            .filter(|(_, c)| c.hook.as_deref() == Some(hook));
        let (name, _) = it
            .next()
            .unwrap_or_else(|| panic!("the table has no base chain on hook {hook}"));
        assert!(it.next().is_none(), "several base chains on hook {hook}");
        name
    }

    fn hooks(&self) -> BTreeSet<&str> {
        self.chains
            .values()
            .filter_map(|c| c.hook.as_deref())
            .collect()
    }
}

fn fmt_val(v: u128, t: Ty) -> String {
    match t {
        Ty::Ipv4 => Ipv4Addr::from(v as u32).to_string(),
        Ty::Ipv6 => Ipv6Addr::from(v).to_string(),
        Ty::Mark => format!("0x{v:x}"),
        _ => v.to_string(),
    }
}

fn fmt_vals(vals: &[u128], tys: &[Ty]) -> String {
    let parts: Vec<String> = vals.iter().zip(tys).map(|(v, t)| fmt_val(*v, *t)).collect();
    parts.join(" . ")
}

fn fmt_key(k: &Key, tys: &[Ty]) -> String {
    let parts: Vec<String> = k
        .iter()
        .zip(tys)
        .map(|(&(lo, hi), t)| {
            if lo == hi {
                fmt_val(lo, *t)
            } else {
                format!("{}-{}", fmt_val(lo, *t), fmt_val(hi, *t))
            }
        })
        .collect();
    parts.join(" . ")
}

// ---- the interpreter ---------------------------------------------------------------------

/// The first packet of a flow.
#[derive(Clone, Copy, Debug)]
struct Pkt {
    family: Family,
    saddr: u128,
    daddr: u128,
    proto: u8,
    /// Destination port, or ICMP type; 0 for other protocols.
    port: u16,
}

/// How conntrack sees the first packet of a flow (nf_conntrack_proto_icmp.c and
/// nf_conntrack_proto_icmpv6.c): only request types open an ICMP connection; neighbour
/// discovery and MLD are left untracked; any other ICMP type arriving on its own (a reply, an
/// error that relates to no connection, an unknown type) gets no conntrack entry at all, which
/// `ct state` calls invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CtFirst {
    New,
    Invalid,
    Untracked,
}

fn ct_first(proto: u8, port: u16) -> CtFirst {
    match (proto, port) {
        (1, 8 | 13 | 15 | 17) => CtFirst::New,
        (1, _) => CtFirst::Invalid,
        (58, 128 | 139) => CtFirst::New,
        (58, 130..=136 | 143) => CtFirst::Untracked,
        (58, _) => CtFirst::Invalid,
        _ => CtFirst::New,
    }
}

/// The packet mark another ruleset set before gbpc's chain sees the packet (kube-proxy's
/// masquerade bit), and the connection mark (a connmark router's).
const FOREIGN_META_MARK: u128 = 0x4000;
const FOREIGN_CT_MARK: u128 = 0xca6c;

/// One traversal of one hook: marks start as other rulesets left them ([`FOREIGN_META_MARK`],
/// [`FOREIGN_CT_MARK`]).
struct Run<'a> {
    rs: &'a Ruleset,
    pkt: Pkt,
    /// The hop limit the hook sees: as sent (255 for neighbour discovery, which is sent on a
    /// link, 64 otherwise), one less after the fabric forwarded it.
    hops: u8,
    meta_mark: u128,
    ct_mark: u128,
    /// Whether to explain (only when a disagreement is reported: it is slow).
    tracing: bool,
    trace: Vec<String>,
    depth: usize,
}

/// How a chain ended.
enum End {
    Verdict(bool),
    Return,
}

impl<'a> Run<'a> {
    fn new(rs: &'a Ruleset, pkt: Pkt, tracing: bool) -> Self {
        let nd = pkt.proto == 58 && (133..=137).contains(&pkt.port);
        Run {
            rs,
            pkt,
            hops: if nd { 255 } else { 64 },
            meta_mark: FOREIGN_META_MARK,
            ct_mark: FOREIGN_CT_MARK,
            tracing,
            trace: Vec::new(),
            depth: 0,
        }
    }

    fn ct(&self) -> CtFirst {
        ct_first(self.pkt.proto, self.pkt.port)
    }

    fn note(&mut self, f: impl FnOnce() -> String) {
        if self.tracing {
            self.trace.push(f());
        }
    }

    fn eval(&mut self, e: &Expr) -> Option<Vec<u128>> {
        let p = self.pkt;
        let v4 = p.family == Family::V4;
        Some(match e {
            Expr::MetaMark => vec![self.meta_mark],
            // Without a conntrack entry `ct mark` cannot be read: the rule stops.
            Expr::CtMark if self.ct() != CtFirst::New => return None,
            Expr::CtMark => vec![self.ct_mark],
            Expr::MetaL4proto => vec![p.proto as u128],
            Expr::MetaNfproto => vec![if v4 { 2 } else { 10 }],
            // Endpoint traffic never uses the loopback interface (index 1).
            Expr::MetaIif | Expr::MetaOif => vec![2],
            Expr::CtState => vec![match self.ct() {
                CtFirst::New => 8,
                CtFirst::Invalid => 1,
                CtFirst::Untracked => 64,
            }],
            Expr::Payload(f) => vec![match f {
                Field::IpSaddr if v4 => p.saddr,
                Field::IpDaddr if v4 => p.daddr,
                Field::Ip6Saddr if !v4 => p.saddr,
                Field::Ip6Daddr if !v4 => p.daddr,
                Field::Dport(None) if matches!(p.proto, 6 | 17 | 132 | 33 | 136) => p.port as u128,
                Field::Dport(Some(n)) if *n == p.proto => p.port as u128,
                Field::IcmpType if p.proto == 1 => p.port as u128,
                Field::Icmpv6Type if p.proto == 58 => p.port as u128,
                Field::Ip6Hoplimit if !v4 => u128::from(self.hops),
                // The header is not there: the rule does not match.
                _ => return None,
            }],
            Expr::Concat(es) => {
                let mut out = Vec::new();
                for e in es {
                    out.extend(self.eval(e)?);
                }
                out
            }
            Expr::Map(k, name) => {
                let key = self.eval(k)?;
                let rs = self.rs;
                let tys = &rs.sets[name].key;
                match rs.lookup(name, &key) {
                    Some((ek, Some(Data::Num(n)))) => {
                        self.note(|| {
                            format!(
                                "@{name}[{}] = 0x{n:x} (element {})",
                                fmt_vals(&key, tys),
                                fmt_key(ek, tys)
                            )
                        });
                        vec![*n]
                    }
                    Some(other) => panic!("@{name} maps to {other:?}, not a value"),
                    None => {
                        self.note(|| format!("@{name}[{}]: no element", fmt_vals(&key, tys)));
                        return None;
                    }
                }
            }
        })
    }

    fn matches(&mut self, op: Op, left: &Expr, right: &Rhs) -> Option<bool> {
        let v = self.eval(left)?;
        let within = |k: &Key| {
            k.len() == v.len() && k.iter().zip(&v).all(|(&(lo, hi), &x)| lo <= x && x <= hi)
        };
        let hit = if *left == Expr::CtState {
            // A bit mask: `ct state established,related` tests any of the bits.
            let mask = match right {
                Rhs::Value(k) => k[0].0,
                Rhs::Anon(ks) => ks.iter().fold(0, |m, k| m | k[0].0),
                Rhs::Set(s) => panic!("ct state in @{s}"),
            };
            v[0] & mask != 0
        } else {
            match right {
                Rhs::Set(s) => {
                    let rs = self.rs;
                    let hit = rs.lookup(s, &v).is_some();
                    self.note(|| {
                        format!(
                            "@{s}[{}]: {}",
                            fmt_vals(&v, &rs.sets[s].key),
                            if hit { "in the set" } else { "not in the set" }
                        )
                    });
                    hit
                }
                Rhs::Anon(ks) => ks.iter().any(within),
                Rhs::Value(k) => within(k),
            }
        };
        Some(if op == Op::Ne { !hit } else { hit })
    }

    /// Run one rule: the verdict it reaches, if any.
    fn rule(&mut self, chain: &str, i: usize, stmts: &[Stmt]) -> Option<KVerdict> {
        for s in stmts {
            match s {
                Stmt::Match { op, left, right } => {
                    if !self.matches(*op, left, right)? {
                        return None;
                    }
                }
                Stmt::SetMetaMark(e) => self.meta_mark = self.eval(e)?[0],
                Stmt::SetCtMark(e) => {
                    let v = self.eval(e)?[0];
                    // Without a conntrack entry there is nothing to set (the rule goes on).
                    if self.ct() == CtFirst::New {
                        self.ct_mark = v;
                    }
                }
                Stmt::Counter => {}
                Stmt::CounterMap(e, name) => {
                    let k = self.eval(e)?;
                    self.rs.lookup(name, &k)?;
                }
                Stmt::Log => self.note(|| format!("{chain} rule {i}: log")),
                Stmt::Vmap(e, name) => {
                    let k = self.eval(e)?;
                    let rs = self.rs;
                    let tys = &rs.sets[name].key;
                    match rs.lookup(name, &k) {
                        Some((ek, Some(Data::Verdict(v)))) => {
                            self.note(|| {
                                format!(
                                    "@{name}[{}] = {v:?} (element {})",
                                    fmt_vals(&k, tys),
                                    fmt_key(ek, tys)
                                )
                            });
                            return Some(v.clone());
                        }
                        Some(other) => panic!("@{name} maps to {other:?}, not a verdict"),
                        None => {
                            self.note(|| format!("@{name}[{}]: no element", fmt_vals(&k, tys)));
                            return None;
                        }
                    }
                }
                Stmt::Verdict(v) => {
                    self.note(|| format!("{chain} rule {i}: {v:?}"));
                    return Some(v.clone());
                }
            }
        }
        None
    }

    fn chain(&mut self, name: &str) -> End {
        self.depth += 1;
        assert!(self.depth < 16, "jumps nest too deeply at {name}");
        let rs = self.rs;
        let c = rs
            .chains
            .get(name)
            .unwrap_or_else(|| panic!("jump to unknown chain {name}"));
        for (i, stmts) in c.rules.iter().enumerate() {
            match self.rule(name, i, stmts) {
                None | Some(KVerdict::Continue) => {}
                Some(KVerdict::Accept) => return End::Verdict(true),
                Some(KVerdict::Drop) => return End::Verdict(false),
                Some(KVerdict::Return) => break,
                Some(KVerdict::Jump(t)) => {
                    if let End::Verdict(v) = self.chain(&t) {
                        return End::Verdict(v);
                    }
                }
                Some(KVerdict::Goto(t)) => {
                    let end = self.chain(&t);
                    self.depth -= 1;
                    return end;
                }
            }
        }
        self.depth -= 1;
        End::Return
    }

    /// The verdict of the base chain on `hook`, and whether both marks are as they came.
    fn hook(rs: &'a Ruleset, hook: &str, pkt: Pkt, tracing: bool) -> (bool, Vec<String>, bool) {
        let name = rs.base_chain(hook);
        let mut r = Run::new(rs, pkt, tracing);
        // Forwarding and the destination's input come after the fabric's router.
        if hook != "output" {
            r.hops -= 1;
        }
        let v = match r.chain(name) {
            End::Verdict(v) => v,
            End::Return => {
                let policy = rs.chains[name].policy.as_deref().unwrap_or("accept");
                r.note(|| format!("{name}: policy {policy}"));
                policy == "accept"
            }
        };
        let kept = r.meta_mark == FOREIGN_META_MARK && r.ct_mark == FOREIGN_CT_MARK;
        if !kept {
            let (m, c) = (r.meta_mark, r.ct_mark);
            r.note(|| format!("marks left as 0x{m:x} / 0x{c:x}"));
        }
        (v, r.trace, kept)
    }
}

/// The kernel's verdict for a new connection, how it was reached, and whether the packet
/// and connection marks were left as other rulesets set them.
fn kernel_verdict(rs: &Ruleset, mode: Enforce, pkt: Pkt, tracing: bool) -> (bool, String, bool) {
    match mode {
        Enforce::Fabric => {
            let (v, t, kept) = Run::hook(rs, "forward", pkt, tracing);
            (v, t.join("; "), kept)
        }
        Enforce::Endpoint => {
            // Leaves the source's namespace (output), enters the destination's (input); both
            // load the same script.
            let (out, t1, kept1) = Run::hook(rs, "output", pkt, tracing);
            if !out {
                return (false, format!("source output: {}", t1.join("; ")), kept1);
            }
            let (inp, t2, kept2) = Run::hook(rs, "input", pkt, tracing);
            (
                inp,
                format!(
                    "source output: {}; destination input: {}",
                    t1.join("; "),
                    t2.join("; ")
                ),
                kept1 && kept2,
            )
        }
    }
}

// ---- comparing with the evaluator ----------------------------------------------------------

/// One side of a flow: an endpoint's address, or a raw address.
struct Party {
    label: String,
    endpoint: Option<usize>,
    family: Family,
    addr: u128,
    groups: Vec<GroupId>,
}

fn group_names(p: &Policy, gs: &[GroupId]) -> String {
    if gs.is_empty() {
        return "no group".into();
    }
    let names: Vec<String> = gs.iter().map(|g| p.group_name(*g)).collect();
    names.join(", ")
}

fn endpoint_parties(p: &Policy) -> Vec<Party> {
    let mut out = Vec::new();
    for (i, e) in p.endpoints.iter().enumerate() {
        for a in &e.addrs {
            out.push(Party {
                label: format!(
                    "{} ({})",
                    p.endpoint_name(gbpc::model::EndpointId(i as u32)),
                    a.ip()
                ),
                endpoint: Some(i),
                family: a.family,
                addr: a.addr,
                groups: e.groups.clone(),
            });
        }
    }
    out
}

/// Addresses at the edges of every prefix and hole, and a few fixed ones, that are not
/// endpoints: in no group, in external groups, in internal groups.
fn raw_parties(p: &Policy) -> Vec<Party> {
    let mut addrs: BTreeSet<(Family, u128)> = BTreeSet::new();
    let mut edges = |family: Family, lo: u128, hi: u128| {
        addrs.insert((family, lo));
        addrs.insert((family, hi));
        if let Some(x) = lo.checked_sub(1) {
            addrs.insert((family, x));
        }
        if hi < family.max() {
            addrs.insert((family, hi + 1));
        }
    };
    for g in &p.groups {
        for n in &g.nets {
            edges(n.cidr.family, n.cidr.first(), n.cidr.last());
            for x in &n.except {
                edges(x.family, x.first(), x.last());
            }
        }
    }
    for fixed in ["198.19.255.254", "203.0.113.250", "2001:db8:ffff::1"] {
        let (f, a) = gbpc::net::ip_to_addr(fixed.parse().unwrap());
        addrs.insert((f, a));
    }
    let taken: BTreeSet<(Family, u128)> = p
        .endpoints
        .iter()
        .flat_map(|e| e.addrs.iter().map(|a| (a.family, a.addr)))
        .collect();
    addrs
        .into_iter()
        .filter(|a| !taken.contains(a))
        .map(|(family, addr)| {
            let groups = p.address_groups(family, addr);
            Party {
                label: format!(
                    "address {} ({})",
                    addr_to_ip(family, addr),
                    group_names(p, &groups)
                ),
                endpoint: None,
                family,
                addr,
                groups,
            }
        })
        .collect()
}

/// Every port and ICMP type a filter names, the ones just outside each range, one nothing
/// names, and two other IP protocols.
fn flows(p: &Policy, family: Family) -> Vec<Flow> {
    let mut ports: BTreeSet<u16> = BTreeSet::new();
    let mut types: BTreeSet<u16> = BTreeSet::new();
    let mut all_ranges: Vec<(u16, u16)> = Vec::new();
    let around = |set: &mut BTreeSet<u16>, lo: u16, hi: u16, max: u16| {
        set.insert(lo);
        set.insert(hi);
        if let Some(x) = lo.checked_sub(1) {
            set.insert(x);
        }
        if hi < max {
            set.insert(hi + 1);
        }
    };
    let icmp = match family {
        Family::V4 => EntryProto::Icmp,
        Family::V6 => EntryProto::Icmpv6,
    };
    for f in &p.filters {
        for e in &f.entries {
            let ranges: &[(u16, u16)] = if e.ranges.is_empty() {
                &[(1, 65534)]
            } else {
                &e.ranges
            };
            match e.proto {
                EntryProto::Tcp | EntryProto::Udp | EntryProto::Sctp => {
                    for &(lo, hi) in ranges {
                        around(&mut ports, lo, hi, u16::MAX);
                        all_ranges.push((lo, hi));
                    }
                }
                pr if pr == icmp => {
                    for &(lo, hi) in ranges {
                        around(&mut types, lo.min(255), hi.min(255), 255);
                    }
                }
                _ => {}
            }
        }
    }
    // A port no filter names (nor its neighbours).
    let unnamed = (40_000..=u16::MAX)
        .find(|&n| {
            let n = n as u32;
            all_ranges
                .iter()
                .all(|&(lo, hi)| n + 1 < lo as u32 || n > hi as u32 + 1)
        })
        .unwrap_or(40_000);
    ports.insert(unnamed);
    let mut out = Vec::new();
    for port in ports {
        for proto in [Proto::Tcp, Proto::Udp, Proto::Sctp] {
            out.push(Flow { proto, port });
        }
    }
    let (proto, fixed): (Proto, &[u16]) = match family {
        Family::V4 => (Proto::Icmp, &[0, 8, 13, 254]),
        // 135 (neighbour solicitation) exercises the endpoint chains' ND exemption.
        Family::V6 => (Proto::Icmpv6, &[128, 129, 135, 254]),
    };
    types.extend(fixed);
    for port in types {
        out.push(Flow { proto, port });
    }
    for n in [47, 4] {
        out.push(Flow {
            proto: Proto::from_number(n),
            port: 0,
        });
    }
    out
}

/// What one comparison found.
#[derive(Default)]
struct Report {
    pairs: usize,
    all_pairs: usize,
    compared: usize,
    allowed: usize,
    /// Neighbour discovery the evaluator denies, accepted by the endpoint chains.
    nd_exempt: usize,
    /// Flows the evaluator allows that conntrack drops as invalid or untracked.
    not_new: usize,
    not_new_examples: Vec<String>,
    disagreements: Vec<String>,
}

/// What the kernel must do with the first packet of a flow. The evaluator's verdict holds for
/// every flow conntrack sees as a new connection. ICMP types that cannot open one are decided
/// by conntrack before the policy: dropped as invalid (replies and errors pass only as
/// `established,related`). Neighbour discovery and MLD (untracked) never reach another
/// endpoint: the per-endpoint chains accept neighbour discovery only at hop limit 255 (on the
/// endpoint's own link; IPv6 does not work without it), which a packet that crossed the fabric
/// no longer has, and the policy chain drops what conntrack does not track.
fn expected_kernel(_mode: Enforce, flow: Flow, dec: &eval::Decision) -> bool {
    match ct_first(flow.proto.number(), flow.port) {
        CtFirst::New => dec.verdict == Verdict::Allow,
        CtFirst::Invalid | CtFirst::Untracked => false,
    }
}

/// Comparisons per policy and mode beyond which address pairs are sampled (the scale
/// examples have thousands of endpoints and prefixes).
const BUDGET: usize = 150_000;

/// `take` of `items`, evenly spread.
fn spread<T: Copy>(items: &[T], take: usize) -> Vec<T> {
    if take >= items.len() {
        return items.to_vec();
    }
    (0..take).map(|i| items[i * items.len() / take]).collect()
}

/// Every pair of endpoint addresses of a family, and every raw address with every endpoint
/// address both ways; sampled evenly beyond the budget, in four kinds shared fairly: endpoint
/// or raw pairs, with something for the evaluator to weigh (an applicable contract or a
/// common group) or without.
fn pairs<'a>(
    p: &Policy,
    eps: &'a [Party],
    raw: &'a [Party],
    budget: usize,
) -> (Vec<(&'a Party, &'a Party)>, usize) {
    let mut kinds: [Vec<(&Party, &Party)>; 4] = Default::default();
    let mut push = |s: &'a Party, d: &'a Party, is_raw: bool| {
        let weighed = !eval::applicable(p, &s.groups, &d.groups).is_empty()
            || s.groups
                .iter()
                .any(|g| p.group(*g).kind != GroupKind::Any && d.groups.contains(g));
        kinds[usize::from(is_raw) * 2 + usize::from(!weighed)].push((s, d));
    };
    for s in eps {
        for d in eps {
            if s.endpoint != d.endpoint && s.family == d.family {
                push(s, d, false);
            }
        }
        for r in raw.iter().filter(|r| r.family == s.family) {
            push(s, r, true);
            push(r, s, true);
        }
    }
    kinds.sort_by_key(Vec::len);
    let all = kinds.iter().map(Vec::len).sum();
    let mut left = budget;
    let mut out = Vec::new();
    for (i, k) in kinds.iter().enumerate() {
        let take = k.len().min(left / (kinds.len() - i));
        out.extend(spread(k, take));
        left -= take;
    }
    (out, all)
}

/// Compare the interpreted ruleset with the evaluator; with `keep_marks`, a flow whose packet
/// or connection mark the ruleset changes is a disagreement too (the default layout's promise
/// to other rulesets).
fn compare(name: &str, p: &Policy, rs: &Ruleset, mode: Enforce, keep_marks: bool) -> Report {
    let eps = endpoint_parties(p);
    let raw = raw_parties(p);
    let flows_v4 = flows(p, Family::V4);
    let flows_v6 = flows(p, Family::V6);
    let per_pair = flows_v4.len().max(flows_v6.len());
    let (pairs, all_pairs) = pairs(p, &eps, &raw, BUDGET / per_pair);
    let mut rep = Report {
        pairs: pairs.len(),
        all_pairs,
        ..Report::default()
    };
    for (s, d) in pairs {
        let fl = match s.family {
            Family::V4 => &flows_v4,
            Family::V6 => &flows_v6,
        };
        for &flow in fl {
            let fam = eval::Families::of(s.family);
            let ends = (
                eval::End::new(&s.groups, fam),
                eval::End::new(&d.groups, fam),
            );
            let Ok(conn) = eval::Conn::new(ends.0, ends.1, flow) else {
                continue; // no such packet: a protocol of the other family
            };
            let dec = eval::decide(p, &conn);
            let pkt = Pkt {
                family: s.family,
                saddr: s.addr,
                daddr: d.addr,
                proto: flow.proto.number(),
                port: flow.port,
            };
            let (accept, _, kept) = kernel_verdict(rs, mode, pkt, false);
            rep.compared += 1;
            rep.allowed += accept as usize;
            let expected = expected_kernel(mode, flow, &dec);
            if expected != (dec.verdict == Verdict::Allow) {
                // Conntrack decides this flow, not the policy: the evaluator does not model it.
                if expected {
                    rep.nd_exempt += 1;
                } else {
                    rep.not_new += 1;
                    if rep.not_new_examples.len() < 3 {
                        rep.not_new_examples.push(format!(
                            "{} -> {} {flow} ({})",
                            s.label,
                            d.label,
                            dec.describe(p)
                        ));
                    }
                }
            }
            if keep_marks && !kept {
                let trace = kernel_verdict(rs, mode, pkt, true).1;
                rep.disagreements.push(format!(
                    "[{name}, {mode:?}] {} -> {} {flow}: the marks were changed ({trace})",
                    s.label, d.label,
                ));
            }
            if accept != expected {
                let trace = kernel_verdict(rs, mode, pkt, true).1;
                rep.disagreements.push(format!(
                    "[{name}, {mode:?}] {} -> {} {flow}: evaluator: {} ({}); kernel: {} ({trace})",
                    s.label,
                    d.label,
                    dec.verdict.as_str(),
                    dec.describe(p),
                    if accept { "accept" } else { "drop" },
                ));
            }
        }
    }
    rep
}

/// Load one script, read it back, interpret it and compare with the evaluator. `Err` for a
/// load or listing problem; otherwise the report (which may hold disagreements).
fn script_matches_evaluator(
    name: &str,
    p: &Policy,
    mode: Enforce,
    layout: Layout,
    script: &str,
) -> Result<(Report, std::time::Duration), String> {
    let t0 = Instant::now();
    let loaded = load(script, "gbpc").map_err(|e| format!("[{name}, {mode:?}] nft failed: {e}"))?;
    let t_load = t0.elapsed();
    let rs = Ruleset::parse(&loaded.named);
    let numeric = Ruleset::parse(&loaded.numeric);
    if rs != numeric {
        return Err(format!(
            "[{name}, {mode:?}] the named and numeric listings read differently (a name table of \
             this test is wrong):\nnamed:   {rs:?}\nnumeric: {numeric:?}"
        ));
    }
    let expected_hooks: BTreeSet<&str> = match mode {
        Enforce::Fabric => ["forward"].into(),
        Enforce::Endpoint => ["input", "output"].into(),
    };
    if rs.hooks() != expected_hooks {
        return Err(format!(
            "[{name}, {mode:?}] base chains on hooks {:?}",
            rs.hooks()
        ));
    }
    let rep = compare(name, p, &rs, mode, layout == Layout::Addresses);
    if rep.compared == 0 {
        return Err(format!("[{name}, {mode:?}] nothing to compare"));
    }
    Ok((rep, t_load))
}

/// Compile, load, read back, interpret and compare one policy in both enforcement modes.
/// Returns a summary line per mode, or every problem.
fn kernel_matches_evaluator(name: &str, src: &str) -> Result<Vec<String>, String> {
    let p = check(name, src);
    let mut lines = Vec::new();
    let mut problems = String::new();
    for (mode, layout) in [
        (Enforce::Fabric, Layout::Addresses),
        (Enforce::Endpoint, Layout::Addresses),
        (Enforce::Fabric, Layout::Marks),
        (Enforce::Endpoint, Layout::Marks),
    ] {
        let t0 = Instant::now();
        let script = compile_layout(name, &p, mode, layout);
        let (rep, t_load) = match script_matches_evaluator(name, &p, mode, layout, &script) {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(problems, "{e}");
                continue;
            }
        };
        let n = rep.disagreements.len();
        for d in rep.disagreements.iter().take(20) {
            let _ = writeln!(problems, "{d}");
        }
        if n > 20 {
            let _ = writeln!(
                problems,
                "[{name}, {mode:?}] ... {} more disagreements",
                n - 20
            );
        }
        lines.push(format!(
            "{name} {mode:?} {layout:?}: {} of {} address pairs, {} flows compared ({} accepted), {n} \
             disagreements; load {t_load:.0?}, total {:.0?}",
            rep.pairs,
            rep.all_pairs,
            rep.compared,
            rep.allowed,
            t0.elapsed()
        ));
        if rep.nd_exempt > 0 {
            lines.push(format!(
                "  {} neighbour-discovery flows the evaluator denies are accepted (ND exemption)",
                rep.nd_exempt
            ));
        }
        if rep.not_new > 0 {
            lines.push(format!(
                "  NOTE: {} flows the evaluator allows can never start a connection (ICMP types \
                 conntrack does not open); the kernel drops them, e.g. {}",
                rep.not_new,
                rep.not_new_examples.join("; ")
            ));
        }
    }
    if problems.is_empty() {
        Ok(lines)
    } else {
        Err(problems)
    }
}

fn assert_kernel_matches_evaluator(name: &str, src: &str) {
    if !kernel_ready() {
        return;
    }
    match kernel_matches_evaluator(name, src) {
        Ok(lines) => lines.iter().for_each(|l| eprintln!("{l}")),
        Err(e) => panic!("{e}"),
    }
}

// ---- inline policies -----------------------------------------------------------------------

/// A deny carving part of a permitted range (tcp, udp, sctp), logged; an isolated group that
/// both provides and consumes a contract; overlapping prefixes; a group in no contract.
const RANGES: &str = "
tenant t {
  filter api  { tcp 8000-8099; udp 8000-8099; sctp 8000-8099 }
  filter mgmt { tcp 8050-8059; udp 8055; sctp 8099 }
  filter dns  { udp 53; tcp 53 }
  contract svc {
    subject api     permit api
    subject no-mgmt deny mgmt log
  }
  contract peer { subject dns permit dns log }
  group clients {
    address 198.18.100.0/26
    endpoint cl1 198.18.100.10
    endpoint cl2 198.18.100.11
    consumes svc
  }
  group servers isolated {
    address 198.18.100.64/26
    endpoint sv1 198.18.100.70
    endpoint sv2 198.18.100.71
    endpoint sv3 198.18.100.100
    provides svc, peer
    consumes peer
  }
  group overlap {
    address 198.18.100.96/27
    endpoint ov1 198.18.100.120
    consumes svc
  }
  group lonely { endpoint lone 198.18.101.7 }
}";

/// `ip` (every protocol), ICMP and ICMPv6 types, udp and sctp, IPv6 and an IPv6-only group,
/// a deny on ICMP.
const PROTOCOLS: &str = "
tenant net {
  filter all    { ip }
  filter ping   { icmp echo-request, 13; icmpv6 echo-request }
  filter errors { icmp destination-unreachable, time-exceeded; icmpv6 1, 2, 3, 4 }
  filter sip    { udp 5060; sctp 5060-5061 }
  contract tunnel { subject gre permit all }
  contract diag {
    subject echo permit ping
    subject errs permit errors log
  }
  contract voice {
    subject sig     permit sip
    subject no-echo deny ping
  }
  group a {
    address 198.18.110.0/24, 2001:db8:110::/64
    endpoint a1 198.18.110.1, 2001:db8:110::1
    endpoint a2 2001:db8:110::2
    consumes tunnel, diag, voice
  }
  group b {
    address 198.18.111.0/24, 2001:db8:111::/64
    endpoint b1 198.18.111.1, 2001:db8:111::1
    provides tunnel, voice
  }
  group c isolated {
    address 198.18.112.0/24, 2001:db8:112::/64
    endpoint c1 198.18.112.1, 2001:db8:112::1
    endpoint c2 198.18.112.2, 2001:db8:112::2
    provides diag, voice
  }
  group v6only {
    address 2001:db8:113::/64
    endpoint d1 2001:db8:113::1
    endpoint d2 2001:db8:113::2
    provides diag
    consumes tunnel
  }
}";

/// External groups with `except` (overlapping each other, both families), `any`, a global
/// contract consumed from another tenant, inheritance.
const TENANTS: &str = "
tenant core {
  filter dns { udp 53; tcp 53 }
  filter ntp { udp 123 }
  global contract dns { subject lookup permit dns }
  contract ntp { subject time permit ntp }
  contract upstream-dns { subject forward permit dns }
  group resolvers {
    address 198.18.120.0/28, 2001:db8:120::/64
    endpoint r1 198.18.120.2, 2001:db8:120::2
    endpoint r2 198.18.120.3
    provides dns, ntp
    consumes upstream-dns
  }
  external upstream {
    address 0.0.0.0/0 except 198.18.0.0/15, 192.0.2.0/25
    address ::/0 except 2001:db8:120::/48
    endpoint root1 203.0.113.53, 2001:db8:ff::53
    provides upstream-dns
    consumes ntp
  }
  any { consumes ntp }
}
tenant app {
  filter web { tcp 443; tcp 8443 }
  contract web { subject https permit web }
  group base {
    address 198.18.121.0/25
    endpoint w1 198.18.121.10
    provides web
  }
  group canary extends base {
    address 198.18.121.128/25
    endpoint w2 198.18.121.130
  }
  group users {
    address 198.18.122.0/24
    endpoint u1 198.18.122.10
    endpoint u2 198.18.122.11
    consumes web
  }
  external partners {
    address 192.0.2.0/24 except 192.0.2.64/26
    endpoint p1 192.0.2.10
    consumes web
  }
  any { consumes core/dns }
}";

/// `ip` and port-less tcp/icmp filters with denies carved out of them, a deny-only contract,
/// an isolated group that contracts with itself, membership by labels only (an endpoint of
/// another group, outside the selecting group's prefixes).
const CORNERS: &str = "
tenant corner {
  filter every    { ip }
  filter tcpall   { tcp }
  filter ssh      { tcp 22 }
  filter icmpall  { icmp; icmpv6 }
  filter redirect { icmp redirect; icmpv6 137 }
  contract wide {
    subject all     permit tcpall
    subject nossh   deny ssh
    subject pings   permit icmpall
    subject noredir deny redirect log
  }
  contract blackhole { subject none deny every }
  contract self { subject all permit every }
  group src {
    select role=src
    address 198.18.130.0/24, 2001:db8:130::/64
    endpoint s1 198.18.130.1, 2001:db8:130::1
    consumes wide, blackhole
  }
  group dst {
    address 198.18.131.0/24, 2001:db8:131::/64
    endpoint t1 198.18.131.1, 2001:db8:131::1
    endpoint m1 198.18.131.5, 2001:db8:131::5
    provides wide
  }
  group sink {
    address 198.18.132.0/24
    endpoint k1 198.18.132.1
    provides blackhole, wide
  }
  group labelled { select role=src }
  group solo isolated {
    address 198.18.133.0/24
    endpoint o1 198.18.133.1
    endpoint o2 198.18.133.2
    provides self
    consumes self
  }
  group split { endpoint x1 198.18.134.1 labels role=src }
}";

// ---- tests: load and compare ---------------------------------------------------------------

#[test]
fn examples_load_and_kernel_matches_evaluator() {
    if !kernel_ready() {
        return;
    }
    let ex = examples();
    assert!(!ex.is_empty(), "no examples/*.gbp");
    let results: Vec<Result<Vec<String>, String>> = std::thread::scope(|s| {
        let hs: Vec<_> = ex
            .iter()
            .map(|(n, src)| s.spawn(move || kernel_matches_evaluator(n, src)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut problems = String::new();
    for r in results {
        match r {
            Ok(lines) => lines.iter().for_each(|l| eprintln!("{l}")),
            Err(e) => problems.push_str(&e),
        }
    }
    assert!(problems.is_empty(), "{problems}");
}

/// nft 1.0.6 byte-swapped the marks of one element in about 960 of a long element list (see
/// tests/regress/nft-element-batches.gbp): the script's elements come in short `add element`
/// commands, every element is read back as written, and the kernel agrees with the evaluator.
#[test]
fn long_element_lists_load_as_written() {
    let src = include_str!("regress/nft-element-batches.gbp");
    let p = check("nft-element-batches", src);
    // The byte swap hit host-order fields: the marks of the mark layout.
    let script = compile_layout("nft-element-batches", &p, Enforce::Fabric, Layout::Marks);
    let mut in_cmd: Option<usize> = None;
    for l in script.lines() {
        if l.starts_with("add element ") {
            in_cmd = Some(0);
        } else if l == "}" {
            in_cmd = None;
        } else if let Some(n) = in_cmd.as_mut() {
            *n += 1;
            assert!(
                *n <= gbpc::lower::nft::ELEMENTS_PER_COMMAND,
                "an add element command with more than {} elements",
                gbpc::lower::nft::ELEMENTS_PER_COMMAND
            );
        }
    }
    let verdict_l4 = script
        .split("add element inet gbpc verdict_l4 {")
        .skip(1)
        .map(|c| {
            c.split("\n}")
                .next()
                .unwrap_or("")
                .lines()
                .filter(|l| l.contains(" : "))
                .count()
        })
        .sum::<usize>();
    let written = verdict_l4;
    assert!(
        written > 1_000,
        "the case no longer has a long map ({written} elements)"
    );
    if !kernel_ready() {
        return;
    }
    let loaded = load(&script, "gbpc").unwrap_or_else(|e| panic!("nft failed: {e}"));
    // Every element of verdict_l4 as the kernel holds it: the two class marks of each key.
    fn marks(v: &Value, in_map: bool, out: &mut Vec<(u64, u64)>) {
        match v {
            Value::Object(m) => {
                let here = in_map
                    || m.get("name").and_then(Value::as_str) == Some("verdict_l4")
                        && m.contains_key("elem");
                if here && let Some(Value::Array(c)) = m.get("concat") {
                    if let (Some(a), Some(b)) = (
                        c.first().and_then(Value::as_u64),
                        c.get(1).and_then(Value::as_u64),
                    ) {
                        out.push((a, b));
                    }
                    return;
                }
                m.values().for_each(|x| marks(x, here, out));
            }
            Value::Array(a) => a.iter().for_each(|x| marks(x, in_map, out)),
            _ => {}
        }
    }
    let mut read = Vec::new();
    marks(&loaded.numeric, false, &mut read);
    assert_eq!(read.len(), written, "elements of verdict_l4 read back");
    let classes = p.classes.sets.len() as u64;
    let swapped: Vec<_> = read
        .iter()
        .filter(|(a, b)| *a >= classes || *b >= classes)
        .collect();
    assert!(
        swapped.is_empty(),
        "elements loaded with wrong marks: {swapped:x?}"
    );
    assert_kernel_matches_evaluator("nft-element-batches", src);
}

#[test]
fn deny_carves_a_range_isolation_overlap_and_log() {
    assert_kernel_matches_evaluator("inline ranges", RANGES);
}

#[test]
fn any_protocol_icmp_types_udp_sctp_and_ipv6() {
    assert_kernel_matches_evaluator("inline protocols", PROTOCOLS);
}

#[test]
fn externals_with_except_any_global_contracts_and_extends() {
    assert_kernel_matches_evaluator("inline tenants", TENANTS);
}

#[test]
fn port_less_filters_deny_only_contracts_and_label_membership() {
    assert_kernel_matches_evaluator("inline corners", CORNERS);
}

/// The comparison is not vacuous: scripts broken on purpose, each still loadable, must
/// disagree with the evaluator.
#[test]
fn broken_scripts_are_caught() {
    if !kernel_ready() {
        return;
    }
    let p = check("ranges", RANGES);
    let mut problems = String::new();
    for layout in [Layout::Addresses, Layout::Marks] {
        let good = compile_layout("ranges", &p, Enforce::Fabric, layout);
        let first_drop = good
            .lines()
            .find(|l| l.contains(" : drop,") || l.ends_with(" : drop"))
            .expect("RANGES has a deny element")
            .to_string();
        let mut mutations: Vec<(&str, String)> = vec![
            (
                "a deny element turned into accept",
                good.replacen(&first_drop, &first_drop.replace(" : drop", " : accept"), 1),
            ),
            (
                "fails open: no default drop, policy accept",
                good.replacen("policy drop;", "policy accept;", 1).replacen(
                    "\t\tcounter drop comment \"default deny\"\n",
                    "",
                    1,
                ),
            ),
        ];
        match layout {
            Layout::Marks => {
                let intra = "\t\tmeta mark . ct mark @intra counter accept\n";
                let l4 = "\t\tmeta l4proto { tcp, udp, sctp } meta mark . ct mark . meta l4proto . th dport vmap";
                mutations.push((
                    "intra-group accept before the verdict maps",
                    good.replacen(intra, "", 1)
                        .replacen(l4, &format!("{intra}{l4}"), 1),
                ));
                mutations.push((
                    "no destination class",
                    good.replacen("\t\tct mark set ip daddr map @class4\n", "", 1),
                ));
            }
            Layout::Addresses => {
                let intra = "\t\tip saddr . ip daddr @intra4 counter accept\n";
                let l4 = "\t\tmeta l4proto { tcp, udp, sctp } ip saddr . ip daddr . meta l4proto . th dport vmap";
                mutations.push((
                    "intra-group accept before the verdict maps",
                    good.replacen(intra, "", 1)
                        .replacen(l4, &format!("{intra}{l4}"), 1),
                ));
                // The verdicts are right, but the connection mark of another ruleset is lost.
                mutations.push((
                    "the connection mark overwritten",
                    good.replacen(
                        "\tchain decide {\n",
                        "\tchain decide {\n\t\tct mark set meta mark\n",
                        1,
                    ),
                ));
            }
        }
        for (what, script) in &mutations {
            assert_ne!(script, &good, "the mutation `{what}` changed nothing");
            match script_matches_evaluator(what, &p, Enforce::Fabric, layout, script) {
                Ok((rep, _)) if rep.disagreements.is_empty() => {
                    let _ = writeln!(problems, "{layout:?}: `{what}`: no disagreement found");
                }
                Ok((rep, _)) => eprintln!(
                    "{layout:?}: `{what}`: {} disagreements, e.g. {}",
                    rep.disagreements.len(),
                    rep.disagreements[0]
                ),
                Err(e) => {
                    let _ = writeln!(problems, "{layout:?}: `{what}` did not load: {e}");
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems}");
}

/// The interpreter itself: a hand-written listing with every element form it must read.
#[test]
fn interpreter_reads_every_element_form() {
    let listing: Value = serde_json::json!({"nftables": [
        {"map": {"name": "class4", "type": "ipv4_addr", "map": "mark", "flags": ["interval"],
                 "elem": [[{"prefix": {"addr": "10.0.0.0", "len": 8}}, "0x2"],
                          [{"range": ["11.0.0.0", "11.0.0.9"]}, 3],
                          ["12.0.0.1", {"elem": {"val": 4, "comment": "x"}}]]}},
        {"map": {"name": "v", "type": ["mark", "mark", "inet_proto", "inet_service"],
                 "map": "verdict", "flags": ["interval"],
                 "elem": [[{"concat": [2, "0x3", "tcp", {"range": [80, 84]}]}, {"accept": null}],
                          [{"elem": {"val": {"concat": [2, 3, 6, 85]}}}, {"drop": null}],
                          [{"concat": [2, "0x3", "tcp", {"range": [86, 90]}]}, {"accept": null}]]}},
        {"map": {"name": "p", "type": ["mark", "mark", "inet_proto"], "map": "verdict",
                 "elem": [[{"concat": [2, 4, "gre"]}, {"accept": null}]]}},
        {"chain": {"name": "forward", "hook": "forward", "policy": "drop"}},
        {"chain": {"name": "decide"}},
        {"rule": {"chain": "forward", "expr": [
            {"match": {"op": "in", "left": {"ct": {"key": "state"}},
                       "right": ["established", "related"]}}, {"accept": null}]}},
        {"rule": {"chain": "forward", "expr": [{"jump": {"target": "decide"}}]}},
        {"rule": {"chain": "decide", "expr": [{"mangle": {"key": {"meta": {"key": "mark"}},
            "value": {"map": {"key": {"payload": {"protocol": "ip", "field": "saddr"}},
                              "data": "@class4"}}}}]}},
        {"rule": {"chain": "decide", "expr": [{"mangle": {"key": {"ct": {"key": "mark"}},
            "value": {"map": {"key": {"payload": {"protocol": "ip", "field": "daddr"}},
                              "data": "@class4"}}}}]}},
        {"rule": {"chain": "decide", "expr": [
            {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}},
                       "right": {"set": ["tcp", "udp", 132]}}},
            {"vmap": {"key": {"concat": [{"meta": {"key": "mark"}}, {"ct": {"key": "mark"}},
                       {"meta": {"key": "l4proto"}}, {"payload": {"protocol": "th", "field": "dport"}}]},
                      "data": "@v"}}]}},
        {"rule": {"chain": "decide", "expr": [
            {"vmap": {"key": {"concat": [{"meta": {"key": "mark"}}, {"ct": {"key": "mark"}},
                       {"meta": {"key": "l4proto"}}]}, "data": "@p"}}]}}
    ]});
    let rs = Ruleset::parse(&listing);
    let ip = |s: &str| u32::from(s.parse::<Ipv4Addr>().unwrap()) as u128;
    let pkt = |s: &str, d: &str, proto: u8, port: u16| Pkt {
        family: Family::V4,
        saddr: ip(s),
        daddr: ip(d),
        proto,
        port,
    };
    let v = |p: Pkt| kernel_verdict(&rs, Enforce::Fabric, p, false).0;
    assert!(v(pkt("10.1.2.3", "11.0.0.9", 6, 80)));
    assert!(v(pkt("10.1.2.3", "11.0.0.9", 6, 90)));
    assert!(!v(pkt("10.1.2.3", "11.0.0.9", 6, 85)), "the deny element");
    assert!(
        !v(pkt("10.1.2.3", "11.0.0.10", 6, 80)),
        "11.0.0.10 is in no class"
    );
    assert!(
        !v(pkt("10.1.2.3", "11.0.0.9", 17, 80)),
        "udp has no element"
    );
    assert!(v(pkt("10.1.2.3", "12.0.0.1", 47, 0)), "gre to class 4");
    assert!(!v(pkt("10.1.2.3", "12.0.0.1", 4, 0)));
}

/// A failed load leaves the table as it was, whether nft refuses the file (syntax) or the
/// kernel aborts the transaction (after the script's `delete table` was sent); a load
/// replaces only its own table; another table name from `Options` coexists.
#[test]
fn loads_are_atomic_and_touch_only_their_table() {
    if !kernel_ready() {
        return;
    }
    let ex = examples();
    let sa = compile("ranges", &check("ranges", RANGES), Enforce::Fabric);
    let sb = compile("tenants", &check("tenants", TENANTS), Enforce::Fabric);
    let other = match lower(
        &check(&ex[0].0, &ex[0].1),
        &Options {
            table: "gbpc-other".into(),
            enforce: Enforce::Endpoint,
            layout: Layout::Marks,
        },
    ) {
        Ok(l) => l.text,
        Err(e) => panic!("{e:?}"),
    };
    assert!(other.contains("table inet gbpc-other {"));
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n);
    for (n, text) in [
        ("a.nft", sa),
        ("b.nft", sb.clone()),
        // B with a last line nft cannot parse.
        (
            "syntax.nft",
            format!("{sb}\nadd rule inet gbpc forward no-such-keyword\n"),
        ),
        // B with a last line only the kernel rejects (the jump target does not exist).
        (
            "kernel.nft",
            format!("{sb}\nadd rule inet gbpc forward jump no-such-chain\n"),
        ),
        ("other.nft", other),
    ] {
        std::fs::write(path(n), text).unwrap();
    }
    let script = r#"
        cd "$1"
        nft -f a.nft
        nft -f other.nft
        nft -j list table inet gbpc > a1.json
        nft -j list table inet gbpc-other > other1.json
        for bad in syntax kernel; do
            if nft -f $bad.nft 2> $bad.err; then echo "$bad.nft loaded" >&2; exit 7; fi
            nft -j list table inet gbpc > a-after-$bad.json
        done
        nft -f b.nft
        nft -j list table inet gbpc > b1.json
        nft -j list table inet gbpc-other > other2.json
        nft list tables > tables
        nft delete table inet gbpc
        nft -f b.nft
        nft -j list table inet gbpc > b-fresh.json"#;
    if let Err(e) = in_netns(script, &[dir.path()]) {
        panic!("{e}");
    }
    let j = |n: &str| strip_volatile(&read_json(&path(n)));
    for bad in ["syntax", "kernel"] {
        let err = std::fs::read_to_string(path(&format!("{bad}.err"))).unwrap();
        assert!(err.contains("Error"), "nft said: {err}");
        eprintln!("the {bad} failure said: {}", err.trim());
        assert_eq!(
            j("a1.json"),
            j(&format!("a-after-{bad}.json")),
            "a load that failed ({bad}) changed the table"
        );
    }
    assert_ne!(j("a1.json"), j("b1.json"));
    assert_eq!(
        j("b1.json"),
        j("b-fresh.json"),
        "replacing A by B left something of A"
    );
    assert_eq!(
        j("other1.json"),
        j("other2.json"),
        "loading gbpc touched gbpc-other"
    );
    let tables = std::fs::read_to_string(path("tables")).unwrap();
    let tables: BTreeSet<&str> = tables.lines().collect();
    assert_eq!(
        tables,
        BTreeSet::from(["table inet gbpc", "table inet gbpc-other"])
    );
}

// ---- names: whatever `check` accepts loads -------------------------------------------------

/// `nft -c -f` on every script, all in one new network namespace: the failures, each with
/// its label and nft's first lines of error.
fn nft_check_all(scripts: &[(String, String)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, (_, text)) in scripts.iter().enumerate() {
        let f = dir.path().join(format!("{i}.nft"));
        std::fs::write(&f, text).unwrap();
        paths.push(f);
    }
    let args: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let sh = r#"for f in "$@"; do nft -c -f "$f" 2> "$f.err" || echo "$f"; done"#;
    let failed = in_netns(sh, &args).unwrap_or_else(|e| panic!("{e}"));
    failed
        .lines()
        .map(|f| {
            let i: usize = Path::new(f)
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("unexpected output line {f:?}"));
            let err = std::fs::read_to_string(format!("{f}.err")).unwrap_or_default();
            let err: Vec<&str> = err.lines().take(3).collect();
            format!("{}: {}", scripts[i].0, err.join(" | "))
        })
        .collect()
}

/// [`nft_check_all`], faster: the scripts are checked in batches of `batch` (one transaction
/// each, which nft 1.0.6 checks in about a third of the time of separate runs); only the
/// scripts of a failing batch are checked one by one, for the report.
fn nft_check_batched(scripts: &[(String, String)], batch: usize) -> Vec<String> {
    let joined: Vec<(String, String)> = scripts
        .chunks(batch)
        .enumerate()
        .map(|(i, c)| (i.to_string(), c.iter().map(|(_, s)| s.as_str()).collect()))
        .collect();
    let mut failed = Vec::new();
    for f in nft_check_all(&joined) {
        let i: usize = f.split(':').next().and_then(|i| i.parse().ok()).unwrap();
        let alone = nft_check_all(&scripts[i * batch..((i + 1) * batch).min(scripts.len())]);
        assert!(
            !alone.is_empty(),
            "batch {i} fails, each of its scripts passes: {f}"
        );
        failed.extend(alone);
    }
    failed
}

/// The counters a script declares: each contract has one (the reverse half of `both-ways`
/// subjects counts in its contract's; `preferred` and `unenforced` have their own), and no two
/// share a name.
fn assert_one_counter_per_contract(what: &str, p: &Policy, script: &str) {
    let names: Vec<&str> = script
        .lines()
        .filter_map(|l| l.strip_prefix("\tcounter ")?.strip_suffix(" {"))
        .collect();
    let distinct: BTreeSet<&str> = names.iter().copied().collect();
    let counted = p
        .contracts
        .iter()
        .filter(|c| !matches!(c.origin, gbpc::model::Origin::Reverse(_)))
        .count();
    assert_eq!(names.len(), counted, "{what}: counters");
    assert_eq!(distinct.len(), names.len(), "{what}: counter names collide");
}

/// Hostile policies per property test (each gives two scripts).
const HOSTILE_SEEDS: u64 = 80;

/// Names that break careless output (digit-first and number-like names, every word of nft's
/// grammar, YAML's special words, gbpc's keywords, 63-character names, sometimes every name at
/// once): every generated policy checks clean and compiles, in both enforcement modes, to a
/// script that `nft -c` accepts, with one distinct counter per contract.
#[test]
fn hostile_names_load_in_both_modes() {
    if !kernel_ready() {
        return;
    }
    let mut scripts = Vec::new();
    for seed in 0..HOSTILE_SEEDS {
        let src = gbpc::synth::hostile_policy(seed, gbpc::synth::Size::DEFAULT);
        let c = gbpc::check_source(&src);
        assert!(
            c.ok(),
            "seed {seed}: a hostile policy does not check: {:#?}\n{src}",
            c.errors.iter().map(|d| &d.message).collect::<Vec<_>>()
        );
        for enforce in [Enforce::Fabric, Enforce::Endpoint] {
            let what = format!("seed {seed} {enforce:?}");
            let script = compile(&what, &c.policy, enforce);
            assert_one_counter_per_contract(&what, &c.policy, &script);
            scripts.push((what, script));
        }
    }
    let failed = nft_check_batched(&scripts, 40);
    assert!(
        failed.is_empty(),
        "{} of {} scripts fail `nft -c`:\n{}",
        failed.len(),
        scripts.len(),
        failed.join("\n")
    );
}

/// The names of the issue: tenants named `3tier`, `123`, `1e3` (nft read a number at the
/// start of `counter 3tier/c`), and a tenant and a global contract of 63 characters (their
/// counter's comment passed nft's 128). They load, and count under their own names.
#[test]
fn digit_first_and_longest_names_load() {
    if !kernel_ready() {
        return;
    }
    let long_t = format!("t{}", "0123456789".repeat(7))[..63].to_string();
    let long_c = format!("c{}", "-x".repeat(40))[..63].to_string();
    let mut src = String::new();
    for (i, t) in ["3tier", "123", "1e3", "0x1f", &long_t].iter().enumerate() {
        let c = if i == 4 { long_c.as_str() } else { "c" };
        src.push_str(&format!(
            "tenant {t} {{ filter f {{ tcp 80 }} global contract {c} {{ subject s permit f }}
               group g {{ select a=b address 198.18.{i}.0/24 endpoint e 198.18.{i}.1
                          provides {c} consumes {c} }} }}\n"
        ));
    }
    let p = check("names", &src);
    let script = compile("names", &p, Enforce::Fabric);
    assert!(script.contains("\tcounter _3tier/c {\n\t\tcomment \"contract 3tier/c (global)\"\n"));
    assert!(script.contains(&format!("\tcounter {long_t}/{long_c} {{\n")));
    for l in script.lines().filter(|l| l.contains("comment \"")) {
        let comment = l.split('"').nth(1).unwrap();
        assert!(comment.len() <= gbpc::lower::nft::COMMENT_MAX, "{l}");
    }
    assert!(script.contains(" (global)\"\n"));
    let loaded = load(&script, "gbpc").unwrap_or_else(|e| panic!("{e}\n{script}"));
    let counters: BTreeSet<&str> = loaded.named["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["counter"]["name"].as_str())
        .collect();
    let want: BTreeSet<String> = ["_3tier/c", "_123/c", "_1e3/c", "_0x1f/c"]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("{long_t}/{long_c}")])
        .collect();
    assert_eq!(counters, want.iter().map(String::as_str).collect());
}

/// Table names: the compiler takes a name only if nft reads it as one (`check_table_name`),
/// and every name it takes loads. Tried: every word of nft's grammar, variants of its keywords
/// (other case, prefixes and suffixes, `/`, `_`, `.`), random names over the whole alphabet,
/// and the longest names. Every keyword refused is one nft 1.0.6 refuses too, except those of
/// later releases (so the list is exact, not merely safe).
#[test]
fn every_table_name_the_compiler_takes_loads() {
    use gbpc::lower::nft::{KEYWORDS, NAME_MAX, check_table_name};
    if !kernel_ready() {
        return;
    }
    const LATER_RELEASES: [&str; 8] = [
        "destroy", "geneve", "gre", "gretap", "last", "tunnel", "vni", "vxlan",
    ];
    let mut names: Vec<String> = gbpc::synth::NFT_WORDS
        .iter()
        .map(|w| w.to_string())
        .collect();
    for (i, w) in KEYWORDS.iter().enumerate() {
        // Three variants of each keyword, in turn.
        for v in [
            w.to_uppercase(),
            format!("{w}x"),
            format!("x{w}"),
            format!("_{w}"),
            format!(".{w}"),
            format!("{w}/{w}"),
            format!("{w}-"),
            format!("{w}.0"),
        ]
        .into_iter()
        .cycle()
        .skip(i % 8)
        .step_by(3)
        .take(3)
        {
            names.push(v);
        }
    }
    // Random names over the alphabet nft's names use (and a few characters outside it).
    let alphabet: Vec<char> = "aZ09_-./:@ \"".chars().collect();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..300 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = 1 + (x % 6) as usize + i % 3;
        names.push(
            (0..len)
                .map(|k| alphabet[((x >> (k * 5)) % alphabet.len() as u64) as usize])
                .collect(),
        );
    }
    names.extend(["_", ".", "..", ".5"].map(String::from));
    names.extend(["a".repeat(NAME_MAX), "a".repeat(NAME_MAX + 1)]);
    names.sort();
    names.dedup();
    let p = check(
        "table",
        "tenant t { filter f { tcp 80 } contract c { subject s permit f }
        group g { select a=b address 198.18.1.0/24 provides c consumes c } }",
    );
    let base = compile("table", &p, Enforce::Fabric);
    let mut taken = Vec::new();
    let mut refused = Vec::new();
    for n in &names {
        if check_table_name(n).is_ok() {
            let o = Options {
                table: n.clone(),
                enforce: Enforce::Fabric,
                ..Options::default()
            };
            let script = lower(&p, &o).unwrap_or_else(|e| panic!("{n}: {e:?}")).text;
            taken.push((format!("table {n:?}"), script));
        } else if KEYWORDS.contains(&n.as_str()) && !LATER_RELEASES.contains(&n.as_str()) {
            // A keyword the compiler refuses: nft 1.0.6 must refuse it too.
            refused.push((n.clone(), base.replace("inet gbpc", &format!("inet {n}"))));
        }
    }
    assert!(
        taken.len() > 300 && refused.len() > 100,
        "{} taken, {} refused",
        taken.len(),
        refused.len()
    );
    let failed = nft_check_batched(&taken, 100);
    assert!(
        failed.is_empty(),
        "names taken that do not load:\n{}",
        failed.join("\n")
    );
    let refused_ok: Vec<String> = refused
        .iter()
        .map(|(n, _)| format!("table {n:?}"))
        .collect();
    let failed: BTreeSet<String> = nft_check_all(
        &refused
            .iter()
            .map(|(n, s)| (format!("table {n:?}"), s.clone()))
            .collect::<Vec<_>>(),
    )
    .into_iter()
    .map(|f| f.split(':').next().unwrap_or_default().to_string())
    .collect();
    let loadable: Vec<&String> = refused_ok.iter().filter(|n| !failed.contains(*n)).collect();
    assert!(
        loadable.is_empty(),
        "refused, but nft loads them (drop them from KEYWORDS): {loadable:?}"
    );
}

// ---- real traffic ------------------------------------------------------------------------

/// The fabric policy the traffic test loads: a permitted range, a deny inside it, an
/// isolated group, an intra-group default.
const TRAFFIC: &str = "
tenant lab {
  filter web   { tcp 8080-8090 }
  filter admin { tcp 8085 }
  filter icmps { icmp echo-request, echo-reply, destination-unreachable }
  contract api {
    subject web      permit web
    subject no-admin deny admin log
    subject ping     permit icmps
  }
  group clients {
    address 198.18.200.0/28
    endpoint c1 198.18.200.1
    endpoint c2 198.18.200.2
    consumes api
  }
  group servers isolated {
    address 198.18.201.0/28
    endpoint s1 198.18.201.1
    endpoint s2 198.18.201.2
    provides api
  }
}";

/// 8080: permitted; 8085: denied by a deny subject; 9000: named by nothing.
const TRAFFIC_PORTS: [u16; 3] = [8080, 8085, 9000];

/// ICMP types sent from c1 to s1: echo-request (permitted, opens a connection), echo-reply
/// and destination-unreachable (permitted, but conntrack cannot open a connection with them:
/// invalid), timestamp-request (opens one, but not permitted).
const TRAFFIC_ICMP: [(u8, bool); 4] = [(8, true), (0, false), (3, false), (13, false)];

/// (source, destination, port, connects, why).
const TRAFFIC_FACTS: &[(&str, &str, u16, bool, &str)] = &[
    (
        "c1",
        "s1",
        8080,
        true,
        "permitted, and the greeting (a reply) comes back",
    ),
    (
        "c2",
        "s2",
        8085,
        false,
        "a deny subject inside the permitted range",
    ),
    ("c1", "s1", 9000, false, "a port no contract names"),
    ("c1", "c2", 9000, true, "the intra-group default"),
    ("s1", "s2", 8080, false, "an isolated group"),
    ("s1", "c1", 8080, false, "one-way: only replies flow back"),
];

const SERVER_PY: &str = r#"
import selectors, socket, sys
sel = selectors.DefaultSelector()
for p in sys.argv[1:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(p)))
    s.listen(64)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
sel.register(sys.stdin, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        if key.fileobj is sys.stdin:
            sys.exit(0)  # the test closed our stdin, or died
        try:
            conn, _ = key.fileobj.accept()
            conn.sendall(b"hello\n")
            conn.close()
        except OSError:
            pass
"#;

/// Connect to every `addr:port` at once; print `addr:port open` once the server's greeting
/// (a reply) arrived, else `timeout`, `connected-no-reply` or the errno name.
const CLIENT_PY: &str = r#"
import errno, selectors, socket, sys, time
timeout = float(sys.argv[1])
sel = selectors.DefaultSelector()
state, phase = {}, {}
for t in sys.argv[2:]:
    host, port = t.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    rc = s.connect_ex((host, int(port)))
    state[t], phase[t] = "timeout", "connecting"
    if rc not in (0, errno.EINPROGRESS):
        state[t] = errno.errorcode.get(rc, str(rc))
        s.close()
        continue
    sel.register(s, selectors.EVENT_WRITE, t)
deadline = time.monotonic() + timeout
while sel.get_map() and (left := deadline - time.monotonic()) > 0:
    for key, _ in sel.select(left):
        s, t = key.fileobj, key.data
        if phase[t] == "connecting":
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                state[t] = errno.errorcode.get(err, str(err))
                sel.unregister(s)
                s.close()
            else:
                phase[t] = "reading"
                state[t] = "connected-no-reply"
                sel.modify(s, selectors.EVENT_READ, t)
        else:
            try:
                data = s.recv(64)
                state[t] = "open" if data == b"hello\n" else "bad-reply:" + repr(data)
            except OSError as e:
                state[t] = errno.errorcode.get(e.errno, str(e.errno))
            sel.unregister(s)
            s.close()
for t in sys.argv[2:]:
    print(t, state[t])
"#;

/// Receive ICMP for `timeout` seconds; print the types that came from `source`.
const ICMP_RECV_PY: &str = r#"
import select, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
print("ready", flush=True)
end, seen = time.monotonic() + float(sys.argv[1]), set()
while (left := end - time.monotonic()) > 0:
    if select.select([s], [], [], left)[0]:
        data, (addr, _) = s.recvfrom(4096)
        if addr == sys.argv[2]:
            seen.add(data[(data[0] & 15) * 4])
print("types", *sorted(seen))
"#;

/// Send one ICMP message of each type to `dst`; errors quote a made-up UDP datagram.
/// A send refused by the local output chain (per-endpoint enforcement) is not an error.
const ICMP_SEND_PY: &str = r#"
import socket, struct, sys
def csum(b):
    b += b"\0" * (len(b) % 2)
    n = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    n = (n >> 16) + (n & 0xffff)
    return ~(n + (n >> 16)) & 0xffff
dst, src = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
for t in map(int, sys.argv[3:]):
    body = b"gbpc-probe"
    if t in (3, 11):
        body = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, 17, 0,
                           socket.inet_aton(dst), socket.inet_aton(src)) + struct.pack("!HHHH", 5353, 9999, 8, 0)
    head = struct.pack("!BBHHH", t, 0, 0, 0x6762, 1)
    try:
        s.sendto(struct.pack("!BBHHH", t, 0, csum(head + body), 0x6762, 1) + body, (dst, 0))
    except PermissionError:
        pass  # dropped by this namespace's own output chain
"#;

/// Named namespaces and the processes this test started in them; all removed on drop, also
/// when the test panics.
struct Lab {
    netns: Vec<String>,
    children: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.netns.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

fn ns_run(ns: &str, args: &[&str]) {
    let mut all = vec!["ip", "netns", "exec", ns];
    all.extend_from_slice(args);
    run(&all);
}

/// `nft -f` inside a named namespace.
fn ns_nft_load(ns: &str, script: &str) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("p.nft");
    std::fs::write(&f, script).unwrap();
    ns_run(ns, &["nft", "-f", f.to_str().unwrap()]);
}

impl Lab {
    /// A routed fabric: the fabric namespace forwards, holds 169.254.1.1 on `lo` (every
    /// endpoint's gateway) and one /32 route per endpoint.
    fn build(endpoints: &[(String, Ipv4Addr)]) -> Lab {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!(
            "gbpctest-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut lab = Lab {
            netns: Vec::new(),
            children: Vec::new(),
        };
        let fab = format!("{prefix}-fab");
        lab.netns.push(fab.clone());
        run(&["ip", "netns", "add", &fab]);
        run(&["ip", "-n", &fab, "link", "set", "lo", "up"]);
        run(&[
            "ip",
            "-n",
            &fab,
            "addr",
            "add",
            "169.254.1.1/32",
            "dev",
            "lo",
        ]);
        ns_run(
            &fab,
            &["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"],
        );
        for (i, (name, addr)) in endpoints.iter().enumerate() {
            let ns = format!("{prefix}-{name}");
            let veth = format!("v{i}");
            let a = addr.to_string();
            lab.netns.push(ns.clone());
            run(&["ip", "netns", "add", &ns]);
            run(&[
                "ip", "-n", &fab, "link", "add", &veth, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            run(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
            run(&["ip", "-n", &fab, "link", "set", &veth, "up"]);
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{a}/32"),
                "dev",
                "eth0",
            ]);
            run(&[
                "ip",
                "-n",
                &ns,
                "route",
                "add",
                "169.254.1.1",
                "dev",
                "eth0",
            ]);
            run(&[
                "ip",
                "-n",
                &ns,
                "route",
                "add",
                "default",
                "via",
                "169.254.1.1",
                "dev",
                "eth0",
            ]);
            run(&[
                "ip",
                "-n",
                &fab,
                "route",
                "add",
                &format!("{a}/32"),
                "dev",
                &veth,
            ]);
        }
        lab
    }

    fn ns(&self, name: &str) -> String {
        let fab = &self.netns[0];
        format!("{}-{name}", fab.strip_suffix("-fab").unwrap())
    }

    fn listen(&mut self, ns: &str, ports: &[u16]) {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, "python3", "-c", SERVER_PY])
            .args(ports.iter().map(u16::to_string))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start python3: {e}"));
        let stdout = child.stdout.take().unwrap();
        self.children.push(child);
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the listener in {ns} did not start");
    }

    /// Start an ICMP receiver in `dst` (it ends by itself after 1.5 s) and send it one message
    /// of each type from `src`; [`Lab::icmp_arrived`] collects what arrived.
    fn icmp_send(&self, src: (&str, Ipv4Addr), dst: (&str, Ipv4Addr), types: &[u8]) -> Child {
        let mut recv = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(dst.0),
                "python3",
                "-c",
                ICMP_RECV_PY,
                "1.5",
            ])
            .arg(src.1.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(recv.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "the ICMP receiver in {} did not start",
            dst.0
        );
        let mut send = vec!["netns".to_string(), "exec".into(), self.ns(src.0)];
        send.extend(["python3", "-c", ICMP_SEND_PY].map(String::from));
        send.extend([dst.1.to_string(), src.1.to_string()]);
        send.extend(types.iter().map(u8::to_string));
        let send: Vec<&str> = send.iter().map(String::as_str).collect();
        run(&[&["ip"], &send[..]].concat());
        recv
    }

    fn icmp_arrived(recv: Child) -> BTreeSet<u8> {
        let o = recv.wait_with_output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        let line = out
            .lines()
            .find(|l| l.starts_with("types"))
            .unwrap_or_else(|| {
                panic!(
                    "ICMP receiver: {out} {}",
                    String::from_utf8_lossy(&o.stderr)
                )
            });
        line.split_whitespace()
            .skip(1)
            .map(|t| t.parse().unwrap())
            .collect()
    }

    /// Probe every (source, target) at once, one client process per source.
    fn probe(&self, probes: &[(String, Vec<String>)]) -> BTreeMap<(String, String), String> {
        let clients: Vec<(String, Child)> = probes
            .iter()
            .map(|(src, targets)| {
                let child = Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        &self.ns(src),
                        "python3",
                        "-c",
                        CLIENT_PY,
                        "1.0",
                    ])
                    .args(targets)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                (src.clone(), child)
            })
            .collect();
        let mut out = BTreeMap::new();
        for (src, child) in clients {
            let o = child.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "client in {src}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            for line in String::from_utf8_lossy(&o.stdout).lines() {
                let (t, r) = line.split_once(' ').unwrap();
                out.insert((src.clone(), t.to_string()), r.to_string());
            }
        }
        out
    }
}

#[test]
fn real_traffic_through_a_routed_fabric() {
    if !kernel_ready() {
        return;
    }
    let t0 = Instant::now();
    let p = check("traffic", TRAFFIC);
    let eps: Vec<(String, Ipv4Addr)> = p
        .endpoints
        .iter()
        .map(|e| {
            let Some(std::net::IpAddr::V4(a)) = e.addrs.first().map(|c| c.ip()) else {
                panic!("traffic endpoints are IPv4")
            };
            (e.name.clone(), a)
        })
        .collect();
    let mut lab = Lab::build(&eps);
    for (name, _) in &eps {
        let ns = lab.ns(name);
        lab.listen(&ns, &TRAFFIC_PORTS);
    }
    let t_setup = t0.elapsed();
    // Every ordered pair of endpoints, every port.
    let probes: Vec<(String, Vec<String>)> = eps
        .iter()
        .map(|(s, _)| {
            let targets = eps
                .iter()
                .filter(|(d, _)| d != s)
                .flat_map(|(_, a)| TRAFFIC_PORTS.iter().map(move |port| format!("{a}:{port}")))
                .collect();
            (s.clone(), targets)
        })
        .collect();
    let by_addr: BTreeMap<String, usize> = eps
        .iter()
        .enumerate()
        .map(|(i, (_, a))| (a.to_string(), i))
        .collect();
    let decide = |src: &str, target: &str| {
        let (addr, port) = target.split_once(':').unwrap();
        let s = p.endpoints.iter().find(|e| e.name == src).unwrap();
        let d = &p.endpoints[by_addr[addr]];
        let flow = Flow {
            proto: Proto::Tcp,
            port: port.parse().unwrap(),
        };
        let ends = (eval::End::endpoint(s), eval::End::endpoint(d));
        let conn = eval::Conn::new(ends.0, ends.1, flow).unwrap();
        (eval::decide(&p, &conn), d.name.clone(), flow)
    };

    let addr = |n: &str| eps.iter().find(|(e, _)| e == n).unwrap().1;
    let icmp_types: Vec<u8> = TRAFFIC_ICMP.iter().map(|t| t.0).collect();
    let icmp_round = |lab: &Lab| {
        let recv = lab.icmp_send(("c1", addr("c1")), ("s1", addr("s1")), &icmp_types);
        let tcp = lab.probe(&probes);
        (tcp, Lab::icmp_arrived(recv))
    };

    // Without rules every connection works and every ICMP message arrives: the fabric, the
    // listeners and the probes are sound.
    let (base, base_icmp) = icmp_round(&lab);
    let closed: Vec<_> = base.iter().filter(|(_, r)| *r != "open").collect();
    assert!(
        closed.is_empty(),
        "the fabric is broken before any policy: {closed:?}"
    );
    assert_eq!(
        base_icmp,
        icmp_types.iter().copied().collect(),
        "ICMP does not cross the fabric before any policy"
    );

    let mut problems = String::new();
    let mut summary = Vec::new();
    for mode in [Enforce::Fabric, Enforce::Endpoint] {
        let script = compile("traffic", &p, mode);
        match mode {
            Enforce::Fabric => ns_nft_load(&lab.netns[0], &script),
            Enforce::Endpoint => {
                ns_run(&lab.netns[0], &["nft", "delete", "table", "inet", "gbpc"]);
                for (name, _) in &eps {
                    ns_nft_load(&lab.ns(name), &script);
                }
            }
        }
        let t = Instant::now();
        let (got, icmp) = icmp_round(&lab);
        summary.push(format!("{mode:?} probes {:.0?}", t.elapsed()));
        // ICMP: the evaluator's verdict where conntrack opens a connection; dropped otherwise.
        let c1 = p.endpoints.iter().find(|e| e.name == "c1").unwrap();
        let s1 = p.endpoints.iter().find(|e| e.name == "s1").unwrap();
        for &(ty, arrives) in &TRAFFIC_ICMP {
            let flow = Flow {
                proto: Proto::Icmp,
                port: ty as u16,
            };
            let ends = (eval::End::endpoint(c1), eval::End::endpoint(s1));
            let dec = eval::decide(&p, &eval::Conn::new(ends.0, ends.1, flow).unwrap());
            let expected = expected_kernel(mode, flow, &dec);
            if icmp.contains(&ty) != expected || expected != arrives {
                let _ = writeln!(
                    problems,
                    "[{mode:?}] c1 -> s1 {flow}: evaluator {} ({}), expected in the kernel: {}; \
                     arrived: {}",
                    dec.verdict.as_str(),
                    dec.describe(&p),
                    if expected { "accept" } else { "drop" },
                    icmp.contains(&ty)
                );
            }
        }
        assert_eq!(got.len(), base.len());
        for ((src, target), result) in &got {
            let (dec, dst, flow) = decide(src, target);
            // Denied connections must be dropped (a timeout), not refused or reset.
            let ok = match dec.verdict {
                Verdict::Allow => result == "open",
                Verdict::Deny => result == "timeout",
            };
            if !ok {
                let _ = writeln!(
                    problems,
                    "[{mode:?}] {src} -> {dst} ({target}) {flow}: evaluator {} ({}); traffic: {result}",
                    dec.verdict.as_str(),
                    dec.describe(&p)
                );
            }
        }
        // The cases this test exists for, stated outright (so that it cannot pass vacuously).
        for &(src, dst, port, open, why) in TRAFFIC_FACTS {
            let addr = &eps.iter().find(|(n, _)| n == dst).unwrap().1;
            let result = &got[&(src.to_string(), format!("{addr}:{port}"))];
            if (result == "open") != open {
                let _ = writeln!(
                    problems,
                    "[{mode:?}] {src} -> {dst} tcp/{port} ({why}): {result}"
                );
            }
        }
    }
    assert!(
        problems.is_empty(),
        "real traffic disagrees with the evaluator:\n{problems}"
    );
    drop(lab);
    eprintln!(
        "real traffic: {} TCP and {} ICMP probes x 3 rounds (no rules, fabric, endpoint); setup \
         {t_setup:.0?}, {}, total {:.0?}",
        base.len(),
        icmp_types.len(),
        summary.join(", "),
        t0.elapsed()
    );
}
