//! The command line as users meet it: where output goes (`-o` and `fmt` never destroy or
//! misdirect a file), failing output streams (exit 2, never a panic), empty policies (W006,
//! E005), flags that do not apply to the target (usage errors), and the colour decision.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{code, repo, stderr};

const BIN: &str = env!("CARGO_BIN_EXE_gbpc");

/// How gbpc's standard streams are set up for one run.
enum Io {
    Piped,
    File(File),
    /// A pipe whose reading end is closed before gbpc starts: every write is EPIPE.
    BrokenPipe,
}

impl Io {
    fn stdio(self) -> Stdio {
        match self {
            Io::Piped => Stdio::piped(),
            Io::File(f) => Stdio::from(f),
            Io::BrokenPipe => {
                let (r, w) = nix::unistd::pipe().unwrap();
                drop(r);
                Stdio::from(w)
            }
        }
    }
}

/// Run gbpc in `dir` with the given streams; stdin from `stdin` (a file) or empty. A run that
/// takes more than a minute (a FIFO nobody opens, say) is killed and fails the test.
fn gbpc_io<S: AsRef<OsStr>>(
    dir: &Path,
    args: &[S],
    stdin: Option<File>,
    stdout: Io,
    stderr: Io,
) -> Output {
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env_remove("GBPC_REQUIRE_ROOT_TESTS")
        .stdin(stdin.map_or_else(Stdio::null, Stdio::from))
        .stdout(stdout.stdio())
        .stderr(stderr.stdio())
        .spawn()
        .unwrap();
    // Read the pipes while waiting (a large output would otherwise fill them).
    let out = child.stdout.take();
    let err = child.stderr.take();
    let reader = |p: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut p) = p {
                let _ = p.read_to_end(&mut v);
            }
            v
        })
    };
    let out_t = reader(out.map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err_t = reader(err.map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gbpc {:?} did not finish in a minute", args_text(args));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

fn args_text<S: AsRef<OsStr>>(args: &[S]) -> String {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn gbpc<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Output {
    gbpc_io(dir, args, None, Io::Piped, Io::Piped)
}

/// A scratch directory with the three-tier example as `x.gbp`. `in_target`: under the target
/// directory (device nodes need a file system mounted without `nodev`; /tmp may be).
fn scratch(in_target: bool) -> (tempfile::TempDir, Vec<u8>) {
    let dir = if in_target {
        tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let src = fs::read(repo().join("examples/three-tier.gbp")).unwrap();
    fs::write(dir.path().join("x.gbp"), &src).unwrap();
    (dir, src)
}

/// The nftables script of x.gbp, as written to standard output.
fn script(dir: &Path) -> Vec<u8> {
    let o = gbpc(dir, &["compile", "x.gbp", "--target", "nft"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    o.stdout
}

/// No temporary file of gbpc's is left in `dir`.
fn no_temporaries(dir: &Path) {
    let left: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".gbpc-") || n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
}

fn compile_to(dir: &Path, out: &str) -> Output {
    gbpc(dir, &["compile", "x.gbp", "--target", "nft", "-o", out])
}

// ---- 1. -o and fmt never destroy or misdirect ----------------------------------------------

/// Device nodes made here (never the machine's own): written in place, never replaced; a full
/// device is exit 2 with a message; `fmt` refuses to rewrite one.
#[test]
fn output_to_a_device_node_writes_it_in_place() {
    if !crate::support::root() {
        return;
    }
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    let (dir, _) = scratch(true);
    let d = dir.path();
    let mode = Mode::from_bits_truncate(0o666);
    mknod(&d.join("null"), SFlag::S_IFCHR, mode, makedev(1, 3)).unwrap();
    mknod(&d.join("full"), SFlag::S_IFCHR, mode, makedev(1, 7)).unwrap();
    std::os::unix::fs::symlink("null", d.join("to-null")).unwrap();
    let is_device = |name: &str, minor: u64| {
        let m = fs::symlink_metadata(d.join(name)).unwrap();
        assert!(
            m.file_type().is_char_device() && m.rdev() == makedev(1, minor),
            "{name} is no longer the device node it was: {:?}",
            m.file_type()
        );
    };
    for out in ["null", "to-null", "./null"] {
        let o = compile_to(d, out);
        assert_eq!(code(&o), 0, "-o {out}: {}", stderr(&o));
        is_device("null", 3);
    }
    assert!(
        fs::symlink_metadata(d.join("to-null"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let o = compile_to(d, "full");
    assert_eq!(code(&o), 2, "-o full");
    assert!(
        stderr(&o).contains("No space left on device"),
        "{}",
        stderr(&o)
    );
    is_device("full", 7);
    // fmt rewrites files in place: a device is refused before anything is read or written.
    let o = gbpc(d, &["fmt", "null"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    is_device("null", 3);
    no_temporaries(d);
}

/// A FIFO is opened and written (what `-o fifo` means), never replaced by a regular file; `fmt`
/// refuses it without waiting for a writer.
#[test]
fn output_to_a_fifo_writes_it_in_place() {
    let (dir, _) = scratch(false);
    let d = dir.path();
    let fifo = d.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // fmt first, with no writer: opening the FIFO to read it would hang (the run is killed and
    // the test fails after a minute).
    let o = gbpc(d, &["fmt", "fifo"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    let expected = script(d);
    // A reader that does not block, so gbpc's open for writing finds it; the script fits in
    // the pipe's buffer.
    let mut reader = File::options()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let o = compile_to(d, "fifo");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut got = Vec::new();
    let _ = reader.read_to_end(&mut got);
    assert_eq!(got, expected, "the FIFO's reader got the script");
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    no_temporaries(d);
}

/// A symbolic link is written through (atomically, when it names a regular file), keeping the
/// target's mode; a dangling link creates the file it names; a new file gets 0666 less the
/// umask; a missing directory or a directory is exit 2 with nothing created.
#[test]
fn output_through_links_to_regular_and_new_files() {
    let (dir, _) = scratch(false);
    let d = dir.path();
    let expected = script(d);
    fs::write(d.join("regular"), "old\n").unwrap();
    fs::set_permissions(d.join("regular"), fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("regular", d.join("link")).unwrap();
    std::os::unix::fs::symlink("new.nft", d.join("dangling")).unwrap();

    let o = compile_to(d, "link");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        fs::symlink_metadata(d.join("link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(d.join("regular")).unwrap(), expected);
    assert_eq!(
        fs::metadata(d.join("regular"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o640,
        "the replaced file keeps its mode"
    );

    let o = compile_to(d, "dangling");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        fs::symlink_metadata(d.join("dangling"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(d.join("new.nft")).unwrap(), expected);

    let o = compile_to(d, "plain.nft");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(fs::read(d.join("plain.nft")).unwrap(), expected);
    let umask = {
        let m = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        nix::sys::stat::umask(m);
        m.bits()
    };
    assert_eq!(
        fs::metadata(d.join("plain.nft"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o666 & !umask,
        "a new file gets the mode `>` would give it"
    );

    let o = compile_to(d, "missing/out.nft");
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("No such file or directory") && !stderr(&o).contains(".gbpc-"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("missing").exists());
    fs::create_dir(d.join("sub")).unwrap();
    let o = compile_to(d, "sub");
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("is a directory"), "{}", stderr(&o));
    assert_eq!(fs::read_dir(d.join("sub")).unwrap().count(), 0);
    // `-o -` is standard output.
    let o = compile_to(d, "-");
    assert_eq!((code(&o), o.stdout), (0, expected));
    no_temporaries(d);
}

/// `-o` naming the input, by any path (itself, `./x`, a hard link, a symbolic link, through
/// `..`, absolute, or standard input redirected from it) is exit 2 and the input is untouched,
/// even when the policy has errors (the output is decided first).
#[test]
fn output_naming_an_input_is_refused() {
    let (dir, src) = scratch(false);
    let d = dir.path();
    fs::hard_link(d.join("x.gbp"), d.join("hard.gbp")).unwrap();
    std::os::unix::fs::symlink("x.gbp", d.join("sym.gbp")).unwrap();
    fs::create_dir(d.join("sub")).unwrap();
    let abs = d.join("x.gbp").to_string_lossy().into_owned();
    for out in [
        "x.gbp",
        "./x.gbp",
        "hard.gbp",
        "sym.gbp",
        "sub/../x.gbp",
        &abs,
    ] {
        for target in ["nft", "k8s"] {
            let o = gbpc(d, &["compile", "x.gbp", "--target", target, "-o", out]);
            assert_eq!(code(&o), 2, "-o {out}: {}", stderr(&o));
            assert!(stderr(&o).contains("is the input"), "{}", stderr(&o));
            assert_eq!(fs::read(d.join("x.gbp")).unwrap(), src, "-o {out}");
        }
    }
    // Through standard input.
    let o = gbpc_io(
        d,
        &["compile", "-", "--target", "nft", "-o", "hard.gbp"],
        Some(File::open(d.join("x.gbp")).unwrap()),
        Io::Piped,
        Io::Piped,
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_eq!(fs::read(d.join("x.gbp")).unwrap(), src);
    // A policy with errors, compiled over itself: still the usage error, still untouched.
    fs::write(d.join("bad.gbp"), "tenant t { group g { provides nope } }").unwrap();
    let o = gbpc(
        d,
        &["compile", "bad.gbp", "--target", "nft", "-o", "bad.gbp"],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_eq!(
        fs::read_to_string(d.join("bad.gbp")).unwrap(),
        "tenant t { group g { provides nope } }"
    );
    no_temporaries(d);
}

/// `-o /dev/stdout`, or `-o` naming the file standard output is redirected to, writes to
/// standard output itself (the shell's redirection and its inode are kept).
#[test]
fn output_naming_standard_output_writes_standard_output() {
    let (dir, _) = scratch(false);
    let d = dir.path();
    let expected = script(d);
    let o = compile_to(d, "/dev/stdout");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(o.stdout, expected);
    let f = File::create(d.join("redirected.nft")).unwrap();
    let ino = f.metadata().unwrap().ino();
    let o = gbpc_io(
        d,
        &[
            "compile",
            "x.gbp",
            "--target",
            "nft",
            "-o",
            "redirected.nft",
        ],
        None,
        Io::File(f),
        Io::Piped,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let m = fs::metadata(d.join("redirected.nft")).unwrap();
    assert_eq!(
        m.ino(),
        ino,
        "the redirected file was replaced, not written"
    );
    assert_eq!(fs::read(d.join("redirected.nft")).unwrap(), expected);
}

/// `fmt` writes through a symbolic link (keeping the link and the file's mode) and never
/// touches what is already formatted.
#[test]
fn fmt_rewrites_through_links() {
    let (dir, _) = scratch(false);
    let d = dir.path();
    fs::write(d.join("u.gbp"), "tenant  t {   }\n").unwrap();
    fs::set_permissions(d.join("u.gbp"), fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink("u.gbp", d.join("link.gbp")).unwrap();
    let o = gbpc(d, &["fmt", "link.gbp"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        fs::symlink_metadata(d.join("link.gbp"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::read_to_string(d.join("u.gbp")).unwrap(),
        "tenant t {}\n"
    );
    assert_eq!(
        fs::metadata(d.join("u.gbp")).unwrap().permissions().mode() & 0o777,
        0o600
    );
    no_temporaries(d);
}

// ---- 3. no panics on output errors ----------------------------------------------------------

/// Which stream a command writes in the case.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Writes {
    Stdout,
    Stderr,
}

/// Every subcommand, with stdout or stderr full (/dev/full) or a pipe nobody reads: exit 2,
/// never a panic (101); a message on stderr for a full stdout, nothing for a broken pipe.
#[test]
fn failing_output_streams_are_exit_2_never_a_panic() {
    let (dir, _) = scratch(false);
    let d = dir.path();
    fs::write(d.join("bad.gbp"), "tenant t { group g { provides nope } }").unwrap();
    fs::write(d.join("syntax.gbp"), "tenant t { group {").unwrap();
    fs::write(d.join("u.gbp"), "tenant  t {   }\n").unwrap();
    // The language server: one request, then the end of its input (no shutdown: exit 1).
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}}"#;
    fs::write(
        d.join("init.lsp"),
        format!("Content-Length: {}\r\n\r\n{init}", init.len()),
    )
    .unwrap();
    let diff = repo().join("tests/diff/port-opened");
    let (old, new) = (diff.join("old.gbp"), diff.join("new.gbp"));
    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());
    use Writes::{Stderr, Stdout};
    // (arguments, standard input, the stream written, the exit status with working streams)
    let cases: &[(&[&str], Option<&str>, Writes, i32)] = &[
        (&["check", "x.gbp"], None, Stdout, 0),
        (&["check", "bad.gbp"], None, Stderr, 1),
        (
            &["check", "--message-format", "json", "bad.gbp"],
            None,
            Stdout,
            1,
        ),
        (&["check", "missing.gbp"], None, Stderr, 2),
        (&["compile", "x.gbp", "--target", "nft"], None, Stdout, 0),
        (
            &[
                "compile",
                "x.gbp",
                "--target",
                "k8s",
                "--k8s-deny",
                "cluster",
            ],
            None,
            Stdout,
            0,
        ),
        (
            &[
                "compile",
                "x.gbp",
                "--target",
                "k8s",
                "--k8s-deny",
                "cluster",
                "--format",
                "yaml",
            ],
            None,
            Stdout,
            0,
        ),
        (&["compile", "x.gbp", "--target", "k8s"], None, Stdout, 0),
        (
            &["compile", "x.gbp", "--target", "k8s", "--k8s-deny", "error"],
            None,
            Stderr,
            1,
        ),
        (&["compile", "bad.gbp", "--target", "nft"], None, Stderr, 1),
        (
            &["compile", "x.gbp", "--target", "nft", "--format", "yaml"],
            None,
            Stderr,
            2,
        ),
        (
            &["compile", "x.gbp", "--target", "nft", "-o", "x.gbp"],
            None,
            Stderr,
            2,
        ),
        (&["fmt", "-"], Some("u.gbp"), Stdout, 0),
        (&["fmt", "--check", "u.gbp"], None, Stdout, 1),
        (&["fmt", "syntax.gbp"], None, Stderr, 1),
        (
            &[
                "explain", "x.gbp", "--from", "web1", "--to", "lb1", "--port", "tcp/80",
            ],
            None,
            Stdout,
            0,
        ),
        (
            &[
                "explain", "x.gbp", "--from", "nope", "--to", "lb1", "--port", "tcp/80",
            ],
            None,
            Stderr,
            2,
        ),
        (&["query", "x.gbp", "--from", "web"], None, Stdout, 0),
        (&["query", "bad.gbp", "--from", "web"], None, Stderr, 1),
        (&["diff", old, new], None, Stdout, 1),
        (&["diff", old, new, "--format", "json"], None, Stdout, 1),
        (&["graph", "x.gbp"], None, Stdout, 0),
        (&["graph", "x.gbp", "--format", "mermaid"], None, Stdout, 0),
        (&["matrix", "x.gbp"], None, Stdout, 0),
        (&["matrix", "x.gbp", "--format", "html"], None, Stdout, 0),
        (&["__synth", "1"], None, Stdout, 0),
        (&["__k8s-fixture", "x.gbp"], None, Stdout, 0),
        (&["__eval-matrix", "x.gbp"], None, Stdout, 0),
        (&["__eval-matrix", "bad.gbp"], None, Stderr, 1),
        (&["lsp"], Some("init.lsp"), Stdout, 1),
        (&["--help"], None, Stdout, 0),
        (&["--version"], None, Stdout, 0),
        (&["compile", "--help"], None, Stdout, 0),
        (&["no-such-command"], None, Stderr, 2),
    ];
    let stdin = |s: Option<&str>| s.map(|f| File::open(d.join(f)).unwrap());
    let full = || Io::File(File::options().write(true).open("/dev/full").unwrap());
    let mut problems = Vec::new();
    for &(args, input, writes, normal) in cases {
        let name = args.join(" ");
        // The case is what it claims: with working streams, this status and output there.
        let o = gbpc_io(d, args, stdin(input), Io::Piped, Io::Piped);
        let wrote = match writes {
            Stdout => &o.stdout,
            Stderr => &o.stderr,
        };
        if code(&o) != normal || wrote.is_empty() {
            problems.push(format!(
                "{name}: with working streams, exit {} and {} bytes on {writes:?} (expected exit \
                 {normal} and some output)",
                code(&o),
                wrote.len()
            ));
            continue;
        }
        let (full_run, broken_run) = match writes {
            Stdout => (
                gbpc_io(d, args, stdin(input), full(), Io::Piped),
                gbpc_io(d, args, stdin(input), Io::BrokenPipe, Io::Piped),
            ),
            Stderr => (
                gbpc_io(d, args, stdin(input), Io::Piped, full()),
                gbpc_io(d, args, stdin(input), Io::Piped, Io::BrokenPipe),
            ),
        };
        for (how, o) in [("full", &full_run), ("broken pipe", &broken_run)] {
            let err = stderr(o);
            if code(o) != 2 || err.contains("panicked") {
                problems.push(format!(
                    "{name}, {writes:?} {how}: exit {} (expected 2): {err}",
                    code(o)
                ));
            }
        }
        if writes == Stdout {
            let err = stderr(&full_run);
            if !err.contains("No space left on device") {
                problems.push(format!("{name}, stdout full: no message, stderr: {err}"));
            }
            let err = stderr(&broken_run);
            if !err.is_empty() {
                problems.push(format!("{name}, stdout a broken pipe: not quiet: {err}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---- 5. empty policies and flags that do not apply -------------------------------------------

/// An empty file, comments only, whitespace only, a lone byte-order mark: `check` warns (W006,
/// exit 0), `compile` refuses (E005, exit 1, nothing written) unless `--allow-empty`.
#[test]
fn empty_policies_warn_and_do_not_compile() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let empties: &[(&str, &str)] = &[
        ("empty", ""),
        ("comments", "# nothing here\n// nor here\n"),
        ("whitespace", " \n\t\r\n  "),
        ("bom", "\u{feff}"),
        ("bom-comment", "\u{feff}# only a comment"),
    ];
    for (name, text) in empties {
        let f = format!("{name}.gbp");
        fs::write(d.join(&f), text).unwrap();
        let c = gbpc::check_source(text.trim_start_matches('\u{feff}'));
        assert!(
            c.ok()
                && c.warnings
                    .iter()
                    .any(|w| w.code == gbpc::diag::Code::NoTenant),
            "{name}: {:?}",
            c.warnings
        );
        let o = gbpc(d, &["check", &f]);
        assert_eq!(code(&o), 0, "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains("gbpc::W006"), "{name}: {}", stderr(&o));
        let o = gbpc(d, &["check", "--message-format", "json", &f]);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("\"code\":\"gbpc::W006\""),
            "{name}"
        );
        for target in ["nft", "k8s"] {
            let o = gbpc(d, &["compile", &f, "--target", target, "-o", "out"]);
            assert_eq!(code(&o), 1, "{name} {target}: {}", stderr(&o));
            let err = stderr(&o);
            assert!(
                err.contains("gbpc::E005") && !err.contains("gbpc::W006"),
                "{name} {target}: {err}"
            );
            assert!(!d.join("out").exists(), "{name} {target}: output written");
            let o = gbpc(d, &["compile", &f, "--target", target, "--allow-empty"]);
            assert_eq!(code(&o), 0, "{name} {target}: {}", stderr(&o));
            assert!(
                !o.stdout.is_empty() && o.stderr.is_empty(),
                "{name} {target}"
            );
        }
    }
    // A policy with a tenant gets no W006.
    let three = fs::read_to_string(repo().join("examples/three-tier.gbp")).unwrap();
    let c = gbpc::check_source(&three);
    assert!(
        !c.warnings
            .iter()
            .any(|w| w.code == gbpc::diag::Code::NoTenant)
    );
    let c = gbpc::check_source("tenant t {}");
    assert!(
        !c.warnings
            .iter()
            .any(|w| w.code == gbpc::diag::Code::NoTenant)
    );
}

/// A flag of another target is a usage error (exit 2) naming the flag, decided before the
/// policy is read; the flags of the selected target work.
#[test]
fn flags_of_another_target_are_usage_errors() {
    let (dir, _) = scratch(false);
    let d = dir.path();
    let wrong: &[(&str, &[&str])] = &[
        ("--format", &["--target", "nft", "--format", "yaml"]),
        ("--format", &["--target", "nft", "--format", "json"]),
        ("--k8s-deny", &["--target", "nft", "--k8s-deny", "cluster"]),
        ("--allow-dns", &["--target", "nft", "--allow-dns"]),
        ("--enforce", &["--target", "k8s", "--enforce", "endpoint"]),
        ("--table", &["--target", "k8s", "--table", "t"]),
    ];
    for (flag, args) in wrong {
        for file in ["x.gbp", "does-not-exist.gbp"] {
            let mut all = vec!["compile", file];
            all.extend_from_slice(args);
            let o = gbpc(d, &all);
            let err = stderr(&o);
            assert_eq!(code(&o), 2, "{all:?}: {err}");
            assert!(
                err.contains(&format!("{flag} applies only to --target")) && o.stdout.is_empty(),
                "{all:?}: {err}"
            );
        }
    }
    let right: &[&[&str]] = &[
        &[
            "--target",
            "k8s",
            "--format",
            "yaml",
            "--k8s-deny",
            "cluster",
            "--allow-dns",
        ],
        &["--target", "nft", "--enforce", "endpoint", "--table", "t2"],
    ];
    for args in right {
        let mut all = vec!["compile", "x.gbp"];
        all.extend_from_slice(args);
        let o = gbpc(d, &all);
        assert_eq!(code(&o), 0, "{all:?}: {}", stderr(&o));
    }
}

// ---- 7. colour -------------------------------------------------------------------------------

/// `--color auto`: a terminal, `NO_COLOR` unset or empty (no-color.org: only a non-empty value
/// turns colour off), and a `TERM` that is set and not `dumb`.
#[test]
fn colour_decision() {
    use gbpc::render::auto_color;
    let s = |v: &'static str| Some(OsStr::new(v));
    let xterm = s("xterm-256color");
    assert!(auto_color(true, None, xterm));
    assert!(
        auto_color(true, s(""), xterm),
        "NO_COLOR= (empty) keeps colour"
    );
    assert!(!auto_color(true, s("1"), xterm));
    assert!(
        !auto_color(true, s("0"), xterm),
        "any non-empty value counts"
    );
    assert!(
        !auto_color(true, None, s("dumb")),
        "TERM=dumb turns colour off"
    );
    assert!(
        !auto_color(true, None, None),
        "no TERM: colour unknown, off"
    );
    assert!(!auto_color(false, None, xterm), "not a terminal");
    assert!(!auto_color(false, s(""), xterm));
    // The binary: never colour when stderr is not a terminal, whatever the environment says.
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("bad.gbp"),
        "tenant t { group g { provides nope } }",
    )
    .unwrap();
    let o = Command::new(BIN)
        .current_dir(dir.path())
        .args(["check", "bad.gbp"])
        .env("NO_COLOR", "")
        .env("TERM", "xterm")
        .output()
        .unwrap();
    assert!(!stderr(&o).contains('\u{1b}'));
    let o = Command::new(BIN)
        .current_dir(dir.path())
        .args(["--color", "always", "check", "bad.gbp"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        stderr(&o).contains('\u{1b}'),
        "--color always wins over NO_COLOR"
    );
}
