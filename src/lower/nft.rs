//! nftables backend: one script that `nft -f` loads atomically into its own `inet` table.
//!
//! Classification is by lookup, not by a chain of rules per pair: the address space is cut
//! into *classes* (the exact set of groups an address is in, see [`crate::model::classify`]).
//! The verdict of a new connection is one lookup of `source . destination . protocol . port`
//! in a verdict map whose elements are computed here by asking the evaluator, class pair by
//! class pair and segment by segment, so the kernel decides exactly as [`crate::eval::decide`]
//! does. Deny and permit elements live in the same map (deny wins in the evaluator, so a
//! segment's element already carries the winning verdict); pairs with no contract decision fall
//! through to the intra-group set, then to the chain's `policy drop`.
//!
//! Two layouts ([`Layout`]) say how a packet's addresses meet their classes. The default keys
//! the maps by the addresses themselves (a class pair's element repeated for every pair of the
//! classes' address ranges) and writes nothing into the packet or its connection, so marks
//! other rulesets keep there survive. The mark layout looks the classes up into `meta mark`
//! (source) and `ct mark` (destination) and keys the maps by the marks: fewer elements, but
//! both marks are overwritten. nft 1.0.6 has no third way: a map lookup cannot be part of a
//! concatenation, and per-class chains with per-class maps load far too slowly.
//!
//! The number of rules is constant; only set and map elements grow with the policy. Counters
//! are named objects, one per contract, selected by an object map with the same keys as the
//! verdict map. Subjects with `log` put their elements in a set that a `log group` rule tests.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::{LowerResult, Lowered};
use crate::diag::{Code, Diagnostic};
use crate::eval::{self, Flow, Proto, Reason};
use crate::model::{ContractId, EntryProto, GroupId, GroupKind, Policy};
use crate::net::{Cidr, Family, addr_to_ip, range_to_cidrs};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Enforce {
    /// One routed fabric: a `forward` hook sees every flow between endpoints.
    #[default]
    Fabric,
    /// Inside each endpoint's own namespace: `input` (ingress) and `output` (egress) hooks.
    Endpoint,
}

/// How the policy chain finds the classes of a packet's two addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Layout {
    /// The verdict maps are keyed by the addresses themselves (each class pair's elements
    /// are repeated for every pair of the classes' address ranges): no packet state is
    /// written, so `meta mark` and `ct mark` stay as other rulesets set them.
    #[default]
    Addresses,
    /// The class maps write the source class into `meta mark` and the destination class into
    /// `ct mark`, and the verdict maps are keyed by the marks: fewer elements, but the marks
    /// of every new forwarded (or sent and received) connection are overwritten.
    Marks,
}

#[derive(Clone, Debug)]
pub struct Options {
    /// The table (family `inet`) the script owns and replaces.
    pub table: String,
    pub enforce: Enforce,
    pub layout: Layout,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            table: "gbpc".into(),
            enforce: Enforce::Fabric,
            layout: Layout::Addresses,
        }
    }
}

/// The NFLOG group `log` subjects log to.
pub const LOG_GROUP: u16 = 0;

/// A key space of the verdict maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Space {
    /// tcp, udp, sctp by destination port.
    L4,
    Icmp,
    Icmp6,
    /// Every other IP protocol, by protocol number.
    Proto,
}

impl Space {
    const ALL: [Space; 4] = [Space::L4, Space::Icmp, Space::Icmp6, Space::Proto];

    fn suffix(self) -> &'static str {
        match self {
            Space::L4 => "l4",
            Space::Icmp => "icmp",
            Space::Icmp6 => "icmp6",
            Space::Proto => "proto",
        }
    }

    fn key_type(self) -> &'static str {
        match self {
            Space::L4 => "mark . mark . inet_proto . inet_service",
            Space::Icmp => "mark . mark . icmp_type",
            Space::Icmp6 => "mark . mark . icmpv6_type",
            Space::Proto => "mark . mark . inet_proto",
        }
    }

    /// The key type after the two addresses (address layout).
    fn key_rest_type(self) -> &'static str {
        match self {
            Space::L4 => " . inet_proto . inet_service",
            Space::Icmp => " . icmp_type",
            Space::Icmp6 => " . icmpv6_type",
            Space::Proto => " . inet_proto",
        }
    }

    /// The match that guards the lookup and the key expression after the two addresses
    /// (address layout).
    fn address_guard_and_rest(self) -> (&'static str, &'static str) {
        match self {
            Space::L4 => (
                "meta l4proto { tcp, udp, sctp } ",
                " . meta l4proto . th dport",
            ),
            Space::Icmp => ("meta l4proto icmp ", " . icmp type"),
            Space::Icmp6 => ("meta l4proto ipv6-icmp ", " . icmpv6 type"),
            Space::Proto => ("", " . meta l4proto"),
        }
    }

    /// The match that guards the lookup, and the lookup key expression.
    fn guard_and_key(self) -> (&'static str, &'static str) {
        match self {
            Space::L4 => (
                "meta l4proto { tcp, udp, sctp } ",
                "meta mark . ct mark . meta l4proto . th dport",
            ),
            Space::Icmp => ("meta l4proto icmp ", "meta mark . ct mark . icmp type"),
            Space::Icmp6 => (
                "meta l4proto ipv6-icmp ",
                "meta mark . ct mark . icmpv6 type",
            ),
            Space::Proto => ("", "meta mark . ct mark . meta l4proto"),
        }
    }
}

