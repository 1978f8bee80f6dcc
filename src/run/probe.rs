//! The probe engine: one process opens every probe's socket inside its source endpoint's
//! network namespace (a socket keeps the namespace it was made in), then drives them all at
//! once with non-blocking I/O and epoll, in waves that fit the open-file limit. A probe that
//! gets no answer before the timeout was dropped on the way.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrStorage, connect,
    getsockopt, recv, send, setsockopt, socket, sockopt,
};

use super::sys;
use super::wire::{Kind, Outcome};

/// One probe: from inside namespace `net` (an index into the namespaces given, or the fabric
/// itself when `None`) to `dst`.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub net: Option<usize>,
    pub dst: SocketAddr,
    pub kind: Kind,
}

fn errno_outcome(e: Errno) -> Outcome {
    match e {
        Errno::EPERM | Errno::EACCES => Outcome::Blocked,
        Errno::ECONNREFUSED | Errno::ECONNRESET => Outcome::Refused,
        Errno::EHOSTUNREACH | Errno::ENETUNREACH | Errno::EPROTO => Outcome::Unreachable,
        Errno::EPROTONOSUPPORT | Errno::ESOCKTNOSUPPORT | Errno::EAFNOSUPPORT => {
            Outcome::Unsupported
        }
        _ => Outcome::Error,
    }
}

fn payload(t: &Target) -> &'static [u8] {
    match (t.kind, t.dst.is_ipv4()) {
        (Kind::Echo, true) => &[8, 0, 0, 0, 0, 0, 0, 1, b'g', b'b', b'p', b'c'],
        (Kind::Echo, false) => &[128, 0, 0, 0, 0, 0, 0, 1, b'g', b'b', b'p', b'c'],
        _ => b"gbpc",
    }
}

/// Open the probe's socket and send its first packet.
fn start(t: &Target) -> Result<OwnedFd, Outcome> {
    let v4 = t.dst.is_ipv4();
    let family = if v4 {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let (ty, proto) = match t.kind {
        Kind::Tcp => (SockType::Stream, None),
        Kind::Sctp => (SockType::Stream, Some(SockProtocol::Sctp)),
        Kind::Udp => (SockType::Datagram, None),
        Kind::Echo if v4 => (SockType::Datagram, Some(SockProtocol::Icmp)),
        Kind::Echo => (SockType::Datagram, Some(SockProtocol::IcmpV6)),
    };
    let fd = socket(
        family,
        ty,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        proto,
    )
    .map_err(errno_outcome)?;
    if ty == SockType::Stream {
        // Close with a reset: no TIME_WAIT left behind by thousands of probes.
        let _ = setsockopt(
            &fd,
            sockopt::Linger,
            &nix::libc::linger {
                l_onoff: 1,
                l_linger: 0,
            },
        );
    }
    let addr = SockaddrStorage::from(t.dst);
    match connect(fd.as_raw_fd(), &addr) {
        Ok(()) | Err(Errno::EINPROGRESS) => {}
        Err(e) => return Err(errno_outcome(e)),
    }
    if ty == SockType::Datagram {
        send(fd.as_raw_fd(), payload(t), MsgFlags::MSG_DONTWAIT).map_err(errno_outcome)?;
    }
    Ok(fd)
}

/// What an event on a probe's socket says, if it says anything yet.
fn finish(fd: &OwnedFd, kind: Kind) -> Option<Outcome> {
    match kind {
        Kind::Tcp | Kind::Sctp => match getsockopt(fd, sockopt::SocketError) {
            Ok(0) => Some(Outcome::Open),
            Ok(e) => Some(errno_outcome(Errno::from_raw(e))),
            Err(e) => Some(errno_outcome(e)),
        },
        Kind::Udp | Kind::Echo => {
            let mut buf = [0u8; 64];
            match recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(_) => Some(Outcome::Open),
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => None,
                Err(e) => Some(errno_outcome(e)),
            }
        }
    }
}

/// Run `targets` in waves of at most `wave` sockets; datagram probes are sent again at half
/// the timeout. `progress(done, total)` after each wave.
pub fn probe_all(
    nets: &[File],
    home: &File,
    targets: &[Target],
    timeout: Duration,
    wave: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> io::Result<Vec<Outcome>> {
    let mut out = Vec::with_capacity(targets.len());
    for chunk in targets.chunks(wave.max(1)) {
        out.extend(one_wave(nets, home, chunk, timeout)?);
        progress(out.len(), targets.len());
    }
    Ok(out)
}

fn one_wave(
    nets: &[File],
    home: &File,
    targets: &[Target],
    timeout: Duration,
) -> io::Result<Vec<Outcome>> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let mut out = vec![Outcome::Timeout; targets.len()];
    let mut socks: Vec<Option<OwnedFd>> = Vec::with_capacity(targets.len());
    let mut current: Option<Option<usize>> = None;
    let mut pending = 0usize;
    let result = (|| -> io::Result<()> {
        for (k, t) in targets.iter().enumerate() {
            if current != Some(t.net) {
                match t.net {
                    Some(i) => match nets.get(i) {
                        Some(ns) => sys::enter_net(ns)?,
                        None => return Err(io::Error::other("probe from an unknown namespace")),
                    },
                    None => sys::enter_net(home)?,
                }
                current = Some(t.net);
            }
            match start(t) {
                Ok(fd) => {
                    let flags = match t.kind {
                        Kind::Tcp | Kind::Sctp => EpollFlags::EPOLLOUT,
                        Kind::Udp | Kind::Echo => EpollFlags::EPOLLIN,
                    };
                    epoll.add(&fd, EpollEvent::new(flags, k as u64))?;
                    socks.push(Some(fd));
                    pending += 1;
                }
                Err(o) => {
                    out[k] = o;
                    socks.push(None);
                }
            }
        }
        Ok(())
    })();
    sys::enter_net(home)?;
    result?;
    let t0 = Instant::now();
    let half = t0 + timeout / 2;
    let deadline = t0 + timeout;
    let mut resent = false;
    let mut events = vec![EpollEvent::empty(); 4096];
    while pending > 0 {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if !resent && now >= half {
            for (k, s) in socks.iter().enumerate() {
                if let (Some(fd), Kind::Udp | Kind::Echo) = (s, targets[k].kind) {
                    let _ = send(fd.as_raw_fd(), payload(&targets[k]), MsgFlags::MSG_DONTWAIT);
                }
            }
            resent = true;
        }
        let until = if resent { deadline } else { half };
        let ms = until
            .saturating_duration_since(now)
            .as_millis()
            .clamp(1, 60_000) as u16;
        let n = match epoll.wait(&mut events, nix::poll::PollTimeout::from(ms)) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        for ev in &events[..n] {
            let k = ev.data() as usize;
            let Some(slot) = socks.get_mut(k) else {
                continue;
            };
            let Some(fd) = slot else { continue };
            if let Some(o) = finish(fd, targets[k].kind) {
                out[k] = o;
                *slot = None;
                pending -= 1;
            }
        }
    }
    Ok(out)
}
