//! The fabric: the process the caller starts as PID 1 of a new PID namespace, in new network
//! and mount namespaces, so the whole run dies with it. It boots one agent per endpoint (each
//! PID 1 of its own PID namespace, with its own network, UTS and mount namespaces), wires each
//! with a veth pair and /32 (/128) routes over netlink, checks that every endpoint answers,
//! validates and loads the nftables script, probes, reads the counters and reports back on
//! stdout as JSON lines ([`super::wire::Report`]).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;

use super::netlink::Netlink;
use super::probe::{self, Target};
use super::sys;
use super::wire::{
    AgentConfig, Counter, Enforce, Failure, Job, Kind, Outcome, Report, Results, Timings,
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

/// The fabric's entry point (exit status 0; success or failure goes back as a report).
pub fn main() -> i32 {
    let mut line = String::new();
    let job: Result<Job, Failure> = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| fail("internal", format!("cannot read the job: {e}")))
        .and_then(|_| {
            serde_json::from_str(&line).map_err(|e| fail("internal", format!("bad job: {e}")))
        });
    let report = match job.and_then(|j| run(&j)) {
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

fn run(job: &Job) -> Result<Results, Failure> {
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
    let nofile = sys::raise_nofile();
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
    let mut nl = Netlink::open().map_err(|e| fail("netlink", e.to_string()))?;
    nl.link_up(1)
        .and_then(|_| nl.addr(1, IpAddr::V4(GATEWAY4), 32))
        .map_err(|e| fail("boot", format!("cannot set up the fabric's lo: {e}")))?;

    // Containers: spawn every agent first, then wait for them, so they start in parallel.
    let exe = "/proc/self/exe";
    let mut pending: Vec<(Child, ChildStdin)> = Vec::with_capacity(job.nodes.len());
    for n in &job.nodes {
        let mut cmd = Command::new(exe);
        cmd.args(["run", super::AGENT_FLAG, "endpoint"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = sys::spawn_namespaced(
            &mut cmd,
            CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWNS,
        )
        .map_err(|e| fail("namespaces", format!("cannot start a container: {e}")))?;
        let Some(mut stdin) = child.stdin.take() else {
            return Err(fail("internal", "no pipe to the agent"));
        };
        let cfg = AgentConfig {
            host: n.host.clone(),
            v4: n.v4.is_some(),
            v6: n.v6.is_some(),
            listen: job.listen.clone(),
        };
        let line = serde_json::to_string(&cfg).map_err(|e| fail("internal", e.to_string()))?;
        stdin
            .write_all(line.as_bytes())
            .and_then(|_| stdin.write_all(b"\n"))
            .map_err(|e| fail("boot", format!("cannot configure `{}`: {e}", n.host)))?;
        pending.push((child, stdin));
    }
    let total = job.nodes.len();
    let mut boxes: Vec<Container> = Vec::with_capacity(total);
    for (i, (mut child, stdin)) in pending.into_iter().enumerate() {
        let host = &job.nodes[i].host;
        let mut ready = String::new();
        if let Some(out) = child.stdout.as_mut() {
            let _ = BufReader::new(out).read_line(&mut ready);
        }
        if ready.trim() != "ready" {
            return Err(fail(
                "boot",
                format!("the agent of `{host}` did not start (see its message above)"),
            ));
        }
        let net = File::open(format!("/proc/{}/ns/net", child.id())).map_err(|e| {
            fail(
                "boot",
                format!("cannot open the namespace of `{host}`: {e}"),
            )
        })?;
        boxes.push(Container {
            child,
            _stdin: stdin,
            net,
        });
        progress("boot", i + 1, total);
    }
    // Wiring: a veth per endpoint, its end inside the endpoint, routes both ways.
    for (i, (n, c)) in job.nodes.iter().zip(&boxes).enumerate() {
        let host = &n.host;
        let name = format!("e{i}");
        let wire = |e: std::io::Error| fail("boot", format!("cannot wire `{host}`: {e}"));
        nl.veth(&name, "eth0", c.net.as_fd()).map_err(wire)?;
        let here = nix::net::if_::if_nametoindex(name.as_str())
            .map_err(|e| fail("boot", format!("veth of `{host}`: {e}")))?;
        nl.link_up(here).map_err(wire)?;
        if let Some(a) = n.v4 {
            nl.route(IpAddr::V4(a), 32, here, None, false)
                .map_err(wire)?;
        }
        if let Some(a) = n.v6 {
            nl.addr(here, IpAddr::V6(GATEWAY6), 64).map_err(wire)?;
            nl.route(IpAddr::V6(a), 128, here, None, false)
                .map_err(wire)?;
        }
        // The endpoint's side, through a netlink socket opened inside its namespace.
        sys::enter_net(&c.net).map_err(|e| fail("namespaces", e.to_string()))?;
        let inside = Netlink::open().and_then(|nl| {
            nix::net::if_::if_nametoindex("eth0")
                .map(|i| (nl, i))
                .map_err(Into::into)
        });
        sys::enter_net(&home).map_err(|e| fail("namespaces", e.to_string()))?;
        let (mut ep, eth0) = inside.map_err(wire)?;
        ep.link_up(1).and_then(|_| ep.link_up(eth0)).map_err(wire)?;
        if let Some(a) = n.v4 {
            ep.addr(eth0, IpAddr::V4(a), 32).map_err(wire)?;
            ep.route(
                IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                0,
                eth0,
                Some(IpAddr::V4(GATEWAY4)),
                true,
            )
            .map_err(wire)?;
        }
        if let Some(a) = n.v6 {
            ep.addr(eth0, IpAddr::V6(a), 128).map_err(wire)?;
            ep.route(
                IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                0,
                eth0,
                Some(IpAddr::V6(GATEWAY6)),
                false,
            )
            .map_err(wire)?;
        }
    }
    let nets: Vec<File> = boxes
        .iter()
        .map(|c| c.net.try_clone())
        .collect::<Result<_, _>>()
        .map_err(|e| fail("internal", e.to_string()))?;
    // Before any rule: the fabric must reach every endpoint (this also fills the neighbour
    // tables on both sides).
    let mut base: Vec<(usize, Target)> = Vec::new();
    for (i, n) in job.nodes.iter().enumerate() {
        let addrs = n.v4.map(IpAddr::V4).into_iter().chain(n.v6.map(IpAddr::V6));
        for a in addrs {
            base.push((
                i,
                Target {
                    net: None,
                    dst: SocketAddr::new(a, 0),
                    kind: Kind::Echo,
                },
            ));
        }
    }
    let mut silent: Vec<usize> = (0..base.len()).collect();
    for _ in 0..5 {
        let targets: Vec<Target> = silent.iter().map(|&k| base[k].1).collect();
        let got = probe::probe_all(
            &nets,
            &home,
            &targets,
            Duration::from_millis(600),
            20_000,
            &mut |_, _| {},
        )
        .map_err(|e| fail("boot", format!("cannot probe: {e}")))?;
        silent = silent
            .into_iter()
            .zip(got)
            .filter(|(_, o)| *o != Outcome::Open)
            .map(|(k, _)| k)
            .collect();
        if silent.is_empty() {
            break;
        }
    }
    if let Some(&k) = silent.first() {
        let (i, t) = base[k];
        return Err(fail(
            "boot",
            format!(
                "the fabric is broken before any rule: `{}` does not answer at {} ({} of {} addresses silent)",
                job.nodes[i].host,
                t.dst.ip(),
                silent.len(),
                base.len()
            ),
        ));
    }
    let boot_ms = t0.elapsed().as_millis() as u64;

    // Rules: checked first, then loaded where they are enforced.
    let t1 = Instant::now();
    nft(&job.script, &["-c", "-f", "-"]).map_err(|e| fail_nft("check", e))?;
    match job.enforce {
        Enforce::Fabric => {
            nft(&job.script, &["-f", "-"]).map_err(|e| fail_nft("load", e))?;
        }
        Enforce::Endpoint => {
            // A few loads at a time, each started from inside its endpoint's namespace.
            for (chunk_no, chunk) in boxes.chunks(4).enumerate() {
                let mut running = Vec::new();
                for c in chunk {
                    sys::enter_net(&c.net).map_err(|e| fail("namespaces", e.to_string()))?;
                    let child = spawn_nft(&["-f", "-"]);
                    sys::enter_net(&home).map_err(|e| fail("namespaces", e.to_string()))?;
                    running.push(child.map_err(|e| fail_nft("load", e))?);
                }
                for child in running {
                    finish_nft(child, &job.script).map_err(|e| fail_nft("load", e))?;
                }
                progress("load", (chunk_no * 4 + chunk.len()).min(total), total);
            }
        }
    }
    let load_ms = t1.elapsed().as_millis() as u64;

    // Probes.
    let t2 = Instant::now();
    let targets: Vec<Target> = job
        .probes
        .iter()
        .map(|p| {
            let n = &job.nodes[p.dst as usize];
            let ip = if p.v6 {
                n.v6.map(IpAddr::V6)
            } else {
                n.v4.map(IpAddr::V4)
            };
            Target {
                net: Some(p.src as usize),
                dst: SocketAddr::new(
                    ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
                    p.port,
                ),
                kind: p.kind,
            }
        })
        .collect();
    let wave = (nofile as usize).saturating_sub(4096).clamp(512, 30_000);
    let timeout = Duration::from_millis(job.timeout_ms.max(50) as u64);
    let mut outcomes = probe::probe_all(&nets, &home, &targets, timeout, wave, &mut |d, t| {
        progress("probe", d, t)
    })
    .map_err(|e| fail("probe", e.to_string()))?;
    // A timeout where the evaluator allows gets one more, slower try.
    let again: Vec<usize> = (0..outcomes.len())
        .filter(|&k| job.probes[k].retry && outcomes[k] == Outcome::Timeout)
        .collect();
    if !again.is_empty() {
        let t: Vec<Target> = again.iter().map(|&k| targets[k]).collect();
        let got = probe::probe_all(
            &nets,
            &home,
            &t,
            timeout.max(Duration::from_millis(1000)),
            wave,
            &mut |_, _| {},
        )
        .map_err(|e| fail("probe", e.to_string()))?;
        for (k, o) in again.iter().zip(got) {
            outcomes[*k] = o;
        }
    }
    let probe_ms = t2.elapsed().as_millis() as u64;
    let mut notes = Vec::new();
    let unsupported = outcomes
        .iter()
        .filter(|o| **o == Outcome::Unsupported)
        .count();
    if unsupported > 0 {
        notes.push(format!(
            "the kernel cannot carry {unsupported} probes (no SCTP): not counted"
        ));
    }
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
            load_ms,
            probe_ms,
        },
        notes,
    })
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
