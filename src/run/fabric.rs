//! The fabric: the process the caller starts as PID 1 of a new PID namespace, in new network
//! and mount namespaces, so the whole run dies with it. It boots one agent per endpoint (each
//! PID 1 of its own PID namespace, with its own network, UTS and mount namespaces), wires each
//! with a veth pair, /32 (/128) routes and permanent neighbour entries over netlink, checks
//! that every endpoint answers, validates and loads the nftables script, asks the kernel how it
//! classifies every endpoint address, sends the probes, watches that every agent is still
//! alive, reads the counters and reports back on stdout as JSON lines ([`super::wire::Report`]).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrStorage, recvfrom, sendto,
    socket,
};

use super::netlink::{Netlink, NfNetlink};
use super::probe::{self, Ends, Pass};
use super::sys;
use super::wire::{
    AgentConfig, Counter, Enforce, Failure, Job, Node, Outcome, PROBE_BYTES, Report, Results,
    Timings, WireProbe,
};
use super::{GATEWAY4, GATEWAY6};

fn fail(what: &str, message: impl Into<String>) -> Failure {
    Failure {
        what: what.into(),
        message: message.into(),
    }
}

fn emit(r: &Report) {
    if let Ok(line) = serde_json::to_string(r) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }
}

fn progress(phase: &str, done: usize, total: usize) {
    emit(&Report::Progress {
        phase: phase.into(),
        done,
        total,
    });
}

/// Read the job: a JSON line, then its probes.
fn read_job() -> Result<(Job, Vec<WireProbe>), Failure> {
    let mut input = BufReader::new(std::io::stdin().lock());
    let mut line = String::new();
    input
        .read_line(&mut line)
        .map_err(|e| fail("internal", format!("cannot read the job: {e}")))?;
    let job: Job =
        serde_json::from_str(&line).map_err(|e| fail("internal", format!("bad job: {e}")))?;
    let mut bytes = vec![0u8; job.probes.saturating_mul(PROBE_BYTES)];
    input
        .read_exact(&mut bytes)
        .map_err(|e| fail("internal", format!("cannot read the probes: {e}")))?;
    let probes = super::wire::decode_probes(&bytes).map_err(|e| fail("internal", e))?;
    Ok((job, probes))
}

/// The fabric's entry point (exit status 0; success or failure goes back as a report).
pub fn main() -> i32 {
    let report = match read_job().and_then(|(j, p)| run(&j, &p)) {
        Ok(r) => Report::Done(r),
        Err(f) => Report::Failed(f),
    };
    emit(&report);
    0
}

/// A booted endpoint.
struct Container {
    child: Child,
    /// Held open: the agent ends when it closes.
    _stdin: ChildStdin,
    net: File,
}

/// The hardware addresses of endpoint `i`'s veth pair (locally administered): the fabric's
/// end, the endpoint's end.
fn macs(i: usize) -> ([u8; 6], [u8; 6]) {
    let b = (i as u32).to_be_bytes();
    (
        [0x02, 0x67, b[0], b[1], b[2], b[3]],
        [0x02, 0x65, b[0], b[1], b[2], b[3]],
    )
}

/// Interface indexes: the fabric's end of endpoint `i`'s pair, and every endpoint's `eth0`.
fn fabric_index(i: usize) -> u32 {
    1000 + i as u32
}
const ETH0_INDEX: u32 = 100;

