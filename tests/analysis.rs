//! Analysis commands: snapshots of explain, query, diff, graph and matrix on every example,
//! diff cases with known changes (and equivalent rewrites that must report none), lint cases
//! (one file each), and checks that every answer agrees with the evaluator.

use std::path::{Path, PathBuf};

use gbpc::analysis::{self, Party, Space};
use gbpc::eval::{self, Flow, Proto, Verdict};
use gbpc::model::{GroupId, Policy};

use crate::cases::{check_output, compile_ok, examples, files, probe_flows, root};

fn snapshot(name: &str, value: &str) {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../snapshots");
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s.bind(|| insta::assert_snapshot!(name, value));
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// Run `f` for every case, collecting failures, so one broken case does not hide the others.
fn each(cases: &[PathBuf], f: impl Fn(&Path)) {
    assert!(!cases.is_empty(), "no cases found");
    let mut failed = Vec::new();
    for c in cases {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(c))).is_err() {
            failed.push(c.display().to_string());
        }
    }
    assert!(failed.is_empty(), "failing cases: {failed:#?}");
}

fn party(a: &gbpc::model::Party) -> Party {
    match a {
        gbpc::model::Party::Endpoint(e) => Party::Endpoint(*e),
        gbpc::model::Party::Address(c) => Party::Address(c.family, c.addr),
    }
}

/// A small deterministic generator (no dependency, same samples every run).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Snapshots of every command on every example. Explain runs on every assertion of the
/// example and must agree with it; diff of an example with itself must be empty.
#[test]
fn commands_on_examples() {
    each(&examples(), |path| {
        let name = stem(path);
        let rel = format!("examples/{name}.gbp");
        let src = read(path);
        let p = compile_ok(&src);
        // explain: every assertion of the example.
        let mut out = String::new();
        for a in &p.asserts {
            let e = analysis::explain::explain(&p, party(&a.from), party(&a.to), a.flow)
                .unwrap_or_else(|e| panic!("{rel}: {e}"));
            let want = match a.expect {
                gbpc::model::Expect::Allow => Verdict::Allow,
                gbpc::model::Expect::Deny => Verdict::Deny,
            };
            assert_eq!(e.decision.verdict, want, "{rel}: {}", a.text);
            out.push_str(&format!("$ assert {}\n", a.text));
            out.push_str(&analysis::explain::text(&e, &rel, &src));
            out.push('\n');
        }
        snapshot(&format!("analysis-explain-{name}"), &out);
        if let Some(a) = p.asserts.first() {
            let e = analysis::explain::explain(&p, party(&a.from), party(&a.to), a.flow)
                .unwrap_or_else(|e| panic!("{rel}: {e}"));
            let j = analysis::explain::json(&e, &p, &rel, &src);
            let v: serde_json::Value = serde_json::from_str(&j).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(v["verdict"], e.decision.verdict.as_str());
        }
        // query: from every group to every group.
        let all = analysis::real_groups(&p);
        let reach = analysis::query::query(&p, &all, &all);
        snapshot(
            &format!("analysis-query-{name}"),
            &analysis::query::text(&p, &reach, &all),
        );
        let j: serde_json::Value =
            serde_json::from_str(&analysis::query::json(&p, &reach)).unwrap_or_default();
        assert!(j.is_array());
        // diff with itself: no change.
        let r = analysis::diff::diff(&p, &compile_ok(&src));
        assert!(r.is_empty(), "{rel}: diff with itself: {r:#?}");
        snapshot(&format!("analysis-diff-{name}"), &analysis::diff::text(&r));
        // graph.
        let dot = analysis::graph::dot(&p);
        validate_dot(&rel, &dot);
        snapshot(&format!("analysis-graph-{name}"), &dot);
        snapshot(
            &format!("analysis-graph-mermaid-{name}"),
            &analysis::graph::mermaid(&p),
        );
        // matrix: the generated policy's 120 x 120 table is too wide to review; its query
        // snapshot and the property test below cover it.
        let m = analysis::matrix::matrix(&p);
        if all.len() <= 20 {
            snapshot(
                &format!("analysis-matrix-{name}"),
                &analysis::matrix::text(&m),
            );
            snapshot(
                &format!("analysis-matrix-csv-{name}"),
                &analysis::matrix::csv(&m),
            );
        }
        let html = analysis::matrix::html(&m, &rel);
        assert!(html.starts_with("<!DOCTYPE html>"));
        for external in ["http://", "https://", "<script", "<link", "src="] {
            assert!(
                !html.contains(external),
                "{rel}: html must be self-contained"
            );
        }
        if name == "three-tier" {
            snapshot(&format!("analysis-matrix-html-{name}"), &html);
        }
    });
}

/// If Graphviz is installed, the DOT output must render.
fn validate_dot(what: &str, dot: &str) {
    let child = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        return; // Graphviz not installed here; CI installs it.
    };
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(dot.as_bytes());
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success() && out.stdout.starts_with(b"<?xml"),
        "{what}: dot -Tsvg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{what}: dot warns: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Flows to sample for a pair: every probe flow of the policy, the edges of the spaces, and
