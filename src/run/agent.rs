//! The endpoint agent: what the gbpc binary does when the fabric re-executes it as PID 1 of a
//! new PID namespace. It makes the rest of its container (its own network, UTS and mount
//! namespaces), names the host, sets the
//! namespace's sysctls, moves into a minimal read-only root with `pivot_root`, says `ready`,
//! and waits. The probes are the fabric's crafted packets, and what answers them is this
//! namespace's kernel (a TCP SYN-ACK or reset, an ICMP port unreachable, an echo reply); the
//! agent is the container's first process, and the fabric watches it: its death ends the run
//! with an error naming the endpoint. It ends when its standard input closes (the fabric is
//! gone) or by the fabric's SIGKILL.

use std::io::{BufRead, Read, Write};
use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::sys;
use super::wire::AgentConfig;

fn err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

/// The agent's entry point; the exit status is 0 after a clean end, 1 on failure (the reason
/// on stderr).
pub fn main() -> i32 {
    match run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("gbpc agent: {e}");
            1
        }
    }
}

/// A tmpfs root holding read-only binds of the binary and its libraries; the old root is
/// detached, `/proc` is this PID namespace's own.
fn minimal_root() -> Result<(), String> {
    let none: Option<&str> = None;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(|e| err("make / private", e))?;
    // The new root is a tmpfs mounted over an existing directory; in this private mount
    // namespace it hides nothing from anyone else, but it must not hide the binary itself
    // (a checkout under /tmp), so take the first candidate that is not one of its ancestors.
    let exe = std::fs::read_link("/proc/self/exe").map_err(|e| err("find the binary", e))?;
    let root = ["/tmp", "/mnt", "/media", "/var/tmp", "/run", "/srv", "/opt"]
        .iter()
        .map(Path::new)
        .find(|c| c.is_dir() && !exe.starts_with(c))
        .ok_or_else(|| {
            format!(
                "no directory to mount the root on that does not hold {}",
                exe.display()
            )
        })?;
    mount(
        Some("gbpc-root"),
        root,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("size=1m,mode=0755"),
    )
    .map_err(|e| err("mount the root tmpfs", e))?;
    let bind_ro = |src: &Path, dst: &Path, file: bool| -> Result<(), String> {
        if file {
            std::fs::write(dst, b"").map_err(|e| err("create a bind target", e))?;
        } else {
            std::fs::create_dir_all(dst).map_err(|e| err("create a bind target", e))?;
        }
        mount(
            Some(src),
            dst,
            none,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none,
        )
        .map_err(|e| err(&format!("bind {}", src.display()), e))?;
        mount(
            none,
            dst,
            none,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            none,
        )
        .map_err(|e| err(&format!("make {} read-only", dst.display()), e))
    };
    bind_ro(&exe, &root.join("gbpc"), true)?;
    for lib in ["/lib", "/lib64", "/usr/lib", "/usr/lib64"] {
        let src = Path::new(lib);
        // Symlinks (merged /usr) are followed by the bind; missing ones are skipped.
        if src.is_dir() {
            bind_ro(src, &root.join(&lib[1..]), false)?;
        }
    }
    for d in ["proc", "oldroot"] {
        std::fs::create_dir_all(root.join(d)).map_err(|e| err("mkdir", e))?;
    }
    std::env::set_current_dir(root).map_err(|e| err("chdir", e))?;
    nix::unistd::pivot_root(".", "oldroot").map_err(|e| err("pivot_root", e))?;
    std::env::set_current_dir("/").map_err(|e| err("chdir /", e))?;
    umount2("/oldroot", MntFlags::MNT_DETACH).map_err(|e| err("detach the old root", e))?;
    let _ = std::fs::remove_dir("/oldroot");
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        none,
    )
    .map_err(|e| err("mount /proc", e))?;
    mount(
        none,
        "/",
        none,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        none,
    )
    .map_err(|e| err("make the root read-only", e))?;
    Ok(())
}

fn run() -> Result<(), String> {
    // The container's own network, UTS and mount namespaces (its PID namespace, of which this
    // process is PID 1, the fabric made when it started it).
    nix::sched::unshare(
        nix::sched::CloneFlags::CLONE_NEWNET
            | nix::sched::CloneFlags::CLONE_NEWUTS
            | nix::sched::CloneFlags::CLONE_NEWNS,
    )
    .map_err(|e| err("make the namespaces", e))?;
    let stdin = std::io::stdin();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| err("read the configuration", e))?;
    let cfg: AgentConfig = serde_json::from_str(&line).map_err(|e| err("bad configuration", e))?;
    nix::unistd::sethostname(&cfg.host).map_err(|e| err("sethostname", e))?;
    // This namespace's sysctls: no ICMP rate limits (a limited port unreachable or echo reply
    // would pass for a lost answer), no IPv6 duplicate address detection (addresses usable at
    // once), short conntrack timeouts (per-endpoint enforcement tracks every probe here).
    let _ = sys::sysctl("net/ipv4/icmp_ratemask", "0");
    let _ = sys::sysctl("net/ipv4/icmp_ratelimit", "0");
    sys::conntrack_timeouts();
    if cfg.v6 {
        let _ = sys::sysctl("net/ipv6/icmp/ratelimit", "0");
        for c in ["all", "default"] {
            sys::sysctl(&format!("net/ipv6/conf/{c}/accept_dad"), "0")
                .map_err(|e| err("IPv6 sysctls (is IPv6 enabled?)", e))?;
        }
    }
    minimal_root()?;
    {
        let mut out = std::io::stdout().lock();
        out.write_all(b"ready\n")
            .and_then(|_| out.flush())
            .map_err(|e| err("report ready", e))?;
    }
    // Until the fabric closes our standard input (or kills us).
    let mut rest = Vec::new();
    let _ = stdin.lock().read_to_end(&mut rest);
    Ok(())
}
