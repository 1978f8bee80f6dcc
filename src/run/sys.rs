//! Thin system-call helpers of the run: starting a process in new namespaces, sysctls of the
//! current network namespace, file-descriptor limits, switching network namespaces.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::Signal;

/// Start `cmd` as PID 1 of a new PID namespace and in new namespaces `flags`, killed when the
/// calling thread dies. The caller's own namespaces are left as they were.
pub fn spawn_namespaced(cmd: &mut Command, flags: CloneFlags) -> io::Result<Child> {
    let own = File::open("/proc/self/ns/pid")?;
    // New children go into a new PID namespace; the caller itself stays where it is.
    unshare(CloneFlags::CLONE_NEWPID)?;
    set_pre_exec(cmd, flags);
    let child = cmd.spawn();
    // Later children go back to the caller's PID namespace (also when spawning failed).
    setns(own.as_fd(), CloneFlags::CLONE_NEWPID)?;
    child
}

#[allow(unsafe_code)]
fn set_pre_exec(cmd: &mut Command, flags: CloneFlags) {
    // SAFETY: the closure runs in the forked child between fork and exec, where only
    // async-signal-safe work is allowed. It makes two system calls (unshare, prctl) through
    // nix wrappers that neither allocate nor take locks, and builds an io::Error from an errno
    // (no allocation). It touches no state shared with the parent.
    unsafe {
        cmd.pre_exec(move || {
            if !flags.is_empty() {
                unshare(flags).map_err(io::Error::from)?;
            }
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            Ok(())
        });
    }
}

/// Write a sysctl (`net/ipv4/ip_forward`); the `net/` ones are those of the network namespace
/// the calling thread is in.
pub fn sysctl(path: &str, value: &str) -> io::Result<()> {
    std::fs::write(format!("/proc/sys/{path}"), value)
}

/// Raise the open-file limit as far as the kernel allows (root may raise the hard limit).
pub fn raise_nofile() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let max = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    if setrlimit(Resource::RLIMIT_NOFILE, max, max).is_ok() {
        return max;
    }
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((_, hard)) => {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
            hard
        }
        Err(_) => 1024,
    }
}

/// Move the calling thread into the network namespace `ns`.
pub fn enter_net(ns: &File) -> io::Result<()> {
    setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

/// A raw IP socket of `protocol` (any number; IPPROTO_RAW sends packets with their own IP
/// header) in the calling thread's network namespace, non-blocking, close-on-exec.
#[allow(unsafe_code)]
pub fn raw_socket(v6: bool, protocol: u8) -> io::Result<OwnedFd> {
    use nix::libc;
    let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: socket(2) with constant arguments; it returns a new descriptor or -1. A new,
    // non-negative descriptor is owned by nobody else, so OwnedFd may take it.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            i32::from(protocol),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: see above: `fd` is a fresh descriptor this function owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Short conntrack timeouts in the current network namespace (best effort): a run tracks a
/// connection per allowed probe, and a full table would drop new ones.
pub fn conntrack_timeouts() {
    for (k, v) in [
        ("tcp_timeout_syn_sent", "5"),
        ("tcp_timeout_syn_recv", "5"),
        ("tcp_timeout_close", "1"),
        ("tcp_timeout_established", "30"),
        ("udp_timeout", "5"),
        ("udp_timeout_stream", "5"),
        ("icmp_timeout", "5"),
        ("icmpv6_timeout", "5"),
        ("generic_timeout", "5"),
        ("sctp_timeout_cookie_wait", "5"),
    ] {
        let _ = sysctl(&format!("net/netfilter/nf_conntrack_{k}"), v);
    }
}
