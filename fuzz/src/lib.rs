//! Shared helpers of the fuzz targets: a grammar-directed policy generator driven by the fuzz
//! bytes, the invariants every target checks, and the strict Kubernetes schema validators.

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The line-end class and `ip/N` probes (kept apart from the generator below).
pub mod line_ends;

use gbpc::diag::Diagnostic;
use gbpc::lower::{k8s, nft};

/// Reading YAML back as kubectl does: the same code as the tests'.
#[path = "../../tests/yaml_back.rs"]
pub mod yaml_back;

/// The strict Kubernetes schemas: the same loader as the tests'.
#[path = "../../tests/support/schemas.rs"]
pub mod schemas;

/// Reads choices from the fuzz input; once the bytes run out every choice is 0 (the shortest
/// production), so every input yields a finite policy.
pub struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data, pos: 0 }
    }
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    /// A choice in `0..n`.
    fn pick(&mut self, n: usize) -> usize {
        if n <= 1 { 0 } else { self.byte() as usize % n }
    }
    /// True with probability about `k` in 256 (never once the input is used up).
    fn rare(&mut self, k: u8) -> bool {
        !self.done() && self.byte() < k
    }
    fn one<'s>(&mut self, xs: &[&'s str]) -> &'s str {
        xs[self.pick(xs.len())]
    }
}

// Each pool has a hostile name too (digit-first, an nft keyword, a YAML word, a name of a
// fixed Kubernetes object): see `lower_hostile` for the whole class.
const TENANTS: &[&str] = &["t0", "t1", "prod", "t0", "3tier"];
const GROUPS: &[&str] = &["g0", "g1", "g2", "g3", "web", "db", "default-deny"];
const EXTERNALS: &[&str] = &["x0", "x1", "internet"];
const CONTRACTS: &[&str] = &["c0", "c1", "c2", "c3", "dns", "counter"];
const FILTERS: &[&str] = &["f0", "f1", "f2", "f3", "any-ip"];
const ENDPOINTS: &[&str] = &["e0", "e1", "e2", "e3", "e4"];
/// Names the checker must reject or that stress limits.
const ODD_NAMES: &[&str] = &[
    "Bad_Name",
    "a-",
    "-",
    "_",
    "x23456789012345678901234567890123456789012345678901234567890123",
    "tenant",
    "any",
    "0",
    "é",
];
const PORTS: &[&str] = &[
    "80",
    "443",
    "22",
    "53",
    "0",
    "1",
    "65535",
    "65536",
    "99999999999999999999",
    "1000-2000",
    "2000-1000",
    "1-65535",
    "80-80",
    "5432",
    "9999",
    "007",
];
const ICMP: &[&str] = &[
    "echo-request",
    "echo-reply",
    "8",
    "0",
    "255",
    "256",
    "destination-unreachable",
    "bogus",
    "128",
];
const CIDRS: &[&str] = &[
    "198.18.0.0/24",
    "198.18.1.0/24",
    "198.18.0.0/16",
    "198.18.0.0/15",
    "198.18.1.0/30",
    "198.18.1.4/30",
    "198.18.0.128/25",
    "198.19.255.0/24",
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "0.0.0.0/0",
    "2001:db8::/32",
    "2001:db8::/64",
    "2001:db8:1::/48",
    "2001:db8::/127",
    "::/0",
    "198.18.1.1/24",
    "300.1.2.3/40",
    "198.18.1.0/33",
    "::ffff:198.18.0.1/128",
    "1.2.3",
];
const IPS: &[&str] = &[
    "198.18.0.1",
    "198.18.0.2",
    "198.18.1.1",
    "198.18.1.5",
    "198.18.0.129",
    "192.0.2.10",
    "203.0.113.7",
    "2001:db8::1",
    "2001:db8::2",
    "2001:db8:1::5",
    "198.18.0.1/32",
    "198.18.0.0/31",
    "2001:db8::1/128",
    "256.0.0.1",
    "::",
];
const LABEL_KEYS: &[&str] = &["app", "tier", "env", "k8s.io/name", "a", "-bad", "x/y/z"];
const LABEL_VALUES: &[&str] = &[
    "web",
    "db",
    "\"prod\"",
    "",
    "v1.2",
    "\"has space\"",
    "-x",
    "on",
    "0x1F",
];