/// One element: classes, the protocol (L4 only), a range of ports/types/protocols.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Element {
    src: u32,
    dst: u32,
    proto: Option<Proto>,
    lo: u16,
    hi: u16,
    allow: bool,
    contract: ContractId,
    log: bool,
}

/// Protocol numbers decided as "other": everything except tcp, udp, sctp, icmp, icmpv6.
const OTHER_PROTO_RANGES: &[(u16, u16)] =
    &[(0, 0), (2, 5), (7, 16), (18, 57), (59, 131), (133, 255)];

pub fn lower(p: &Policy, o: &Options) -> LowerResult {
    if let Err(why) = check_table_name(&o.table) {
        return Err(vec![Diagnostic::error(Code::BadName, why).help(
            "use letters, digits, `_`, `-`, `.` and `/`, starting with a letter, `_` or `.`",
        )]);
    }
    let warnings = no_address_warnings(p);
    let classes = &p.classes;
    // Classes each group is in.
    let mut group_classes: Vec<Vec<u32>> = vec![Vec::new(); p.groups.len()];
    for (ci, set) in classes.sets.iter().enumerate() {
        for g in set {
            group_classes[g.index()].push(ci as u32);
        }
    }
    // Class pairs some contract may apply to.
    let mut pairs: BTreeSet<(u32, u32)> = BTreeSet::new();
    let (providers, consumers) = p.contract_users();
    for ci in 0..p.contracts.len() {
        let mut srcs: Vec<u32> = consumers[ci]
            .iter()
            .flat_map(|g| group_classes[g.index()].iter().copied())
            .collect();
        let mut dsts: Vec<u32> = providers[ci]
            .iter()
            .flat_map(|g| group_classes[g.index()].iter().copied())
            .collect();
        srcs.sort_unstable();
        srcs.dedup();
        dsts.sort_unstable();
        dsts.dedup();
        for &s in &srcs {
            for &d in &dsts {
                pairs.insert((s, d));
            }
        }
    }
    let mut elements: BTreeMap<Space, Vec<Element>> = BTreeMap::new();
    for &(s, d) in &pairs {
        let src = &classes.sets[s as usize];
        let dst = &classes.sets[d as usize];
        let app = eval::applicable(p, src, dst);
        if app.is_empty() {
            continue;
        }
        for space in Space::ALL {
            let out = elements.entry(space).or_default();
            for (proto, segments) in segments(p, &app, space) {
                let mut last: Option<Element> = None;
                for (lo, hi) in segments {
                    let flow = Flow {
                        proto: proto.unwrap_or(Proto::Other(0)),
                        port: lo,
                    };
                    // Class pairs stand for any packet between their addresses: the kernel
                    // only pairs classes of one packet's family, so both families are open.
                    let both = eval::Families::BOTH;
                    let ends = (eval::End::new(src, both), eval::End::new(dst, both));
                    let Ok(conn) = eval::Conn::new(ends.0, ends.1, flow) else {
                        continue;
                    };
                    let dec = eval::decide_with(p, &app, &conn);
                    let Reason::Subject(m) = dec.reason else {
                        if let Some(e) = last.take() {
                            out.push(e);
                        }
                        continue;
                    };
                    let subj = &p.contract(m.contract).subjects[m.subject];
                    let el = Element {
                        src: s,
                        dst: d,
                        proto,
                        lo,
                        hi,
                        allow: dec.verdict == eval::Verdict::Allow,
                        contract: m.contract,
                        log: subj.log,
                    };
                    match &mut last {
                        Some(prev)
                            if prev.allow == el.allow
                                && prev.contract == el.contract
                                && prev.log == el.log
                                && prev.hi as u32 + 1 == lo as u32 =>
                        {
                            prev.hi = hi
                        }
                        _ => {
                            if let Some(e) = last.replace(el) {
                                out.push(e);
                            }
                        }
                    }
                }
                if let Some(e) = last.take() {
                    out.push(e);
                }
            }
        }
    }
    // Intra-group pairs: both classes share a non-isolated group.
    let mut intra: BTreeSet<(u32, u32)> = BTreeSet::new();
    for (gi, g) in p.groups.iter().enumerate() {
        if g.isolated || g.kind == GroupKind::Any {
            continue;
        }
        let cs = &group_classes[gi];
        for &a in cs {
            for &b in cs {
                intra.insert((a, b));
            }
        }
    }
    let text = render(p, o, &elements, &intra);
    Ok(Lowered { text, warnings })
}

