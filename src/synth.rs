//! Synthetic policies for differential testing: a seeded generator of random well-formed
//! policies, the Kubernetes Pods and Namespaces of a policy's declared endpoints, and the
//! evaluator's allowed ports between every pair of internal endpoints (what an independent
//! NetworkPolicy engine must agree with).
//!
//! Generated policies keep the two views of membership in agreement: every endpoint carries
//! the labels `app`, `tier` and `track`, and its addresses encode exactly those labels, so a
//! group's `select` and its `address` prefixes describe the same members.
//!
//! [`hostile_policy`] makes the same policies with names chosen to break careless output:
//! every word of the nftables grammar, YAML's special words and number spellings, names that
//! start with a digit, names of the maximum length (sometimes every name at once), gbpc's own
//! keywords, and label keys and values a YAML reader would take for booleans, nulls or
//! numbers. Every such name is valid, so the policy still checks clean.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::eval::{self, Flow, Proto, Verdict};
use crate::model::{Action, EntryProto, GroupId, Policy};
use crate::net::{Family, range_to_cidrs};

/// How large a generated policy may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    /// Declared endpoints, internal and external together.
    pub max_endpoints: usize,
    pub max_tenants: usize,
    /// Internal groups per tenant: this many plus 0-3.
    pub min_groups: usize,
    /// Endpoints per internal group: this many plus 0-3 (while the budget lasts).
    pub min_group_endpoints: usize,
}

impl Size {
    /// For booting every endpoint (run mode): at most 20 endpoints.
    pub const SMALL: Size = Size {
        max_endpoints: 20,
        max_tenants: 2,
        min_groups: 2,
        min_group_endpoints: 0,
    };
    /// The default: at most 30 endpoints, 3 tenants.
    pub const DEFAULT: Size = Size {
        max_endpoints: 30,
        max_tenants: 3,
        min_groups: 2,
        min_group_endpoints: 0,
    };
    /// Denser: more groups with more endpoints, so most policies reach the 30-endpoint cap
    /// (the kernel sweep's largest runs). Same choices as the default otherwise.
    pub const LARGE: Size = Size {
        max_endpoints: 30,
        max_tenants: 3,
        min_groups: 4,
        min_group_endpoints: 1,
    };
}

/// splitmix64: small, fast, and the same on every platform. A generator made with
/// [`Rng::from_bytes`] takes its first choices from the bytes (two a choice, so that a fuzzer
/// steers them), then goes on from a seed.
struct Rng {
    state: u64,
    bytes: Vec<u8>,
    pos: usize,
}