/// pseudo-random ports and types.
fn sample_flows(p: &Policy, rng: &mut Lcg) -> Vec<Flow> {
    let mut flows = probe_flows(p);
    for proto in [Proto::Tcp, Proto::Udp, Proto::Sctp] {
        flows.push(Flow { proto, port: 1 });
        flows.push(Flow { proto, port: 65535 });
        for _ in 0..4 {
            flows.push(Flow {
                proto,
                port: (rng.next() % 65535 + 1) as u16,
            });
        }
    }
    for proto in [Proto::Icmp, Proto::Icmpv6] {
        for t in [0u16, 8, 13, 128, 129, 139, 255] {
            flows.push(Flow { proto, port: t });
        }
        flows.push(Flow {
            proto,
            port: (rng.next() % 256) as u16,
        });
    }
    flows.push(Flow {
        proto: Proto::Other(47),
        port: 0,
    });
    flows.push(Flow {
        proto: Proto::Other(89),
        port: 0,
    });
    flows
}

/// `query` agrees with `eval::decide` on sampled flows for every pair of groups of every
/// example (the generated one: a deterministic sample of pairs).
#[test]
fn query_agrees_with_evaluator() {
    each(&examples(), |path| {
        let p = compile_ok(&read(path));
        let groups = analysis::real_groups(&p);
        let mut rng = Lcg(0x5eed);
        let flows = sample_flows(&p, &mut rng);
        let mut pairs: Vec<(GroupId, GroupId)> = Vec::new();
        for &s in &groups {
            for &d in &groups {
                pairs.push((s, d));
            }
        }
        if pairs.len() > 2000 {
            pairs.retain(|_| rng.next().is_multiple_of(8));
        }
        let mut checked = 0;
        for (s, d) in pairs {
            let reach = analysis::query::query(&p, &[s], &[d]);
            let src = analysis::nominal(&p, s);
            let dst = analysis::nominal(&p, d);
            for f in &flows {
                let both = eval::Families::BOTH;
                let ends = (eval::End::new(&src, both), eval::End::new(&dst, both));
                let conn = eval::Conn::new(ends.0, ends.1, *f).unwrap_or_else(|e| panic!("{e:?}"));
                let want = eval::decide(&p, &conn).verdict == Verdict::Allow;
                let got = reach.first().is_some_and(|r| {
                    analysis::query::allows(r, Space::of_proto(f.proto), f.port as u32)
                });
                assert_eq!(
                    got,
                    want,
                    "{}: {} -> {} {f}",
                    path.display(),
                    p.group_name(s),
                    p.group_name(d)
                );
                checked += 1;
            }
        }
        assert!(checked > 0);
    });
}

/// Diff cases: `tests/diff/<case>/{old,new}.gbp`. Cases named `equivalent-*` are rewrites
/// that must report no change; every other case must report one.
#[test]
fn diff_cases() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("tests/diff"))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    dirs.retain(|d| d.is_dir());
    dirs.sort();
    each(&dirs, |dir| {
        let case = stem(dir);
        let old = compile_ok(&read(&dir.join("old.gbp")));
        let new = compile_ok(&read(&dir.join("new.gbp")));
        let r = analysis::diff::diff(&old, &new);
        if case.starts_with("equivalent") {
            assert!(r.is_empty(), "{case}: an equivalent rewrite: {r:#?}");
        } else {
            assert!(!r.is_empty(), "{case}: a real change must be reported");
        }
        // Symmetric: the reverse diff reports the same flows the other way round.
        let back = analysis::diff::diff(&new, &old);
        assert_eq!(back.flows.len(), r.flows.len(), "{case}: reverse diff");
        assert_eq!(back.is_empty(), r.is_empty());
        let mut out = analysis::diff::text(&r);
        out.push_str("--- json\n");
        out.push_str(&analysis::diff::json(&r));
        snapshot(&format!("diff-{case}"), &out);
    });
}

/// Every diff verdict change is the evaluator's: spot-check each reported range's ends.
#[test]
fn diff_changes_are_evaluator_changes() {
    let dir = root().join("tests/diff/deny-removed");
    let old = compile_ok(&read(&dir.join("old.gbp")));
    let new = compile_ok(&read(&dir.join("new.gbp")));
    let r = analysis::diff::diff(&old, &new);
    assert_eq!(r.flows.len(), 1);
    let c = &r.flows[0];
    assert_eq!((c.from.as_str(), c.to.as_str()), ("shop/web", "shop/app"));
    assert_eq!(c.ranges, vec![(8081, 8081)]);
    let g = |p: &Policy, n: &str| {
        analysis::nominal(
            p,
            analysis::resolve_group(p, n).unwrap_or_else(|e| panic!("{e}")),
        )
    };
    let flow = Flow {
        proto: Proto::Tcp,
        port: 8081,
    };
    let decide = |p: &Policy| {
        let (web, app) = (g(p, "web"), g(p, "app"));
        let both = eval::Families::BOTH;
        let ends = (eval::End::new(&web, both), eval::End::new(&app, both));
        let conn = eval::Conn::new(ends.0, ends.1, flow).unwrap_or_else(|e| panic!("{e:?}"));
        eval::decide(p, &conn).verdict
    };
    assert_eq!(decide(&old), Verdict::Deny);
    assert_eq!(decide(&new), Verdict::Allow);
}

