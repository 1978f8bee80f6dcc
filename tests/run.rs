//! `gbpc run`: the pure parts (plan, probe list, comparison, report) against snapshots, and
//! real runs as root: every example passes in both enforcement modes, a dropped permit is
//! caught and named, and nothing of a run is left behind, after a normal end or a SIGKILL.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gbpc::eval::Verdict;
use gbpc::run::wire::{Enforce, Outcome, Results, Timings};
use gbpc::run::{compare, plan, report};

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

fn snapshot(name: &str, value: &str) {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../snapshots");
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s.bind(|| insta::assert_snapshot!(name, value));
}

fn policy(src: &str) -> gbpc::model::Policy {
    let c = gbpc::check_source(src);
    assert!(c.ok(), "{:#?}", c.errors);
    c.policy
}

#[test]
fn plan_of_a_small_policy() {
    let p = policy(SMALL);
    let pl = plan::plan(&p, &plan::Options::default()).unwrap();
    // 4 endpoints, 12 ordered pairs; tcp 79-81 and 40000, udp 52-55 and 40000, echo.
    assert_eq!(pl.probes.len(), 12 * (4 + 5 + 1));
    snapshot("run-plan-small", &pl.describe(usize::MAX));
    let dual = policy(&std::fs::read_to_string("examples/dual-stack.gbp").unwrap());
    let pl = plan::plan(&dual, &plan::Options::default()).unwrap();
    snapshot("run-plan-dual-stack", &pl.describe(24));
}

#[test]
fn plan_sampling_keeps_assertions_and_refuses_unbootable_addresses() {
    let p = policy(SMALL);
    let pl = plan::plan(
        &p,
        &plan::Options {
            max_probes: Some(10),
        },
    )
    .unwrap();
    assert_eq!(pl.total, 120);
    assert!(
        pl.probes.len() >= 10 && pl.probes.len() <= 13,
        "{}",
        pl.probes.len()
    );
    let f = compare::compare(&p, &pl, &vec![Outcome::Timeout; pl.probes.len()]);
    // The sample still has every assertion's probe: none is "not provable".
    assert!(
        f.asserts
            .iter()
            .all(|a| !matches!(a.status, compare::AssertStatus::NotProvable(_))),
        "{:?}",
        f.asserts
    );
    let bad = policy(
        "tenant t { group g { address 169.254.0.0/16 endpoint e 169.254.1.1 } \
         group h { address 198.18.0.0/24 endpoint f 198.18.0.1 } }",
    );
    let e = plan::plan(&bad, &plan::Options::default()).unwrap_err();
    assert!(e.0.contains("link-local"), "{}", e.0);
}

/// The report of the small policy with made-up outcomes: what the evaluator says, except
/// that c1 -> s1 tcp/80 timed out and s1 -> c1 udp/53 got through.
#[test]
fn report_of_made_up_outcomes() {
    let p = policy(SMALL);
    let pl = plan::plan(&p, &plan::Options::default()).unwrap();
    let name = |i: usize| pl.nodes[i].node.host.clone();
    let outcomes: Vec<Outcome> = pl
        .probes
        .iter()
        .map(|pr| {
            let flip =
                (name(pr.src) == "c1" && name(pr.dst) == "s1" && pr.flow.to_string() == "tcp/80")
                    || (name(pr.src) == "s1"
                        && name(pr.dst) == "c1"
                        && pr.flow.to_string() == "udp/53");
            match (pr.expect == Verdict::Allow) != flip {
                true => Outcome::Open,
                false => Outcome::Timeout,
            }
        })
        .collect();
    let f = compare::compare(&p, &pl, &outcomes);
    assert!(!f.ok());
    assert_eq!(f.disagreements.len(), 2);
    let results = Results {
        outcomes: gbpc::run::wire::encode(&outcomes),
        retried: 1,
        counters: Vec::new(),
        timings: Timings {
            boot_ms: 10,
            load_ms: 20,
            probe_ms: 430,
        },
        notes: Vec::new(),
    };
    assert_eq!(gbpc::run::wire::decode(&results.outcomes), outcomes);
    let input = report::Input {
        file: "small.gbp",
        src: SMALL,
        enforce: Enforce::Fabric,
        plan: &pl,
        findings: &f,
        results: &results,
        outcomes: &outcomes,
        total_ms: 500,
        injected: None,
    };
    snapshot("run-report-small", &report::text(&input));
    let json = serde_json::to_string_pretty(&report::json(&input)).unwrap();
    snapshot("run-report-small-json", &json);
}

