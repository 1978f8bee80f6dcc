//! Messages between the processes of a run, as JSON lines: the job the caller hands the fabric,
//! the configuration the fabric hands each endpoint agent, and the results coming back.

use serde::{Deserialize, Serialize};

/// Where the rules are loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Enforce {
    Fabric,
    Endpoint,
}

/// One endpoint to boot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// The hostname (the endpoint's declared name).
    pub host: String,
    pub v4: Option<std::net::Ipv4Addr>,
    pub v6: Option<std::net::Ipv6Addr>,
}

/// Ports every endpoint listens on, per protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listen {
    pub tcp: Vec<u16>,
    pub udp: Vec<u16>,
    pub sctp: Vec<u16>,
}

/// Probe kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Tcp,
    Udp,
    Sctp,
    /// ICMP or ICMPv6 echo request (by the family).
    Echo,
}

/// One probe as the fabric sees it (on the wire: `[src, dst, port, flags]`, as there may be
/// millions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "[u32; 4]", try_from = "[u32; 4]")]
pub struct WireProbe {
    pub src: u32,
    pub dst: u32,
    pub v6: bool,
    pub kind: Kind,
    pub port: u16,
    /// The evaluator allows it: a timeout is tried once more, with a longer wait, before it
    /// counts (a lost packet must not pass for a drop).
    pub retry: bool,
}

impl From<WireProbe> for [u32; 4] {
    fn from(p: WireProbe) -> [u32; 4] {
        let kind = match p.kind {
            Kind::Tcp => 0,
            Kind::Udp => 1,
            Kind::Sctp => 2,
            Kind::Echo => 3,
        };
        [
            p.src,
            p.dst,
            p.port as u32,
            kind | (p.v6 as u32) << 2 | (p.retry as u32) << 3,
        ]
    }
}

impl TryFrom<[u32; 4]> for WireProbe {
    type Error = String;
    fn try_from([src, dst, port, flags]: [u32; 4]) -> Result<Self, String> {
        let kind = match flags & 3 {
            0 => Kind::Tcp,
            1 => Kind::Udp,
            2 => Kind::Sctp,
            _ => Kind::Echo,
        };
        Ok(WireProbe {
            src,
            dst,
            v6: flags & 4 != 0,
            kind,
            port: u16::try_from(port).map_err(|e| e.to_string())?,
            retry: flags & 8 != 0,
        })
    }
}

/// What the fabric must do.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    pub nodes: Vec<Node>,
    pub listen: Listen,
    pub probes: Vec<WireProbe>,
    pub script: String,
    pub table: String,
    pub enforce: Enforce,
    pub timeout_ms: u32,
}

/// What the fabric hands an endpoint agent.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AgentConfig {
    pub host: String,
    pub v4: bool,
    pub v6: bool,
    pub listen: Listen,
}

/// The result of one probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Connected, or the reply came back.
    Open,
    /// Nothing came back before the timeout: dropped on the way.
    Timeout,
    /// The sending namespace's own rules refused to send it (per-endpoint enforcement).
    Blocked,
    /// A TCP reset or ICMP port unreachable: it arrived but nothing listened.
    Refused,
    /// An ICMP error other than port unreachable (no route, administratively prohibited).
    Unreachable,
    /// The kernel cannot carry this protocol (no SCTP).
    Unsupported,
    /// A local error creating or sending the probe.
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Open => "open",
            Outcome::Timeout => "timeout",
            Outcome::Blocked => "blocked",
            Outcome::Refused => "refused",
            Outcome::Unreachable => "unreachable",
            Outcome::Unsupported => "unsupported",
            Outcome::Error => "error",
        }
    }
}

const LETTERS: [(Outcome, char); 7] = [
    (Outcome::Open, 'o'),
    (Outcome::Timeout, 't'),
    (Outcome::Blocked, 'b'),
    (Outcome::Refused, 'r'),
    (Outcome::Unreachable, 'u'),
    (Outcome::Unsupported, 'n'),
    (Outcome::Error, 'e'),
];

/// Outcomes as one letter each.
pub fn encode(outcomes: &[Outcome]) -> String {
    outcomes
        .iter()
        .map(|o| {
            LETTERS
                .iter()
                .find(|(x, _)| x == o)
                .map_or('e', |(_, c)| *c)
        })
        .collect()
}

/// The outcomes of [`encode`]; an unknown letter is an error outcome.
pub fn decode(text: &str) -> Vec<Outcome> {
    text.chars()
        .map(|c| {
            LETTERS
                .iter()
                .find(|(_, x)| *x == c)
                .map_or(Outcome::Error, |(o, _)| *o)
        })
        .collect()
}

/// A named counter of the loaded table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
}

/// Milliseconds spent per phase inside the fabric.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    pub boot_ms: u64,
    pub load_ms: u64,
    pub probe_ms: u64,
}

/// What the fabric sends back.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Results {
    /// One letter per probe of the job, in order ([`encode`]).
    pub outcomes: String,
    /// Probes that timed out and were tried again.
    pub retried: usize,
    pub counters: Vec<Counter>,
    pub timings: Timings,
    pub notes: Vec<String>,
}

/// Why a run could not happen (exit status 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What is missing or broke: `root`, `nft`, `namespaces`, `nftables`, `boot`, `load`,
    /// `internal`.
    pub what: String,
    pub message: String,
}

/// A line from the fabric to the caller.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Report {
    Progress {
        phase: String,
        done: usize,
        total: usize,
    },
    Done(Results),
    Failed(Failure),
}