/// Whitespace, separators and comments between tokens.
fn sep(b: &mut Bytes, out: &mut String) {
    match b.pick(16) {
        0 => out.push('\n'),
        1 => out.push_str(" ; "),
        2 => out.push_str(" # c\n"),
        3 => out.push_str(" // c\n"),
        4 => out.push_str("\r\n"),
        5 => out.push('\t'),
        _ => out.push(' '),
    }
}

fn name(b: &mut Bytes, pool: &[&str]) -> String {
    if b.rare(6) {
        b.one(ODD_NAMES).to_string()
    } else {
        b.one(pool).to_string()
    }
}

/// A reference, sometimes qualified by a tenant.
fn reference(b: &mut Bytes, pool: &[&str]) -> String {
    let n = name(b, pool);
    if b.rare(40) {
        format!("{}/{n}", b.one(TENANTS))
    } else {
        n
    }
}

fn list(b: &mut Bytes, out: &mut String, max: usize, mut item: impl FnMut(&mut Bytes) -> String) {
    let n = 1 + b.pick(max);
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&item(b));
    }
}

fn labels(b: &mut Bytes, out: &mut String) {
    list(b, out, 3, |b| {
        format!("{}={}", b.one(LABEL_KEYS), b.one(LABEL_VALUES))
    });
}

fn filter(b: &mut Bytes, out: &mut String) {
    out.push_str(&format!("filter {} {{", name(b, FILTERS)));
    let n = 1 + b.pick(3);
    for _ in 0..n {
        out.push(' ');
        match b.pick(8) {
            0 => out.push_str("ip"),
            1 | 2 => {
                out.push_str(b.one(&["icmp", "icmpv6"]));
                if b.pick(2) == 0 {
                    out.push(' ');
                    list(b, out, 3, |b| b.one(ICMP).to_string());
                }
            }
            _ => {
                out.push_str(b.one(&["tcp", "udp", "sctp", "tcp"]));
                if b.pick(5) != 0 {
                    out.push(' ');
                    list(b, out, 3, |b| b.one(PORTS).to_string());
                }
            }
        }
        sep(b, out);
    }
    out.push('}');
}

fn contract(b: &mut Bytes, out: &mut String) {
    if b.pick(4) == 0 {
        out.push_str("global ");
    }
    out.push_str(&format!("contract {} {{", name(b, CONTRACTS)));
    let n = b.pick(4);
    for i in 0..n {
        out.push_str(&format!(
            " subject s{} {} ",
            if b.rare(20) { 0 } else { i },
            b.one(&["permit", "permit", "deny"])
        ));
        list(b, out, 2, |b| reference(b, FILTERS));
        if b.rare(20) {
            out.push_str(" both-ways");
        }
        if b.rare(30) {
            out.push_str(" log");
        }
        sep(b, out);
    }
    out.push('}');
}

fn group_body(b: &mut Bytes, out: &mut String, external: bool) {
    let n = b.pick(7);
    for _ in 0..n {
        match b.pick(8) {
            0 if !external => {
                out.push_str("select ");
                labels(b, out);
            }
            1 | 2 => {
                out.push_str("address ");
                out.push_str(b.one(CIDRS));
                if b.pick(4) == 0 {
                    out.push_str(" except ");
                    list(b, out, 2, |b| b.one(CIDRS).to_string());
                } else {
                    for _ in 0..b.pick(3) {
                        out.push_str(", ");
                        out.push_str(b.one(CIDRS));
                    }
                }
            }
            3 | 4 if !external => {
                out.push_str(&format!("endpoint {} ", name(b, ENDPOINTS)));
                list(b, out, 2, |b| b.one(IPS).to_string());
                if b.pick(3) == 0 {
                    out.push_str(" labels ");
                    labels(b, out);
                }
            }
            5 | 3 => {
                out.push_str("provides ");
                list(b, out, 3, |b| reference(b, CONTRACTS));
            }
            _ => {
                out.push_str("consumes ");
                list(b, out, 3, |b| reference(b, CONTRACTS));
            }
        }
        sep(b, out);
    }
}