// ---- real runs (root) ----------------------------------------------------------------------

/// Real runs one at a time: the leftover checks must not see another run's processes.
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

/// What a run could leave behind, seen from outside it.
#[derive(Debug, PartialEq, Eq)]
struct Traces {
    netns: BTreeSet<String>,
    veths: BTreeSet<String>,
    agents: BTreeSet<String>,
    mounts: BTreeSet<String>,
}

fn traces() -> Traces {
    let netns = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                // The nftables tests' own labs, running alongside.
                .filter(|n| !n.starts_with("gbpctest-"))
                .collect()
        })
        .unwrap_or_default();
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let veths = String::from_utf8_lossy(&links.stdout)
        .lines()
        .filter(|l| l.contains("veth"))
        .map(str::to_string)
        .collect();
    let pg = Command::new("pgrep")
        .args(["-af", "run --agent"])
        .output()
        .unwrap();
    let agents = String::from_utf8_lossy(&pg.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    Traces {
        netns,
        veths,
        agents,
        mounts,
    }
}

/// Wait up to 3 s for the traces to be back to `before`.
fn assert_clean(before: &Traces, when: &str) {
    let t = Instant::now();
    loop {
        let now = traces();
        if now == *before {
            return;
        }
        if t.elapsed() > Duration::from_secs(3) {
            panic!("{when}: the run left traces behind:\nbefore {before:#?}\nafter {now:#?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_example_passes_in_both_modes() {
    if !can_run() {
        return;
    }
    let _g = RUNS.lock().unwrap_or_else(|e| e.into_inner());
    let before = traces();
    let mut failed = Vec::new();
    for ex in gbpc_examples() {
        let big = ex.ends_with("large.gbp");
        for mode in ["fabric", "endpoint"] {
            let t = Instant::now();
            let mut args = vec![ex.as_str(), "--enforce", mode];
            // The full matrix of large.gbp is 828,240 probes (about 40 s in a debug build);
            // the test probes an even sample of it plus every assertion.
            if big {
                args.extend(["--max-probes", "60000"]);
            }
            let (code, out, err) = gbpc(&args);
            eprintln!("{ex} --enforce {mode}: exit {code} in {:.1?}", t.elapsed());
            if code != 0 || !out.contains("\nok: every probe agrees") {
                failed.push(format!("{ex} {mode}: exit {code}\n{out}\n{err}"));
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    assert_clean(&before, "after the examples");
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
        let (code, out, err) = gbpc(&[f, "--enforce", mode, "--drop-permit", "t/web"]);
        assert_eq!(code, 1, "{mode}: {out}\n{err}");
        assert!(
            out.contains("fault injected: removed element `0x1 . 0x2 . tcp . 80 : accept`"),
            "{out}"
        );
        for (s, d) in [("c1", "s1"), ("c2", "s2")] {
            assert!(
                out.contains(&format!(
                    "t/{s} -> t/{d} tcp/80 (IPv4): kernel timeout, evaluator allow"
                )),
                "{mode}: {out}"
            );
        }
        assert!(out.contains("FAILS  c1 -> s1 tcp/80"), "{out}");
        // Only the dropped flow disagrees: dns still works.
        assert!(
            out.contains("FAILED: 4 disagreements, 1 failing assertion"),
            "{out}"
        );
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

#[test]
fn nothing_is_left_after_a_run_or_a_sigkill() {
    if !can_run() {
        return;
    }
    let _g = RUNS.lock().unwrap_or_else(|e| e.into_inner());
    let before = traces();
    let ex = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/three-tier.gbp");
    let (code, out, err) = gbpc(&[ex]);
    assert_eq!(code, 0, "{out}{err}");
    assert_clean(&before, "after a run");
    // Kill the run in the middle of probing large.gbp (boot takes about 0.5 s, probing tens
    // of seconds).
    let large = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/large.gbp");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gbpc"))
        .args(["run", large])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    // Wait until the run is under way: its agents exist.
    while traces().agents.is_empty() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !traces().agents.is_empty(),
        "the run never started its agents"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended too early"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_clean(&before, "after a SIGKILL");
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