/// The ranges over which the decision between two class sets is constant, per protocol of
/// the key space: the cut points are every edge of every filter entry that applies.
#[allow(clippy::type_complexity)]
fn segments(
    p: &Policy,
    app: &[(ContractId, GroupId, GroupId)],
    space: Space,
) -> Vec<(Option<Proto>, Vec<(u16, u16)>)> {
    let protos: Vec<Option<Proto>> = match space {
        Space::L4 => vec![Some(Proto::Tcp), Some(Proto::Udp), Some(Proto::Sctp)],
        Space::Icmp => vec![Some(Proto::Icmp)],
        Space::Icmp6 => vec![Some(Proto::Icmpv6)],
        Space::Proto => vec![None],
    };
    let mut out = Vec::new();
    for proto in protos {
        let (max, entry_proto) = match proto {
            Some(Proto::Tcp) => (65535u32, Some(EntryProto::Tcp)),
            Some(Proto::Udp) => (65535, Some(EntryProto::Udp)),
            Some(Proto::Sctp) => (65535, Some(EntryProto::Sctp)),
            Some(Proto::Icmp) => (255, Some(EntryProto::Icmp)),
            Some(Proto::Icmpv6) => (255, Some(EntryProto::Icmpv6)),
            _ => (0, None),
        };
        if entry_proto.is_none() {
            // Other protocols: only `ip` entries match, and they match every protocol alike.
            out.push((None, OTHER_PROTO_RANGES.to_vec()));
            continue;
        }
        let mut cuts: BTreeSet<u32> = BTreeSet::new();
        cuts.insert(0);
        let mut relevant = false;
        for &(c, _, _) in app {
            for s in &p.contract(c).subjects {
                for &(f, _) in &s.filters {
                    for e in &p.filter(f).entries {
                        if e.proto == EntryProto::Ip || Some(e.proto) == entry_proto {
                            relevant = true;
                            for &(lo, hi) in &e.ranges {
                                cuts.insert(lo as u32);
                                cuts.insert(hi as u32 + 1);
                            }
                        }
                    }
                }
            }
        }
        if !relevant {
            continue;
        }
        // Only request types can start a connection (eval::can_start): cut around them so
        // that every segment is uniform in that respect too.
        let requests: &[u8] = match proto {
            Some(Proto::Icmp) => eval::ICMP_REQUESTS,
            Some(Proto::Icmpv6) => eval::ICMPV6_REQUESTS,
            _ => &[],
        };
        for &t in requests {
            cuts.insert(t as u32);
            cuts.insert(t as u32 + 1);
        }
        let cuts: Vec<u32> = cuts.into_iter().filter(|&c| c <= max).collect();
        let mut segs = Vec::with_capacity(cuts.len());
        for (i, &lo) in cuts.iter().enumerate() {
            let hi = cuts.get(i + 1).map_or(max, |n| n - 1);
            segs.push((lo as u16, hi as u16));
        }
        out.push((proto, segs));
    }
    out
}

// ---- identifiers ---------------------------------------------------------------------------
//
// nft 1.0.6 takes the names of tables, chains, sets, maps and counters only as bare words (a
// quoted name is a syntax error there): the scanner's `string` token,
// `[A-Za-z_.][A-Za-z0-9/_.-]*`, that is not one of its keywords. Quoted strings are taken in
// comments and as a counter map's data. So the script quotes nothing it need not and maps
// the one identifier built from policy names, a contract's counter, to a bare word (see
// [`counter_name`]); the table name comes from the command line and is checked
// ([`check_table_name`]). The limits: 255 bytes for a name, 128 for a comment.

/// The longest table, chain, set or object name the kernel takes (`NFT_NAME_MAXLEN` 256,
/// with the terminating NUL).
pub const NAME_MAX: usize = 255;
/// The longest comment nft takes (`NFTNL_UDATA_COMMENT_MAXLEN`).
pub const COMMENT_MAX: usize = 128;