impl Rng {
    fn seeded(seed: u64) -> Rng {
        Rng {
            state: seed,
            bytes: Vec::new(),
            pos: 0,
        }
    }
    fn from_bytes(bytes: &[u8], seed: u64) -> Rng {
        Rng {
            state: seed,
            bytes: bytes.to_vec(),
            pos: 0,
        }
    }
    fn next(&mut self) -> u64 {
        if let Some(&[a, b]) = self.bytes.get(self.pos..self.pos + 2) {
            self.pos += 2;
            return u64::from(u16::from_le_bytes([a, b]));
        }
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// True with probability `pct`%.
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const APPS: [&str; 4] = ["web", "api", "db", "cache"];
const TIERS: [&str; 2] = ["front", "back"];
const TRACKS: [&str; 2] = ["stable", "canary"];
/// Values per label dimension: app (4), tier (2), track (2); combo = app*4 + tier*2 + track.
const DIMS: [usize; 3] = [4, 2, 2];
const COMBOS: usize = 16;
const TENANTS: [&str; 3] = ["alpha", "beta", "gamma"];
const EXTERNAL_NETS: [[u8; 3]; 3] = [[192, 0, 2], [198, 51, 100], [203, 0, 113]];

// ---- names -------------------------------------------------------------------------------

/// The namespaces of one tenant (groups and external groups share one).
#[derive(Default)]
struct Scopes {
    groups: BTreeSet<String>,
    endpoints: BTreeSet<String>,
    filters: BTreeSet<String>,
    contracts: BTreeSet<String>,
}

/// Every word of the nftables 1.0.6 grammar (its parser's token names: `strings
/// libnftables.so.1`), the operator words of its scanner (`eq`, `and`, ...) and keywords of
/// later releases (`destroy`, `last`, `tunnel`, ...). Each is a valid gbpc name.
#[rustfmt::skip]
pub const NFT_WORDS: &[&str] = &[
    "8021ad", "8021q", "a-rwnd", "abort", "accept", "ackseq", "add", "addr", "ah", "all", "and",
    "arp", "asconf", "asconf-ack", "auto-merge", "avgpkt", "bridge", "burst", "bypass", "bytes",
    "cfi", "cgroup", "cgroupv2", "chain", "chains", "check", "checksum", "chunk", "classid",
    "code", "colon", "comma", "comment", "comp", "constant", "continue", "cookie-ack",
    "cookie-echo", "count", "counter", "counters", "cpi", "cpu", "create", "csumcov", "ct",
    "cum-tsn-ack", "cwr", "daddr", "data", "day", "dccp", "define", "dei", "delete", "describe",
    "destroy", "device", "devices", "direction", "dnat", "doff", "dport", "drop", "dscp", "dst",
    "dup", "dynamic", "echo", "ecn", "ecne", "element", "elements", "eol", "eq", "error", "esp",
    "ether", "event", "exists", "expectation", "expiration", "expires", "export", "exthdr",
    "fanout", "fastopen", "fib", "flags", "flow", "flowlabel", "flowtable", "flowtables", "flush",
    "forward-tsn", "frag", "frag-off", "fully-random", "fwd", "gateway", "gc-interval", "ge",
    "geneve", "get", "goto", "gre", "gretap", "group", "gt", "handle", "hbh", "hdrlength",
    "heartbeat", "heartbeat-ack", "helper", "helpers", "hlen", "hook", "hooks", "hoplimit", "hour",
    "htype", "ibriport", "ibrname", "icmp", "icmpv6", "icmpx", "id", "igmp", "iif", "iifgroup",
    "iifname", "iiftype", "import", "in", "inc", "include", "index", "inet", "init", "init-ack",
    "init-tag", "initial-tsn", "insert", "interval", "ip", "ip6", "ipsec", "jhash", "json", "jump",
    "junk", "l3proto", "label", "last", "last-entry", "le", "left", "length", "level", "limit",
    "limits", "list", "ll", "log", "lowest-tsn", "lshift", "lsrr", "lt", "map", "maps", "mark",
    "masquerade", "max-delay", "maxseg", "md5sig", "memory", "meta", "meter", "meters", "mh",
    "minute", "missing", "mod", "monitor", "more-fragments", "mptcp", "mrt", "mss", "mtu", "name",
    "ne", "netdev", "never", "new-cum-tsn", "newline", "nexthdr", "nexthop", "nftrace", "nh",
    "noop", "nop", "not", "notrack", "num", "num-dup-tsns", "num-gap-ack-blocks",
    "num-inbound-streams", "num-outbound-streams", "number", "numgen", "obriport", "obrname",
    "offload", "offset", "oif", "oifgroup", "oifname", "oiftype", "operation", "option", "options",
    "or", "original", "osf", "out", "over", "packets", "param-problem", "pcp", "performance",
    "persistent", "pkttype", "plen", "policy", "port", "position", "ppid", "prefix", "priority",
    "proto-dst", "proto-src", "protocol", "ptr", "ptype", "queue", "queue-threshold", "quota",
    "quotas", "ra", "random", "rate", "redefine", "redirect", "reject", "rename", "replace",
    "reply", "reqid", "reserved", "reserved2", "reset", "return", "right", "rr", "rshift", "rt",
    "rt0", "rt2", "rtclassid", "rule", "rules", "ruleset", "sack", "sack-perm", "sack-permitted",
    "sack0", "sack1", "sack2", "sack3", "saddr", "sctp", "secmark", "secmarks", "second", "seed",
    "seg-left", "semicolon", "seq", "seqno", "sequence", "set", "sets", "shutdown", "shutdown-ack",
    "shutdown-complete", "sid", "size", "skgid", "skuid", "snaplen", "snat", "socket", "spi",
    "spnum", "sport", "srh", "ssn", "ssrr", "state", "status", "stream", "string", "subtype",
    "symhash", "synproxy", "synproxys", "table", "tables", "taddr", "tag", "tcp", "th", "time",
    "timeout", "timestamp", "to", "tos", "tproxy", "trace", "transparent", "tsecr", "tsn", "tsval",
    "ttl", "tunnel", "tunnels", "type", "typeof", "udp", "udplite", "undefine", "until", "update",
    "urgptr", "used", "value", "version", "vlan", "vm", "vmap", "vni", "vtag", "vxlan", "week",
    "wildcard", "window", "with", "wscale", "xml", "xor", "xt", "zone",
];
/// YAML words and number spellings that are valid names (DNS labels): a YAML 1.1 or 1.2 reader
/// takes each, written plain, for a boolean, a null, a number or a date.
pub const YAML_NAMES: &[&str] = &[
    "true",
    "false",
    "null",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "nan",
    "inf",
    "1e3",
    "1e-3",
    "12e03",
    "0x1f",
    "0o17",
    "0b101",
    "010",
    "0",
    "123",
    "0x0",
    "2001-12-14",
    "1-2",
];

/// Names that start with a digit (nftables reads a number there).
const DIGIT_NAMES: &[&str] = &[
    "3tier",
    "1",
    "9",
    "42",
    "007",
    "1a",
    "8021q",
    "8021ad",
    "4-in-6",
    "6to4",
    "0-0",
    "99-bottles",
];

/// gbpc's own keywords (recognised by position, so valid names), and the names of the fixed
/// objects gbpc generates. `any` is no group's name.
const GBPC_NAMES: &[&str] = &[
    "tenant",
    "filter",
    "contract",
    "global",
    "subject",
    "permit",
    "deny",
    "log",
    "group",
    "external",
    "extends",
    "isolated",
    "select",
    "address",
    "except",
    "endpoint",
    "labels",
    "provides",
    "consumes",
    "any",
    "assert",
    "allow",
    "tcp",
    "udp",
    "sctp",
    "icmp",
    "icmpv6",
    "ip",
    "gbpc",
    "default-deny",
    "allow-dns",
    "kube-system",
    "kube-dns",
];

/// Label keys and values a YAML reader would take for something other than a string when
/// written plain (YAML 1.1 booleans in every case, nulls, numbers in every base, floats,
/// dates), all valid label values (and keys).
pub const YAML_LABEL_WORDS: &[&str] = &[
    "true",
    "True",
    "TRUE",
    "false",
    "False",
    "FALSE",
    "null",
    "Null",
    "NULL",
    "yes",
    "Yes",
    "YES",
    "no",
    "No",
    "NO",
    "on",
    "On",
    "ON",
    "off",
    "Off",
    "OFF",
    "y",
    "Y",
    "n",
    "N",
    "nan",
    "NaN",
    "NAN",
    "inf",
    "Inf",
    "0x1F",
    "0X1f",
    "010",
    "0o17",
    "0b101",
    "1e3",
    "1E3",
    "1e-3",
    "1.5",
    "1.0e3",
    "1_000",
    "1__0",
    "0",
    "00",
    "123",
    "2001-12-14",
    "2001-12-14t21.59",
];

/// How the generator names things: plain (`alpha`, `g0`, `app=web`) or hostile.
struct Namer {
    /// `None`: plain names.
    rng: Option<Rng>,
    /// Every name and label of the maximum length at once.
    long: bool,
}

impl Namer {
    fn plain() -> Namer {
        Namer {
            rng: None,
            long: false,
        }
    }

    fn hostile(mut rng: Rng) -> Namer {
        let long = rng.chance(20);
        Namer {
            rng: Some(rng),
            long,
        }
    }

    /// A name not in `used` (one namespace), recorded there: `plain` when names are plain.
    fn name(&mut self, plain: String, used: &mut BTreeSet<String>) -> String {
        self.pick(plain, used, false)
    }

    /// A group's name: never `any`.
    fn group_name(&mut self, plain: String, used: &mut BTreeSet<String>) -> String {
        self.pick(plain, used, true)
    }

    fn pick(&mut self, plain: String, used: &mut BTreeSet<String>, group: bool) -> String {
        let long = self.long;
        let Some(rng) = self.rng.as_mut() else {
            used.insert(plain.clone());
            return plain;
        };
        for _ in 0..16 {
            let n = if long {
                long_name(rng, 63)
            } else {
                match rng.below(100) {
                    0..=39 => rng.pick(NFT_WORDS).to_string(),
                    40..=54 => rng.pick(YAML_NAMES).to_string(),
                    55..=64 => rng.pick(DIGIT_NAMES).to_string(),
                    65..=79 => rng.pick(GBPC_NAMES).to_string(),
                    _ => long_name(rng, 63),
                }
            };
            if !(group && n == "any") && used.insert(n.clone()) {
                return n;
            }
        }
        // Every try was taken: a digit-first name made unique by a counter.
        let mut i = used.len();
        loop {
            let mut n = format!("{i}-{plain}-");
            while long && n.len() < 63 {
                n.push('z');
            }
            n.truncate(63);
            let n = n.trim_end_matches('-').to_string();
            if used.insert(n.clone()) {
                return n;
            }
            i += 1;
        }
    }

    /// The three label keys and their values.
    fn labels(&mut self) -> Labels {
        let long = self.long;
        let Some(rng) = self.rng.as_mut() else {
            return Labels {
                keys: ["app", "tier", "track"].map(String::from),
                values: [
                    APPS.map(String::from).to_vec(),
                    TIERS.map(String::from).to_vec(),
                    TRACKS.map(String::from).to_vec(),
                ],
            };
        };
        let mut keys: BTreeSet<String> = BTreeSet::new();
        let mut key_list = Vec::new();
        while key_list.len() < 3 {
            let k = if long || rng.chance(15) {
                // The longest key: a 253-character prefix and a 63-character name.
                format!("{}/{}", long_prefix(rng), long_label_word(rng))
            } else if rng.chance(20) {
                format!(
                    "{}/{}",
                    rng.pick(&["a.b", "example.com", "k8s.io", "0.1e3"]),
                    rng.pick(YAML_LABEL_WORDS)
                )
            } else {
                rng.pick(YAML_LABEL_WORDS).to_string()
            };
            if keys.insert(k.clone()) {
                key_list.push(k);
            }
        }
        let mut values: [Vec<String>; 3] = Default::default();
        for (d, vals) in values.iter_mut().enumerate() {
            while vals.len() < DIMS[d] {
                let v = if long || rng.chance(15) {
                    long_label_word(rng)
                } else if rng.chance(8) {
                    String::new()
                } else {
                    rng.pick(YAML_LABEL_WORDS).to_string()
                };
                if !vals.contains(&v) {
                    vals.push(v);
                }
            }
        }
        let [a, b, c] = [0, 1, 2].map(|i| key_list[i].clone());
        Labels {
            keys: [a, b, c],
            values,
        }
    }
}

/// A name of `len` characters (a DNS label): digits only, digit-first or letter-first.
fn long_name(rng: &mut Rng, len: usize) -> String {
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let style = rng.below(3);
    let mut s = String::with_capacity(len);
    for i in 0..len {
        let c = match style {
            0 => b'0' + rng.below(10) as u8,
            _ if i == 0 && style == 1 => b'0' + rng.below(10) as u8,
            _ if i == 0 => b'a' + rng.below(26) as u8,
            _ if i + 1 < len && rng.chance(10) => b'-',
            _ => ALNUM[rng.below(ALNUM.len())],
        };
        s.push(char::from(c));
    }
    s
}

/// A 63-character label key name or value: letters of both cases, digits, `.`, `_`, `-`.
fn long_label_word(rng: &mut Rng) -> String {
    const EDGE: &[u8] = b"abcXYZ019";
    const INNER: &[u8] = b"aZ09._-";
    let mut s = String::with_capacity(63);
    for i in 0..63 {
        let set = if i == 0 || i == 62 { EDGE } else { INNER };
        s.push(char::from(set[rng.below(set.len())]));
    }
    s
}

/// A 253-character DNS subdomain: the longest label key prefix.
fn long_prefix(rng: &mut Rng) -> String {
    let parts = [63, 63, 63, 61].map(|n| long_name(rng, n));
    parts.join(".")
}

/// The label keys of the three dimensions (app, tier, track) and the values of each.
struct Labels {
    keys: [String; 3],
    values: [Vec<String>; 3],
}

impl Labels {
    /// `key=value` for value `v` of dimension `d`; an empty value written `""`.
    fn text(&self, d: usize, v: usize) -> String {
        let value = &self.values[d][v];
        if value.is_empty() {
            format!("{}=\"\"", self.keys[d])
        } else {
            format!("{}={value}", self.keys[d])
        }
    }
}

fn combo_of(v: [usize; 3]) -> usize {
    v[0] * 4 + v[1] * 2 + v[2]
}

fn v4(tenant: usize, combo: usize, host: usize) -> u128 {
    let base: u128 = (198 << 24) | (18 << 16);
    base | (((tenant * COMBOS + combo) as u128) << 8) | host as u128
}

fn v6(tenant: usize, combo: usize, host: usize) -> u128 {
    let base: u128 = 0x2001_0db8 << 96;
    base | (((tenant + 1) as u128) << 80) | ((combo as u128) << 64) | host as u128
}

fn ip_text(family: Family, addr: u128) -> String {
    crate::net::addr_to_ip(family, addr).to_string()
}

/// A label selector: `Some(value index)` per dimension that it constrains.
type Selector = [Option<usize>; 3];

fn selects(sel: &Selector, combo: [usize; 3]) -> bool {
    sel.iter().zip(combo).all(|(s, c)| s.is_none_or(|v| v == c))
}

fn selector_text(sel: &Selector, labels: &Labels) -> String {
    let mut parts = Vec::new();
    for (d, v) in sel.iter().enumerate() {
        if let Some(v) = v {
            parts.push(labels.text(d, *v));
        }
    }
    parts.join(", ")
}

fn all_combos() -> impl Iterator<Item = [usize; 3]> {
    (0..DIMS[0]).flat_map(|a| (0..DIMS[1]).flat_map(move |t| (0..DIMS[2]).map(move |k| [a, t, k])))
}

/// The prefixes (both families) of exactly the combos a selector matches, in one tenant.
fn selector_prefixes(tenant: usize, sel: &Selector) -> Vec<String> {
    let mut combos: Vec<usize> = all_combos()
        .filter(|c| selects(sel, *c))
        .map(combo_of)
        .collect();
    combos.sort_unstable();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for c in combos {
        match runs.last_mut() {
            Some((_, hi)) if *hi + 1 == c => *hi = c,
            _ => runs.push((c, c)),
        }
    }
    let mut out = Vec::new();
    for &(lo, hi) in &runs {
        for c in range_to_cidrs(Family::V4, v4(tenant, lo, 0), v4(tenant, hi, 255)) {
            out.push(c.to_string());
        }
    }
    for &(lo, hi) in &runs {
        let last = v6(tenant, hi, 0) | ((1u128 << 64) - 1);
        for c in range_to_cidrs(Family::V6, v6(tenant, lo, 0), last) {
            out.push(c.to_string());
        }
    }
    out
}

/// Who provides or consumes a contract.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Group(usize, usize),
    External(usize, usize),
    Any(usize),
}

struct GroupGen {
    sel: Selector,
    isolated: bool,
    preferred: bool,
    parent: Option<usize>,
    endpoints: Vec<String>,
    provides: Vec<String>,
    consumes: Vec<String>,
}

struct ExternalGen {
    lines: Vec<String>,
    provides: Vec<String>,
    consumes: Vec<String>,
}

struct TenantGen {
    name: String,
    unenforced: bool,
    /// The names of `groups` and `externals` (one namespace).
    group_names: Vec<String>,
    external_names: Vec<String>,
    scopes: Scopes,
    filters: Vec<String>,
    contracts: Vec<String>,
    groups: Vec<GroupGen>,
    externals: Vec<ExternalGen>,
    any_provides: Vec<String>,
    any_consumes: Vec<String>,
    endpoints: Vec<String>,
    asserts: Vec<String>,
}

const TCP_PORTS: [&str; 10] = [
    "22",
    "53",
    "80",
    "443",
    "5432",
    "6379",
    "8000-8099",
    "8080",
    "9000-9100",
    "1-1024",
];
const UDP_PORTS: [&str; 4] = ["53", "123", "5000-5100", "443"];
const PROBE_PORTS: [u16; 12] = [
    22, 53, 80, 123, 443, 999, 3868, 5050, 5432, 6379, 8080, 9050,
];

fn filter_entries(rng: &mut Rng, deny: bool) -> String {
    let n = 1 + rng.below(3);
    let mut entries = Vec::new();
    for _ in 0..n {
        let r = rng.below(100);
        let e = if r < 40 {
            let k = 1 + rng.below(2);
            let mut ports: Vec<&str> = (0..k).map(|_| *rng.pick(&TCP_PORTS)).collect();
            ports.dedup();
            format!("tcp {}", ports.join(", "))
        } else if r < 55 {
            format!("udp {}", rng.pick(&UDP_PORTS))
        } else if r < 63 {
            "sctp 3868".to_string()
        } else if r < 68 {
            "tcp".to_string()
        } else if r < 72 {
            "udp".to_string()
        } else if r < 80 && !deny {
            "icmp echo-request".to_string()
        } else if r < 88 && !deny {
            "icmpv6 echo-request".to_string()
        } else if r < 93 {
            "ip".to_string()
        } else {
            format!("tcp {}", rng.pick(&TCP_PORTS))
        };
        if !entries.contains(&e) {
            entries.push(e);
        }
    }
    entries.join("; ")
}

/// A random well-formed policy: it checks with no errors, compiles for both targets (denies
/// with AdminNetworkPolicy), and its assertions hold. The same seed gives the same text.
pub fn policy(seed: u64, size: Size) -> String {
    generate(Rng::seeded(seed ^ SEED_SALT), &mut Namer::plain(), size)
}

/// The policy [`policy`] makes from the same seed (the same tenants, groups, endpoints,
/// contracts and verdicts), with hostile names instead of plain ones (see the module
/// documentation). Every name is valid: the policy checks clean.
pub fn hostile_policy(seed: u64, size: Size) -> String {
    let names = Rng::seeded(seed ^ NAMES_SALT);
    generate(
        Rng::seeded(seed ^ SEED_SALT),
        &mut Namer::hostile(names),
        size,
    )
}

/// A hostile policy whose choices come from `data` (for fuzzing): the first half of the bytes
/// drives the structure, the second half the names; once they run out, the choices go on from
/// a hash of `data`.
pub fn hostile_policy_from_bytes(data: &[u8], size: Size) -> String {
    let seed = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let (structure, names) = data.split_at(data.len() / 2);
    generate(
        Rng::from_bytes(structure, seed ^ SEED_SALT),
        &mut Namer::hostile(Rng::from_bytes(names, seed ^ NAMES_SALT)),
        size,
    )
}

const SEED_SALT: u64 = 0x6762_7063_7379_6e74;
/// The choices of the language's later constructs (`both-ways`, `preferred`, `unenforced`)
/// come from a generator of their own, so that adding them left every other choice of a
/// seed as it was.
const LANG_SALT: u64 = 0x6c61_6e67_7561_6765;
const NAMES_SALT: u64 = 0x6e61_6d65_7321_2121;

fn generate(mut rng: Rng, namer: &mut Namer, size: Size) -> String {
    let mut lang = Rng::seeded(rng.state ^ LANG_SALT);
    let labels = namer.labels();
    let nt = 1 + rng.below(size.max_tenants.clamp(1, TENANTS.len()));
    let mut tenant_names: BTreeSet<String> = BTreeSet::new();
    let mut budget = size.max_endpoints;
    let mut internal_total = 0usize;
    let mut tenants: Vec<TenantGen> = Vec::new();
    for (t, plain_name) in TENANTS.iter().enumerate().take(nt) {
        let tenant_name = namer.name(plain_name.to_string(), &mut tenant_names);
        let mut scopes = Scopes::default();
        let mut group_names = Vec::new();
        let ng = size.min_groups + rng.below(4);
        let mut groups = Vec::new();
        let mut hosts: BTreeMap<usize, usize> = BTreeMap::new();
        let mut endpoints = Vec::new();
        let share = size.max_endpoints / nt;
        let mut tenant_budget = share.min(budget);
        for gi in 0..ng {
            let mut sel: Selector = [None; 3];
            if rng.chance(75) {
                sel[0] = Some(rng.below(DIMS[0]));
            }
            if rng.chance(40) {
                sel[1] = Some(rng.below(DIMS[1]));
            }
            if rng.chance(30) || sel.iter().all(Option::is_none) {
                sel[2] = Some(rng.below(DIMS[2]));
            }
            group_names.push(namer.group_name(format!("g{gi}"), &mut scopes.groups));
            let parent = (gi > 0 && rng.chance(30)).then(|| rng.below(gi));
            let isolated = rng.chance(20);
            let mut g = GroupGen {
                sel,
                isolated,
                preferred: !isolated && lang.chance(20),
                parent,
                endpoints: Vec::new(),
                provides: Vec::new(),
                consumes: Vec::new(),
            };
            let mut ne = (size.min_group_endpoints + rng.below(4)).min(tenant_budget);
            // At least two internal endpoints in every policy, or there is nothing to compare.
            if t + 1 == nt && gi + 1 == ng && internal_total + ne < 2 {
                ne = (2 - internal_total).min(tenant_budget);
            }
            internal_total += ne;
            for _ in 0..ne {
                let mut v = [0usize; 3];
                for (d, slot) in v.iter_mut().enumerate() {
                    *slot = sel[d].unwrap_or_else(|| rng.below(DIMS[d]));
                }
                let combo = combo_of(v);
                let host = hosts.entry(combo).or_insert(9);
                *host += 1;
                let name = namer.name(format!("e{}", endpoints.len() + 1), &mut scopes.endpoints);
                let mut own = Vec::new();
                for d in 0..3 {
                    if sel[d].is_none() {
                        own.push(labels.text(d, v[d]));
                    }
                }
                let mut addr = ip_text(Family::V4, v4(t, combo, *host));
                if rng.chance(40) {
                    addr = format!("{addr}, {}", ip_text(Family::V6, v6(t, combo, *host)));
                }
                let labels = if own.is_empty() {
                    String::new()
                } else {
                    format!(" labels {}", own.join(", "))
                };
                g.endpoints.push(format!("endpoint {name} {addr}{labels}"));
                endpoints.push(name);
                tenant_budget -= 1;
                budget -= 1;
            }
            groups.push(g);
        }
        let mut externals = Vec::new();
        let mut external_names = Vec::new();
        for xi in 0..rng.below(3) {
            external_names.push(namer.group_name(format!("x{xi}"), &mut scopes.groups));
            let net = rng.pick(&EXTERNAL_NETS);
            let base = format!("{}.{}.{}", net[0], net[1], net[2]);
            let mut lines = Vec::new();
            if rng.chance(60) {
                let hole = rng.pick(&["128/25", "128/26", "192/26", "224/27"]);
                lines.push(format!("address {base}.0/24 except {base}.{hole}"));
            } else {
                lines.push(format!("address {base}.0/25, {base}.192/26"));
            }
            if budget > 0 && tenant_budget > 0 && rng.chance(50) {
                let name = namer.name(format!("e{}", endpoints.len() + 1), &mut scopes.endpoints);
                lines.push(format!("endpoint {name} {base}.{}", 10 + rng.below(90)));
                endpoints.push(name);
                tenant_budget -= 1;
                budget -= 1;
            }
            externals.push(ExternalGen {
                lines,
                provides: Vec::new(),
                consumes: Vec::new(),
            });
        }
        // Unenforced only where no group is isolated or preferred (they would mean nothing).
        let unenforced = groups
            .iter()
            .all(|g: &GroupGen| !g.isolated && !g.preferred)
            && lang.chance(10);
        tenants.push(TenantGen {
            name: tenant_name,
            unenforced,
            group_names,
            external_names,
            scopes,
            filters: Vec::new(),
            contracts: Vec::new(),
            groups,
            externals,
            any_provides: Vec::new(),
            any_consumes: Vec::new(),
            endpoints,
            asserts: Vec::new(),
        });
    }
    // Contracts, after every tenant's groups exist (global ones are consumed across tenants).
    let mut nfilters = 0usize;
    for t in 0..nt {
        let nc = 2 + rng.below(4);
        for ci in 0..nc {
            let name = namer.name(format!("c{ci}"), &mut tenants[t].scopes.contracts);
            let global = nt > 1 && rng.chance(30);
            let has_deny = rng.chance(25);
            let mut subjects = Vec::new();
            let ns = 1 + rng.below(3);
            let mut subject_names = BTreeSet::new();
            for si in 0..ns {
                let deny = has_deny && si > 0;
                let nf = 1 + rng.below(2);
                let mut fnames = Vec::new();
                for _ in 0..nf {
                    nfilters += 1;
                    let fname = namer.name(format!("f{nfilters}"), &mut tenants[t].scopes.filters);
                    let entries = filter_entries(&mut rng, deny);
                    tenants[t]
                        .filters
                        .push(format!("filter {fname} {{ {entries} }}"));
                    fnames.push(fname);
                }
                let action = if deny { "deny" } else { "permit" };
                let log = if rng.chance(10) { " log" } else { "" };
                let both = if lang.chance(15) { " both-ways" } else { "" };
                let sname = namer.name(format!("s{si}"), &mut subject_names);
                subjects.push(format!(
                    "subject {sname} {action} {}{both}{log}",
                    fnames.join(", ")
                ));
            }
            tenants[t].contracts.push(format!(
                "{}contract {name} {{ {} }}",
                if global { "global " } else { "" },
                subjects.join("; ")
            ));
            // Sides: internal groups mostly; `any` and external groups sometimes (never on a
            // deny contract: AdminNetworkPolicy cannot match an external consumer).
            let side = |rng: &mut Rng, tt: usize, tenants: &Vec<TenantGen>| -> Side {
                let r = rng.below(100);
                if r < 12 {
                    Side::Any(tt)
                } else if r < 30 && !has_deny && !tenants[tt].externals.is_empty() {
                    Side::External(tt, rng.below(tenants[tt].externals.len()))
                } else {
                    Side::Group(tt, rng.below(tenants[tt].groups.len()))
                }
            };
            let mut provs: Vec<Side> = Vec::new();
            for _ in 0..1 + rng.below(2) {
                let s = side(&mut rng, t, &tenants);
                if !provs.contains(&s) {
                    provs.push(s);
                }
            }
            let mut cons: Vec<Side> = Vec::new();
            for _ in 0..1 + rng.below(2) {
                let tt = if global { rng.below(nt) } else { t };
                let s = side(&mut rng, tt, &tenants);
                if !cons.contains(&s) {
                    cons.push(s);
                }
            }
            // A contract only between external groups reaches no pod and says nothing
            // testable; keep one internal side.
            if provs.iter().all(|s| matches!(s, Side::External(..)))
                && cons.iter().all(|s| matches!(s, Side::External(..)))
            {
                provs.push(Side::Group(t, rng.below(tenants[t].groups.len())));
            }
            for s in provs {
                let r = name.clone();
                match s {
                    Side::Group(tt, g) => tenants[tt].groups[g].provides.push(r),
                    Side::External(tt, x) => tenants[tt].externals[x].provides.push(r),
                    Side::Any(tt) => tenants[tt].any_provides.push(r),
                }
            }
            for s in cons {
                let (tt, r) = match s {
                    Side::Group(tt, _) | Side::External(tt, _) | Side::Any(tt) => {
                        if tt == t {
                            (tt, name.clone())
                        } else {
                            (tt, format!("{}/{name}", tenants[t].name))
                        }
                    }
                };
                match s {
                    Side::Group(_, g) => tenants[tt].groups[g].consumes.push(r),
                    Side::External(_, x) => tenants[tt].externals[x].consumes.push(r),
                    Side::Any(_) => tenants[tt].any_consumes.push(r),
                }
            }
        }
    }
    let text = render(&tenants, &labels);
    // Assertions: verdicts from the evaluator, so they hold.
    let checked = crate::check_source(&text);
    if !checked.ok() {
        return text;
    }
    let p = &checked.policy;
    let names: Vec<(usize, String)> = tenants
        .iter()
        .enumerate()
        .flat_map(|(t, tg)| tg.endpoints.iter().map(move |e| (t, e.clone())))
        .collect();
    if names.len() >= 2 {
        for _ in 0..1 + rng.below(4) {
            let (st, s) = rng.pick(&names).clone();
            let (dt, d) = rng.pick(&names).clone();
            if (st, &s) == (dt, &d) {
                continue;
            }
            let (Some(se), Some(de)) = (find_endpoint(p, st, &s), find_endpoint(p, dt, &d)) else {
                continue;
            };
            let proto = *rng.pick(&[Proto::Tcp, Proto::Tcp, Proto::Udp, Proto::Sctp]);
            let port = *rng.pick(&PROBE_PORTS);
            let flow = Flow { proto, port };
            // Only flows that can exist: an assertion across address families is an error.
            let ends = (
                eval::End::endpoint(p.endpoint(se)),
                eval::End::endpoint(p.endpoint(de)),
            );
            let Ok(conn) = eval::Conn::new(ends.0, ends.1, flow) else {
                continue;
            };
            let v = eval::decide(p, &conn).verdict;
            let dref = if dt == st {
                d.clone()
            } else {
                format!("{}/{d}", tenants[dt].name)
            };
            tenants[st]
                .asserts
                .push(format!("assert {s} -> {dref} {flow} {}", v.as_str()));
        }
    }
    render(&tenants, &labels)
}

fn find_endpoint(p: &Policy, tenant: usize, name: &str) -> Option<crate::model::EndpointId> {
    p.endpoints
        .iter()
        .position(|e| e.tenant.index() == tenant && e.name == name)
        .map(|i| crate::model::EndpointId(i as u32))
}

fn render(tenants: &[TenantGen], labels: &Labels) -> String {
    let mut out = String::new();
    for (t, tg) in tenants.iter().enumerate() {
        let unenforced = if tg.unenforced { " unenforced" } else { "" };
        let _ = writeln!(out, "tenant {}{unenforced} {{", tg.name);
        for f in &tg.filters {
            let _ = writeln!(out, "  {f}");
        }
        for c in &tg.contracts {
            let _ = writeln!(out, "  {c}");
        }
        for (gi, g) in tg.groups.iter().enumerate() {
            let mut head = format!("  group {}", tg.group_names[gi]);
            if g.isolated {
                head.push_str(" isolated");
            }
            if g.preferred {
                head.push_str(" preferred");
            }
            if let Some(par) = g.parent {
                let _ = write!(head, " extends {}", tg.group_names[par]);
            }
            let _ = writeln!(out, "{head} {{");
            let _ = writeln!(out, "    select {}", selector_text(&g.sel, labels));
            let _ = writeln!(
                out,
                "    address {}",
                selector_prefixes(t, &g.sel).join(", ")
            );
            for e in &g.endpoints {
                let _ = writeln!(out, "    {e}");
            }
            uses(&mut out, "    ", &g.provides, &g.consumes);
            let _ = writeln!(out, "  }}");
        }
        for (xi, x) in tg.externals.iter().enumerate() {
            let _ = writeln!(out, "  external {} {{", tg.external_names[xi]);
            for l in &x.lines {
                let _ = writeln!(out, "    {l}");
            }
            uses(&mut out, "    ", &x.provides, &x.consumes);
            let _ = writeln!(out, "  }}");
        }
        if !tg.any_provides.is_empty() || !tg.any_consumes.is_empty() {
            let _ = writeln!(out, "  any {{");
            uses(&mut out, "    ", &tg.any_provides, &tg.any_consumes);
            let _ = writeln!(out, "  }}");
        }
        for a in &tg.asserts {
            let _ = writeln!(out, "  {a}");
        }
        let _ = writeln!(out, "}}");
    }
    out
}

fn uses(out: &mut String, indent: &str, provides: &[String], consumes: &[String]) {
    if !provides.is_empty() {
        let _ = writeln!(out, "{indent}provides {}", provides.join(", "));
    }
    if !consumes.is_empty() {
        let _ = writeln!(out, "{indent}consumes {}", consumes.join(", "));
    }
}

/// The Namespaces and Pods of a checked policy's internal endpoints, as a Kubernetes `List`
/// (JSON): one namespace per tenant, one pod per endpoint with the endpoint's labels (plus a
/// unique `gbpc.test/endpoint` label, so that no two pods look alike to an analyser) and its
/// first address as the pod IP.
pub fn k8s_fixture(p: &Policy) -> String {
    use serde_json::json;
    let mut items = Vec::new();
    for t in &p.tenants {
        items.push(json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": t.name, "labels": {crate::lower::k8s::NAMESPACE_NAME_LABEL: t.name}},
        }));
    }
    for e in p.endpoints.iter().filter(|e| !e.external) {
        let mut labels = serde_json::Map::new();
        for (k, v) in &e.labels {
            labels.insert(k.clone(), json!(v));
        }
        labels.insert("gbpc.test/endpoint".into(), json!(e.name));
        let ip = e
            .addrs
            .first()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        items.push(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": e.name, "namespace": p.tenant(e.tenant).name, "labels": labels},
            "spec": {"containers": [{"name": "main", "image": "registry.invalid/gbpc-test"}]},
            "status": {"podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "192.0.2.1"},
        }));
    }
    serde_json::to_string_pretty(&json!({"apiVersion": "v1", "kind": "List", "items": items}))
        .unwrap_or_default()
}

