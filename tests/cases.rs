//! Data-driven cases: every `examples/*.gbp` and every `tests/broken/*.gbp` is a case, with its
//! outputs snapshotted in `snapshots/` (one file per case and output, so a new case is a new
//! file). Evaluator tables in `tests/tables/*.txt` state expected verdicts by hand.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gbpc::eval::{self, Flow, Proto};
use gbpc::lower::{k8s, nft};
use gbpc::model::{EntryProto, Policy};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Files with extension `ext` in `dir` (relative to the crate), sorted.
pub fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == ext))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn examples() -> Vec<PathBuf> {
    files("examples", "gbp")
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
fn each_case(cases: &[PathBuf], f: impl Fn(&Path)) {
    assert!(!cases.is_empty(), "no cases found");
    let mut failed = Vec::new();
    for c in cases {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(c))).is_err() {
            failed.push(c.display().to_string());
        }
    }
    assert!(failed.is_empty(), "failing cases: {failed:#?}");
}

fn snapshot(name: &str, value: &str) {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../snapshots");
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s.bind(|| insta::assert_snapshot!(name, value));
}

/// What `gbpc check` prints for a file, without colour (diagnostics, then the summary).
pub fn check_output(name: &str, src: &str) -> String {
    let checked = gbpc::check_source(src);
    let mut out = gbpc::render::terminal(&checked.diagnostics(), name, src, false);
    out.push_str(&format!(
        "{}\n",
        gbpc::render::summary(checked.errors.len(), checked.warnings.len())
    ));
    out
}

pub fn compile_ok(src: &str) -> Policy {
    let c = gbpc::check_source(src);
    assert!(c.ok(), "policy has errors: {:#?}", c.errors);
    c.policy
}

#[test]
fn examples_check_clean_and_snapshot() {
    each_case(&examples(), |path| {
        let name = stem(path);
        let src = read(path);
        let rel = format!("examples/{name}.gbp");
        let checked = gbpc::check_source(&src);
        assert!(checked.errors.is_empty(), "{rel}: {:#?}", checked.errors);
        assert!(
            checked.warnings.is_empty(),
            "{rel}: examples are warning-free: {:#?}",
            checked.warnings
        );
        assert!(
            !checked.policy.asserts.is_empty(),
            "{rel}: every example carries assertions"
        );
        snapshot(&format!("example-{name}-check"), &check_output(&rel, &src));
        let p = &checked.policy;
        let nft_text = nft::lower(p, &nft::Options::default())
            .map(|l| l.text)
            .unwrap_or_else(|e| panic!("{e:?}"));
        snapshot(&format!("example-{name}-nft"), &nft_text);
        let endpoint = nft::lower(
            p,
            &nft::Options {
                enforce: nft::Enforce::Endpoint,
                ..Default::default()
            },
        )
        .map(|l| l.text)
        .unwrap_or_else(|e| panic!("{e:?}"));
        snapshot(&format!("example-{name}-nft-endpoint"), &endpoint);
        // The default options (denies compiled away) in both formats, and the cluster tier.
        for (fmt, deny, ext) in [
            (k8s::Format::Json, k8s::DenyMode::Subtract, "json"),
            (k8s::Format::Yaml, k8s::DenyMode::Subtract, "yaml"),
            (k8s::Format::Yaml, k8s::DenyMode::Cluster, "cluster-yaml"),
        ] {
            let o = k8s::Options {
                format: fmt,
                deny,
                allow_dns: false,
            };
            let text = k8s::lower_named(p, &o, Some(&format!("{name}.gbp")))
                .map(|l| l.text)
                .unwrap_or_else(|e| panic!("{e:?}"));
            snapshot(&format!("example-{name}-k8s-{ext}"), &text);
        }
        // The full matrix of a generated policy is too long to review; its assertions and the
        // backend cross-checks cover it.
        if p.endpoints.len() <= 40 {
            snapshot(&format!("example-{name}-eval"), &truth_table(p));
        }
    });
}

#[test]
fn broken_inputs_render_diagnostics() {
    each_case(&files("tests/broken", "gbp"), |path| {
        let name = stem(path);
        let bytes = std::fs::read(path).unwrap_or_default();
        let rel = format!("tests/broken/{name}.gbp");
        let out = match gbpc::syntax::decode(&bytes) {
            Ok(src) => check_output(&rel, src),
            Err(d) => {
                let lossy = String::from_utf8_lossy(&bytes).into_owned();
                gbpc::render::terminal(&[d], &rel, &lossy, false)
            }
        };
        assert!(
            out.contains("× ") || out.contains("⚠ "),
            "{rel}: a broken input must produce a diagnostic:\n{out}"
        );
        snapshot(&format!("broken-{name}"), &out);
    });
}

