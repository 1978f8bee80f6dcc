//! The formatter (`gbpc::fmt`, `gbpc fmt`): every example is already formatted; formatting is
//! idempotent on the examples and on the messy corpus in `tests/fmt/*.gbp` (each case's output
//! is snapshotted as `fmt-NAME`); it keeps every comment and the meaning (same tree modulo
//! positions, same diagnostics, same nftables and Kubernetes output); CRLF, a byte-order mark
//! and tabs change nothing; a file that does not parse is never formatted; and the command's
//! `--check`, in-place and standard-input modes.

use std::path::{Path, PathBuf};
use std::process::Command;

use gbpc::lower::{k8s, nft};

use crate::support::{each_case, examples, files, read, repo, snapshot, stem};

fn corpus() -> Vec<PathBuf> {
    let v = files("tests/fmt", "gbp");
    assert!(v.len() >= 10, "the messy corpus is tests/fmt/*.gbp");
    v
}

fn all_inputs() -> Vec<PathBuf> {
    let mut v = examples();
    v.extend(corpus());
    v
}

fn fmt(src: &str, what: &str) -> String {
    gbpc::fmt::format(src).unwrap_or_else(|e| panic!("{what}: cannot format: {e:#?}"))
}

/// Run `f` on every case with its text, and report all failures at once.
fn each(cases: &[PathBuf], f: impl Fn(&Path, &str)) {
    each_case(cases, |c| f(c, &read(c)));
}

#[test]
fn examples_are_formatted() {
    each(&examples(), |path, src| {
        let out = fmt(src, &path.display().to_string());
        assert!(
            out == src,
            "{} is not in canonical form: run `gbpc fmt {}`",
            path.display(),
            path.display()
        );
    });
}

#[test]
fn formatting_is_idempotent() {
    each(&all_inputs(), |path, src| {
        let once = fmt(src, &path.display().to_string());
        let twice = fmt(&once, "the formatted text");
        assert_eq!(once, twice, "{}: a second pass changed it", path.display());
    });
}

#[test]
fn messy_corpus_snapshots() {
    each(&corpus(), |path, src| {
        let out = fmt(src, &path.display().to_string());
        assert_ne!(out, src, "{}: a messy case must be messy", path.display());
        snapshot!(&format!("fmt-{}", stem(path)), &out);
    });
}

/// The syntax tree's debug form without positions: what the text means, not where it is.
fn tree_without_spans(src: &str) -> String {
    let parsed = gbpc::syntax::parse(src);
    assert!(parsed.errors.is_empty(), "{:#?}", parsed.errors);
    let text = format!("{:#?}", parsed.file);
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("Span {") {
        out.push_str(&rest[..i]);
        out.push_str("Span");
        let after = &rest[i..];
        let end = after.find('}').map_or(after.len(), |e| e + 1);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Codes, severities and messages of every finding (positions move when text is formatted).
fn findings(checked: &gbpc::model::Checked) -> Vec<String> {
    let mut v: Vec<String> = checked
        .diagnostics()
        .iter()
        .map(|d| format!("{} {:?} {}", d.code, d.severity, d.message))
        .collect();
    v.sort();
    v
}

#[test]
fn meaning_is_kept() {
    each(&all_inputs(), |path, src| {
        let out = fmt(src, &path.display().to_string());
        assert_eq!(
            tree_without_spans(src),
            tree_without_spans(&out),
            "{}: the tree changed",
            path.display()
        );
        let (before, after) = (gbpc::check_source(src), gbpc::check_source(&out));
        assert_eq!(findings(&before), findings(&after), "{}", path.display());
        assert_eq!(before.policy.asserts.len(), after.policy.asserts.len());
        if before.ok() {
            for enforce in [nft::Enforce::Fabric, nft::Enforce::Endpoint] {
                let o = nft::Options {
                    enforce,
                    ..Default::default()
                };
                assert_eq!(
                    nft::lower(&before.policy, &o).map(|l| l.text).ok(),
                    nft::lower(&after.policy, &o).map(|l| l.text).ok(),
                    "{}: nft output changed",
                    path.display()
                );
            }
            let o = k8s::Options::default();
            assert_eq!(
                k8s::lower(&before.policy, &o).map(|l| l.text).ok(),
                k8s::lower(&after.policy, &o).map(|l| l.text).ok(),
                "{}: k8s output changed",
                path.display()
            );
        }
    });
}

/// Comments of the corpus (none of its label values holds `#` or `//`), in order.
fn comments(src: &str) -> Vec<String> {
    src.lines()
        .filter_map(|l| {
            let at = match (l.find('#'), l.find("//")) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b)?,
            };
            Some(l[at..].trim_end().to_string())
        })
        .collect()
}