fn run(job: &Job, wire: &[WireProbe]) -> Result<Results, Failure> {
    let t0 = Instant::now();
    let none: Option<&str> = None;
    // Nothing mounted from here on may propagate back to the caller's mount namespace.
    nix::mount::mount(
        none,
        "/",
        none,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        none,
    )
    .map_err(|e| {
        fail(
            "namespaces",
            format!("cannot make the mount tree private: {e}"),
        )
    })?;
    // This PID namespace's own /proc: child PIDs are numbers of this namespace.
    nix::mount::mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        none,
    )
    .map_err(|e| fail("namespaces", format!("cannot mount /proc: {e}")))?;
    sys::raise_nofile();
    let home = File::open("/proc/self/ns/net").map_err(|e| {
        fail(
            "namespaces",
            format!("cannot open the fabric's namespace: {e}"),
        )
    })?;
    let any_v6 = job.nodes.iter().any(|n| n.v6.is_some());
    sys::sysctl("net/ipv4/ip_forward", "1")
        .map_err(|e| fail("boot", format!("cannot enable forwarding: {e}")))?;
    sys::sysctl("net/ipv4/ping_group_range", "0 2147483647")
        .map_err(|e| fail("boot", format!("cannot allow ICMP echo sockets: {e}")))?;
    for c in ["all", "default"] {
        let _ = sys::sysctl(&format!("net/ipv4/conf/{c}/rp_filter"), "0");
    }
    let _ = sys::sysctl("net/ipv4/icmp_ratemask", "0");
    let _ = sys::sysctl("net/ipv4/icmp_ratelimit", "0");
    sys::conntrack_timeouts();
    if any_v6 {
        for (k, v) in [
            ("net/ipv6/conf/all/forwarding", "1"),
            ("net/ipv6/conf/all/accept_dad", "0"),
            ("net/ipv6/conf/default/accept_dad", "0"),
            ("net/ipv6/icmp/ratelimit", "0"),
        ] {
            sys::sysctl(k, v).map_err(|e| {
                fail(
                    "ipv6",
                    format!("the policy has IPv6 endpoints but the kernel has no IPv6 ({k}: {e})"),
                )
            })?;
        }
    }

    // Containers: spawn every agent first, then wait for them, so they start in parallel.
    let exe = "/proc/self/exe";
    let mut pending: Vec<(Child, ChildStdin)> = Vec::with_capacity(job.nodes.len());
    for n in &job.nodes {
        let mut cmd = Command::new(exe);
        cmd.args([
            "run",
            super::AGENT_FLAG,
            "endpoint",
            super::RUN_ID_FLAG,
            &job.run_id,
            "--endpoint",
            &n.name,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        // The agent makes its own network, UTS and mount namespaces as it starts (a network
        // namespace takes milliseconds to make): the agents make theirs in parallel instead
        // of this loop waiting for each.
        let mut child = sys::spawn_namespaced(&mut cmd, CloneFlags::empty())
            .map_err(|e| fail("namespaces", format!("cannot start a container: {e}")))?;
        let Some(mut stdin) = child.stdin.take() else {
            return Err(fail("internal", "no pipe to the agent"));
        };
        let cfg = AgentConfig {
            host: n.host.clone(),
            v6: n.v6.is_some(),
        };
        let line = serde_json::to_string(&cfg).map_err(|e| fail("internal", e.to_string()))?;
        stdin
            .write_all(line.as_bytes())
            .and_then(|_| stdin.write_all(b"\n"))
            .map_err(|e| fail("boot", format!("cannot configure `{}`: {e}", n.name)))?;
        pending.push((child, stdin));
    }
    let total = job.nodes.len();
    let mut boxes: Vec<Container> = Vec::with_capacity(total);
    for (i, (mut child, stdin)) in pending.into_iter().enumerate() {
        let name = &job.nodes[i].name;
        let mut ready = String::new();
        if let Some(out) = child.stdout.as_mut() {
            let _ = BufReader::new(out).read_line(&mut ready);
        }
        if ready.trim() != "ready" {
            return Err(fail(
                "boot",
                format!("the agent of `{name}` did not start (see its message above)"),
            ));
        }
        let net = File::open(format!("/proc/{}/ns/net", child.id())).map_err(|e| {
            fail(
                "boot",
                format!("cannot open the namespace of `{name}`: {e}"),
            )
        })?;
        boxes.push(Container {
            child,
            _stdin: stdin,
            net,
        });
        if (i + 1) % 64 == 0 || i + 1 == total {
            progress("boot", i + 1, total);
        }
    }
    let boot_ms = t0.elapsed().as_millis() as u64;
    let watch = Watch {
        pids: boxes.iter().map(|c| c.child.id() as i32).collect(),
        names: job.nodes.iter().map(|n| n.name.clone()).collect(),
        dead: std::sync::Mutex::new(Vec::new()),
    };

    // Wiring.
    let t1 = Instant::now();
    wire_all(job, &boxes, &home)?;
    let nets: Vec<File> = boxes
        .iter()
        .map(|c| c.net.try_clone())
        .collect::<Result<_, _>>()
        .map_err(|e| fail("internal", e.to_string()))?;
    // Before any rule: the fabric must reach every endpoint.
    check_wiring(&job.nodes)?;
    watch.check()?;
    let wire_ms = t1.elapsed().as_millis() as u64;

    // Rules: checked first, then loaded where they are enforced.
    let t2 = Instant::now();
    let mut load_notes = Vec::new();
    nft(&job.script, &["-c", "-f", "-"]).map_err(|e| fail_nft("check", e))?;
    match job.enforce {
        Enforce::Fabric => {
            nft(&job.script, &["-f", "-"]).map_err(|e| fail_nft("load", e))?;
        }
        Enforce::Endpoint => {
            load_everywhere(job, &boxes, &home, &mut load_notes)?;
        }
    }
    let load_ms = t2.elapsed().as_millis() as u64;
    watch.check()?;

    // Classification: the kernel's own lookup of every endpoint address in the class maps.
    let t3 = Instant::now();
    let (classes, class_mismatches) = classify(job, &nets)?;
    let classify_ms = t3.elapsed().as_millis() as u64;

    // Probes.
    let t4 = Instant::now();
    let ends: Vec<Ends> = job
        .nodes
        .iter()
        .map(|n| Ends { v4: n.v4, v6: n.v6 })
        .collect();
    let probes: Vec<probe::Probe> = wire
        .iter()
        .map(|w| probe::Probe {
            src: w.src,
            dst: w.dst,
            v6: w.v6,
            proto: w.proto,
            port: w.port,
            answer: w.answer,
        })
        .collect();
    let mut protos: [Vec<u8>; 2] = Default::default();
    for w in wire.iter().filter(|w| w.carried) {
        protos[usize::from(w.v6)].push(w.proto);
    }
    for p in &mut protos {
        p.sort_unstable();
        p.dedup();
    }
    let socks = probe::open(&nets, &home, &ends, &protos)
        .map_err(|e| fail("probe", format!("cannot open the probe sockets: {e}")))?;
    let timeout = Duration::from_millis(u64::from(job.timeout_ms.clamp(50, 10_000)));
    let dports: Vec<u16> = wire
        .iter()
        .filter(|w| matches!(w.proto, 6 | 17 | 132))
        .map(|w| w.port)
        .collect();
    let sports = probe::source_ports(&dports);
    let alive = || watch.alive();
    let pass = Pass {
        socks: &socks,
        ends: &ends,
        probes: &probes,
        grace: timeout,
        threads: threads(),
        watch: &alive,
        sports: &sports,
    };
    // Conntrack keys a connection of a protocol without ports by its two addresses alone, so
    // a probe from b to a after an allowed one from a to b would pass as its reply: those go
    // in a second wave, after conntrack forgets the first.
    let waves = |list: &[u32]| -> [Vec<u32>; 2] {
        let mut w: [Vec<u32>; 2] = Default::default();
        for &k in list {
            let p = &wire[k as usize];
            let portless = !matches!(p.proto, 1 | 6 | 17 | 58 | 132);
            w[usize::from(portless && p.src > p.dst)].push(k);
        }
        w
    };
    let carried: Vec<u32> = (0..wire.len() as u32)
        .filter(|&k| wire[k as usize].carried)
        .collect();
    let mut outcomes = vec![Outcome::Unsupported; wire.len()];
    let mut overflowed = vec![false; job.nodes.len()];
    for (w, list) in waves(&carried).iter().enumerate() {
        if list.is_empty() {
            continue;
        }
        if w > 0 {
            forget_connections(job, &nets, &home)?;
        }
        let found = pass
            .run(list, 0, &mut |d, t| progress("probe", d, t))
            .map_err(|e| fail("probe", e.to_string()))?;
        watch.check()?;
        for (&k, o) in list.iter().zip(&found.outcomes) {
            outcomes[k as usize] = *o;
        }
        for (o, f) in overflowed.iter_mut().zip(found.overflowed) {
            *o |= f;
        }
    }
    // A silence where the evaluator allows (or where a receiving socket lost packets) gets
    // one more, slower try: a lost packet must not pass for a drop.
    let again: Vec<u32> = carried
        .iter()
        .copied()
        .filter(|&k| {
            let (w, o) = (&wire[k as usize], outcomes[k as usize]);
            let doubt = overflowed[w.dst as usize] || overflowed[w.src as usize];
            (w.retry && o != Outcome::Open)
                || (doubt && matches!(o, Outcome::Timeout | Outcome::NoAnswer))
        })
        .collect();
    if !again.is_empty() {
        let slow = Pass {
            grace: timeout.max(Duration::from_millis(1000)),
            ..pass
        };
        for list in waves(&again) {
            if list.is_empty() {
                continue;
            }
            forget_connections(job, &nets, &home)?;
            let got = slow
                .run(&list, 1, &mut |_, _| {})
                .map_err(|e| fail("probe", e.to_string()))?;
            watch.check()?;
            for (&k, o) in list.iter().zip(got.outcomes) {
                outcomes[k as usize] = o;
            }
        }
    }
    let probe_ms = t4.elapsed().as_millis() as u64;

    // An endpoint whose agent died is not the container the run vouches for.
    watch.check()?;

    let mut notes = load_notes;
    let counters = match job.enforce {
        Enforce::Fabric => counters(&job.table).unwrap_or_else(|e| {
            notes.push(format!("counters unavailable: {e}"));
            Vec::new()
        }),
        Enforce::Endpoint => {
            notes.push("counters live in every endpoint's table; not collected".into());
            Vec::new()
        }
    };
    // The agents end when their standard input closes; PID 1 of this namespace ending kills
    // whatever is left.
    drop(watch);
    for mut c in boxes {
        drop(c._stdin);
        let _ = c.child.kill();
        let _ = c.child.wait();
    }
    Ok(Results {
        outcomes: super::wire::encode(&outcomes),
        retried: again.len(),
        counters,
        timings: Timings {
            boot_ms,
            wire_ms,
            load_ms,
            classify_ms,
            probe_ms,
        },
        notes,
        classes,
        class_mismatches,
    })
}

/// The endpoints' agents, watched: an agent that ends before the run does takes its
/// endpoint's results with it (exit 2, naming the endpoint).
struct Watch {
    pids: Vec<i32>,
    names: Vec<String>,
    /// (endpoint, how it ended), as `waitpid` reaped them.
    dead: std::sync::Mutex<Vec<(usize, String)>>,
}

impl Watch {
    /// Whether every agent is still running.
    fn alive(&self) -> bool {
        use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
        let Ok(mut dead) = self.dead.lock() else {
            return false;
        };
        for (i, &pid) in self.pids.iter().enumerate() {
            if dead.iter().any(|(d, _)| *d == i) {
                continue;
            }
            let how = match waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => format!("exited with status {code}"),
                Ok(WaitStatus::Signaled(_, sig, _)) => format!("killed by {sig}"),
                _ => continue,
            };
            dead.push((i, how));
        }
        dead.is_empty()
    }

    /// An error naming every endpoint whose agent died.
    fn check(&self) -> Result<(), Failure> {
        if self.alive() {
            return Ok(());
        }
        let dead = self.dead.lock().map(|d| d.clone()).unwrap_or_default();
        let list: Vec<String> = dead
            .iter()
            .map(|(i, how)| format!("`{}` ({how})", self.names[*i]))
            .collect();
        Err(fail(
            "endpoint",
            format!(
                "the agent of endpoint {} died during the run: its namespace is no longer the \
                 container the run set up, so the run reports no results",
                list.join(", ")
            ),
        ))
    }
}