/// The words nft reads as keywords where the script names its table. Found by experiment:
/// every word of nft 1.0.6's grammar (`gbpc::synth::NFT_WORDS`) was tried as the table name
/// of a compiled script with `nft -c`; these 153 failed. To them are added the keywords
/// later releases read everywhere (`destroy`, `last`, `tunnel`, `vxlan`, `vni`, `geneve`,
/// `gre`, `gretap`), so that a script stays loadable there. Sorted (binary search).
#[rustfmt::skip]
pub const KEYWORDS: &[&str] = &[
    "accept", "add", "ah", "all", "and", "arp", "auto-merge", "bridge", "cgroup", "chain",
    "comment", "comp", "constant", "continue", "counter", "cpu", "create", "ct", "day", "dccp",
    "define", "delete", "describe", "destroy", "device", "devices", "dnat", "drop", "dst", "dup",
    "dynamic", "ecn", "element", "elements", "eq", "esp", "ether", "exists", "expires", "export",
    "exthdr", "fib", "flags", "flow", "flowtable", "flush", "frag", "fwd", "gc-interval", "ge",
    "geneve", "get", "goto", "gre", "gretap", "gt", "handle", "hbh", "hook", "hour", "ibriport",
    "ibrname", "icmp", "icmpv6", "igmp", "iif", "iifgroup", "iifname", "iiftype", "import",
    "include", "index", "inet", "insert", "interval", "ip", "ip6", "ipsec", "jhash", "jump",
    "last", "le", "limit", "list", "log", "lshift", "lt", "map", "mark", "masquerade", "meta",
    "meter", "mh", "missing", "monitor", "ne", "netdev", "nftrace", "not", "notrack", "numgen",
    "obriport", "obrname", "offload", "oif", "oifgroup", "oifname", "oiftype", "or", "osf",
    "pkttype", "policy", "position", "priority", "queue", "quota", "random", "redefine",
    "redirect", "reject", "rename", "replace", "reset", "return", "rshift", "rt", "rt0", "rt2",
    "rtclassid", "rule", "ruleset", "sctp", "secmark", "set", "size", "skgid", "skuid", "snat",
    "socket", "srh", "symhash", "synproxy", "table", "tcp", "th", "time", "timeout", "tproxy",
    "tunnel", "type", "typeof", "udp", "udplite", "undefine", "update", "vlan", "vmap", "vni",
    "vxlan", "xor", "xt",
];

/// Whether `name` can name the table: a word nft reads as one bare name (the scanner's
/// `string` token, not a keyword) of at most [`NAME_MAX`] bytes. Every such name loads
/// (`tests/nft.rs` tries every word of nft's grammar and random names). `Err` says why not.
pub fn check_table_name(name: &str) -> Result<(), String> {
    let why = if name.is_empty() {
        "an empty table name".to_string()
    } else if name.len() > NAME_MAX {
        format!(
            "the table name is {} bytes long; nftables takes at most {NAME_MAX}",
            name.len()
        )
    } else if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '.') {
        format!(
            "`{name}` is not a usable nftables table name: it must start with a letter, `_` or `.`"
        )
    } else if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')))
    {
        format!(
            "`{name}` is not a usable nftables table name: {c:?} is not a letter, a digit, `_`, `-`, `.` or `/`"
        )
    } else if name == "." {
        "`.` is nft's concatenation operator, not a name".to_string()
    } else if KEYWORDS.binary_search(&name).is_ok() {
        format!("`{name}` is an nftables keyword; nft cannot read it as a table name")
    } else {
        return Ok(());
    };
    Err(why)
}

/// [`check_table_name`] for a command-line parser: the name, or why it is refused.
pub fn parse_table_name(name: &str) -> Result<String, String> {
    check_table_name(name).map(|()| name.to_string())
}

/// The name of a contract's counter: `TENANT/CONTRACT`, which nft reads as one bare word
/// when the tenant starts with a letter; a tenant name that starts with a digit (which nft
/// would read as a number) gets a leading `_`, which no gbpc name has, so the mapping stays
/// one-to-one. At most 128 bytes (two names of 63 and the separators).
pub fn counter_name(tenant: &str, contract: &str) -> String {
    if tenant.starts_with(|c: char| c.is_ascii_alphabetic()) {
        format!("{tenant}/{contract}")
    } else {
        format!("_{tenant}/{contract}")
    }
}

/// The comment of a contract's counter: `contract TENANT/CONTRACT`, `(global)` after a
/// global contract's, cut with `...` to nft's [`COMMENT_MAX`] bytes (the counter's name holds
/// the whole identity).
pub fn counter_comment(tenant: &str, contract: &str, global: bool) -> String {
    let suffix = if global { " (global)" } else { "" };
    let full = format!("contract {tenant}/{contract}{suffix}");
    if full.len() <= COMMENT_MAX {
        return full;
    }
    let mut keep = COMMENT_MAX - suffix.len() - "...".len();
    // Names are ASCII, so this only matters for a caller's odd names.
    while !full.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}...{suffix}", &full[..keep])
}

/// Internal groups that take part in contracts but have no address nftables could see.
fn no_address_warnings(p: &Policy) -> Vec<Diagnostic> {
    let mut has_member_addr = vec![false; p.groups.len()];
    for e in p.endpoints.iter().filter(|e| !e.addrs.is_empty()) {
        for g in &e.groups {
            has_member_addr[g.index()] = true;
        }
    }
    let mut out = Vec::new();
    for (gi, g) in p.groups.iter().enumerate() {
        if g.kind != GroupKind::Internal || !g.nets.is_empty() || has_member_addr[gi] {
            continue;
        }
        if !g.eff_provides.is_empty() || !g.eff_consumes.is_empty() {
            out.push(
                Diagnostic::warning(
                    Code::NftNoAddress,
                    format!(
                        "group `{}` has no addresses; nftables cannot classify its traffic",
                        g.name
                    ),
                )
                .primary(g.name_span, "")
                .help("add `address PREFIX` or declare endpoints with addresses"),
            );
        }
    }
    out
}