#[test]
fn every_comment_is_kept_in_order() {
    each(&all_inputs(), |path, src| {
        let out = fmt(src, &path.display().to_string());
        assert_eq!(comments(src), comments(&out), "{}", path.display());
    });
    // A comment keeps its side of each word: trailing ones stay on their line.
    let out = fmt(
        "tenant t { group g { select a=b # one\n provides c # two\n } }",
        "inline",
    );
    assert!(
        out.contains("    select a=b  # one\n    provides c  # two\n"),
        "{out}"
    );
}

#[test]
fn crlf_bom_and_tabs_change_nothing() {
    each(&corpus(), |path, src| {
        let base = fmt(src, &path.display().to_string());
        let lf = src.replace("\r\n", "\n");
        let crlf = lf.replace('\n', "\r\n");
        let bom = format!("\u{FEFF}{lf}");
        let tabs: String = lf
            .lines()
            .map(|l| {
                let body = l.trim_start_matches(' ');
                let n = l.len() - body.len();
                format!("{}{body}\n", "\t".repeat(n.div_ceil(2)))
            })
            .collect();
        for (what, variant) in [("CRLF", crlf), ("BOM", bom), ("tabs", tabs)] {
            assert_eq!(
                fmt(&variant, what),
                base,
                "{}: the {what} variant formats differently",
                path.display()
            );
        }
    });
}

#[test]
fn broken_inputs_are_not_formatted_or_keep_their_findings() {
    // Input that is not UTF-8 is reported by the command before formatting.
    let utf8: Vec<PathBuf> = files("tests/broken", "gbp")
        .into_iter()
        .filter(|p| std::fs::read_to_string(p).is_ok())
        .collect();
    each(&utf8, |path, src| {
        let checked = gbpc::check_source(src);
        let syntax: Vec<_> = checked
            .errors
            .iter()
            .filter(|d| matches!(d.code, gbpc::diag::Code::Syntax | gbpc::diag::Code::LineEnd))
            .cloned()
            .collect();
        match gbpc::fmt::format(src) {
            Err(errors) => {
                assert!(!syntax.is_empty(), "{}: {errors:#?}", path.display());
                assert_eq!(errors, syntax, "{}", path.display());
            }
            Ok(out) => {
                assert!(
                    syntax.is_empty(),
                    "{}: formatted a broken file",
                    path.display()
                );
                assert_eq!(
                    findings(&checked),
                    findings(&gbpc::check_source(&out)),
                    "{}",
                    path.display()
                );
                assert_eq!(fmt(&out, "again"), out, "{}", path.display());
            }
        }
    });
}

#[test]
fn hostile_inputs_do_not_panic() {
    let deep = "tenant t { ".to_string() + &"{".repeat(100_000) + &"}".repeat(100_000) + " }";
    let comments = "tenant t {\n".to_string() + &"# c\n".repeat(50_000) + "}\n";
    let wide = format!(
        "tenant t {{ group g {{ provides {} }} }}",
        vec!["c"; 20_000].join(",")
    );
    let garbage: String = (0..20_000u32)
        .map(|i| char::from_u32(32 + (i * 7919) % 95).unwrap_or('x'))
        .collect();
    for src in [
        deep.as_str(),
        garbage.as_str(),
        "tenant",
        "}}}",
        "tenant t { assert -> }",
    ] {
        assert!(gbpc::fmt::format(src).is_err());
    }
    let out = fmt(&comments, "comments");
    assert_eq!(out.lines().count(), 50_002);
    let out = fmt(&wide, "wide");
    assert!(out.contains("provides c, c, c"));
    assert_eq!(fmt("", "empty"), "");
    assert_eq!(fmt("\u{FEFF}\r\n\t \n", "blank"), "");
}

/// The generator writes canonical text, and `examples/large.gbp` is its output for 120 groups.
#[test]
fn generated_policies_are_formatted() {
    let gen_policy = |n: &str| {
        let out = Command::new("python3")
            .arg(repo().join("scripts/gen-policy.py"))
            .arg(n)
            .output()
            .unwrap_or_else(|e| panic!("cannot run python3 scripts/gen-policy.py: {e}"));
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap_or_default()
    };
    assert_eq!(gen_policy("120"), read(&repo().join("examples/large.gbp")));
    for n in ["1", "2", "11"] {
        let src = gen_policy(n);
        assert_eq!(fmt(&src, n), src, "gen-policy.py {n} is not canonical");
    }
}