/// Per-endpoint enforcement: `nft` loads the script in the first endpoint; every other endpoint
/// gets a copy of the objects the kernel made of it (dumped over netlink and created again in
/// one transaction), so that the script is parsed once, not once per endpoint. If the copy
/// cannot be made, `nft` loads the script in every endpoint, one per core at a time.
fn load_everywhere(
    job: &Job,
    boxes: &[Container],
    home: &File,
    notes: &mut Vec<String>,
) -> Result<(), Failure> {
    let total = boxes.len();
    let inside = |c: &Container, what: &mut dyn FnMut() -> Result<(), Failure>| {
        sys::enter_net(&c.net).map_err(|e| fail("namespaces", e.to_string()))?;
        let r = what();
        sys::enter_net(home).map_err(|e| fail("namespaces", e.to_string()))?;
        r
    };
    let Some(first) = boxes.first() else {
        return Ok(());
    };
    let mut child = None;
    inside(first, &mut || {
        child = Some(spawn_nft(&["-f", "-"]).map_err(|e| fail_nft("load", e))?);
        Ok(())
    })?;
    if let Some(c) = child {
        finish_nft(c, &job.script).map_err(|e| fail_nft("load", e))?;
    }
    let mut copy = None;
    inside(first, &mut || {
        copy = Some(NfNetlink::open().and_then(|mut nf| nf.copy_table(&job.table)));
        Ok(())
    })?;
    let copy = match copy {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            notes.push(format!(
                "the loaded table could not be copied ({e}): nft loaded it in every endpoint"
            ));
            None
        }
        None => None,
    };
    let rest = &boxes[1..];
    if let Some(copy) = &copy {
        let nets: Vec<&File> = rest.iter().map(|c| &c.net).collect();
        in_each_namespace(&nets, |i| {
            NfNetlink::open()
                .and_then(|mut nf| nf.load_copy(copy))
                .map_err(|e| {
                    fail(
                        "load",
                        format!("cannot copy the table into endpoint {}: {e}", i + 2),
                    )
                })
        })?;
        progress("load", total, total);
        return Ok(());
    }
    // One nft per core at a time, each started from inside its endpoint's namespace.
    let par = threads().max(2);
    for (chunk_no, chunk) in rest.chunks(par).enumerate() {
        let mut running = Vec::new();
        for c in chunk {
            let mut child = None;
            inside(c, &mut || {
                child = Some(spawn_nft(&["-f", "-"]).map_err(|e| fail_nft("load", e))?);
                Ok(())
            })?;
            running.extend(child);
        }
        for child in running {
            finish_nft(child, &job.script).map_err(|e| fail_nft("load", e))?;
        }
        let done = (1 + chunk_no * par + chunk.len()).min(total);
        progress("load", done, total);
    }
    Ok(())
}