/// A contract's counter; the reverse half of `both-ways` subjects counts in its contract's.
fn contract_counter(p: &Policy, c: ContractId) -> String {
    let c = match p.contract(c).origin {
        crate::model::Origin::Reverse(w) => p.contract(w),
        _ => p.contract(c),
    };
    counter_name(&p.tenant(c.tenant).name, &c.name)
}

fn addr_range(family: Family, lo: u128, hi: u128) -> String {
    let cidrs = range_to_cidrs(family, lo, hi);
    if cidrs.len() == 1 {
        let c: Cidr = cidrs[0];
        if c.is_host() {
            return c.ip().to_string();
        }
        return c.to_string();
    }
    format!("{}-{}", addr_to_ip(family, lo), addr_to_ip(family, hi))
}

/// An element's key after the two classes: ` . PROTO . PORTS`, ` . TYPES` or ` . PROTOS`.
fn key_rest(e: &Element) -> String {
    let range = if e.lo == e.hi {
        e.lo.to_string()
    } else {
        format!("{}-{}", e.lo, e.hi)
    };
    match e.proto {
        Some(Proto::Tcp) => format!(" . tcp . {range}"),
        Some(Proto::Udp) => format!(" . udp . {range}"),
        Some(Proto::Sctp) => format!(" . sctp . {range}"),
        _ => format!(" . {range}"),
    }
}

/// An element's key in the mark layout: the two classes' marks, then [`key_rest`].
fn key(e: &Element) -> String {
    format!("0x{:x} . 0x{:x}{}", e.src, e.dst, key_rest(e))
}

/// Elements per `add element` command. nft 1.0.6 (Debian 12) splits a command's elements into
/// netlink messages of about 64 KiB and byte-swaps the host-order fields (marks) of the element
/// that starts each message after the first, so one element in about 960 silently gets a wrong
/// key (found by the kernel sweep: `0x11 . 0xd` loaded as `0x11000000 . 0xd000000`). Commands
/// of at most this many elements (a few KiB at most each) are one message each; all commands of
/// the file are still one atomic transaction.
pub const ELEMENTS_PER_COMMAND: usize = 200;

/// `add element inet TABLE MAP { a, b, ... }` with one element a line, in commands of at most
/// [`ELEMENTS_PER_COMMAND`] elements, or nothing when there are none.
fn elements_block(out: &mut String, table: &str, map: &str, items: impl Iterator<Item = String>) {
    let mut n = 0usize;
    for it in items {
        if n.is_multiple_of(ELEMENTS_PER_COMMAND) {
            if n > 0 {
                out.push_str("\n}\n");
            }
            let _ = writeln!(out, "add element inet {table} {map} {{");
        } else {
            out.push_str(",\n");
        }
        out.push('\t');
        out.push_str(&it);
        n += 1;
    }
    if n > 0 {
        out.push_str("\n}\n");
    }
}

