//! The probe engine. Every probe is one crafted packet ([`super::packet`]) sent from a raw
//! socket made inside its source endpoint's network namespace (a socket keeps the namespace it
//! was made in, so one process drives them all); raw sockets made inside every endpoint see,
//! after the namespace's input hook, the probes that arrive there and the answers of the
//! destinations' kernels (TCP SYN-ACK or reset, ICMP port unreachable for UDP, echo replies).
//!
//! Packets are sent in batches (`sendmmsg`) by one thread per core, each thread owning the
//! sources and the receiving sockets of a share of the endpoints and draining its sockets
//! between batches; after the last send every thread waits the grace period for stragglers.
//! Forwarding through the fabric happens in the sending thread's own softirq, so by the time
//! a batch is sent its packets have almost always arrived.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg, setsockopt,
    sockopt,
};

use super::packet::{self, ICMP, ICMPV6, Seen};
use super::sys;
use super::wire::Outcome;

/// A probe as the engine sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Indexes of the source and destination endpoints.
    pub src: u32,
    pub dst: u32,
    pub v6: bool,
    /// IP protocol number, and port or ICMP type (0 for other protocols).
    pub proto: u8,
    pub port: u16,
    /// The destination's kernel answers it (TCP, UDP, ICMP echo): the answer must come back.
    pub answer: bool,
}

/// An endpoint's addresses.
#[derive(Clone, Copy, Debug)]
pub struct Ends {
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
}

impl Ends {
    fn addr(&self, v6: bool) -> Option<IpAddr> {
        if v6 {
            self.v6.map(IpAddr::V6)
        } else {
            self.v4.map(IpAddr::V4)
        }
    }
}

struct Receiver {
    fd: OwnedFd,
    node: u32,
    v6: bool,
    proto: u8,
}

/// The sockets of every endpoint.
pub struct Sockets {
    /// Per endpoint: the raw sending sockets, IPv4 and IPv6.
    send: Vec<[Option<OwnedFd>; 2]>,
    recv: Vec<Receiver>,
    /// Per endpoint and family, the protocols it can be seen receiving.
    seen: Vec<[Vec<u8>; 2]>,
}

