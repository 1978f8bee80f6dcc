//! gbpc's table beside other rulesets that keep state in the packet and connection marks, with
//! real traffic.
//!
//! Three named namespaces of this test's own: a client `a` (198.18.10.2), a router `r` and a
//! server `b` (198.18.20.2) that answers each connection with the address it came from. Two
//! foreign tables stand for the software the issue names:
//!
//! - `kp` (kube-proxy's pattern): a prerouting chain ORs 0x4000 into the packet mark of
//!   connections to port 8081, a postrouting chain masquerades what carries the bit (in
//!   endpoint enforcement, where no router is involved, the client's postrouting chain drops
//!   what lacks the bit instead: accept by mark);
//! - `cm` (connmark routing): new connections get connection mark 0x2a, replies get it
//!   restored into their packet mark, and a postrouting chain drops replies without it.
//!
//! gbpc's chains run between the setting and the acting chains (priority filter, between mangle
//! and the postrouting hooks), so a chain that overwrote either mark breaks them. With the
//! default layout both keep working and gbpc's verdicts are those of the evaluator; the mark
//! layout (`--nft-layout marks`) is shown to break them, so the test can fail.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use gbpc::eval::{self, Flow, Proto, Verdict};
use gbpc::lower::nft::{Enforce, Layout, Options, lower};

use crate::support::kernel_ready;

const POLICY: &str = "
tenant co {
  filter web { tcp 8080-8081 }
  contract http { subject s permit web }
  group clients { address 198.18.10.0/24 consumes http }
  group servers { address 198.18.20.0/24 provides http }
}
";

const CLIENT: &str = "198.18.10.2";
const SERVER: &str = "198.18.20.2";
const ROUTER_B: &str = "198.18.20.1";
/// Allowed, connection-marked; allowed, packet-marked (masqueraded); denied by the policy.
const PORTS: [u16; 3] = [8080, 8081, 9090];

/// The router's foreign tables (fabric enforcement).
const ROUTER_TABLES: &str = "
table ip kp {
\tchain pre {
\t\ttype filter hook prerouting priority mangle; policy accept;
\t\tip daddr 198.18.20.2 tcp dport 8081 meta mark set meta mark | 0x4000
\t}
\tchain post {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tmeta mark & 0x4000 == 0x4000 masquerade
\t}
}
table inet cm {
\tchain pre {
\t\ttype filter hook prerouting priority mangle; policy accept;
\t\tct state new ip daddr 198.18.20.2 ct mark set 0x2a
\t\tct direction reply meta mark set ct mark
\t}
\tchain post {
\t\ttype filter hook postrouting priority filter; policy accept;
\t\tct direction reply ip saddr 198.18.20.2 meta mark != 0x2a drop
\t}
}
";

/// The client's foreign table (endpoint enforcement): mark in output, accept by mark in
/// postrouting.
const CLIENT_TABLES: &str = "
table inet kp {
\tchain out {
\t\ttype route hook output priority mangle; policy accept;
\t\tip daddr 198.18.20.2 tcp dport 8081 meta mark set meta mark | 0x4000
\t}
\tchain post {
\t\ttype filter hook postrouting priority filter; policy accept;
\t\tip daddr 198.18.20.2 tcp dport 8081 meta mark & 0x4000 != 0x4000 drop
\t}
}
";

/// The server's foreign table (endpoint enforcement): connection mark on new connections in
/// prerouting, restored into replies in output, required in postrouting.
const SERVER_TABLES: &str = "
table inet cm {
\tchain pre {
\t\ttype filter hook prerouting priority mangle; policy accept;
\t\tct state new ip daddr 198.18.20.2 ct mark set 0x2a
\t}
\tchain out {
\t\ttype route hook output priority mangle; policy accept;
\t\tct direction reply meta mark set ct mark
\t}
\tchain post {
\t\ttype filter hook postrouting priority filter; policy accept;
\t\tct direction reply ip saddr 198.18.20.2 meta mark != 0x2a drop
\t}
}
";