/// Make conntrack forget every connection where the rules are (the fabric, or every
/// endpoint).
fn forget_connections(job: &Job, nets: &[File], home: &File) -> Result<(), Failure> {
    let flush = || {
        NfNetlink::open()
            .and_then(|mut nf| nf.flush_conntrack())
            .map_err(|e| fail("probe", format!("cannot flush conntrack: {e}")))
    };
    match job.enforce {
        Enforce::Fabric => flush(),
        Enforce::Endpoint => {
            for net in nets {
                sys::enter_net(net).map_err(|e| fail("namespaces", e.to_string()))?;
                let r = flush();
                sys::enter_net(home).map_err(|e| fail("namespaces", e.to_string()))?;
                r?;
            }
            Ok(())
        }
    }
}

/// Worker threads: one per core.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8))
}

/// A veth pair per endpoint, its end inside the endpoint; addresses, routes both ways and
/// permanent neighbour entries on both sides.
fn wire_all(job: &Job, boxes: &[Container], home: &File) -> Result<(), Failure> {
    let mut nl = Netlink::open().map_err(|e| fail("netlink", e.to_string()))?;
    nl.link_up(1)
        .and_then(|_| nl.addr(1, IpAddr::V4(GATEWAY4), 32))
        .and_then(|_| nl.flush())
        .map_err(|e| fail("boot", format!("cannot set up the fabric's lo: {e}")))?;
    let total = job.nodes.len();
    for (i, (n, c)) in job.nodes.iter().zip(boxes).enumerate() {
        let name = &n.name;
        let wire = |e: std::io::Error| fail("boot", format!("cannot wire `{name}`: {e}"));
        let (fab_mac, ep_mac) = macs(i);
        let here = fabric_index(i);
        nl.veth(
            &format!("e{i}"),
            here,
            fab_mac,
            "eth0",
            ETH0_INDEX,
            ep_mac,
            c.net.as_fd(),
        )
        .map_err(wire)?;
        nl.link_up(here).map_err(wire)?;
        if let Some(a) = n.v4 {
            nl.route(IpAddr::V4(a), 32, here, None, false)
                .and_then(|_| nl.neigh(here, IpAddr::V4(a), ep_mac))
                .map_err(wire)?;
        }
        if let Some(a) = n.v6 {
            nl.addr(here, IpAddr::V6(GATEWAY6), 64)
                .and_then(|_| nl.route(IpAddr::V6(a), 128, here, None, false))
                .and_then(|_| nl.neigh(here, IpAddr::V6(a), ep_mac))
                .map_err(wire)?;
        }
        nl.flush().map_err(wire)?;
        // The endpoint's side, through a netlink socket opened inside its namespace.
        sys::enter_net(&c.net).map_err(|e| fail("namespaces", e.to_string()))?;
        let inside = Netlink::open();
        sys::enter_net(home).map_err(|e| fail("namespaces", e.to_string()))?;
        let mut ep = inside.map_err(wire)?;
        ep.link_up(1)
            .and_then(|_| ep.link_up(ETH0_INDEX))
            .map_err(wire)?;
        if let Some(a) = n.v4 {
            ep.addr(ETH0_INDEX, IpAddr::V4(a), 32)
                .and_then(|_| ep.neigh(ETH0_INDEX, IpAddr::V4(GATEWAY4), fab_mac))
                .and_then(|_| {
                    ep.route(
                        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                        0,
                        ETH0_INDEX,
                        Some(IpAddr::V4(GATEWAY4)),
                        true,
                    )
                })
                .map_err(wire)?;
        }
        if let Some(a) = n.v6 {
            ep.addr(ETH0_INDEX, IpAddr::V6(a), 128)
                .and_then(|_| ep.neigh(ETH0_INDEX, IpAddr::V6(GATEWAY6), fab_mac))
                .and_then(|_| {
                    ep.route(
                        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                        0,
                        ETH0_INDEX,
                        Some(IpAddr::V6(GATEWAY6)),
                        false,
                    )
                })
                .map_err(wire)?;
        }
        ep.flush().map_err(wire)?;
        if (i + 1) % 64 == 0 || i + 1 == total {
            progress("wire", i + 1, total);
        }
    }
    Ok(())
}