/// Lint cases: each `tests/lint/*.gbp` checks without errors and with the warning it is
/// named after; its `check` output is snapshotted.
#[test]
fn lint_cases() {
    each(&files("tests/lint", "gbp"), |path| {
        let name = stem(path);
        let rel = format!("tests/lint/{name}.gbp");
        let src = read(path);
        let c = gbpc::check_source(&src);
        assert!(c.errors.is_empty(), "{rel}: {:#?}", c.errors);
        assert!(
            c.warnings
                .iter()
                .any(|w| w.code.as_str().starts_with("gbpc::W1")),
            "{rel}: expected a lint warning"
        );
        snapshot(&format!("lint-{name}"), &check_output(&rel, &src));
    });
}

/// The CLI: exit codes of diff (0 equivalent, 1 changed, 2 usage or a broken policy), and the
/// other commands run on an example.
#[test]
fn cli_analysis_commands() {
    let bin = env!("CARGO_BIN_EXE_gbpc");
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(args)
            .current_dir(root())
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let eq = "tests/diff/equivalent-split-contract";
    let ch = "tests/diff/deny-removed";
    let code = |args: &[&str]| run(args).status.code();
    assert_eq!(
        code(&["diff", &format!("{eq}/old.gbp"), &format!("{eq}/new.gbp")]),
        Some(0)
    );
    assert_eq!(
        code(&["diff", &format!("{ch}/old.gbp"), &format!("{ch}/new.gbp")]),
        Some(1)
    );
    assert_eq!(
        code(&["diff", "tests/broken/garbage.gbp", "examples/pci.gbp"]),
        Some(2)
    );
    assert_eq!(
        code(&["diff", "/nonexistent.gbp", "examples/pci.gbp"]),
        Some(2)
    );
    let out = run(&[
        "explain",
        "examples/three-tier.gbp",
        "--from",
        "web1",
        "--to",
        "app2",
        "--port",
        "tcp/8081",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("tcp/8081: deny"), "{text}");
    assert!(text.contains("examples/three-tier.gbp:31:5"), "{text}");
    assert!(text.contains("wins over shop/app-api: api"), "{text}");
    // Groups and addresses as ends; bad names and probes are usage errors.
    assert_eq!(
        code(&[
            "explain",
            "examples/three-tier.gbp",
            "--from",
            "lb",
            "--to",
            "203.0.113.9",
            "--port",
            "tcp/443"
        ]),
        Some(0)
    );
    assert_eq!(
        code(&[
            "explain",
            "examples/three-tier.gbp",
            "--from",
            "nope",
            "--to",
            "db1",
            "--port",
            "tcp/1"
        ]),
        Some(2)
    );
    assert_eq!(
        code(&[
            "explain",
            "examples/three-tier.gbp",
            "--from",
            "web1",
            "--to",
            "db1",
            "--port",
            "tcp/0"
        ]),
        Some(2)
    );
    let q = run(&[
        "query",
        "examples/three-tier.gbp",
        "--from",
        "web",
        "--to",
        "app",
        "--format",
        "json",
    ]);
    assert_eq!(q.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&q.stdout).unwrap_or_default();
    assert_eq!(
        v[0]["ranges"],
        serde_json::json!([[8000, 8080], [8082, 8099]])
    );
    for fmt in ["dot", "mermaid"] {
        assert_eq!(
            code(&["graph", "examples/pci.gbp", "--format", fmt]),
            Some(0)
        );
    }
    for fmt in ["text", "csv", "html"] {
        assert_eq!(
            code(&["matrix", "examples/pci.gbp", "--format", fmt]),
            Some(0)
        );
    }
    assert_eq!(code(&["matrix", "tests/broken/garbage.gbp"]), Some(1));
}

/// Names resolve as documented: endpoints before groups, qualified names, addresses.
#[test]
fn resolve_names() {
    let p = compile_ok(&read(&root().join("examples/multi-tenant.gbp")));
    assert!(matches!(
        analysis::resolve(&p, "web1"),
        Ok(Party::Endpoint(_))
    ));
    assert!(
        analysis::resolve(&p, "db1").is_err(),
        "db1 is in two tenants"
    );
    assert!(matches!(
        analysis::resolve(&p, "blog/db1"),
        Ok(Party::Endpoint(_))
    ));
    assert!(
        analysis::resolve(&p, "db").is_err(),
        "db is a group of two tenants"
    );
    assert!(matches!(
        analysis::resolve(&p, "shop/db"),
        Ok(Party::Group(_))
    ));
    assert!(matches!(
        analysis::resolve(&p, "198.18.10.7"),
        Ok(Party::Address(..))
    ));
    assert!(analysis::resolve(&p, "198.18.10.0/24").is_err());
    assert!(analysis::parse_flow("icmp/echo-request").is_ok());
    assert!(analysis::parse_flow("tcp/70000").is_err());
    assert!(analysis::parse_flow("gre").is_err());
}