/// The evaluator's allowed destination ports between every ordered pair of distinct internal
/// endpoints, per protocol (tcp, udp, sctp), as JSON:
/// `{"pairs": [{"src": "t/e", "dst": "t/e", "allow": {"tcp": [[lo, hi], ...], ...},
/// "allow_without_denies": {...}}]}`. `allow_without_denies` is the verdict with every deny
/// subject left out: what the NetworkPolicy objects alone must allow.
pub fn eval_matrix(p: &Policy) -> String {
    use serde_json::json;
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
    let internal: Vec<usize> = (0..p.endpoints.len())
        .filter(|&i| !p.endpoints[i].external)
        .collect();
    let mut pairs = Vec::new();
    for &s in &internal {
        for &d in &internal {
            if s == d {
                continue;
            }
            let (se, de) = (&p.endpoints[s], &p.endpoints[d]);
            let (sg, dg): (&[GroupId], &[GroupId]) = (&se.groups, &de.groups);
            let app = eval::applicable(p, sg, dg);
            let mut allow = serde_json::Map::new();
            let mut nodeny = serde_json::Map::new();
            for (pi, &(proto, _, pname)) in protos.iter().enumerate() {
                let mut a: Vec<(u16, u16)> = Vec::new();
                let mut b: Vec<(u16, u16)> = Vec::new();
                for &(lo, hi) in &segments[pi] {
                    let flow = Flow { proto, port: lo };
                    // Pods in Kubernetes: their address family does not constrain a peer.
                    let both = eval::Families::BOTH;
                    let ends = (eval::End::new(sg, both), eval::End::new(dg, both));
                    let allowed = eval::Conn::new(ends.0, ends.1, flow)
                        .is_ok_and(|c| eval::decide_with(p, &app, &c).verdict == Verdict::Allow);
                    if allowed {
                        push_range(&mut a, lo, hi);
                    }
                    let permitted = eval::matches(p, &app, flow)
                        .iter()
                        .any(|(act, _)| *act == Action::Permit)
                        || eval::common_open_group(p, sg, dg).is_some();
                    if permitted {
                        push_range(&mut b, lo, hi);
                    }
                }
                allow.insert(pname.into(), json!(a));
                nodeny.insert(pname.into(), json!(b));
            }
            pairs.push(json!({
                "src": p.endpoint_name(crate::model::EndpointId(s as u32)),
                "dst": p.endpoint_name(crate::model::EndpointId(d as u32)),
                "allow": allow,
                "allow_without_denies": nodeny,
            }));
        }
    }
    serde_json::to_string_pretty(&json!({ "pairs": pairs })).unwrap_or_default()
}