/// Ping every endpoint address from the fabric, every 20 ms until each has answered, for at
/// most 5 s: a silent endpoint means the fabric is broken before any rule (exit 2). Nothing
/// waits on neighbour resolution (the entries are permanent), so the first round trip after
/// the links' queues are up answers.
fn check_wiring(nodes: &[Node]) -> Result<(), Failure> {
    let targets: Vec<(usize, IpAddr)> = nodes
        .iter()
        .enumerate()
        .flat_map(|(i, n)| {
            n.v4.map(|a| (i, IpAddr::V4(a)))
                .into_iter()
                .chain(n.v6.map(|a| (i, IpAddr::V6(a))))
        })
        .collect();
    let open = |v6: bool| {
        let (family, proto) = if v6 {
            (AddressFamily::Inet6, SockProtocol::IcmpV6)
        } else {
            (AddressFamily::Inet, SockProtocol::Icmp)
        };
        socket(
            family,
            SockType::Datagram,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            proto,
        )
    };
    let mut socks = [None, None];
    for (f, v6) in [(0usize, false), (1, true)] {
        if targets.iter().any(|(_, a)| a.is_ipv6() == v6) {
            socks[f] = Some(
                open(v6)
                    .map_err(|e| fail("boot", format!("cannot open an ICMP echo socket: {e}")))?,
            );
        }
    }
    let mut answered = vec![false; targets.len()];
    let start = Instant::now();
    let mut buf = [0u8; 256];
    while start.elapsed() < Duration::from_secs(5) {
        for (k, (_, a)) in targets.iter().enumerate() {
            if answered[k] {
                continue;
            }
            let ty = if a.is_ipv6() { 128 } else { 8 };
            let seq = (k as u16).to_be_bytes();
            let msg = [ty, 0, 0, 0, 0, 0, seq[0], seq[1], b'g', b'b', b'p', b'c'];
            if let Some(fd) = &socks[usize::from(a.is_ipv6())] {
                let _ = sendto(
                    fd.as_raw_fd(),
                    &msg,
                    &SockaddrStorage::from(SocketAddr::new(*a, 0)),
                    MsgFlags::MSG_DONTWAIT,
                );
            }
        }
        let round = Instant::now();
        while round.elapsed() < Duration::from_millis(20) {
            for fd in socks.iter().flatten() {
                while let Ok((_, Some(from))) =
                    recvfrom::<SockaddrStorage>(fd.as_raw_fd(), &mut buf)
                {
                    let ip = from
                        .as_sockaddr_in()
                        .map(|s| IpAddr::V4(s.ip()))
                        .or_else(|| from.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())));
                    if let Some(k) = targets.iter().position(|(_, a)| Some(*a) == ip) {
                        answered[k] = true;
                    }
                }
            }
            if answered.iter().all(|a| *a) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let silent: Vec<usize> = (0..targets.len()).filter(|&k| !answered[k]).collect();
    match silent.first() {
        None => Ok(()),
        Some(&k) => {
            let (i, a) = targets[k];
            Err(fail(
                "boot",
                format!(
                    "the fabric is broken before any rule: `{}` does not answer at {a} ({} of {} addresses silent)",
                    nodes[i].name,
                    silent.len(),
                    targets.len()
                ),
            ))
        }
    }
}