fn render(
    p: &Policy,
    o: &Options,
    elements: &BTreeMap<Space, Vec<Element>>,
    intra: &BTreeSet<(u32, u32)>,
) -> String {
    let mut s = String::new();
    let t = &o.table;
    let _ = writeln!(s, "#!/usr/sbin/nft -f");
    let _ = writeln!(
        s,
        "# Generated by gbpc. Do not edit: change the policy and compile again."
    );
    let _ = writeln!(
        s,
        "# Loading this file replaces table inet {t} atomically and touches nothing else."
    );
    let _ = writeln!(s, "#");
    let _ = writeln!(
        s,
        "{}",
        match o.layout {
            Layout::Marks =>
                "# Address classes (meta mark = source class, ct mark = destination class):",
            Layout::Addresses =>
                "# Address classes (the maps' keys pair the address ranges of two classes):",
        }
    );
    for (ci, set) in p.classes.sets.iter().enumerate() {
        let names: Vec<String> = set
            .iter()
            .filter(|g| p.group(**g).kind != GroupKind::Any)
            .map(|g| p.group_name(*g))
            .collect();
        let names = if names.is_empty() {
            "(no group)".to_string()
        } else {
            names.join(", ")
        };
        let _ = writeln!(s, "#   0x{ci:x}: {names}");
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "table inet {t} {{}}");
    let _ = writeln!(s, "delete table inet {t}");
    let _ = writeln!(s, "table inet {t} {{");
    // Elements, added after the table's declarations (see `ELEMENTS_PER_COMMAND`).
    let mut adds = String::new();
    // Counters, one per contract.
    for (ci, c) in p.contracts.iter().enumerate() {
        if matches!(c.origin, crate::model::Origin::Reverse(_)) {
            continue;
        }
        let tenant = &p.tenant(c.tenant).name;
        let _ = writeln!(
            s,
            "\tcounter {} {{\n\t\tcomment \"{}\"\n\t}}\n",
            contract_counter(p, ContractId(ci as u32)),
            match c.origin {
                crate::model::Origin::Preferred => format!("preferred groups of {tenant}"),
                crate::model::Origin::Unenforced => format!("unenforced tenant {tenant}"),
                _ => counter_comment(tenant, &c.name, c.global),
            }
        );
    }
    match o.layout {
        Layout::Marks => render_marks(&mut s, &mut adds, p, t, elements, intra),
        Layout::Addresses => render_addresses(&mut s, &mut adds, p, t, elements, intra),
    }
    // Neighbour discovery on the endpoint's own link only: a hop limit of 255 cannot have
    // crossed a router, so no endpoint reaches another with these types (the evaluator denies
    // them: they cannot start a connection).
    let nd = "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } ip6 hoplimit 255 accept";
    match o.enforce {
        Enforce::Fabric => {
            let _ = writeln!(s, "\tchain forward {{");
            let _ = writeln!(
                s,
                "\t\ttype filter hook forward priority filter; policy drop;"
            );
            let _ = writeln!(s, "\t\tct state established,related accept");
            let _ = writeln!(s, "\t\tct state invalid drop");
            let _ = writeln!(s, "\t\tjump decide");
            let _ = writeln!(s, "\t}}");
        }
        Enforce::Endpoint => {
            for (chain, lo) in [("input", "iif"), ("output", "oif")] {
                let _ = writeln!(s, "\tchain {chain} {{");
                let _ = writeln!(
                    s,
                    "\t\ttype filter hook {chain} priority filter; policy drop;"
                );
                let _ = writeln!(s, "\t\t{lo} lo accept");
                let _ = writeln!(s, "\t\tct state established,related accept");
                let _ = writeln!(s, "\t\tct state invalid drop");
                let _ = writeln!(s, "\t\t{nd}");
                let _ = writeln!(s, "\t\tjump decide");
                let _ = writeln!(s, "\t}}");
                if chain == "input" {
                    let _ = writeln!(s);
                }
            }
        }
    }
    let _ = writeln!(s, "}}");
    if !adds.is_empty() {
        s.push('\n');
        s.push_str(&adds);
    }
    s
}

/// The mark layout: class maps into `meta mark` and `ct mark`, verdict maps keyed by marks.
fn render_marks(
    s: &mut String,
    adds: &mut String,
    p: &Policy,
    t: &str,
    elements: &BTreeMap<Space, Vec<Element>>,
    intra: &BTreeSet<(u32, u32)>,
) {
    // Class maps.
    for (name, family, ty) in [
        ("class4", Family::V4, "ipv4_addr"),
        ("class6", Family::V6, "ipv6_addr"),
    ] {
        let _ = writeln!(
            s,
            "\tmap {name} {{\n\t\ttype {ty} : mark\n\t\tflags interval"
        );
        elements_block(
            adds,
            t,
            name,
            p.classes
                .table(family)
                .iter()
                .map(|&(lo, hi, c)| format!("{} : 0x{c:x}", addr_range(family, lo, hi))),
        );
        let _ = writeln!(s, "\t}}\n");
    }
    // Intra-group pairs.
    let _ = writeln!(s, "\tset intra {{\n\t\ttype mark . mark");
    elements_block(
        adds,
        t,
        "intra",
        intra.iter().map(|(a, b)| format!("0x{a:x} . 0x{b:x}")),
    );
    let _ = writeln!(s, "\t}}\n");
    // Verdict, counter and log maps per key space.
    let empty = Vec::new();
    for space in Space::ALL {
        let els = elements.get(&space).unwrap_or(&empty);
        let suf = space.suffix();
        let ty = space.key_type();
        let _ = writeln!(
            s,
            "\tmap verdict_{suf} {{\n\t\ttype {ty} : verdict\n\t\tflags interval"
        );
        elements_block(
            adds,
            t,
            &format!("verdict_{suf}"),
            els.iter()
                .map(|e| format!("{} : {}", key(e), if e.allow { "accept" } else { "drop" })),
        );
        let _ = writeln!(s, "\t}}\n");
        let _ = writeln!(
            s,
            "\tmap counter_{suf} {{\n\t\ttype {ty} : counter\n\t\tflags interval"
        );
        elements_block(
            adds,
            t,
            &format!("counter_{suf}"),
            els.iter()
                .map(|e| format!("{} : \"{}\"", key(e), contract_counter(p, e.contract))),
        );
        let _ = writeln!(s, "\t}}\n");
        let _ = writeln!(s, "\tset log_{suf} {{\n\t\ttype {ty}\n\t\tflags interval");
        elements_block(
            adds,
            t,
            &format!("log_{suf}"),
            els.iter().filter(|e| e.log).map(key),
        );
        let _ = writeln!(s, "\t}}\n");
    }
    // The policy chain: classify, log, count, decide.
    let _ = writeln!(s, "\tchain decide {{");
    let _ = writeln!(s, "\t\tmeta mark set ip saddr map @class4");
    let _ = writeln!(s, "\t\tct mark set ip daddr map @class4");
    let _ = writeln!(s, "\t\tmeta mark set ip6 saddr map @class6");
    let _ = writeln!(s, "\t\tct mark set ip6 daddr map @class6");
    for space in Space::ALL {
        let (guard, k) = space.guard_and_key();
        let suf = space.suffix();
        let _ = writeln!(
            s,
            "\t\t{guard}{k} @log_{suf} log prefix \"gbpc \" group {LOG_GROUP}"
        );
    }
    for space in Space::ALL {
        let (guard, k) = space.guard_and_key();
        let suf = space.suffix();
        let _ = writeln!(s, "\t\t{guard}counter name {k} map @counter_{suf}");
    }
    for space in Space::ALL {
        let (guard, k) = space.guard_and_key();
        let suf = space.suffix();
        let _ = writeln!(s, "\t\t{guard}{k} vmap @verdict_{suf}");
    }
    let _ = writeln!(s, "\t\tmeta mark . ct mark @intra counter accept");
    let _ = writeln!(s, "\t\tcounter drop comment \"default deny\"");
    let _ = writeln!(s, "\t}}\n");
}