/// Open the sockets inside every endpoint's namespace `nets[i]` (then back to `home`):
/// sending sockets for the families it has, receiving sockets for each protocol of
/// `protos[family]` (plus ICMP of the family, which carries UDP's answers).
pub fn open(
    nets: &[std::fs::File],
    home: &std::fs::File,
    ends: &[Ends],
    protos: &[Vec<u8>; 2],
) -> io::Result<Sockets> {
    let mut s = Sockets {
        send: Vec::with_capacity(ends.len()),
        recv: Vec::new(),
        seen: Vec::with_capacity(ends.len()),
    };
    let result = (|| -> io::Result<()> {
        for (i, (ns, e)) in nets.iter().zip(ends).enumerate() {
            sys::enter_net(ns)?;
            let mut send: [Option<OwnedFd>; 2] = [None, None];
            let mut seen: [Vec<u8>; 2] = Default::default();
            for (f, v6) in [(0usize, false), (1, true)] {
                if e.addr(v6).is_none() {
                    continue;
                }
                send[f] = Some(sys::raw_socket(v6, nix::libc::IPPROTO_RAW as u8)?);
                let icmp = if v6 { ICMPV6 } else { ICMP };
                let mut list = protos[f].clone();
                list.push(icmp);
                list.sort_unstable();
                list.dedup();
                for proto in list {
                    let fd = match sys::raw_socket(v6, proto) {
                        Ok(fd) => fd,
                        Err(e)
                            if matches!(
                                e.raw_os_error(),
                                Some(nix::libc::EPROTONOSUPPORT | nix::libc::ESOCKTNOSUPPORT)
                            ) =>
                        {
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    let _ = setsockopt(&fd, sockopt::RcvBufForce, &(4 << 20));
                    let _ = setsockopt(&fd, sockopt::RxqOvfl, &1);
                    seen[f].push(proto);
                    s.recv.push(Receiver {
                        fd,
                        node: i as u32,
                        v6,
                        proto,
                    });
                }
            }
            s.send.push(send);
            s.seen.push(seen);
        }
        Ok(())
    })();
    sys::enter_net(home)?;
    result.map(|_| s)
}

const SENT: u8 = 1;
const ARRIVED: u8 = 2;
const ANSWERED: u8 = 4;
const BLOCKED: u8 = 8;
const FAILED: u8 = 16;
const ICMP_ERROR: u8 = 32;
const UNSEEN: u8 = 64;

/// What a probe's flags say.
fn outcome(s: u8, p: &Probe) -> Outcome {
    if s & UNSEEN != 0 {
        Outcome::Unsupported
    } else if s & BLOCKED != 0 {
        Outcome::Blocked
    } else if s & FAILED != 0 {
        Outcome::Error
    } else if s & ANSWERED != 0 || (s & ARRIVED != 0 && !p.answer) {
        Outcome::Open
    } else if s & ARRIVED != 0 {
        Outcome::NoAnswer
    } else if s & ICMP_ERROR != 0 {
        Outcome::Unreachable
    } else {
        Outcome::Timeout
    }
}

/// The echo reply type of a family.
fn echo_reply(v6: bool) -> u16 {
    if v6 { 129 } else { 0 }
}

fn is_echo_request(p: &Probe) -> bool {
    (p.proto == ICMP && p.port == 8) || (p.proto == ICMPV6 && p.port == 128)
}

/// A pass over some probes.
pub struct Pass<'a> {
    pub socks: &'a Sockets,
    pub ends: &'a [Ends],
    pub probes: &'a [Probe],
    /// How long to wait after the last send.
    pub grace: Duration,
    /// Worker threads (one per core).
    pub threads: usize,
    /// Asked now and then (every 100 ms) whether the run may go on; `false` stops the pass.
    pub watch: &'a (dyn Fn() -> bool + Sync),
    /// Source ports to use (TCP, UDP, SCTP): none of them is a destination port of a probe, so
    /// that no probe can be taken for the reply of an earlier one in the other direction.
    pub sports: &'a [u16],
}

/// Source ports that are no probe's destination port: every port from 1024 up but those.
pub fn source_ports(dports: &[u16]) -> Vec<u16> {
    let mut used = vec![false; 65_536];
    for &d in dports {
        used[usize::from(d)] = true;
    }
    let ports: Vec<u16> = (1024..=u16::MAX)
        .filter(|&p| !used[usize::from(p)])
        .collect();
    if ports.is_empty() { vec![1024] } else { ports }
}

/// What a pass found: an outcome per probe of `which`, and whether a receiving socket lost
/// packets (its endpoints' silent probes are then in doubt).
pub struct Found {
    pub outcomes: Vec<Outcome>,
    pub overflowed: Vec<bool>,
}

impl Pass<'_> {
    /// Send the probes `which` (indexes into `probes`, which are also the numbers the packets
    /// carry) as attempt `attempt`; `progress(sent, total)` now and then.
    pub fn run(
        &self,
        which: &[u32],
        attempt: u8,
        progress: &mut dyn FnMut(usize, usize),
    ) -> io::Result<Found> {
        let n = self.ends.len();
        let threads = self.threads.clamp(1, 16);
        let state: Vec<AtomicU8> = (0..self.probes.len()).map(|_| AtomicU8::new(0)).collect();
        let overflowed: Vec<AtomicBool> = (0..n).map(|_| AtomicBool::new(false)).collect();
        let sent = AtomicUsize::new(0);
        let barrier = Barrier::new(threads);
        let stop = AtomicBool::new(false);
        // Probes the destination cannot be seen receiving are not sent.
        for &k in which {
            let p = &self.probes[k as usize];
            let f = usize::from(p.v6);
            if !self.socks.seen[p.dst as usize][f].contains(&p.proto) {
                state[k as usize].store(UNSEEN, Ordering::Relaxed);
            }
        }
        let total = which.len();
        let result: io::Result<()> =
            std::thread::scope(|scope| {
                let mut handles = Vec::new();
                for t in 1..threads {
                    let shared = Shared {
                        state: &state,
                        overflowed: &overflowed,
                        sent: &sent,
                        barrier: &barrier,
                        stop: &stop,
                    };
                    handles.push(scope.spawn(move || {
                        self.worker(t, threads, which, attempt, shared, &mut |_| {})
                    }));
                }
                let shared = Shared {
                    state: &state,
                    overflowed: &overflowed,
                    sent: &sent,
                    barrier: &barrier,
                    stop: &stop,
                };
                let mine = self.worker(0, threads, which, attempt, shared, &mut |d| {
                    progress(d, total)
                });
                let mut first = mine;
                for h in handles {
                    let r = h
                        .join()
                        .unwrap_or_else(|_| Err(io::Error::other("a probe thread panicked")));
                    if first.is_ok() {
                        first = r;
                    }
                }
                first
            });
        result?;
        progress(total, total);
        Ok(Found {
            outcomes: which
                .iter()
                .map(|&k| {
                    outcome(
                        state[k as usize].load(Ordering::Relaxed),
                        &self.probes[k as usize],
                    )
                })
                .collect(),
            overflowed: overflowed
                .iter()
                .map(|o| o.load(Ordering::Relaxed))
                .collect(),
        })
    }

    fn worker(
        &self,
        t: usize,
        threads: usize,
        which: &[u32],
        attempt: u8,
        shared: Shared,
        progress: &mut dyn FnMut(usize),
    ) -> io::Result<()> {
        let Shared {
            state,
            overflowed,
            sent,
            barrier,
            stop,
        } = shared;
        let mut watched = Instant::now();
        // The first thread asks the watch now and then; every thread stops when it says so.
        let mut go_on = || {
            if t == 0 && watched.elapsed() >= Duration::from_millis(100) {
                watched = Instant::now();
                if !(self.watch)() {
                    stop.store(true, Ordering::Relaxed);
                }
            }
            !stop.load(Ordering::Relaxed)
        };
        // The receiving sockets of this thread's endpoints.
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let mine: Vec<&Receiver> = self
            .socks
            .recv
            .iter()
            .filter(|r| r.node as usize % threads == t)
            .collect();
        for (i, r) in mine.iter().enumerate() {
            epoll.add(&r.fd, EpollEvent::new(EpollFlags::EPOLLIN, i as u64))?;
        }
        let mut rx = Rx::new();
        let todo: Vec<u32> = which
            .iter()
            .copied()
            .filter(|&k| {
                let p = &self.probes[k as usize];
                p.src as usize % threads == t
                    && state[k as usize].load(Ordering::Relaxed) & UNSEEN == 0
            })
            .collect();
        let mut tx = Tx::new();
        let mut i = 0usize;
        let mut since_report = 0usize;
        let mut failure: Option<io::Error> = None;
        while i < todo.len() && go_on() {
            let first = self.probes[todo[i] as usize];
            let mut j = i;
            tx.clear();
            while j < todo.len() && j - i < BATCH {
                let k = todo[j];
                let p = self.probes[k as usize];
                if p.src != first.src || p.v6 != first.v6 {
                    break;
                }
                let (Some(s), Some(d)) = (
                    self.ends[p.src as usize].addr(p.v6),
                    self.ends[p.dst as usize].addr(p.v6),
                ) else {
                    state[k as usize].fetch_or(FAILED, Ordering::Relaxed);
                    j += 1;
                    continue;
                };
                let n = self.sports.len().max(1) as u64;
                let sport = self
                    .sports
                    .get(((u64::from(k) * 2 + u64::from(attempt)) % n) as usize)
                    .copied()
                    .unwrap_or(1024);
                tx.push(k, s, d, &p, sport, attempt);
                j += 1;
            }
            let sock = self.socks.send[first.src as usize][usize::from(first.v6)].as_ref();
            match sock {
                Some(fd) => {
                    if let Err(e) = tx.send(fd, state, &mut |timeout| {
                        self.drain(&epoll, &mine, &mut rx, state, overflowed, timeout)
                    }) {
                        failure = Some(e);
                        break;
                    }
                }
                None => {
                    for &k in &tx.ids {
                        state[k as usize].fetch_or(FAILED, Ordering::Relaxed);
                    }
                }
            }
            let done = j - i;
            i = j;
            sent.fetch_add(done, Ordering::Relaxed);
            since_report += done;
            if let Err(e) = self.drain(&epoll, &mine, &mut rx, state, overflowed, 0) {
                failure = Some(e);
                break;
            }
            if since_report >= 20_000 {
                since_report = 0;
                progress(sent.load(Ordering::Relaxed));
            }
        }
        // Everyone has sent everything (or failed); then the grace period.
        barrier.wait();
        let deadline = Instant::now() + self.grace;
        loop {
            let now = Instant::now();
            if now >= deadline || failure.is_some() || !go_on() {
                break;
            }
            let ms = deadline
                .saturating_duration_since(now)
                .as_millis()
                .clamp(1, 100) as u16;
            if let Err(e) = self.drain(&epoll, &mine, &mut rx, state, overflowed, ms) {
                failure = Some(e);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Read whatever the sockets of `mine` hold, waiting up to `timeout_ms` for the first.
    fn drain(
        &self,
        epoll: &Epoll,
        mine: &[&Receiver],
        rx: &mut Rx,
        state: &[AtomicU8],
        overflowed: &[AtomicBool],
        timeout_ms: u16,
    ) -> io::Result<()> {
        let mut events = [EpollEvent::empty(); 256];
        let n = match epoll.wait(&mut events, nix::poll::PollTimeout::from(timeout_ms)) {
            Ok(n) => n,
            Err(Errno::EINTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for ev in &events[..n] {
            let Some(r) = mine.get(ev.data() as usize) else {
                continue;
            };
            loop {
                let got = rx.receive(&r.fd)?;
                if got.dropped {
                    overflowed[r.node as usize].store(true, Ordering::Relaxed);
                }
                for m in 0..got.count {
                    let (data, from) = rx.message(m);
                    self.mark(r, data, from, state);
                }
                if got.count < RX_BATCH {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Record what a packet seen by receiver `r` says.
    fn mark(&self, r: &Receiver, data: &[u8], from: Option<IpAddr>, state: &[AtomicU8]) {
        let Some((seen, header_src)) = packet::parse(data, r.v6, r.proto) else {
            return;
        };
        let src = header_src.or(from);
        let here = r.node;
        let probe = |id: u32| self.probes.get(id as usize).map(|p| (id as usize, p));
        let addr_of = |node: u32| self.ends.get(node as usize).and_then(|e| e.addr(r.v6));
        match seen {
            Seen::Probe { id, proto, port } => {
                let Some((k, p)) = probe(id) else { return };
                if p.v6 != r.v6 || p.proto != proto {
                    return;
                }
                if p.dst == here && p.port == port && src == addr_of(p.src) {
                    state[k].fetch_or(ARRIVED, Ordering::Relaxed);
                } else if p.src == here
                    && is_echo_request(p)
                    && port == echo_reply(r.v6)
                    && src == addr_of(p.dst)
                {
                    state[k].fetch_or(ANSWERED, Ordering::Relaxed);
                }
            }
            Seen::Answer { id, proto } => {
                let Some((k, p)) = probe(id) else { return };
                if p.v6 == r.v6 && p.proto == proto && p.src == here && src == addr_of(p.dst) {
                    state[k].fetch_or(ANSWERED, Ordering::Relaxed);
                }
            }
            Seen::Error { id } => {
                let Some((k, p)) = probe(id) else { return };
                if p.v6 == r.v6 && p.src == here {
                    state[k].fetch_or(ICMP_ERROR, Ordering::Relaxed);
                }
            }
        }
    }
}

/// What the workers of a pass share.
#[derive(Clone, Copy)]
struct Shared<'s> {
    state: &'s [AtomicU8],
    overflowed: &'s [AtomicBool],
    sent: &'s AtomicUsize,
    barrier: &'s Barrier,
    stop: &'s AtomicBool,
}

/// Packets per `sendmmsg`.
const BATCH: usize = 64;
/// Packets per `recvmmsg`.
const RX_BATCH: usize = 32;
const RX_SIZE: usize = 2048;

/// A batch of packets of one source and family.
struct Tx {
    buf: Vec<u8>,
    spans: Vec<(usize, usize)>,
    addrs: Vec<Option<SockaddrStorage>>,
    ids: Vec<u32>,
    headers: MultiHeaders<SockaddrStorage>,
}

impl Tx {
    fn new() -> Tx {
        Tx {
            buf: Vec::with_capacity(BATCH * 80),
            spans: Vec::with_capacity(BATCH),
            addrs: Vec::with_capacity(BATCH),
            ids: Vec::with_capacity(BATCH),
            headers: MultiHeaders::preallocate(BATCH, None),
        }
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.spans.clear();
        self.addrs.clear();
        self.ids.clear();
    }

    fn push(&mut self, id: u32, src: IpAddr, dst: IpAddr, p: &Probe, sport: u16, attempt: u8) {
        let at = self.buf.len();
        packet::build(&mut self.buf, src, dst, p.proto, p.port, sport, id, attempt);
        self.spans.push((at, self.buf.len()));
        self.addrs
            .push(Some(SockaddrStorage::from(SocketAddr::new(dst, 0))));
        self.ids.push(id);
    }

    /// Send the batch; a send the sender's own rules refuse is `BLOCKED`. `wait(ms)` drains
    /// the receiving sockets while the sending queue is full.
    fn send(
        &mut self,
        fd: &OwnedFd,
        state: &[AtomicU8],
        wait: &mut dyn FnMut(u16) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut at = 0usize;
        let mut stalls = 0u32;
        while at < self.ids.len() {
            let slices: Vec<[IoSlice; 1]> = self.spans[at..]
                .iter()
                .map(|&(a, b)| [IoSlice::new(&self.buf[a..b])])
                .collect();
            let r = sendmmsg(
                fd.as_raw_fd(),
                &mut self.headers,
                &slices,
                &self.addrs[at..],
                [],
                MsgFlags::MSG_DONTWAIT,
            )
            .map(|res| res.count());
            match r {
                Ok(0) => {}
                Ok(n) => {
                    for &k in &self.ids[at..at + n] {
                        state[k as usize].fetch_or(SENT, Ordering::Relaxed);
                    }
                    at += n;
                    stalls = 0;
                }
                Err(Errno::EAGAIN | Errno::ENOBUFS | Errno::EINTR) => {
                    stalls += 1;
                    if stalls > 2_000 {
                        return Err(io::Error::other("the probes cannot be sent: no buffer"));
                    }
                    wait(1)?;
                }
                Err(e) => {
                    let flag = if matches!(e, Errno::EPERM | Errno::EACCES) {
                        BLOCKED
                    } else {
                        FAILED
                    };
                    state[self.ids[at] as usize].fetch_or(flag, Ordering::Relaxed);
                    at += 1;
                }
            }
        }
        Ok(())
    }
}

/// Received packets.
struct Rx {
    buf: Vec<u8>,
    got: Vec<(usize, Option<IpAddr>)>,
}

struct Got {
    count: usize,
    dropped: bool,
}

impl Rx {
    fn new() -> Rx {
        Rx {
            buf: vec![0; RX_BATCH * RX_SIZE],
            got: Vec::with_capacity(RX_BATCH),
        }
    }

    fn receive(&mut self, fd: &OwnedFd) -> io::Result<Got> {
        self.got.clear();
        // Fresh headers every call: the kernel shrinks each header's address and control
        // lengths to what it wrote, and a reused header would then cut an IPv6 source address
        // short (after an IPv4 one) or drop the overflow count.
        let mut headers: MultiHeaders<SockaddrStorage> =
            MultiHeaders::preallocate(RX_BATCH, Some(nix::cmsg_space!(u32)));
        let mut dropped = false;
        let mut slices: Vec<[IoSliceMut; 1]> = self
            .buf
            .chunks_mut(RX_SIZE)
            .map(|c| [IoSliceMut::new(c)])
            .collect();
        match recvmmsg(
            fd.as_raw_fd(),
            &mut headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(results) => {
                for m in results {
                    if let Ok(cm) = m.cmsgs() {
                        for c in cm {
                            if let ControlMessageOwned::RxqOvfl(d) = c
                                && d > 0
                            {
                                dropped = true;
                            }
                        }
                    }
                    let from = m.address.and_then(|a: SockaddrStorage| {
                        a.as_sockaddr_in6()
                            .map(|s| IpAddr::V6(s.ip()))
                            .or_else(|| a.as_sockaddr_in().map(|s| IpAddr::V4(s.ip())))
                    });
                    self.got.push((m.bytes, from));
                }
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Got {
            count: self.got.len(),
            dropped,
        })
    }

    fn message(&self, m: usize) -> (&[u8], Option<IpAddr>) {
        let (len, from) = self.got[m];
        let at = m * RX_SIZE;
        (&self.buf[at..at + len.min(RX_SIZE)], from)
    }
}