fn group(b: &mut Bytes, out: &mut String) {
    let external = b.pick(4) == 0;
    if external {
        out.push_str(&format!("external {}", name(b, EXTERNALS)));
    } else {
        out.push_str(&format!("group {}", name(b, GROUPS)));
    }
    for _ in 0..b.pick(3) {
        let m = b.pick(3);
        if m == 0 {
            out.push_str(" isolated");
        } else if m == 1 {
            out.push_str(" preferred");
        } else {
            let pool = if external { EXTERNALS } else { GROUPS };
            out.push_str(&format!(" extends {}", name(b, pool)));
        }
    }
    out.push_str(" {");
    sep(b, out);
    group_body(b, out, external);
    out.push('}');
}

fn any_block(b: &mut Bytes, out: &mut String) {
    out.push_str("any {");
    for _ in 0..b.pick(3) {
        out.push_str(if b.pick(2) == 0 {
            " provides "
        } else {
            " consumes "
        });
        list(b, out, 2, |b| reference(b, CONTRACTS));
        sep(b, out);
    }
    out.push('}');
}

fn target(b: &mut Bytes) -> String {
    match b.pick(4) {
        0 => b.one(IPS).to_string(),
        1 => reference(b, GROUPS),
        _ => reference(b, ENDPOINTS),
    }
}

fn assertion(b: &mut Bytes, out: &mut String) {
    let from = target(b);
    let to = target(b);
    let probe = match b.pick(6) {
        0 => "ip".to_string(),
        1 => format!("{}/{}", b.one(&["icmp", "icmpv6"]), b.one(ICMP)),
        2 => b.one(&["tcp", "udp", "icmp"]).to_string(),
        _ => format!("{}/{}", b.one(&["tcp", "udp", "sctp"]), b.one(PORTS)),
    };
    out.push_str(&format!(
        "assert {from} -> {to} {probe} {}",
        b.one(&["allow", "deny"])
    ));
}

/// Raw noise: a few bytes of the input copied as text, so recovery paths are exercised too.
fn noise(b: &mut Bytes, out: &mut String) {
    const TOKENS: &[&str] = &[
        "{", "}", ";", ",", "/", "->", "=", "\"", "tenant", "group", "contract", "subject", "x",
        "\n", "#", "1", ".", ":",
    ];
    for _ in 0..1 + b.pick(4) {
        out.push_str(b.one(TOKENS));
        out.push(' ');
    }
}

/// A policy text built from the fuzz bytes: mostly well formed, with rare mistakes.
pub fn policy(data: &[u8]) -> String {
    let mut b = Bytes::new(data);
    let mut out = String::new();
    let tenants = 1 + b.pick(2);
    for _ in 0..tenants {
        out.push_str(&format!("tenant {}", name(&mut b, TENANTS)));
        if b.rare(8) {
            out.push_str(" unenforced");
        }
        out.push_str(" {");
        sep(&mut b, &mut out);
        // Each tenant gets a share of the remaining bytes; stop when they run out.
        let mut items = 0;
        while !b.done() && items < 40 {
            items += 1;
            match b.pick(16) {
                0 | 1 | 2 => filter(&mut b, &mut out),
                3 | 4 | 5 => contract(&mut b, &mut out),
                6..=10 => group(&mut b, &mut out),
                11 => any_block(&mut b, &mut out),
                12 | 13 => assertion(&mut b, &mut out),
                14 if b.rare(30) => noise(&mut b, &mut out),
                _ => {
                    if tenants > 1 {
                        break;
                    }
                }
            }
            sep(&mut b, &mut out);
        }
        out.push_str("}\n");
    }
    out
}

/// Every label and fix of every diagnostic points inside the source, on character boundaries.
pub fn check_spans(src: &str, diags: &[Diagnostic]) {
    for d in diags {
        let spans = d
            .labels
            .iter()
            .map(|l| l.span)
            .chain(d.fixes.iter().map(|f| f.span));
        for s in spans {
            assert!(
                s.start <= s.end && s.end <= src.len(),
                "{}: span {}..{} outside a source of {} bytes",
                d.code,
                s.start,
                s.end,
                src.len()
            );
            assert!(
                src.is_char_boundary(s.start) && src.is_char_boundary(s.end),
                "{}: span {}..{} cuts a character",
                d.code,
                s.start,
                s.end
            );
        }
        assert!(!d.message.is_empty(), "{}: empty message", d.code);
    }
}

