//! `gbpc run`: the pure parts (plan, the class proof's cover of every cell, comparison, report)
//! against snapshots and properties, and real runs as root: every example passes in both
//! enforcement modes and both proofs, every kind of flow is proved both ways by crafted
//! packets, a dropped permit is caught and named, a dead agent is an error that names its
//! endpoint, and nothing of a run is left behind, after a normal end or a SIGKILL.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gbpc::eval::Verdict;
use gbpc::net::Family;
use gbpc::run::plan::{self, Plan};
use gbpc::run::wire::{Enforce, Outcome, Results, Timings};
use gbpc::run::{compare, report};

use crate::support::snapshot;

const SMALL: &str = "tenant t {
  filter web { tcp 80 }
  filter dns { udp 53-54 }
  contract web { subject http permit web }
  contract dns { subject query permit dns }
  group clients {
    address 198.18.1.0/24
    endpoint c1 198.18.1.10
    endpoint c2 198.18.1.11
    consumes web, dns
  }
  group servers isolated {
    address 198.18.2.0/24
    endpoint s1 198.18.2.10
    endpoint s2 198.18.2.11
    provides web, dns
  }
  assert c1 -> s1 tcp/80 allow
  assert s1 -> c1 tcp/80 deny
  assert s1 -> s2 udp/53 deny
}
";

/// Every kind of flow the crafted probes carry: SCTP (this kernel has no SCTP sockets), ICMP
/// request types other than echo, a reply type, and a protocol without ports, each allowed
/// one way and denied another.
const KINDS: &str = "tenant t {
  filter any { ip }
  filter sig { sctp 3868; icmp timestamp-request }
  contract open { subject all permit any }
  contract sig { subject s permit sig }
  group a { address 198.18.10.0/24  endpoint a1 198.18.10.1  consumes open }
  group b isolated {
    address 198.18.11.0/24, 2001:db8:11::/64
    endpoint b1 198.18.11.1, 2001:db8:11::1
    provides open, sig
  }
  group c {
    address 198.18.12.0/24, 2001:db8:12::/64
    endpoint c1 198.18.12.1, 2001:db8:12::1
    consumes sig
  }
  assert c1 -> b1 sctp/3868 allow
  assert c1 -> b1 sctp/3869 deny
  assert b1 -> c1 sctp/3868 deny
  assert c1 -> b1 icmp/13 allow
  assert c1 -> b1 icmp/15 deny
  assert b1 -> c1 icmp/13 deny
  assert a1 -> b1 ip/47 allow
  assert c1 -> b1 ip/47 deny
  assert b1 -> a1 ip/47 deny
  assert a1 -> b1 icmp/0 deny
}
";

fn policy(src: &str) -> gbpc::model::Policy {
    let c = gbpc::check_source(src);
    assert!(c.ok(), "{:#?}", c.errors);
    c.policy
}

fn plan_of(p: &gbpc::model::Policy, exhaustive: bool) -> Plan {
    plan::plan(
        p,
        &plan::Options {
            max_probes: None,
            exhaustive,
        },
    )
    .unwrap()
}