/// The families of the address layout: suffix, address type, header of the address fields.
const FAMILIES: [(Family, &str, &str, &str); 2] = [
    (Family::V4, "4", "ipv4_addr", "ip"),
    (Family::V6, "6", "ipv6_addr", "ip6"),
];

/// The address layout: every map is keyed by the source and destination addresses, so the
/// chain writes nothing (no mark, no conntrack state). Each class pair's element is repeated
/// for every pair of the two classes' address ranges of a family.
fn render_addresses(
    s: &mut String,
    adds: &mut String,
    p: &Policy,
    t: &str,
    elements: &BTreeMap<Space, Vec<Element>>,
    intra: &BTreeSet<(u32, u32)>,
) {
    let empty = Vec::new();
    for (family, fs, ty, _) in FAMILIES {
        // The address ranges of each class, as nft writes them.
        let mut ranges: Vec<Vec<String>> = vec![Vec::new(); p.classes.sets.len()];
        for &(lo, hi, c) in p.classes.table(family) {
            ranges[c as usize].push(addr_range(family, lo, hi));
        }
        let pairs = |a: u32, b: u32| {
            let (ra, rb) = (&ranges[a as usize], &ranges[b as usize]);
            ra.iter()
                .flat_map(move |x| rb.iter().map(move |y| format!("{x} . {y}")))
        };
        let _ = writeln!(
            s,
            "\tset intra{fs} {{\n\t\ttype {ty} . {ty}\n\t\tflags interval"
        );
        elements_block(
            adds,
            t,
            &format!("intra{fs}"),
            intra.iter().flat_map(|&(a, b)| pairs(a, b)),
        );
        let _ = writeln!(s, "\t}}\n");
        for space in Space::ALL {
            let els = elements.get(&space).unwrap_or(&empty);
            let suf = space.suffix();
            let ty = format!("{ty} . {ty}{}", space.key_rest_type());
            let _ = writeln!(
                s,
                "\tmap verdict{fs}_{suf} {{\n\t\ttype {ty} : verdict\n\t\tflags interval"
            );
            elements_block(
                adds,
                t,
                &format!("verdict{fs}_{suf}"),
                els.iter().flat_map(|e| {
                    let rest = format!(
                        "{} : {}",
                        key_rest(e),
                        if e.allow { "accept" } else { "drop" }
                    );
                    pairs(e.src, e.dst).map(move |k| format!("{k}{rest}"))
                }),
            );
            let _ = writeln!(s, "\t}}\n");
            let _ = writeln!(
                s,
                "\tmap counter{fs}_{suf} {{\n\t\ttype {ty} : counter\n\t\tflags interval"
            );
            elements_block(
                adds,
                t,
                &format!("counter{fs}_{suf}"),
                els.iter().flat_map(|e| {
                    let rest = format!("{} : \"{}\"", key_rest(e), contract_counter(p, e.contract));
                    pairs(e.src, e.dst).map(move |k| format!("{k}{rest}"))
                }),
            );
            let _ = writeln!(s, "\t}}\n");
            let _ = writeln!(
                s,
                "\tset log{fs}_{suf} {{\n\t\ttype {ty}\n\t\tflags interval"
            );
            elements_block(
                adds,
                t,
                &format!("log{fs}_{suf}"),
                els.iter().filter(|e| e.log).flat_map(|e| {
                    let rest = key_rest(e);
                    pairs(e.src, e.dst).map(move |k| format!("{k}{rest}"))
                }),
            );
            let _ = writeln!(s, "\t}}\n");
        }
    }
    // The policy chain: log, count, decide; it reads the packet and writes nothing. What
    // conntrack does not track (neighbour discovery, MLD) is no connection the policy could
    // allow (the evaluator denies it); in the mark layout it fails the `ct mark` lookups.
    let _ = writeln!(s, "\tchain decide {{");
    let _ = writeln!(s, "\t\tct state untracked drop");
    let rules = |s: &mut String, what: &dyn Fn(&str, &str, &str, &str) -> String| {
        for (_, fs, _, hdr) in FAMILIES {
            for space in Space::ALL {
                let (guard, rest) = space.address_guard_and_rest();
                let k = format!("{hdr} saddr . {hdr} daddr{rest}");
                let name = format!("{fs}_{}", space.suffix());
                let _ = writeln!(s, "\t\t{}", what(guard, &k, &name, fs));
            }
        }
    };
    rules(s, &|guard, k, name, _| {
        format!("{guard}{k} @log{name} log prefix \"gbpc \" group {LOG_GROUP}")
    });
    rules(s, &|guard, k, name, _| {
        format!("{guard}counter name {k} map @counter{name}")
    });
    rules(s, &|guard, k, name, _| {
        format!("{guard}{k} vmap @verdict{name}")
    });
    for (_, fs, _, hdr) in FAMILIES {
        let _ = writeln!(s, "\t\t{hdr} saddr . {hdr} daddr @intra{fs} counter accept");
    }
    let _ = writeln!(s, "\t\tcounter drop comment \"default deny\"");
    let _ = writeln!(s, "\t}}\n");
}

