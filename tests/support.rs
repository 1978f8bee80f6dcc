//! What the tests share: where the repository's cases are and how to read them, running a check
//! over every case, snapshots, the strict Kubernetes schemas, and the probe of root and the
//! kernel that decides whether a test that needs privileges runs.
//!
//! A test that needs root (the kernel tests: nftables in throwaway network namespaces, `gbpc
//! run`; device nodes made with mknod) starts with
//!
//! ```ignore
//! if !crate::support::kernel_ready() { return; }   // or support::root()
//! ```
//!
//! Without root it skips with one line on standard error, written past the test harness's
//! capture so that it is seen even though the test passes:
//!
//! ```text
//! SKIPPED (needs root) nft::examples_load_and_kernel_matches_evaluator: not root (uid 1000)
//! ```
//!
//! With `GBPC_REQUIRE_ROOT_TESTS=1` in the environment (`.ci/run` sets it: CI runs as root),
//! a skip is a failure instead: no kernel test can silently stop testing.

use std::path::{Path, PathBuf};
use std::process::Output;

mod kernel;
pub mod schemas;

pub use kernel::{kernel_ready, root};

/// The repository (the crate's directory).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Files with extension `ext` in `dir` (relative to the repository), sorted.
pub fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == ext))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The example policies, `examples/*.gbp`, sorted.
pub fn examples() -> Vec<PathBuf> {
    files("examples", "gbp")
}

/// A file's name without its extension (a case's name in snapshots).
pub fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A case's text; a file that cannot be read fails the test.
pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// Run `f` for every case, collecting failures, so one broken case does not hide the others.
pub fn each_case(cases: &[PathBuf], f: impl Fn(&Path)) {
    assert!(!cases.is_empty(), "no cases found");
    let mut failed = Vec::new();
    for c in cases {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(c))).is_err() {
            failed.push(c.strip_prefix(repo()).unwrap_or(c).display().to_string());
        }
    }
    assert!(failed.is_empty(), "failing cases: {failed:#?}");
}

/// The verdict between two group sets whose members' addresses are left open (either family):
/// as the analysis asks it, and as a NetworkPolicy peer (which has no address family) means it.
pub fn decide_either_family(
    p: &gbpc::model::Policy,
    s: &[gbpc::model::GroupId],
    d: &[gbpc::model::GroupId],
    flow: gbpc::eval::Flow,
) -> gbpc::eval::Decision {
    use gbpc::eval::{Conn, End, Families};
    let conn = Conn::new(
        End::new(s, Families::BOTH),
        End::new(d, Families::BOTH),
        flow,
    )
    .expect("either family: every flow is a connection");
    gbpc::eval::decide(p, &conn)
}

/// A finished process's exit code (-1 when a signal ended it).
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// A finished process's standard error, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `snapshot!(name, value)`: compare `value` with `snapshots/NAME.snap`. A macro, not a
/// function, so that insta records the calling test file as each snapshot's source.
macro_rules! snapshot {
    ($name:expr, $value:expr $(,)?) => {{
        let name: &str = &$name;
        let value: &str = &$value;
        let mut s = insta::Settings::clone_current();
        s.set_snapshot_path("../snapshots");
        s.set_prepend_module_to_snapshot(false);
        s.set_omit_expression(true);
        s.bind(|| insta::assert_snapshot!(name, value));
    }};
}
pub(crate) use snapshot;