fn example(name: &str) -> String {
    std::fs::read_to_string(format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn plan_of_a_small_policy() {
    let p = policy(SMALL);
    let ex = plan_of(&p, true);
    // 4 endpoints, 12 ordered pairs; tcp 0 79-81 40000 65535, udp 0 52-55 40000 65535, echo.
    assert_eq!(ex.flows[0].len(), 6 + 7 + 1);
    assert_eq!(ex.total, 12 * 14);
    assert_eq!(ex.probes.len(), ex.total);
    let cl = plan_of(&p, false);
    assert_eq!(cl.total, ex.total);
    assert!(cl.probes.len() < ex.probes.len(), "{}", cl.probes.len());
    snapshot!("run-plan-small", &cl.describe(usize::MAX));
    let dual = policy(&example("dual-stack.gbp"));
    snapshot!("run-plan-dual-stack", &plan_of(&dual, false).describe(24));
}

/// Every address the kernel would not route between namespaces, or that the fabric uses, is
/// refused when the run is planned (exit 2 before anything starts), with the reason.
#[test]
fn plan_refuses_every_unbootable_address() {
    let refused = [
        ("127.0.0.5", "loopback"),
        ("169.254.7.1", "link-local"),
        ("224.0.0.9", "multicast"),
        ("239.1.2.3", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("0.1.2.3", "0.0.0.0/8"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::7", "link-local"),
        ("febf::1", "link-local"),
        ("ff02::1", "multicast"),
        ("::ffff:203.0.113.5", "IPv4-mapped"),
        ("::ffff:198.18.0.1", "IPv4-mapped"),
        ("::203.0.113.5", "IPv4-compatible"),
        ("::0.0.0.2", "IPv4-compatible"),
    ];
    for (addr, why) in refused {
        let ip: std::net::IpAddr = addr.parse().unwrap();
        let got = plan::unbootable(ip);
        assert!(got.is_some_and(|w| w.contains(why)), "{addr}: {got:?}");
    }
    // The whole IPv4-mapped and IPv4-compatible spaces, sampled.
    for k in 0..2000u32 {
        let v4 = std::net::Ipv4Addr::from(k.wrapping_mul(2_654_435_761));
        assert!(
            plan::unbootable(v4.to_ipv6_mapped().into()).is_some(),
            "{v4}"
        );
        if !v4.is_unspecified() && v4 != std::net::Ipv4Addr::new(0, 0, 0, 1) {
            #[allow(deprecated)]
            let compat = v4.to_ipv6_compatible();
            assert!(plan::unbootable(compat.into()).is_some(), "{compat}");
        }
    }
    // The documentation ranges boot.
    for ok in [
        "198.18.0.1",
        "198.19.255.254",
        "192.0.2.1",
        "198.51.100.7",
        "203.0.113.5",
        "2001:db8::1",
        "2001:db8:ffff::7",
    ] {
        assert_eq!(plan::unbootable(ok.parse().unwrap()), None, "{ok}");
    }
    // Through the plan, as the policy has it.
    let mapped = policy(
        "tenant t { group g { address 2001:db8::/64 endpoint e 2001:db8::1 } \
         external x { address ::ffff:203.0.113.0/120 endpoint m ::ffff:203.0.113.5 } }",
    );
    let e = plan::plan(&mapped, &plan::Options::default()).unwrap_err();
    assert!(
        e.0.contains("`t/m`") && e.0.contains("IPv4-mapped"),
        "{}",
        e.0
    );
}

#[test]
fn plan_sampling_keeps_assertions() {
    let p = policy(SMALL);
    let pl = plan::plan(
        &p,
        &plan::Options {
            max_probes: Some(10),
            exhaustive: true,
        },
    )
    .unwrap();
    assert_eq!(pl.planned, 12 * 14);
    assert!(
        pl.probes.len() >= 10 && pl.probes.len() <= 13,
        "{}",
        pl.probes.len()
    );
    let f = compare::compare(
        &p,
        &pl,
        &vec![Outcome::Timeout; pl.probes.len()],
        compare::Kernel::default(),
    );
    // The sample still has every assertion's probe: none is "not planned".
    assert!(
        f.asserts
            .iter()
            .all(|a| !matches!(a.status, compare::AssertStatus::NotProvable(_))),
        "{:?}",
        f.asserts
    );
}

/// The class proof, on the evaluator's side: every cell of the exhaustive tables is covered by
/// probes of the class plan, and every one of them expects what the cell expects (the ranges
/// and classes the plan relies on are ones where the evaluator cannot change its answer). On
/// every example and on generated policies.
#[test]
fn the_class_plan_covers_every_cell_with_the_evaluators_verdict() {
    let mut sources: Vec<(String, String)> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "gbp"))
            .map(|p| {
                (
                    p.display().to_string(),
                    std::fs::read_to_string(&p).unwrap(),
                )
            })
            .collect();
    sources.sort();
    for seed in 1..=40 {
        sources.push((
            format!("synth {seed}"),
            gbpc::synth::policy(seed, gbpc::synth::Size::DEFAULT),
        ));
    }
    sources.push(("kinds".into(), KINDS.into()));
    let mut cells = 0usize;
    for (name, src) in &sources {
        let p = policy(src);
        let ex = plan_of(&p, true);
        let cl = plan_of(&p, false);
        assert_eq!(ex.flows, cl.flows, "{name}");
        assert!(
            cl.probes.len() <= ex.probes.len().max(1) + p.asserts.len() * 2,
            "{name}"
        );
        let n = ex.nodes.len();
        for (f, family) in [Family::V4, Family::V6].into_iter().enumerate() {
            for a in 0..n {
                for b in 0..n {
                    if a == b {
                        continue;
                    }
                    let want = ex.pair_cells(family, a, b);
                    let got = cl.pair_cells(family, a, b);
                    for (fi, w) in want.iter().enumerate() {
                        let flow = ex.flows[f][fi];
                        let expect = w.first().map(|&k| ex.probes[k as usize].expect);
                        let covers: Vec<Verdict> = got[fi]
                            .iter()
                            .map(|&k| cl.probes[k as usize].expect)
                            .collect();
                        match expect {
                            None => assert!(covers.is_empty(), "{name} {a}->{b} {flow}"),
                            Some(e) => {
                                cells += 1;
                                assert!(
                                    !covers.is_empty() && covers.iter().all(|c| *c == e),
                                    "{name}: {} -> {} {flow} ({}): exhaustive {e:?}, classes {covers:?}",
                                    ex.nodes[a].name,
                                    ex.nodes[b].name,
                                    family.as_str()
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(cells > 100_000, "{cells}");
}

/// Made-up outcomes for a plan: what the evaluator says, except the flows `flip` names.
fn made_up(pl: &Plan, flip: impl Fn(&str, &str, &str, Family) -> bool) -> Vec<Outcome> {
    let host = |i: u32| pl.nodes[i as usize].node.host.clone();
    pl.probes
        .iter()
        .map(|pr| {
            let f = flip(
                &host(pr.src),
                &host(pr.dst),
                &pr.flow.to_string(),
                pr.family,
            );
            match (pr.expect == Verdict::Allow) != f {
                true => Outcome::Open,
                false => Outcome::Timeout,
            }
        })
        .collect()
}

fn results_for(pl: &Plan, outcomes: &[Outcome]) -> Results {
    Results {
        outcomes: gbpc::run::wire::encode(outcomes),
        retried: 1,
        counters: Vec::new(),
        timings: Timings {
            boot_ms: 10,
            wire_ms: 5,
            load_ms: 20,
            classify_ms: 1,
            probe_ms: 430,
        },
        notes: Vec::new(),
        classes: (0..pl.nodes.len())
            .map(|i| [pl.classes[0][i], pl.classes[1][i]])
            .collect(),
        class_mismatches: Vec::new(),
    }
}

struct Made {
    p: gbpc::model::Policy,
    pl: Plan,
    outcomes: Vec<Outcome>,
    findings: compare::Findings,
    results: Results,
}

fn make(src: &str, exhaustive: bool, flip: impl Fn(&str, &str, &str, Family) -> bool) -> Made {
    let p = policy(src);
    let pl = plan_of(&p, exhaustive);
    let outcomes = made_up(&pl, flip);
    let results = results_for(&pl, &outcomes);
    let findings = compare::compare(
        &p,
        &pl,
        &outcomes,
        compare::Kernel {
            classes: &results.classes,
            table_mismatches: &[],
        },
    );
    Made {
        p,
        pl,
        outcomes,
        findings,
        results,
    }
}

fn input<'a>(m: &'a Made, file: &'a str, src: &'a str) -> report::Input<'a> {
    report::Input {
        file,
        src,
        policy: &m.p,
        enforce: Enforce::Fabric,
        plan: &m.pl,
        findings: &m.findings,
        results: &m.results,
        outcomes: &m.outcomes,
        plan_ms: 3,
        total_ms: 500,
        injected: None,
    }
}

/// The report of the small policy with made-up outcomes: what the evaluator says, except
/// that c1 -> s1 tcp/80 timed out and s1 -> c1 tcp/0 got through (the probe that stands for
/// every flow from the servers' class to the clients').
#[test]
fn report_of_made_up_outcomes() {
    let m = make(SMALL, false, |s, d, f, _| {
        (s == "c1" && d == "s1" && f == "tcp/80") || (s == "s1" && d == "c1" && f == "tcp/0")
    });
    assert!(!m.findings.ok());
    assert_eq!(m.findings.disagreements.len(), 2);
    assert_eq!(gbpc::run::wire::decode(&m.results.outcomes), m.outcomes);
    let i = input(&m, "small.gbp", SMALL);
    snapshot!("run-report-small", &report::text(&i));
    snapshot!("run-report-small-json", &report::json_text(&i));
}

/// IPv4 and IPv6 have their own tables: a pair whose IPv4 echo is denied while its IPv6 echo
/// passes shows `x` in the IPv4 table and `+` in the IPv6 one (they once shared a cell).
#[test]
fn ipv4_and_ipv6_have_their_own_tables() {
    let src = example("dual-stack.gbp");
    let probe = make(&src, true, |_, _, _, _| false);
    // A pair of dual-stack endpoints whose echo the evaluator allows in both families.
    let (a, b) =
        (0..probe.pl.nodes.len())
            .flat_map(|a| (0..probe.pl.nodes.len()).map(move |b| (a, b)))
            .find(|&(a, b)| {
                a != b
                    && [Family::V4, Family::V6].iter().all(|&f| {
                        let fi = probe.pl.flows[usize::from(f == Family::V6)]
                            .iter()
                            .position(|x| *x == plan::echo(f));
                        fi.is_some_and(|fi| {
                            probe.pl.covering(f, a, b, fi).first().is_some_and(|&k| {
                                probe.pl.probes[k as usize].expect == Verdict::Allow
                            })
                        })
                    })
            })
            .expect("dual-stack.gbp has a dual-stack pair that may ping");
    let (ha, hb) = (
        probe.pl.nodes[a].node.host.clone(),
        probe.pl.nodes[b].node.host.clone(),
    );
    let m = make(&src, true, |s, d, f, fam| {
        s == ha && d == hb && f == "icmp/8" && fam == Family::V4
    });
    let i = input(&m, "dual-stack.gbp", &src);
    let text = report::text(&i);
    assert!(text.contains("\nIPv4 truth tables"), "{text}");
    assert!(text.contains("\nIPv6 truth tables"), "{text}");
    let cell = |fam: Family, flow: &str| -> char {
        let (names, rows) = report::tables(&i, fam)
            .into_iter()
            .find(|(names, _)| names.iter().any(|n| n == flow))
            .unwrap_or_else(|| panic!("no {flow} table"));
        assert!(names.iter().any(|n| n == flow));
        rows[a].chars().nth(b).unwrap()
    };
    assert_eq!(cell(Family::V4, "icmp/8"), 'x', "{text}");
    assert_eq!(cell(Family::V6, "icmpv6/128"), '+', "{text}");
}

/// Another tool can recompute every table of the JSON report from its per-probe rows (as
/// docs/run.md says how), in both proofs, with disagreements in them.
#[test]
fn the_json_cells_recompute_the_tables() {
    let src = example("dual-stack.gbp");
    for exhaustive in [true, false] {
        let m = make(&src, exhaustive, |s, _, f, _| {
            f == "udp/0" || (f == "tcp/5060" && s.contains('1'))
        });
        assert!(!m.findings.disagreements.is_empty());
        let v: serde_json::Value =
            serde_json::from_str(&report::json_text(&input(&m, "d.gbp", &src))).unwrap();
        let fields: Vec<&str> = v["cells"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        for want in [
            "source",
            "destination",
            "family",
            "protocol",
            "port",
            "expected",
            "observed",
            "rule",
        ] {
            assert!(fields.contains(&want), "{fields:?}");
        }
        let col = |name: &str| fields.iter().position(|f| *f == name).unwrap();
        let rows = v["cells"]["rows"].as_array().unwrap();
        assert_eq!(rows.len(), m.pl.probes.len());
        let rules = v["cells"]["rules"].as_array().unwrap();
        let endpoints = v["endpoints"].as_array().unwrap();
        let n = endpoints.len();
        for fam in ["ipv4", "ipv6"] {
            let key_of = |e: usize| endpoints[e]["class_key"][fam].clone();
            let has = |e: usize| !endpoints[e][fam].is_null();
            let flows: Vec<String> = v["flows"][fam]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect();
            for t in v["tables"][fam].as_array().unwrap() {
                for flow in t["flows"].as_array().unwrap() {
                    let flow = flow.as_str().unwrap();
                    assert!(flows.iter().any(|f| f == flow));
                    let (proto, port) = match flow.split_once('/') {
                        Some(("ip", _)) => (flow.to_string(), None),
                        Some((p, n)) => (p.to_string(), n.parse::<i64>().ok()),
                        None => (flow.to_string(), None),
                    };
                    for a in 0..n {
                        let row = t["rows"][a].as_str().unwrap();
                        for b in 0..n {
                            let shown = row.chars().nth(b).unwrap();
                            if a == b || !has(a) || !has(b) {
                                assert_eq!(shown, ' ');
                                continue;
                            }
                            // The rows that stand for this cell.
                            let mine = |r: &&serde_json::Value| {
                                r[col("family")] == fam && r[col("protocol")] == proto.as_str()
                            };
                            let exact: Vec<&serde_json::Value> = rows
                                .iter()
                                .filter(mine)
                                .filter(|r| {
                                    r[col("source")] == a + 1
                                        && r[col("destination")] == b + 1
                                        && r[col("port")].as_i64() == port
                                        && r[col("covers")] == "exact"
                                })
                                .collect();
                            let cover: Vec<&serde_json::Value> = if exhaustive {
                                exact
                            } else {
                                let same = |r: &&serde_json::Value| {
                                    r[col("source_class")] == key_of(a)
                                        && r[col("destination_class")] == key_of(b)
                                };
                                let ranged: Vec<&serde_json::Value> = rows
                                    .iter()
                                    .filter(mine)
                                    .filter(|r| same(r))
                                    .filter(|r| {
                                        let c = &r[col("covers")];
                                        let v = port.unwrap_or_else(|| {
                                            proto[3..].parse::<i64>().unwrap_or(0)
                                        });
                                        c.is_array()
                                            && c[0].as_i64().unwrap() <= v
                                            && v <= c[1].as_i64().unwrap()
                                    })
                                    .collect();
                                let mut all = exact;
                                if ranged.is_empty() {
                                    let kind = gbpc::run::plan::track(
                                        m.pl.flows[usize::from(fam == "ipv6")]
                                            [flows.iter().position(|f| f == flow).unwrap()],
                                    );
                                    let tag = format!("rest:{}", kind.as_str());
                                    all.extend(rows.iter().filter(|r| {
                                        r[col("family")] == fam
                                            && same(r)
                                            && r[col("covers")] == tag.as_str()
                                    }));
                                } else {
                                    all.extend(ranged);
                                }
                                all
                            };
                            assert!(!cover.is_empty(), "{fam} {flow} {a}->{b}");
                            // The mark, from the rows alone.
                            let mark = cover
                                .iter()
                                .map(|r| {
                                    let agrees = r[col("agrees")].as_bool().unwrap();
                                    let allow = r[col("expected")] == "allow";
                                    let open = r[col("observed")] == "open";
                                    match (agrees, allow, open) {
                                        (true, true, _) => ('+', 3),
                                        (true, false, _) => ('.', 2),
                                        (false, _, true) => ('!', 6),
                                        (false, _, false) => ('x', 5),
                                    }
                                })
                                .max_by_key(|x| x.1)
                                .unwrap()
                                .0;
                            assert_eq!(shown, mark, "{fam} {flow} {a}->{b}");
                            for r in &cover {
                                assert!(
                                    rules[r[col("rule")].as_u64().unwrap() as usize]["rule"]
                                        .is_string()
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

// ---- real runs (root) ----------------------------------------------------------------------

/// Real runs one at a time in this test binary.
pub static RUNS: Mutex<()> = Mutex::new(());

/// Root, namespaces and nftables, or the test skips with one line (`tests/support.rs`).
fn can_run() -> bool {
    crate::support::kernel_ready()
}

fn gbpc(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gbpc"))
        .arg("run")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn spawn_run(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gbpc"))
        .arg("run")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The processes of the run started by process `caller` (every process of a run carries
/// `--run-id CALLER-...` in its command line): (pid, arguments).
fn run_processes(caller: u32) -> Vec<(u32, Vec<String>)> {
    let mark = format!("{caller}-");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args
            .windows(2)
            .any(|w| w[0] == "--run-id" && w[1].starts_with(&mark))
        {
            out.push((pid, args));
        }
    }
    out
}

fn net_ns(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|p| p.display().to_string())
}

/// Whatever still holds one of the namespaces `ns` open (a process in it, a descriptor, a
/// mount), and any mount a run makes that is visible here.
fn holders(ns: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if net_ns(pid).is_some_and(|n| ns.contains(&n)) {
            out.push(format!("process {pid} is in a namespace of the run"));
        }
        if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            for fd in fds.filter_map(|f| f.ok()) {
                if let Ok(t) = std::fs::read_link(fd.path())
                    && ns.contains(&t.display().to_string())
                {
                    out.push(format!("process {pid} holds {}", t.display()));
                }
            }
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for l in mounts.lines() {
        if l.contains("gbpc-root") || ns.iter().any(|n| l.contains(n.as_str())) {
            out.push(format!("mount: {l}"));
        }
    }
    out
}

/// Wait up to 5 s until nothing of the run of `caller` is left: no process, no namespace.
fn assert_gone(caller: u32, ns: &BTreeSet<String>, when: &str) {
    let t = Instant::now();
    loop {
        let procs = run_processes(caller);
        let held = holders(ns);
        if procs.is_empty() && held.is_empty() {
            return;
        }
        if t.elapsed() > Duration::from_secs(5) {
            panic!("{when}: the run left traces behind:\n{procs:#?}\n{held:#?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Wait until the run of `child` has all its `agents` running; its namespaces.
fn wait_for_agents(child: &mut Child, agents: usize) -> BTreeSet<String> {
    let t = Instant::now();
    loop {
        let procs = run_processes(child.id());
        // Agents make their own namespaces once started: wait until they are in as many
        // distinct ones (a new agent is in its parent's namespace for a moment).
        // (an agent still in the fabric's namespace does not count yet).
        let fabric: BTreeSet<String> = procs
            .iter()
            .filter(|(_, a)| a.iter().any(|x| x == "fabric"))
            .filter_map(|(pid, _)| net_ns(*pid))
            .collect();
        let agent_ns: BTreeSet<String> = procs
            .iter()
            .filter(|(_, a)| a.iter().any(|x| x == "endpoint"))
            .filter_map(|(pid, _)| net_ns(*pid))
            .filter(|ns| !fabric.contains(ns))
            .collect();
        if agent_ns.len() >= agents {
            return procs.iter().filter_map(|(pid, _)| net_ns(*pid)).collect();
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its agents were up"
        );
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the run never started its agents"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn gbpc_examples() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().display().to_string())
        .filter(|p| p.ends_with(".gbp"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_example_passes_in_both_modes() {
    if !can_run() {
        return;
    }
    let _g = RUNS.lock().unwrap_or_else(|e| e.into_inner());
    let mut failed = Vec::new();
    for ex in gbpc_examples() {
        let big = ex.ends_with("large.gbp");
        for mode in ["fabric", "endpoint"] {
            for proof in ["classes", "exhaustive"] {
                let t = Instant::now();
                let mut args = vec![ex.as_str(), "--enforce", mode];
                if proof == "exhaustive" {
                    args.push("--exhaustive");
                    // The full matrix of large.gbp is 885,360 probes; the test probes an even
                    // sample of it plus every assertion.
                    if big {
                        args.extend(["--max-probes", "60000"]);
                    }
                }
                let (code, out, err) = gbpc(&args);
                eprintln!(
                    "{ex} --enforce {mode} ({proof}): exit {code} in {:.1?}",
                    t.elapsed()
                );
                if code != 0 || !out.contains("\nok: every probe agrees") {
                    failed.push(format!("{ex} {mode} {proof}: exit {code}\n{out}\n{err}"));
                }
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn a_dropped_permit_is_caught_and_named() {
    if !can_run() {
        return;
    }
    let _g = RUNS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("small.gbp");
    std::fs::write(&f, SMALL).unwrap();
    let f = f.to_str().unwrap();
    let (code, out, err) = gbpc(&[f]);
    assert_eq!(code, 0, "{out}\n{err}");
    for mode in ["fabric", "endpoint"] {
        for proof in ["--exhaustive", "--max-probes=1000000"] {
            let (code, out, err) = gbpc(&[f, "--enforce", mode, proof, "--drop-permit", "t/web"]);
            assert_eq!(code, 1, "{mode}: {out}\n{err}");
            assert!(
                out.contains("fault injected: removed element `0x1 . 0x2 . tcp . 80 : accept`"),
                "{out}"
            );
            // Dropped on the way (fabric), or refused by the sender's own output hook.
            let seen = if mode == "fabric" {
                "timeout"
            } else {
                "blocked"
            };
            assert!(
                out.contains(&format!(
                    "t/c1 -> t/s1 tcp/80 (IPv4): kernel {seen}, evaluator allow"
                )),
                "{mode} {proof}: {out}"
            );
            assert!(out.contains("FAILS  c1 -> s1 tcp/80"), "{out}");
            assert!(out.contains("1 failing assertion"), "{out}");
            // Only the dropped flow disagrees: dns still works.
            assert!(!out.contains("udp/53 (IPv4): kernel"), "{out}");
        }
        let (code, out, _) = gbpc(&[
            f,
            "--enforce",
            mode,
            "--drop-permit",
            "t/web",
            "--format",
            "json",
        ]);
        assert_eq!(code, 1);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["disagreements"][0]["flow"], "tcp/80");
        assert_eq!(v["disagreements"][0]["span"]["line"], 4);
    }
}

/// SCTP (no SCTP sockets in this kernel), ICMP request types other than echo, a reply type and
/// a protocol without ports are proved by crafted packets, allowed and denied: every assertion
/// holds, none is "not proved"; with the permit removed from the ruleset, the allowed one
/// fails in the kernel.
#[test]
fn crafted_probes_prove_every_kind_of_flow_both_ways() {
    if !can_run() {
        return;
    }
    let _g = RUNS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("kinds.gbp");
    std::fs::write(&f, KINDS).unwrap();
    let f = f.to_str().unwrap();
    for mode in ["fabric", "endpoint"] {
        for proof in ["--exhaustive", "--timeout-ms=400"] {
            let (code, out, err) = gbpc(&[f, "--enforce", mode, proof, "--format", "json"]);
            assert_eq!(code, 0, "{mode} {proof}: {out}\n{err}");
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            let asserts = v["assertions"].as_array().unwrap();
            assert_eq!(asserts.len(), 10);
            for a in asserts {
                assert_eq!(a["status"], "holds", "{mode} {proof}: {a}");
            }
            // The flows were probed, not skipped.
            let rows = v["cells"]["rows"].as_array().unwrap();
            for proto in ["sctp", "icmp", "ip/47"] {
                assert!(
                    rows.iter().any(|r| r[3] == proto && r[6] == "open")
                        && rows
                            .iter()
                            .any(|r| r[3] == proto && (r[6] == "timeout" || r[6] == "blocked")),
                    "{mode} {proof}: {proto} not seen both ways"
                );
            }
        }
    }
    // With its permit gone, each allowed kind fails in the kernel.
    for (drop, fails) in [
        ("t/sig@l4", "c1 -> b1 sctp/3868 at"),
        ("t/sig@icmp", "c1 -> b1 icmp/13 at"),
        ("t/open@proto:47", "a1 -> b1 ip/47 at"),
    ] {
        let (code, out, err) = gbpc(&[f, "--drop-permit", drop]);
        assert_eq!(code, 1, "{drop}: {out}\n{err}");
        assert!(out.contains(&format!("FAILS  {fails}")), "{drop}: {out}");
    }
}

/// An agent killed during a run: exit 2, naming the endpoint, and no results (it used to be
/// "2 disagreements, kernel refused", exit 1, blaming the rules).
#[test]
fn a_dead_agent_is_exit_2_naming_its_endpoint() {
    if !can_run() {
        return;
    }
    let _g = RUNS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("small.gbp");
    std::fs::write(&f, SMALL).unwrap();
    for mode in ["fabric", "endpoint"] {
        // A long grace period: the run is still probing when the agent dies.
        let mut child = spawn_run(&[
            f.to_str().unwrap(),
            "--enforce",
            mode,
            "--timeout-ms",
            "10000",
        ]);
        let caller = child.id();
        let ns = wait_for_agents(&mut child, 4);
        std::thread::sleep(Duration::from_millis(1500));
        let victim = run_processes(child.id())
            .into_iter()
            .find(|(_, a)| a.last().is_some_and(|x| x == "t/s1"))
            .expect("the agent of t/s1");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(victim.0 as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let t = Instant::now();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{mode}: {err}");
        assert!(
            err.contains("endpoint `t/s1`") && err.contains("died"),
            "{mode}: {err}"
        );
        assert!(out.stdout.is_empty(), "{mode}: no results");
        // It stops at once, not after the 10 s grace period.
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert_gone(caller, &ns, "after an agent died");
    }
}

/// An IPv4-mapped IPv6 endpoint is refused when the run is planned (it used to pass and then
/// fail with "the fabric is broken ... does not answer").
#[test]
fn an_ipv4_mapped_endpoint_is_refused_at_plan() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mapped.gbp");
    std::fs::write(
        &f,
        "tenant t { group g { address 2001:db8::/64 endpoint e 2001:db8::1 } \
         external x { address ::ffff:203.0.113.0/120 endpoint m ::ffff:203.0.113.5 } }",
    )
    .unwrap();
    let t = Instant::now();
    let (code, out, err) = gbpc(&[f.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("cannot run (plan)") && err.contains("IPv4-mapped") && err.contains("t/m"),
        "{err}"
    );
    assert!(!err.contains("fabric is broken"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5));
}

/// Nothing of a run is left, after a normal end or a SIGKILL of `gbpc run` in the middle: no
/// process of the run (found by the run id in their command lines), nothing holding the
/// network namespaces it made, no mount of its own. Only this test's own run is looked at:
/// other runs on the machine do not disturb it.
#[test]
fn nothing_is_left_after_a_run_or_a_sigkill() {
    if !can_run() {
        return;
    }
    let _g = RUNS.lock().unwrap_or_else(|e| e.into_inner());
    let ex = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/three-tier.gbp");
    let mut child = spawn_run(&[ex, "--timeout-ms", "1500"]);
    let caller = child.id();
    let ns = wait_for_agents(&mut child, 9);
    // The fabric's namespace and every agent's.
    assert!(ns.len() >= 10, "{ns:?}");
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_gone(caller, &ns, "after a run");
    // Kill the run while it probes large.gbp (a long grace period keeps it probing).
    let large = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/large.gbp");
    let mut child = spawn_run(&[large, "--timeout-ms", "10000"]);
    let caller = child.id();
    let ns = wait_for_agents(&mut child, 120);
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended too early"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_gone(caller, &ns, "after a SIGKILL");
}

/// No endpoint waits on address resolution: the fabric's neighbour entries for the endpoints
/// are permanent (a first ARP request lost while a new link came up used to cost a one-second
/// retransmission in about one run in three).
#[test]
fn the_fabric_resolves_no_neighbour() {
    if !can_run() {
        return;
    }
    let _g = RUNS.lock().unwrap_or_else(|e| e.into_inner());
    let ex = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/dual-stack.gbp");
    let mut child = spawn_run(&[ex, "--timeout-ms", "3000"]);
    wait_for_agents(&mut child, 7);
    let fabric = run_processes(child.id())
        .into_iter()
        .find(|(_, a)| a.iter().any(|x| x == "fabric"))
        .expect("the fabric");
    let neigh = |family: &str| {
        let out = Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", fabric.0))
            .args(["ip", family, "neigh", "show"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Wait until the wiring is done (every endpoint has its entries), then look at them.
    let t = Instant::now();
    let (v4, v6) = loop {
        let (v4, v6) = (neigh("-4"), neigh("-6"));
        let n4 = v4
            .lines()
            .filter(|l| l.contains("198.18.") || l.contains("203.0.113."))
            .count();
        if n4 >= 7 || t.elapsed() > Duration::from_secs(20) {
            break (v4, v6);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let endpoints: Vec<&str> = v4
        .lines()
        .chain(v6.lines().filter(|l| l.starts_with("2001:db8:")))
        .collect();
    assert_eq!(endpoints.len(), 14, "{v4}\n{v6}");
    for l in endpoints {
        assert!(l.trim_end().ends_with("PERMANENT"), "{l}");
    }
}

/// With per-endpoint enforcement, `nft` loads the script once and every other endpoint gets a
/// copy of the kernel's objects: every endpoint's table lists exactly like the first one's.
#[test]
fn every_endpoint_table_is_the_loaded_one() {
    if !can_run() {
        return;
    }
    let _g = RUNS.lock().unwrap_or_else(|e| e.into_inner());
    let ex = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/dual-stack.gbp");
    let mut child = spawn_run(&[ex, "--enforce", "endpoint", "--timeout-ms", "10000"]);
    wait_for_agents(&mut child, 7);
    let agents: Vec<u32> = run_processes(child.id())
        .into_iter()
        .filter(|(_, a)| a.iter().any(|x| x == "endpoint"))
        .map(|(pid, _)| pid)
        .collect();
    let list = |pid: u32| {
        let out = Command::new("nsenter")
            .arg(format!("--net=/proc/{pid}/ns/net"))
            .args(["nft", "list", "table", "inet", "gbpc"])
            .output()
            .unwrap();
        // Counters count each endpoint's own traffic.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| match l.find("packets ") {
                Some(k) => l[..k].to_string(),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    // Wait until every table is there (the run loads them after booting).
    let t = Instant::now();
    let tables = loop {
        let tables: Vec<String> = agents.iter().map(|&p| list(p)).collect();
        if tables.iter().all(|t| t.contains("chain decide"))
            || t.elapsed() > Duration::from_secs(20)
        {
            break tables;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(tables.len(), 7);
    assert!(tables[0].contains("map verdict_l4"), "{}", tables[0]);
    for t in &tables[1..] {
        assert_eq!(t, &tables[0]);
    }
}

#[test]
fn cannot_run_is_exit_2() {
    if !can_run() {
        return;
    }
    // A policy whose endpoints cannot be booted: a plan error, before anything starts.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("one.gbp");
    std::fs::write(
        &f,
        "tenant t { group g { address 198.18.0.0/24 endpoint e 198.18.0.1 } }",
    )
    .unwrap();
    let (code, _, err) = gbpc(&[f.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("fewer than two endpoints"), "{err}");
    // Without `nft` on PATH.
    let out = Command::new(env!("CARGO_BIN_EXE_gbpc"))
        .args(["run", f.to_str().unwrap()])
        .env("PATH", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`nft` command is not on PATH"));
}
