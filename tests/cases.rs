//! Data-driven cases: every `examples/*.gbp` and every `tests/broken/*.gbp` is a case, with its
//! outputs snapshotted in `snapshots/` (one file per case and output, so a new case is a new
//! file). Evaluator tables in `tests/tables/*.txt` state expected verdicts by hand.

use std::collections::BTreeSet;
use std::path::PathBuf;

use gbpc::eval::{self, Flow, Proto};
use gbpc::lower::{k8s, nft};
use gbpc::model::{EntryProto, Policy};

use crate::support::{each_case, examples, files, read, repo, snapshot, stem};

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
        snapshot!(&format!("example-{name}-check"), &check_output(&rel, &src));
        let p = &checked.policy;
        let nft_text = nft::lower(p, &nft::Options::default())
            .map(|l| l.text)
            .unwrap_or_else(|e| panic!("{e:?}"));
        snapshot!(&format!("example-{name}-nft"), &nft_text);
        let endpoint = nft::lower(
            p,
            &nft::Options {
                enforce: nft::Enforce::Endpoint,
                ..Default::default()
            },
        )
        .map(|l| l.text)
        .unwrap_or_else(|e| panic!("{e:?}"));
        snapshot!(&format!("example-{name}-nft-endpoint"), &endpoint);
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
            snapshot!(&format!("example-{name}-k8s-{ext}"), &text);
        }
        // The full matrix of a generated policy is too long to review; its assertions and the
        // backend cross-checks cover it.
        if p.endpoints.len() <= 40 {
            snapshot!(&format!("example-{name}-eval"), &truth_table(p));
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
        snapshot!(&format!("broken-{name}"), &out);
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
            for f in &flows {
                // Only flows that can exist: ends of one family, ICMP in IPv4, ICMPv6 in IPv6.
                let Ok(conn) = eval::Conn::new(eval::End::endpoint(s), eval::End::endpoint(d), *f)
                else {
                    continue;
                };
                let dec = eval::decide(p, &conn);
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
        let policy_src = read(&repo().join(format!("examples/{name}.gbp")));
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
            let ends = (
                eval::End::endpoint(&p.endpoints[s]),
                eval::End::endpoint(&p.endpoints[d]),
            );
            let conn = eval::Conn::new(ends.0, ends.1, flow)
                .unwrap_or_else(|x| panic!("{}:{}: {}", path.display(), ln + 1, x.describe()));
            let dec = eval::decide(&p, &conn);
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
    let good = repo().join("examples/three-tier.gbp");
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
    let pci = repo().join("examples/pci.gbp");
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

/// The `[file:line:column]` headers of a terminal rendering, in order.
fn terminal_headers(out: &str) -> Vec<(usize, usize)> {
    out.lines()
        .filter_map(|l| {
            let h = l.split_once("╭─[")?.1.strip_suffix(']')?;
            let mut it = h.rsplitn(3, ':');
            let col = it.next()?.parse().ok()?;
            let line = it.next()?.parse().ok()?;
            Some((line, col))
        })
        .collect()
}

/// One notion of a line end (docs/language.md, "Line ends"), over the whole class: in every
/// example, line ends in turn (a spread of them) are replaced by each character that is not a
/// line end of the language (a lone CR, VT, FF, NEL, U+2028, U+2029; and a lone CR in a file
/// with CRLF line ends). Each variant: exactly one finding, `E006` on that character (the rest
/// of the file is read as an editor shows it, so nothing else changes and no rule is lost in a
/// comment); `fmt` refuses it with that error; the terminal header and the JSON position of
/// the finding agree (one line counting). The CRLF file itself checks clean and formats as the
/// LF file does.
#[test]
fn line_ends_one_rule_everywhere() {
    let stray = ["\r", "\u{0B}", "\u{0C}", "\u{85}", "\u{2028}", "\u{2029}"];
    let cases: Vec<PathBuf> = examples()
        .into_iter()
        .filter(|p| stem(p) != "large")
        .collect();
    each_case(&cases, |path| {
        let lf = read(path);
        let crlf = lf.replace('\n', "\r\n");
        assert!(gbpc::check_source(&crlf).ok(), "{}: CRLF", path.display());
        assert_eq!(
            gbpc::fmt::format(&crlf).ok(),
            gbpc::fmt::format(&lf).ok(),
            "{}",
            path.display()
        );
        let ends: Vec<usize> = lf.match_indices('\n').map(|(i, _)| i).collect();
        let step = (ends.len() / 8).max(1);
        let mut variants: Vec<(String, usize, usize)> = Vec::new();
        for &at in ends.iter().step_by(step) {
            for k in stray {
                if k == "\r" && lf[at + 1..].starts_with('\n') {
                    continue; // that would make a CRLF
                }
                let v = format!("{}{k}{}", &lf[..at], &lf[at + 1..]);
                variants.push((v, at, k.len()));
            }
            // A lone CR among CRLF line ends.
            let n = lf[..at].matches('\n').count();
            let cr_at = at + n;
            let v = format!("{}\r{}", &crlf[..cr_at], &crlf[cr_at + 2..]);
            variants.push((v, cr_at, 1));
        }
        for (v, at, len) in variants {
            let what = format!("{} with {:?} at {at}", path.display(), &v[at..at + len]);
            let checked = gbpc::check_source(&v);
            let diags = checked.diagnostics();
            let found: Vec<(gbpc::diag::Code, Option<gbpc::diag::Span>)> =
                diags.iter().map(|d| (d.code, d.primary_span())).collect();
            assert_eq!(
                found,
                [(
                    gbpc::diag::Code::LineEnd,
                    Some(gbpc::diag::Span::new(at, at + len))
                )],
                "{what}"
            );
            match gbpc::fmt::format(&v) {
                Ok(_) => panic!("{what}: formatted"),
                Err(e) => assert_eq!(e, diags, "{what}"),
            }
            let term = gbpc::render::terminal(&diags, "x.gbp", &v, false);
            let json: serde_json::Value =
                serde_json::from_str(gbpc::render::json(&diags, "x.gbp", &v).trim())
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
            let start = &json["labels"][0]["start"];
            let want = (
                start["line"].as_u64().unwrap_or(0) as usize,
                start["column"].as_u64().unwrap_or(0) as usize,
            );
            assert_eq!(terminal_headers(&term), [want], "{what}:\n{term}");
        }
    });
}

/// `explain`'s ends and flows (issue 11 items 3, 4, 8; issue 10 item 5): a bare name that
/// names an endpoint and groups is an error listing the forms that name each (`endpoint:`,
/// `group:`, `tenant/name`), never the endpoint silently; a flow across address families, or
/// ICMP of the other family, has no verdict; `ip/N` of a protocol with its own form is refused
/// as assertions refuse it; a group with no possible member is answered with a note.
#[test]
fn explain_names_and_flows() {
    use gbpc::analysis::{self, Party};
    let src = "\
tenant t {
  filter http { tcp 80 }
  contract c { subject s permit http }
  group web { address 198.18.1.0/24, 2001:db8:1::/64  endpoint web 198.18.1.10  endpoint w6 2001:db8:1::10  consumes c }
  group app { address 198.18.2.0/24, 2001:db8:2::/64  endpoint app1 198.18.2.10  endpoint app6 2001:db8:2::10  provides c }
  external gone { address 203.0.113.0/24 except 203.0.113.0/25, 203.0.113.128/25  consumes c }
}
tenant u { group web { select app=web } }
";
    let p = compile_ok(src);
    let err = |t: &str| analysis::resolve(&p, t).err().unwrap_or_default();
    let e = err("web");
    for form in ["endpoint:t/web", "group:t/web", "u/web"] {
        assert!(e.contains(form), "{e}");
    }
    let e = err("t/web");
    assert!(
        e.contains("endpoint:t/web") && e.contains("group:t/web"),
        "{e}"
    );
    assert!(err("group:web").contains("t/web, u/web"));
    let group = |t: &str| match analysis::resolve(&p, t) {
        Ok(Party::Group(g)) => p.group_name(g),
        x => panic!("{t}: {x:?}"),
    };
    assert_eq!(group("group:t/web"), "t/web");
    assert_eq!(group("u/web"), "u/web");
    assert_eq!(group("group:u/web"), "u/web");
    let endpoint = |t: &str| match analysis::resolve(&p, t) {
        Ok(Party::Endpoint(e)) => e,
        x => panic!("{t}: {x:?}"),
    };
    let (web, app1, app6) = (
        endpoint("endpoint:web"),
        endpoint("app1"),
        endpoint("t/app6"),
    );
    let flow = |t: &str| analysis::parse_flow(t).unwrap_or_else(|e| panic!("{t}: {e}"));
    // Across families, and ICMP of the other family: no verdict.
    let x = analysis::explain::explain(
        &p,
        Party::Endpoint(web),
        Party::Endpoint(app6),
        flow("tcp/80"),
    );
    assert!(
        x.as_ref()
            .is_err_and(|e| e.contains("IPv4") && e.contains("IPv6")),
        "{x:?}"
    );
    let x = analysis::explain::explain(
        &p,
        Party::Endpoint(web),
        Party::Endpoint(app1),
        flow("icmpv6"),
    );
    assert!(x.as_ref().is_err_and(|e| e.contains("use icmp")), "{x:?}");
    let to_v6 = analysis::resolve(&p, "2001:db8:2::10").unwrap_or_else(|e| panic!("{e}"));
    let from_v4 = analysis::resolve(&p, "198.18.1.10").unwrap_or_else(|e| panic!("{e}"));
    assert!(analysis::explain::explain(&p, from_v4, to_v6, flow("tcp/80")).is_err());
    // A member of a group may have either family; the evaluator agrees on both.
    let g = analysis::resolve(&p, "group:t/web").unwrap_or_else(|e| panic!("{e}"));
    for to in [Party::Endpoint(app1), Party::Endpoint(app6)] {
        let x = analysis::explain::explain(&p, g, to, flow("tcp/80"));
        assert!(x.is_ok_and(|e| e.decision.verdict == eval::Verdict::Allow));
    }
    // `ip/N` means a protocol without a form of its own.
    for (t, want) in [
        ("ip/6", "TCP"),
        ("ip/17", "UDP"),
        ("ip/1", "ICMP"),
        ("ip/58", "ICMPv6"),
        ("ip/132", "SCTP"),
        ("tcp/80-90", "one port"),
        ("tcpp/80", "did you mean `tcp/80`"),
        ("TCP/80", "did you mean `tcp/80`"),
    ] {
        let e = analysis::parse_flow(t).err().unwrap_or_default();
        assert!(e.contains(want), "{t}: {e}");
    }
    assert_eq!(
        flow("ip/47"),
        Flow {
            proto: Proto::Other(47),
            port: 0
        }
    );
    // A group no address can be in: answered, with a note that says so.
    let gone = analysis::resolve(&p, "gone").unwrap_or_else(|e| panic!("{e}"));
    let x = analysis::explain::explain(&p, gone, Party::Endpoint(app1), flow("tcp/80"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        x.notes.iter().any(|n| n.contains("no member")),
        "{:?}",
        x.notes
    );
    let text = analysis::explain::text(&x, "x.gbp", src);
    assert!(text.contains("note: group t/gone has no address"), "{text}");
    // The command: an ambiguous name and a flow across families are usage errors (exit 2).
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("p.gbp");
    std::fs::write(&file, src).unwrap_or_else(|e| panic!("{e}"));
    let run = |from: &str, to: &str, port: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gbpc"))
            .args(["explain", "--from", from, "--to", to, "--port", port])
            .arg(&file)
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let o = run("web", "app1", "tcp/80");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("group:t/web"));
    assert_eq!(run("web1", "app1", "tcp/80").status.code(), Some(2));
    assert_eq!(run("endpoint:web", "app6", "tcp/80").status.code(), Some(2));
    assert_eq!(run("endpoint:web", "app1", "ip/6").status.code(), Some(2));
    let o = run("group:t/web", "app1", "tcp/80");
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("tcp/80: allow"));
}