/// The kernel's class of every endpoint address (the value of the class maps' element holding
/// it), from the fabric's table or, with per-endpoint enforcement, from every endpoint's table
/// (those that differ from the first are listed).
#[allow(clippy::type_complexity)]
fn classify(job: &Job, nets: &[File]) -> Result<(Vec<[Option<u32>; 2]>, Vec<String>), Failure> {
    let v4: Vec<(usize, IpAddr)> = job
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| n.v4.map(|a| (i, IpAddr::V4(a))))
        .collect();
    let v6: Vec<(usize, IpAddr)> = job
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| n.v6.map(|a| (i, IpAddr::V6(a))))
        .collect();
    let lookup = |nf: &mut NfNetlink| -> Result<Vec<[Option<u32>; 2]>, Failure> {
        let mut out = vec![[None, None]; job.nodes.len()];
        for (f, list, map) in [(0usize, &v4, "class4"), (1, &v6, "class6")] {
            if list.is_empty() {
                continue;
            }
            let keys: Vec<IpAddr> = list.iter().map(|(_, a)| *a).collect();
            let got = nf
                .map_lookup(&job.table, map, &keys)
                .map_err(|e| fail("load", format!("cannot look up the class map `{map}`: {e}")))?;
            for ((i, _), g) in list.iter().zip(got) {
                out[*i][f] = g;
            }
        }
        Ok(out)
    };
    let open = || NfNetlink::open().map_err(|e| fail("netlink", e.to_string()));
    match job.enforce {
        Enforce::Fabric => Ok((lookup(&mut open()?)?, Vec::new())),
        Enforce::Endpoint => {
            let all: Vec<&File> = nets.iter().collect();
            let tables = in_each_namespace(&all, |_| lookup(&mut open()?))?;
            let first = tables.first().cloned().unwrap_or_default();
            let mut mismatches = Vec::new();
            for (n, got) in job.nodes.iter().zip(&tables).skip(1) {
                for (i, (a, b)) in first.iter().zip(got).enumerate() {
                    if a != b && mismatches.len() < 20 {
                        mismatches.push(format!(
                            "the table of `{}` classifies `{}` as {b:?}, the first endpoint's as {a:?}",
                            n.name, job.nodes[i].name
                        ));
                    }
                }
            }
            Ok((first, mismatches))
        }
    }
}