fn push_range(v: &mut Vec<(u16, u16)>, lo: u16, hi: u16) {
    match v.last_mut() {
        Some((_, h)) if u32::from(*h) + 1 == u32::from(lo) => *h = hi,
        _ => v.push((lo, hi)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lint findings that random policies make on purpose (overlapping groups are the point)
    /// or by chance (a subject another one covers); every other warning would be a
    /// disagreement between the targets or a policy that is not well-formed.
    /// W120 (a deny through `any` over a specific permit), W122 (`both-ways` between groups
    /// that use both sides) and W123 (a tenant's one preferred group) happen by chance too.
    const EXPECTED_LINTS: [&str; 10] = [
        "gbpc::W004",
        "gbpc::W101",
        "gbpc::W102",
        "gbpc::W103",
        "gbpc::W104",
        "gbpc::W106",
        "gbpc::W107",
        "gbpc::W120",
        "gbpc::W122",
        "gbpc::W123",
    ];

    /// The generator writes every construct of the language, `both-ways`, `preferred` and
    /// `unenforced` included, and the policies that hold them check.
    #[test]
    fn generated_policies_use_every_construct() {
        let mut seen = [0usize; 4];
        for seed in 0..200 {
            let text = policy(seed, Size::DEFAULT);
            for (i, w) in [" both-ways", " preferred", " unenforced {", " isolated"]
                .iter()
                .enumerate()
            {
                if text.contains(w) {
                    seen[i] += 1;
                }
            }
        }
        assert!(seen.iter().all(|&n| n >= 5), "{seen:?}");
    }

    #[test]
    fn generated_policies_check_clean() {
        let mut asserts = 0;
        for seed in 0..500 {
            let text = policy(seed, Size::DEFAULT);
            let c = crate::check_source(&text);
            assert!(
                c.ok(),
                "seed {seed}: {:?}\n{text}",
                c.errors.iter().map(|d| &d.message).collect::<Vec<_>>()
            );
            for w in &c.warnings {
                assert!(
                    EXPECTED_LINTS.contains(&w.code.as_str()),
                    "seed {seed}: {} {}\n{text}",
                    w.code.as_str(),
                    w.message
                );
            }
            let internal = c.policy.endpoints.iter().filter(|e| !e.external).count();
            assert!(internal >= 2, "seed {seed}: {internal} internal endpoints");
            let eps = c.policy.endpoints.len();
            assert!(
                eps <= Size::DEFAULT.max_endpoints,
                "seed {seed}: {eps} endpoints"
            );
            asserts += c.policy.asserts.len();
        }
        assert!(asserts > 500, "only {asserts} assertions in 500 policies");
    }

    #[test]
    fn deterministic() {
        assert_eq!(policy(7, Size::DEFAULT), policy(7, Size::DEFAULT));
        assert_ne!(policy(7, Size::DEFAULT), policy(8, Size::DEFAULT));
    }

    /// A hostile policy is the plain policy of its seed renamed: it checks clean with the same
    /// tenants, groups, contracts, endpoints and assertions; and its names are hostile (every
    /// class shows up in a few dozen seeds).
    #[test]
    fn hostile_policies_check_clean_and_are_hostile() {
        let (mut long, mut digit, mut nft_word, mut yaml_word) = (0, 0, 0, 0);
        for seed in 0..60 {
            let text = hostile_policy(seed, Size::DEFAULT);
            assert_eq!(text, hostile_policy(seed, Size::DEFAULT), "seed {seed}");
            let c = crate::check_source(&text);
            assert!(
                c.ok(),
                "seed {seed}: {:?}\n{text}",
                c.errors.iter().map(|d| &d.message).collect::<Vec<_>>()
            );
            let plain = crate::check_source(&policy(seed, Size::DEFAULT)).policy;
            let shape = |p: &Policy| {
                (
                    p.tenants.len(),
                    p.groups.len(),
                    p.contracts.len(),
                    p.endpoints.len(),
                    p.asserts.len(),
                )
            };
            assert_eq!(shape(&c.policy), shape(&plain), "seed {seed}");
            let names: Vec<&str> = c
                .policy
                .tenants
                .iter()
                .map(|t| t.name.as_str())
                .chain(
                    c.policy
                        .groups
                        .iter()
                        .filter(|g| g.kind != crate::model::GroupKind::Any)
                        .map(|g| g.name.as_str()),
                )
                .chain(c.policy.contracts.iter().map(|k| k.name.as_str()))
                .collect();
            long += usize::from(names.iter().all(|n| n.len() == 63));
            digit += usize::from(
                names
                    .iter()
                    .any(|n| n.starts_with(|c: char| c.is_ascii_digit())),
            );
            nft_word += usize::from(
                names
                    .iter()
                    .any(|n| crate::lower::nft::KEYWORDS.contains(n)),
            );
            yaml_word += usize::from(names.iter().any(|n| YAML_NAMES.contains(n)));
        }
        assert!(
            long >= 3 && digit >= 30 && nft_word >= 30 && yaml_word >= 20,
            "long {long}, digit-first {digit}, nft keyword {nft_word}, YAML word {yaml_word}"
        );
    }
}
