//! The caller's side of a run: check that it can run at all (root, `nft`), start the fabric as
//! PID 1 of new PID, network and mount namespaces (killed if the caller dies), hand it the job
//! and collect its reports. Nothing here touches the caller's network namespace.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use nix::sched::CloneFlags;

use super::sys;
use super::wire::{Failure, Job, Report, Results};

fn fail(what: &str, message: impl Into<String>) -> Failure {
    Failure {
        what: what.into(),
        message: message.into(),
    }
}

/// Whether an executable `name` is on `PATH`.
fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            let f = d.join(name);
            f.is_file()
                && std::fs::metadata(&f)
                    .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
                    .unwrap_or(false)
        })
    })
}

/// What a run needs from this machine, checked before anything starts.
pub fn preflight() -> Result<(), Failure> {
    if !nix::unistd::geteuid().is_root() {
        return Err(fail(
            "root",
            "gbpc run creates namespaces and loads nftables rules: run it as root",
        ));
    }
    if !on_path("nft") {
        return Err(fail(
            "nft",
            "the `nft` command is not on PATH (Debian/Ubuntu: apt-get install nftables)",
        ));
    }
    for ns in ["net", "pid", "mnt", "uts"] {
        if !Path::new(&format!("/proc/self/ns/{ns}")).exists() {
            return Err(fail(
                "namespaces",
                format!("the kernel has no {ns} namespaces"),
            ));
        }
    }
    Ok(())
}

/// A name for a new run, carried in the command line of every process of it: the caller's
/// process id and the time.
pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{nanos}", std::process::id())
}

/// Run `job` (followed by its `probes`, [`super::wire::encode_probes`]) in a fabric of its
/// own; `progress(phase, done, total)` as it goes.
pub fn launch(
    job: &Job,
    probes: &[u8],
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<Results, Failure> {
    preflight()?;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.args([
        "run",
        super::AGENT_FLAG,
        "fabric",
        super::RUN_ID_FLAG,
        &job.run_id,
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    let mut child =
        sys::spawn_namespaced(&mut cmd, CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS)
            .map_err(|e| {
                fail(
                    "namespaces",
                    format!(
                        "cannot start the fabric in new PID, network and mount namespaces: {e}"
                    ),
                )
            })?;
    let line = serde_json::to_string(job).map_err(|e| fail("internal", e.to_string()))?;
    // Standard input stays open until the end: the fabric's end of it closes with us.
    let mut stdin = child.stdin.take();
    if let Some(i) = stdin.as_mut() {
        i.write_all(line.as_bytes())
            .and_then(|_| i.write_all(b"\n"))
            .and_then(|_| i.write_all(probes))
            .and_then(|_| i.flush())
            .map_err(|e| {
                fail(
                    "internal",
                    format!("cannot hand the job to the fabric: {e}"),
                )
            })?;
    }
    let mut result: Option<Result<Results, Failure>> = None;
    if let Some(out) = child.stdout.take() {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            match serde_json::from_str::<Report>(&l) {
                Ok(Report::Progress { phase, done, total }) => progress(&phase, done, total),
                Ok(Report::Done(r)) => result = Some(Ok(r)),
                Ok(Report::Failed(f)) => result = Some(Err(f)),
                Err(_) => {}
            }
        }
    }
    drop(stdin);
    let status = child.wait();
    result.unwrap_or_else(|| {
        Err(fail(
            "internal",
            format!(
                "the fabric ended without a result ({})",
                status.map_or_else(|e| e.to_string(), |s| s.to_string())
            ),
        ))
    })
}