#[test]
fn output_is_deterministic() {
    each_case(&examples(), |path| {
        let src = read(path);
        let a = compile_ok(&src);
        let b = compile_ok(&src);
        let na = nft::lower(&a, &nft::Options::default())
            .map(|l| l.text)
            .ok();
        let nb = nft::lower(&b, &nft::Options::default())
            .map(|l| l.text)
            .ok();
        assert_eq!(na, nb);
        for deny in [k8s::DenyMode::Subtract, k8s::DenyMode::Cluster] {
            let o = k8s::Options {
                deny,
                ..Default::default()
            };
            let (ka, kb) = (k8s::lower(&a, &o), k8s::lower(&b, &o));
            assert!(
                ka.is_ok(),
                "{}: every example compiles for Kubernetes",
                path.display()
            );
            assert_eq!(ka.map(|l| l.text).ok(), kb.map(|l| l.text).ok());
        }
    });
}

/// Every port, ICMP type and protocol the policy's filters name, the ports just outside each
/// range, and one port nothing names.
pub fn probe_flows(p: &Policy) -> Vec<Flow> {
    let mut flows: BTreeSet<Flow> = BTreeSet::new();
    for f in &p.filters {
        for e in &f.entries {
            let proto = match e.proto {
                EntryProto::Tcp => Proto::Tcp,
                EntryProto::Udp => Proto::Udp,
                EntryProto::Sctp => Proto::Sctp,
                EntryProto::Icmp => Proto::Icmp,
                EntryProto::Icmpv6 => Proto::Icmpv6,
                EntryProto::Ip => {
                    flows.insert(Flow {
                        proto: Proto::Other(47),
                        port: 0,
                    });
                    continue;
                }
            };
            if e.ranges.is_empty() {
                flows.insert(Flow {
                    proto,
                    port: if proto.is_icmp() { 8 } else { 1 },
                });
            }
            for &(lo, hi) in &e.ranges {
                flows.insert(Flow { proto, port: lo });
                flows.insert(Flow { proto, port: hi });
                if !proto.is_icmp() {
                    if lo > 1 {
                        flows.insert(Flow {
                            proto,
                            port: lo - 1,
                        });
                    }
                    if hi < 65535 {
                        flows.insert(Flow {
                            proto,
                            port: hi + 1,
                        });
                    }
                }
            }
        }
    }
    flows.insert(Flow {
        proto: Proto::Tcp,
        port: 65001,
    });
    flows.into_iter().collect()
}

/// The evaluator's verdict for every endpoint pair on every probed flow, one line each, with
/// the deciding rule; pairs with no common address family are left out.
fn truth_table(p: &Policy) -> String {
    let mut out = String::new();
    let flows = probe_flows(p);
    for (si, s) in p.endpoints.iter().enumerate() {
        for (di, d) in p.endpoints.iter().enumerate() {
            if si == di {
                continue;
            }
            let common = s
                .addrs
                .iter()
                .any(|a| d.addrs.iter().any(|b| a.family == b.family));
            if !common {
                continue;
            }
            for f in &flows {
                let v4 = s.addrs.iter().any(|a| a.family == gbpc::net::Family::V4)
                    && d.addrs.iter().any(|a| a.family == gbpc::net::Family::V4);
                let v6 = s.addrs.iter().any(|a| a.family == gbpc::net::Family::V6)
                    && d.addrs.iter().any(|a| a.family == gbpc::net::Family::V6);
                if (f.proto == Proto::Icmp && !v4) || (f.proto == Proto::Icmpv6 && !v6) {
                    continue;
                }
                let dec = eval::decide(p, &s.groups, &d.groups, *f);
                let why = match dec.reason {
                    eval::Reason::Subject(m) => format!(
                        "{}:{}",
                        p.contract_name(m.contract),
                        p.contract(m.contract).subjects[m.subject].name
                    ),
                    eval::Reason::IntraGroup(g) => format!("intra {}", p.group_name(g)),
                    eval::Reason::Default => "default".into(),
                    eval::Reason::NotNew => "not a new connection".into(),
                };
                out.push_str(&format!(
                    "{} -> {} {f} {} ({why})\n",
                    p.endpoint_name(gbpc::model::EndpointId(si as u32)),
                    p.endpoint_name(gbpc::model::EndpointId(di as u32)),
                    dec.verdict.as_str(),
                ));
            }
        }
    }
    out
}