/// Counts of what the script holds, for benchmarks and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub rules: usize,
    pub classes: usize,
    pub elements: usize,
}

/// Count rules (lines inside chains that are not declarations) and set elements of a script.
pub fn stats(script: &str) -> Stats {
    let mut st = Stats::default();
    let mut in_chain = false;
    let mut in_elements = false;
    for line in script.lines() {
        let l = line.trim();
        if l.starts_with("chain ") {
            in_chain = true;
            continue;
        }
        if in_chain {
            if l == "}" {
                in_chain = false;
            } else if !l.is_empty() && !l.starts_with("type ") {
                st.rules += 1;
            }
            continue;
        }
        if l.starts_with("add element ") && l.ends_with('{') {
            in_elements = true;
            continue;
        }
        if in_elements {
            if l == "}" {
                in_elements = false;
            } else {
                st.elements += 1;
            }
        }
        if l.starts_with("#   0x") {
            st.classes += 1;
        }
    }
    st
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    fn compile(src: &str) -> String {
        let c = crate::check_source(src);
        assert!(c.ok(), "{:?}", c.errors);
        match lower(&c.policy, &Options::default()) {
            Ok(l) => l.text,
            Err(e) => panic!("{e:?}"),
        }
    }

    /// The default layout writes no packet state; the mark layout writes both marks.
    #[test]
    fn default_layout_leaves_marks_alone() {
        let src = "tenant t { filter web { tcp 80 } contract c { subject a permit web }
               group x { address 198.18.1.0/24, 2001:db8:1::/64 consumes c }
               group y { address 198.18.2.0/24 provides c } }";
        let c = crate::check_source(src);
        assert!(c.ok(), "{:?}", c.errors);
        for enforce in [Enforce::Fabric, Enforce::Endpoint] {
            let text = |layout| match lower(
                &c.policy,
                &Options {
                    enforce,
                    layout,
                    ..Options::default()
                },
            ) {
                Ok(l) => l.text,
                Err(e) => panic!("{e:?}"),
            };
            let addresses = text(Layout::Addresses);
            assert!(!addresses.contains(" set "), "{addresses}");
            assert!(!addresses.contains("mark"), "{addresses}");
            assert!(
                addresses.contains("198.18.1.0/24 . 198.18.2.0/24 . tcp . 80 : accept"),
                "{addresses}"
            );
            let marks = text(Layout::Marks);
            assert!(
                marks.contains("meta mark set ip saddr map @class4"),
                "{marks}"
            );
            assert!(
                marks.contains("ct mark set ip daddr map @class4"),
                "{marks}"
            );
        }
    }

    #[test]
    fn deny_wins_per_segment_and_rules_are_constant() {
        let small = compile(
            "tenant t { filter web { tcp 80-90 } filter ssh { tcp 85 }
               contract c { subject a permit web  subject b deny ssh log }
               group x { select a=x address 198.18.1.0/24 consumes c }
               group y { select a=y address 198.18.2.0/24 provides c } }",
        );
        assert!(small.contains("tcp . 80-84 : accept"), "{small}");
        assert!(small.contains("tcp . 85 : drop"), "{small}");
        assert!(small.contains("tcp . 86-90 : accept"), "{small}");
        let mut big =
            String::from("tenant t { filter web { tcp 80 } contract c { subject a permit web }\n");
        for i in 0..50 {
            big.push_str(&format!(
                "group g{i} {{ select a=g{i} address 198.18.{i}.0/24 consumes c provides c }}\n"
            ));
        }
        big.push('}');
        let big = compile(&big);
        assert_eq!(stats(&small).rules, stats(&big).rules);
    }
}