#[test]
fn command_check_rewrite_and_stdin() {
    let bin = env!("CARGO_BIN_EXE_gbpc");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run = |args: &[&str], stdin: Option<&str>| {
        use std::io::Write;
        let mut child = Command::new(bin)
            .args(["--color", "never"])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(mut i) = child.stdin.take() {
            let _ = i.write_all(stdin.unwrap_or("").as_bytes());
        }
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let messy_src = read(&repo().join("tests/fmt/indentation.gbp"));
    let canonical = fmt(&messy_src, "indentation");
    let (messy, tidy, broken) = (path("messy.gbp"), path("tidy.gbp"), path("broken.gbp"));
    std::fs::write(&messy, &messy_src).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&tidy, &canonical).unwrap_or_else(|e| panic!("{e}"));
    let broken_src = "tenant t { filter f { tcp 80 80 } }\n";
    std::fs::write(&broken, broken_src).unwrap_or_else(|e| panic!("{e}"));

    // --check: 0 when formatted, 1 with the name and a diff when not; nothing is written.
    assert_eq!(run(&["fmt", "--check", &tidy], None).0, Some(0));
    let (code, stdout, _) = run(&["fmt", "--check", &tidy, &messy], None);
    assert_eq!(code, Some(1));
    assert!(stdout.contains(&format!("Diff in {messy}")), "{stdout}");
    assert!(!stdout.contains(&format!("Diff in {tidy}")), "{stdout}");
    assert!(stdout.contains("\n-filter https{tcp 443}\n"), "{stdout}");
    assert!(
        stdout.contains("\n+  filter https { tcp 443 }\n"),
        "{stdout}"
    );
    assert_eq!(read(Path::new(&messy)), messy_src);

    // A syntax error: rendered like `check` does, exit 1, the file untouched.
    let (code, _, stderr) = run(&["fmt", &broken], None);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("gbpc::E001"), "{stderr}");
    assert_eq!(read(Path::new(&broken)), broken_src);
    assert_eq!(run(&["fmt", "--check", &broken], None).0, Some(1));

    // In place: rewritten, mode kept, no temporary file left; then --check passes.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::Permissions::from_mode(0o640);
        std::fs::set_permissions(&messy, mode).unwrap_or_else(|e| panic!("{e}"));
    }
    let (code, _, stderr) = run(&["fmt", &messy], None);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(read(Path::new(&messy)), canonical);
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(&messy).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    }
    assert_eq!(run(&["fmt", "--check", &messy], None).0, Some(0));
    let entries = std::fs::read_dir(dir.path()).map_or(0, |d| d.count());
    assert_eq!(entries, 3, "no temporary file may be left behind");

    // Through a symbolic link: the file it names is rewritten, the link stays a link.
    let link = path("link.gbp");
    std::fs::write(&messy, &messy_src).unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink(&messy, &link).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run(&["fmt", &link], None).0, Some(0));
    assert!(std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()));
    assert_eq!(read(Path::new(&messy)), canonical);

    // Standard input to standard output.
    let (code, stdout, _) = run(&["fmt", "-"], Some(&messy_src));
    assert_eq!(code, Some(0));
    assert_eq!(stdout, canonical);
    let (code, stdout, _) = run(&["fmt", "--check", "-"], Some(&canonical));
    assert_eq!((code, stdout.as_str()), (Some(0), ""));
    assert_eq!(run(&["fmt", "--check", "-"], Some(&messy_src)).0, Some(1));
    assert_eq!(run(&["fmt", "-"], Some(broken_src)).0, Some(1));

    // Usage and I/O errors: exit 2.
    assert_eq!(run(&["fmt"], None).0, Some(2));
    assert_eq!(run(&["fmt", &path("missing.gbp")], None).0, Some(2));
}

/// Line ends (docs/language.md, "Line ends"): LF and CRLF format alike and the output has only
/// LF; a file with any other line end (the issue: a lone CR that hid a deny in a comment, which
/// `fmt` wrote back) is refused with `E006` and never rewritten, in place or from stdin.
#[test]
fn only_lf_and_crlf_are_line_ends() {
    let lf = "tenant t {\n  filter web { tcp 80 }  # web\n  filter ssh { tcp 22 }\n}\n";
    let crlf = lf.replace('\n', "\r\n");
    assert_eq!(fmt(&crlf, "crlf"), lf);
    for k in ["\r", "\u{0B}", "\u{0C}", "\u{85}", "\u{2028}", "\u{2029}"] {
        // After the comment: the next filter would be comment text to a reader that does not
        // break the line there.
        let at = lf.find("  filter ssh").unwrap_or(0) - 1;
        let src = format!("{}{k}{}", &lf[..at], &lf[at + 1..]);
        let Err(e) = gbpc::fmt::format(&src) else {
            panic!("{k:?}: formatted");
        };
        assert_eq!(e.len(), 1, "{k:?}: {e:#?}");
        assert_eq!(e[0].code, gbpc::diag::Code::LineEnd, "{k:?}");
        assert_eq!(e[0].primary_span().map(|s| s.start), Some(at), "{k:?}");
        assert_eq!(
            e[0].fixes.first().map(|f| f.replacement.as_str()),
            Some("\n")
        );
    }
    let bin = env!("CARGO_BIN_EXE_gbpc");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("cr.gbp");
    let src = read(&repo().join("tests/broken/line-end-lone-cr-hides-a-rule.gbp"));
    std::fs::write(&file, &src).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(bin)
        .args(["--color", "never", "fmt"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gbpc::E006"));
    assert_eq!(read(&file), src);
}