/// Answer every connection with `peer ADDRESS`.
const SERVER_PY: &str = r#"
import selectors, socket, sys
sel = selectors.DefaultSelector()
for p in sys.argv[1:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(p)))
    s.listen(16)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
sel.register(sys.stdin, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        if key.fileobj is sys.stdin:
            sys.exit(0)
        try:
            conn, (addr, _) = key.fileobj.accept()
            conn.sendall(("peer %s\n" % addr).encode())
            conn.close()
        except OSError:
            pass
"#;

/// Connect to each `host:port` in turn: print the server's answer, or `timeout`, or the errno.
const CLIENT_PY: &str = r#"
import errno, socket, sys
for t in sys.argv[1:]:
    host, port = t.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect((host, int(port)))
        print(t, s.makefile().readline().strip().replace(" ", "=") or "no-reply")
    except socket.timeout:
        print(t, "timeout")
    except OSError as e:
        print(t, errno.errorcode.get(e.errno, str(e.errno)))
    finally:
        s.close()
"#;

/// The namespaces and the server this test started; removed on drop, also when it panics.
struct Lab {
    prefix: String,
    netns: Vec<String>,
    server: Option<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(c) = &mut self.server {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.netns.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

impl Lab {
    fn ns(&self, n: &str) -> String {
        format!("{}-{n}", self.prefix)
    }

    fn exec(&self, n: &str, args: &[&str]) {
        let ns = self.ns(n);
        let mut all = vec!["ip", "netns", "exec", &ns];
        all.extend_from_slice(args);
        run(&all);
    }

    /// `nft -f` of `script` in namespace `n`.
    fn nft(&self, n: &str, script: &str) {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.nft");
        std::fs::write(&f, script).unwrap();
        self.exec(n, &["nft", "-f", f.to_str().unwrap()]);
    }

    /// Delete every table of namespace `n` (all of them this test's).
    fn flush(&self, n: &str) {
        self.exec(n, &["nft", "flush", "ruleset"]);
    }

    fn build() -> Lab {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!(
            "gbpcco-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut lab = Lab {
            prefix,
            netns: Vec::new(),
            server: None,
        };
        for n in ["r", "a", "b"] {
            let ns = lab.ns(n);
            run(&["ip", "netns", "add", &ns]);
            lab.netns.push(ns.clone());
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        }
        let r = lab.ns("r");
        lab.exec("r", &["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]);
        for (n, host, gw) in [("a", CLIENT, "198.18.10.1"), ("b", SERVER, ROUTER_B)] {
            let ns = lab.ns(n);
            let veth = format!("v{n}");
            run(&[
                "ip", "-n", &r, "link", "add", &veth, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            run(&[
                "ip",
                "-n",
                &r,
                "addr",
                "add",
                &format!("{gw}/24"),
                "dev",
                &veth,
            ]);
            run(&["ip", "-n", &r, "link", "set", &veth, "up"]);
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{host}/24"),
                "dev",
                "eth0",
            ]);
            run(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
            run(&["ip", "-n", &ns, "route", "add", "default", "via", gw]);
        }
        let mut child = Command::new("ip")
            .args(["netns", "exec", &lab.ns("b"), "python3", "-c", SERVER_PY])
            .args(PORTS.map(|p| p.to_string()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start python3: {e}"));
        let stdout = child.stdout.take().unwrap();
        lab.server = Some(child);
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the server did not start");
        lab
    }

    /// What the client gets from each port: `peer=ADDRESS`, `timeout`, or an errno name.
    fn probe(&self) -> Vec<(u16, String)> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns("a"), "python3", "-c", CLIENT_PY])
            .args(PORTS.map(|p| format!("{SERVER}:{p}")))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "client: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        PORTS
            .iter()
            .zip(text.lines())
            .map(|(&p, l)| (p, l.split_once(' ').unwrap().1.to_string()))
            .collect()
    }

    /// Load the foreign tables of `mode` (after clearing every namespace), then gbpc's script.
    fn load(&self, mode: Enforce, gbpc: Option<&str>) {
        for n in ["r", "a", "b"] {
            self.flush(n);
        }
        match mode {
            Enforce::Fabric => {
                self.nft("r", ROUTER_TABLES);
                if let Some(s) = gbpc {
                    self.nft("r", s);
                }
            }
            Enforce::Endpoint => {
                self.nft("a", CLIENT_TABLES);
                self.nft("b", SERVER_TABLES);
                if let Some(s) = gbpc {
                    self.nft("a", s);
                    self.nft("b", s);
                }
            }
        }
    }
}

/// What the foreign tables make of each port when nothing drops it: 8081 is masqueraded in
/// the fabric (the server sees the router), everything else comes from the client.
fn foreign_result(mode: Enforce, port: u16) -> String {
    if mode == Enforce::Fabric && port == 8081 {
        format!("peer={ROUTER_B}")
    } else {
        format!("peer={CLIENT}")
    }
}

#[test]
fn foreign_marks_survive_gbpc_and_verdicts_hold() {
    if !kernel_ready() {
        return;
    }
    let c = gbpc::check_source(POLICY);
    assert!(c.ok(), "{:?}", c.errors);
    let p = c.policy;
    let lab = Lab::build();
    let mut problems = String::new();
    let mut seen = Vec::new();
    for mode in [Enforce::Fabric, Enforce::Endpoint] {
        // Without gbpc: the foreign tables do what they are for, every port connects.
        lab.load(mode, None);
        let base = lab.probe();
        for (port, got) in &base {
            if *got != foreign_result(mode, *port) {
                problems.push_str(&format!(
                    "[{mode:?}, no gbpc] port {port}: {got}, expected {}\n",
                    foreign_result(mode, *port)
                ));
            }
        }
        for layout in [Layout::Addresses, Layout::Marks] {
            let script = match lower(
                &p,
                &Options {
                    enforce: mode,
                    layout,
                    ..Options::default()
                },
            ) {
                Ok(l) => l.text,
                Err(e) => panic!("{e:?}"),
            };
            lab.load(mode, Some(&script));
            let got = lab.probe();
            seen.push(format!("{mode:?} {layout:?}: {got:?}"));
            for (port, result) in &got {
                let flow = Flow {
                    proto: Proto::Tcp,
                    port: *port,
                };
                let groups = |a: &str| {
                    let (f, x) = gbpc::net::ip_to_addr(a.parse().unwrap());
                    p.address_groups(f, x)
                };
                let (src, dst) = (groups(CLIENT), groups(SERVER));
                let v4 = eval::Families::of(gbpc::net::Family::V4);
                let conn =
                    eval::Conn::new(eval::End::new(&src, v4), eval::End::new(&dst, v4), flow)
                        .unwrap();
                let allowed = eval::decide(&p, &conn).verdict == Verdict::Allow;
                let expected = if allowed {
                    foreign_result(mode, *port)
                } else {
                    "timeout".to_string()
                };
                let ok = *result == expected;
                match layout {
                    Layout::Addresses if !ok => problems.push_str(&format!(
                        "[{mode:?}, {layout:?}] port {port}: {result}, expected {expected}\n"
                    )),
                    _ => {}
                }
            }
            // The mark layout overwrites the marks: the foreign tables must notice on the
            // ports the policy allows (this is what the test would catch).
            if layout == Layout::Marks {
                let broken = got
                    .iter()
                    .filter(|(port, r)| *port != 9090 && *r != foreign_result(mode, *port))
                    .count();
                if broken == 0 {
                    problems.push_str(&format!(
                        "[{mode:?}, marks] the mark layout left the foreign tables working: \
                         the test cannot see overwritten marks ({got:?})\n"
                    ));
                }
            }
        }
    }
    drop(lab);
    assert!(
        problems.is_empty(),
        "{problems}\nseen:\n{}",
        seen.join("\n")
    );
    eprintln!("coexistence: {}", seen.join("; "));
}