/// Check a source and run both renderers over its findings; returns the check result.
pub fn check_and_render(src: &str) -> gbpc::model::Checked {
    let checked = gbpc::check_source(src);
    check_spans(src, &checked.errors);
    check_spans(src, &checked.warnings);
    let all = checked.diagnostics();
    let term = gbpc::render::terminal(&all, "fuzz.gbp", src, false);
    let _ = gbpc::render::terminal(&all, "fuzz.gbp", src, true);
    let json = gbpc::render::json(&all, "fuzz.gbp", src);
    // JSON Lines: one object per diagnostic.
    let lines: Vec<&str> = json.lines().collect();
    assert_eq!(
        lines.len(),
        all.len(),
        "render::json: one line per diagnostic"
    );
    for line in lines {
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok(), "render::json line is not JSON: {line}");
    }
    if !all.is_empty() {
        assert!(!term.is_empty(), "terminal rendering of findings is empty");
    }
    checked
}

/// The strict schemas of the repository (compiled once per process).
pub fn schemas() -> &'static schemas::Schemas {
    static S: OnceLock<schemas::Schemas> = OnceLock::new();
    S.get_or_init(|| {
        schemas::Schemas::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas"))
    })
}

/// Every item of a lowered Kubernetes List validates against its kind's schema.
pub fn validate_k8s(src: &str, text: &str) {
    let list: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => panic!("k8s output is not JSON ({e}) for:\n{src}"),
    };
    let s = schemas();
    let items = list["items"].as_array().cloned().unwrap_or_default();
    for it in &items {
        let kind = it["kind"].as_str();
        let Some(v) = kind.and_then(|k| s.of_kind(k)) else {
            panic!("unexpected kind {kind:?}");
        };
        let errors: Vec<String> = v
            .iter_errors(it)
            .chain(s.names.iter_errors(it))
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} {} fails the schema: {}\npolicy:\n{src}\nobject: {it}",
            it["kind"],
            it["metadata"]["name"],
            errors.join("; ")
        );
    }
}

/// The YAML lowering read back as kubectl reads it is the JSON lowering's items.
pub fn yaml_reads_back(src: &str, json: &str, yaml: &str) {
    let list: serde_json::Value = serde_json::from_str(json).expect("JSON output");
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let docs = match yaml_back::read_documents(yaml) {
        Ok(d) => d,
        Err(e) => panic!("the YAML does not read back: {e}\npolicy:\n{src}\nYAML:\n{yaml}"),
    };
    assert_eq!(
        docs.len(),
        items.len(),
        "YAML documents vs JSON items for:\n{src}"
    );
    for (d, i) in docs.iter().zip(&items) {
        assert_eq!(
            d, i,
            "a YAML document reads back different from the JSON:\n{src}"
        );
    }
}

