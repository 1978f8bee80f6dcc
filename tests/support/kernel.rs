//! The kernel probe: one check of root and the kernel's facilities, and one way to skip (see
//! `tests/support.rs` for how a test uses it).

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// The marker every skip line starts with.
pub const SKIP_MARKER: &str = "SKIPPED (needs root)";

/// The environment variable that turns a skip into a failure.
pub const REQUIRE: &str = "GBPC_REQUIRE_ROOT_TESTS";

/// Skip the calling test: one line (or, under [`REQUIRE`], a failure). Returns false, for
/// `if !...ready() { return; }`.
fn skip(why: &str) -> bool {
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    if std::env::var_os(REQUIRE).is_some_and(|v| !v.is_empty() && v != "0") {
        panic!("{test} would be skipped ({why}), but {REQUIRE} is set: every root test must run");
    }
    // Straight to the descriptor: `eprintln!` is captured by the harness and shown only for
    // failing tests.
    let _ = writeln!(std::io::stderr().lock(), "{SKIP_MARKER} {test}: {why}");
    false
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Whether the test can do what needs root (mknod, mounts); otherwise it is skipped.
pub fn root() -> bool {
    if euid() == 0 {
        true
    } else {
        skip(&format!("not root (uid {})", euid()))
    }
}

/// Why the kernel tests cannot run here, decided once: `None` when they can. Panics (a failure,
/// not a skip) when gbpc's own requirements are missing as root: `nft`, `unshare`.
fn kernel_missing() -> Option<String> {
    static MISSING: OnceLock<Option<String>> = OnceLock::new();
    MISSING
        .get_or_init(|| {
            if euid() != 0 {
                return Some(format!("not root (uid {})", euid()));
            }
            if !(Path::new("/proc/self/ns/net").exists() && Path::new("/proc/self/ns/pid").exists())
            {
                return Some("this kernel has no network or PID namespaces".into());
            }
            if let Err(e) = Command::new("nft").arg("--version").output() {
                panic!(
                    "`nft` cannot be run ({e}): the kernel tests need the nftables command-line \
                     tool (Debian/Ubuntu: apt-get install nftables)"
                );
            }
            let out = Command::new("unshare")
                .args(["--net", "nft", "add", "table", "inet", "gbpcprobe"])
                .output()
                .unwrap_or_else(|e| panic!("`unshare` cannot be run ({e}); util-linux is needed"));
            if out.status.success() {
                return None;
            }
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("Operation not supported") || err.contains("not supported") {
                return Some(format!("this kernel has no nf_tables ({})", err.trim()));
            }
            panic!(
                "cannot add an nftables table in a new network namespace as root: {}",
                err.trim()
            )
        })
        .clone()
}

/// Whether the kernel tests can run: root, network and PID namespaces, `nft` and nf_tables in
/// a new network namespace. Otherwise the calling test is skipped (see the module).
pub fn kernel_ready() -> bool {
    match kernel_missing() {
        None => true,
        Some(why) => skip(&why),
    }
}