/// `tests/tables/NAME.txt`: lines `FROM TO PROBE allow|deny` checked against the evaluator on
/// `examples/NAME.gbp` (endpoint names as `tenant/endpoint` or bare in a one-tenant policy).
#[test]
fn evaluator_tables() {
    each_case(&files("tests/tables", "txt"), |path| {
        let name = stem(path);
        let policy_src = read(&root().join(format!("examples/{name}.gbp")));
        let table = read(path);
        let p = compile_ok(&policy_src);
        let mut wrong = Vec::new();
        let mut rows = 0;
        for (ln, line) in table.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(
                cols.len(),
                4,
                "{}:{}: want FROM TO PROBE VERDICT",
                path.display(),
                ln + 1
            );
            let find = |n: &str| {
                p.endpoints
                    .iter()
                    .position(|e| {
                        e.name == n
                            || p.endpoint_name(gbpc::model::EndpointId(0)).is_empty()
                            || format!("{}/{}", p.tenant(e.tenant).name, e.name) == n
                    })
                    .unwrap_or_else(|| panic!("{}:{}: no endpoint {n}", path.display(), ln + 1))
            };
            let (s, d) = (find(cols[0]), find(cols[1]));
            let flow = parse_probe(cols[2]);
            let dec = eval::decide(&p, &p.endpoints[s].groups, &p.endpoints[d].groups, flow);
            rows += 1;
            if dec.verdict.as_str() != cols[3] {
                wrong.push(format!(
                    "line {}: {line}: evaluator says {} ({})",
                    ln + 1,
                    dec.verdict.as_str(),
                    dec.describe(&p)
                ));
            }
        }
        assert!(rows > 0, "{}: empty table", path.display());
        assert!(
            wrong.is_empty(),
            "{}:\n{}",
            path.display(),
            wrong.join("\n")
        );
    });
}

fn parse_probe(s: &str) -> Flow {
    let (proto, arg) = s.split_once('/').unwrap_or((s, ""));
    let n: u16 = arg.parse().unwrap_or(0);
    let proto = match proto {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        "sctp" => Proto::Sctp,
        "icmp" => Proto::Icmp,
        "icmpv6" => Proto::Icmpv6,
        _ => Proto::Other(n as u8),
    };
    Flow { proto, port: n }
}

#[test]
fn cli_exit_codes_and_atomic_output() {
    let bin = env!("CARGO_BIN_EXE_gbpc");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let good = root().join("examples/three-tier.gbp");
    let out = dir.path().join("out.nft");
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let ok = run(&[
        "compile",
        good.to_str().unwrap_or(""),
        "--target",
        "nft",
        "-o",
        out.to_str().unwrap_or(""),
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let written = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(written.starts_with("#!/usr/sbin/nft -f"));
    // A broken policy: exit 1, and the previous output is untouched, no temporary file left.
    let bad = dir.path().join("bad.gbp");
    std::fs::write(&bad, "tenant t { group g { provides nope } }")
        .unwrap_or_else(|e| panic!("{e}"));
    let r = run(&[
        "compile",
        bad.to_str().unwrap_or(""),
        "--target",
        "nft",
        "-o",
        out.to_str().unwrap_or(""),
    ]);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("gbpc::E010"));
    assert_eq!(std::fs::read_to_string(&out).unwrap_or_default(), written);
    let entries = std::fs::read_dir(dir.path())
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(entries, 2, "no temporary file may be left behind");
    // Usage and I/O errors: exit 2.
    assert_eq!(run(&["compile"]).status.code(), Some(2));
    assert_eq!(run(&["check", "/nonexistent/x.gbp"]).status.code(), Some(2));
    // Standard input.
    let mut child = std::process::Command::new(bin)
        .args(["check", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(read(&good).as_bytes());
    }
    let r = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    // A deny compiles for Kubernetes with the default options; `--k8s-deny error` refuses it
    // with an error naming the deny, never dropping it silently.
    let pci = root().join("examples/pci.gbp");
    let pci = pci.to_str().unwrap_or("");
    let r = run(&["compile", pci, "--target", "k8s"]);
    assert_eq!(r.status.code(), Some(0));
    let r = run(&["compile", pci, "--target", "k8s", "--k8s-deny", "error"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("gbpc::E040"));
}

/// Hostile input meets limits, not panics or stack overflows.
#[test]
fn hostile_inputs_do_not_panic() {
    let deep = "tenant t { ".to_string() + &"{".repeat(100_000) + &"}".repeat(100_000) + " }";
    let long_name = format!("tenant {} {{ }}", "a".repeat(100_000));
    let many_errors =
        "tenant t {\n".to_string() + &"  group g { provides x }\n".repeat(5_000) + "}";
    let garbage: String = (0..20_000u32)
        .map(|i| char::from_u32(32 + (i * 7919) % 95).unwrap_or('x'))
        .collect();
    for src in [
        deep.as_str(),
        long_name.as_str(),
        many_errors.as_str(),
        garbage.as_str(),
        "",
        "tenant",
        "}}}}",
        "tenant t { assert -> }",
    ] {
        let c = gbpc::check_source(src);
        let _ = c.diagnostics();
        let _ = gbpc::render::terminal(
            &c.diagnostics()[..c.diagnostics().len().min(3)],
            "x",
            src,
            false,
        );
    }
    let bytes = b"tenant t { filter f { tcp 80 } }\xff\xfe";
    assert!(gbpc::syntax::decode(bytes).is_err());
}