/// `nft -c -f -` on a script: `Err` with nft's message when it is refused. Run in the fuzzer's
/// own network namespace when it has one (`unshare --net cargo fuzz run ...`, one process per
/// check), else each check in a new one (`unshare --net nft`, slower): never in the host's.
/// A script already checked is not checked again.
pub fn nft_check(script: &str) -> Result<(), String> {
    static PRIVATE: OnceLock<bool> = OnceLock::new();
    static SEEN: OnceLock<Mutex<HashSet<u64>>> = OnceLock::new();
    let h = fnv(script.as_bytes());
    let seen = SEEN.get_or_init(Default::default);
    if seen.lock().map(|s| s.contains(&h)).unwrap_or(false) {
        return Ok(());
    }
    let private = *PRIVATE.get_or_init(|| {
        let ns = |p: &str| std::fs::read_link(p).ok();
        let (me, init) = (ns("/proc/self/ns/net"), ns("/proc/1/ns/net"));
        me.is_some() && init.is_some() && me != init
    });
    let mut cmd = if private {
        Command::new("nft")
    } else {
        let mut c = Command::new("unshare");
        c.args(["--net", "nft"]);
        c
    };
    let mut child = cmd
        .args(["-c", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("cannot write to nft: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    if let Ok(mut s) = seen.lock()
        && s.len() < 1_000_000
    {
        s.insert(h);
    }
    Ok(())
}

/// The hostile lowering target (`lower_hostile`): a policy of the name-hostile generator
/// (`gbpc::synth::hostile_policy_from_bytes`, steered by the bytes after the first) must check
/// clean; its nftables scripts (both modes, in a table named by the first byte: `gbpc`, a word
/// of nft's grammar or a variant; a name `check_table_name` refuses falls back to `gbpc`) must
/// pass `nft -c`; its Kubernetes objects (denies as AdminNetworkPolicy, with or without DNS)
/// must pass the strict schemas and the name rules, and the YAML must read back as the JSON.
pub fn lower_hostile(data: &[u8]) {
    let (flags, rest) = data.split_first().map_or((0, data), |(f, r)| (*f, r));
    // The small size (20 endpoints, 2 tenants) keeps the kernel's check and the YAML short;
    // the renderers are the `check` target's business.
    let src = gbpc::synth::hostile_policy_from_bytes(rest, gbpc::synth::Size::SMALL);
    let checked = gbpc::check_source(&src);
    check_spans(&src, &checked.warnings);
    assert!(
        checked.ok(),
        "a hostile generated policy does not check: {:?}\n{src}",
        checked
            .errors
            .iter()
            .map(|d| &d.message)
            .collect::<Vec<_>>()
    );
    let words = gbpc::synth::NFT_WORDS;
    let word = words[usize::from(flags) % words.len()];
    let table = match flags % 8 {
        0..=3 => "gbpc".to_string(),
        4 | 5 => word.to_string(),
        6 => format!("{word}/{}", words[usize::from(flags / 8) % words.len()]),
        _ => format!("_{word}"),
    };
    let table = if nft::check_table_name(&table).is_ok() {
        table
    } else {
        assert!(
            nft::KEYWORDS.binary_search(&table.as_str()).is_ok(),
            "table name `{table}` refused but not a keyword"
        );
        "gbpc".to_string()
    };
    let mut both = String::new();
    for enforce in [nft::Enforce::Fabric, nft::Enforce::Endpoint] {
        let o = nft::Options {
            table: table.clone(),
            enforce,
            layout: if flags & 0x80 != 0 {
                nft::Layout::Marks
            } else {
                nft::Layout::Addresses
            },
        };
        match nft::lower(&checked.policy, &o) {
            Ok(out) => both.push_str(&out.text),
            Err(e) => panic!("nft lowering refused a clean policy: {e:?}\n{src}"),
        }
    }
    // Both scripts in one transaction: each replaces the table, so they check together.
    if let Err(e) = nft_check(&both) {
        panic!("nft -c refuses the script: {e}\npolicy:\n{src}");
    }
    let allow_dns = flags & 0x40 != 0;
    let lower = |format| {
        let o = k8s::Options {
            format,
            deny: k8s::DenyMode::Admin,
            allow_dns,
        };
        match k8s::lower(&checked.policy, &o) {
            Ok(out) => out.text,
            Err(e) => panic!("k8s lowering refused a clean policy: {e:?}\n{src}"),
        }
    };
    let json = lower(k8s::Format::Json);
    validate_k8s(&src, &json);
    yaml_reads_back(&src, &json, &lower(k8s::Format::Yaml));
}

/// Where sampled nftables scripts are saved for a later `nft -c` pass
/// (`GBPC_FUZZ_NFT_DIR`), and how often (`GBPC_FUZZ_NFT_EVERY`, default 200).
pub fn save_nft(src: &str, script: &str) {
    static DIR: OnceLock<Option<(std::path::PathBuf, u64)>> = OnceLock::new();
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let Some((dir, every)) = DIR.get_or_init(|| {
        let dir = std::env::var_os("GBPC_FUZZ_NFT_DIR")?;
        let every = std::env::var("GBPC_FUZZ_NFT_EVERY")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(200u64)
            .max(1);
        std::fs::create_dir_all(&dir).ok()?;
        Some((dir.into(), every))
    }) else {
        return;
    };
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // At most 5,000 files per process: enough for a sample, bounded on disk.
    if n % every != 0 || n / every >= 5000 {
        return;
    }
    let h = fnv(script.as_bytes());
    let _ = std::fs::write(dir.join(format!("{h:016x}.nft")), script);
    let _ = std::fs::write(dir.join(format!("{h:016x}.gbp")), src);
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
    })
}

const GOOD_PORTS: &[&str] = &[
    "80",
    "443",
    "53",
    "1000-2000",
    "1-65535",
    "5432",
    "9999",
    "8080",
];

/// A policy built to check clean (declarations first, unique names, disjoint addresses, no
/// assertions), so the lowering targets spend their time in the backends. Choices still come
/// from the fuzz bytes: filters, subjects (permit/deny/log), isolation, IPv6, externals,
/// `any` blocks, which groups provide and consume which contracts.
pub fn clean_policy(data: &[u8]) -> String {
    let mut b = Bytes::new(data);
    let mut out = String::from("tenant t0 {\n");
    let filters = ["f0", "f1", "f2", "f3"];
    for f in filters {
        out.push_str(&format!("  filter {f} {{"));
        for _ in 0..1 + b.pick(2) {
            match b.pick(6) {
                0 => out.push_str(" ip;"),
                1 => out.push_str(&format!(
                    " {} {};",
                    b.one(&["icmp", "icmpv6"]),
                    b.one(&["echo-request", "8", "destination-unreachable"])
                )),
                _ => {
                    let proto = b.one(&["tcp", "udp", "sctp"]);
                    out.push_str(&format!(" {proto} "));
                    list(&mut b, &mut out, 2, |b| b.one(GOOD_PORTS).to_string());
                    out.push(';');
                }
            }
        }
        out.push_str(" }\n");
    }
    let contracts = ["c0", "c1", "c2", "c3"];
    for c in contracts {
        out.push_str(&format!("  contract {c} {{"));
        for s in 0..1 + b.pick(2) {
            let action = if b.pick(5) == 0 { "deny" } else { "permit" };
            out.push_str(&format!(" subject s{s} {action} {}", b.one(&filters)));
            if b.pick(8) == 0 {
                out.push_str(" log");
            }
            out.push(';');
        }
        out.push_str(" }\n");
    }
    let users = |b: &mut Bytes, out: &mut String| {
        for kw in ["provides", "consumes"] {
            if b.pick(3) != 0 {
                out.push_str(&format!("    {kw} "));
                list(b, out, 3, |b| b.one(&contracts).to_string());
                out.push('\n');
            }
        }
    };
    let groups = 1 + b.pick(5);
    for i in 0..groups {
        let iso = if b.pick(4) == 0 { " isolated" } else { "" };
        let v6 = b.pick(3) == 0;
        out.push_str(&format!("  group g{i}{iso} {{\n    select app=g{i}\n"));
        out.push_str(&format!("    address 198.18.{i}.0/24"));
        if v6 {
            out.push_str(&format!(", 2001:db8:{i}::/64"));
        }
        out.push('\n');
        for k in 0..b.pick(3) {
            out.push_str(&format!("    endpoint e{i}-{k} 198.18.{i}.{}", k + 1));
            if v6 {
                out.push_str(&format!(", 2001:db8:{i}::{}", k + 1));
            }
            out.push('\n');
        }
        users(&mut b, &mut out);
        out.push_str("  }\n");
    }
    for i in 0..b.pick(3) {
        out.push_str(&format!(
            "  external x{i} {{\n    address 203.0.113.{}/28\n",
            16 * i
        ));
        users(&mut b, &mut out);
        out.push_str("  }\n");
    }
    if b.pick(3) == 0 {
        out.push_str("  any {\n");
        users(&mut b, &mut out);
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}

/// The lowering targets' input: half the inputs (bit 2 of the first byte) use
/// [`clean_policy`], the others the general generator [`policy`].
pub fn lowering_input(data: &[u8]) -> String {
    match data.split_first() {
        Some((&b, rest)) if b & 4 == 4 => clean_policy(rest),
        _ => policy(data),
    }
}

/// What both lowering targets start from: the generated source and its checked policy, when
/// it checks without errors (both renderers having run over its findings).
pub fn lowerable(data: &[u8]) -> Option<(String, gbpc::model::Checked)> {
    let src = lowering_input(data);
    let checked = check_and_render(&src);
    checked.ok().then_some((src, checked))
}