/// Run `f(i)` inside every namespace `nets[i]`, one thread per core (`setns` moves only the
/// calling thread); the results in order, or the first failure.
fn in_each_namespace<T: Send>(
    nets: &[&File],
    f: impl Fn(usize) -> Result<T, Failure> + Sync,
) -> Result<Vec<T>, Failure> {
    let threads = threads().min(nets.len()).max(1);
    let results: Vec<Vec<(usize, Result<T, Failure>)>> = std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for i in (t..nets.len()).step_by(threads) {
                        let r = sys::enter_net(nets[i])
                            .map_err(|e| fail("namespaces", e.to_string()))
                            .and_then(|_| f(i));
                        let stop = r.is_err();
                        out.push((i, r));
                        if stop {
                            break;
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![(0, Err(fail("internal", "a thread panicked")))])
            })
            .collect()
    });
    let mut all: Vec<(usize, Result<T, Failure>)> = results.into_iter().flatten().collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

fn fail_nft(phase: &str, e: String) -> Failure {
    if e.contains("Operation not supported") || e.contains("Protocol not supported") {
        fail(
            "nftables",
            format!("the kernel lacks nf_tables (nft {phase}: {e})"),
        )
    } else if e.contains("cannot run nft") {
        fail("nft", e)
    } else {
        fail("load", format!("nft {phase} failed: {e}"))
    }
}

fn spawn_nft(args: &[&str]) -> Result<Child, String> {
    Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft: {e}"))
}

fn finish_nft(mut child: Child, input: &str) -> Result<String, String> {
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn nft(input: &str, args: &[&str]) -> Result<String, String> {
    finish_nft(spawn_nft(args)?, input)
}

/// The named counters of the table, from `nft -j list counters`.
fn counters(table: &str) -> Result<Vec<Counter>, String> {
    let text = nft("", &["-j", "list", "counters", "table", "inet", table])?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for item in v["nftables"].as_array().into_iter().flatten() {
        let c = &item["counter"];
        if let Some(name) = c["name"].as_str() {
            out.push(Counter {
                name: name.to_string(),
                packets: c["packets"].as_u64().unwrap_or(0),
                bytes: c["bytes"].as_u64().unwrap_or(0),
            });
        }
    }
    Ok(out)
}
