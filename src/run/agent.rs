//! The endpoint agent: what the gbpc binary does when the fabric re-executes it inside a new
//! container (its own network, UTS, PID and mount namespaces). It names the host, sets the
//! namespace's sysctls, opens a listener on every probed port, moves into a minimal read-only
//! root with `pivot_root`, says `ready`, then answers: TCP and SCTP connections are accepted
//! and closed, UDP datagrams are echoed (ICMP echo is the kernel's). It ends when its standard
//! input closes (the fabric is gone) or by the fabric's SIGKILL.

use std::io::{BufRead, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::socket::{
    AddressFamily, Backlog, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrStorage, accept4,
    bind, listen, recvfrom, sendto, setsockopt, socket, sockopt,
};

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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Stream,
    Datagram,
}

fn listener(
    v6: bool,
    ty: SockType,
    proto: Option<SockProtocol>,
    port: u16,
) -> Result<Option<OwnedFd>, String> {
    let family = if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    let fd = match socket(
        family,
        ty,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        proto,
    ) {
        Ok(fd) => fd,
        // No SCTP in this kernel: the fabric reports those probes as unsupported.
        Err(Errno::EPROTONOSUPPORT | Errno::ESOCKTNOSUPPORT) if proto.is_some() => {
            return Ok(None);
        }
        Err(e) => return Err(err("socket", e)),
    };
    let _ = setsockopt(&fd, sockopt::ReuseAddr, &true);
    let addr: SocketAddr = if v6 {
        let _ = setsockopt(&fd, sockopt::Ipv6V6Only, &true);
        (Ipv6Addr::UNSPECIFIED, port).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, port).into()
    };
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr)).map_err(|e| err("bind", e))?;
    if ty == SockType::Stream {
        listen(&fd, Backlog::MAXCONN).map_err(|e| err("listen", e))?;
    } else {
        let _ = setsockopt(&fd, sockopt::RcvBufForce, &(4 << 20));
    }
    Ok(Some(fd))
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
    let stdin = std::io::stdin();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| err("read the configuration", e))?;
    let cfg: AgentConfig = serde_json::from_str(&line).map_err(|e| err("bad configuration", e))?;
    nix::unistd::sethostname(&cfg.host).map_err(|e| err("sethostname", e))?;
    // This namespace's sysctls: unprivileged-style ICMP echo sockets for the prober, no ICMP
    // rate limits (a limited reply would pass for a drop), no IPv6 duplicate address detection
    // (addresses usable at once).
    sys::sysctl("net/ipv4/ping_group_range", "0 2147483647")
        .map_err(|e| err("ping_group_range", e))?;
    let _ = sys::sysctl("net/ipv4/icmp_ratemask", "0");
    let _ = sys::sysctl("net/ipv4/icmp_ratelimit", "0");
    if cfg.v6 {
        let _ = sys::sysctl("net/ipv6/icmp/ratelimit", "0");
        for c in ["all", "default"] {
            sys::sysctl(&format!("net/ipv6/conf/{c}/accept_dad"), "0")
                .map_err(|e| err("IPv6 sysctls (is IPv6 enabled?)", e))?;
        }
    }
    let mut socks: Vec<(OwnedFd, Role)> = Vec::new();
    for (v6, on) in [(false, cfg.v4), (true, cfg.v6)] {
        if !on {
            continue;
        }
        for (ports, ty, proto, role) in [
            (&cfg.listen.tcp, SockType::Stream, None, Role::Stream),
            (&cfg.listen.udp, SockType::Datagram, None, Role::Datagram),
            (
                &cfg.listen.sctp,
                SockType::Stream,
                Some(SockProtocol::Sctp),
                Role::Stream,
            ),
        ] {
            for &port in ports {
                if let Some(fd) = listener(v6, ty, proto, port)? {
                    socks.push((fd, role));
                }
            }
        }
    }
    minimal_root()?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| err("epoll", e))?;
    for (i, (fd, _)) in socks.iter().enumerate() {
        epoll
            .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
            .map_err(|e| err("epoll", e))?;
    }
    let stdin_fd = stdin.as_fd();
    epoll
        .add(
            stdin_fd,
            EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP, u64::MAX),
        )
        .map_err(|e| err("epoll", e))?;
    {
        let mut out = std::io::stdout().lock();
        out.write_all(b"ready\n")
            .and_then(|_| out.flush())
            .map_err(|e| err("report ready", e))?;
    }
    let mut events = vec![EpollEvent::empty(); 256];
    let mut buf = [0u8; 2048];
    loop {
        let n = match epoll.wait(&mut events, nix::poll::PollTimeout::NONE) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(err("epoll_wait", e)),
        };
        for ev in &events[..n] {
            if ev.data() == u64::MAX {
                // The fabric closed our standard input: the run is over.
                return Ok(());
            }
            let Some((fd, role)) = socks.get(ev.data() as usize) else {
                continue;
            };
            match role {
                Role::Stream => {
                    while let Ok(c) = accept4(fd.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
                        let _ = nix::unistd::close(c);
                    }
                }
                Role::Datagram => loop {
                    match recvfrom::<SockaddrStorage>(fd.as_raw_fd(), &mut buf) {
                        Ok((len, Some(from))) => {
                            let _ = sendto(fd.as_raw_fd(), &buf[..len], &from, MsgFlags::empty());
                        }
                        Ok((_, None)) => {}
                        Err(_) => break,
                    }
                },
            }
        }
    }
}
