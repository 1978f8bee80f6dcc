//! Messages between the processes of a run, as JSON lines: the job the caller hands the fabric,
//! the configuration the fabric hands each endpoint agent, and the results coming back.

use serde::{Deserialize, Serialize};

/// Where the rules are loaded: the nftables lowering's choice, carried as `fabric` or
/// `endpoint`.
pub use crate::lower::nft::Enforce;

/// One endpoint to boot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// The hostname (the endpoint's declared name).
    pub host: String,
    /// `tenant/name`, for messages.
    pub name: String,
    pub v4: Option<std::net::Ipv4Addr>,
    pub v6: Option<std::net::Ipv6Addr>,
}

/// One probe as the fabric sees it. On the wire: 12 bytes each, after the job's JSON line
/// (there may be millions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireProbe {
    pub src: u32,
    pub dst: u32,
    pub v6: bool,
    /// IP protocol number, and port or ICMP type (0 for other protocols).
    pub proto: u8,
    pub port: u16,
    /// The evaluator allows it: a silence is tried once more, with a longer wait, before it
    /// counts (a lost packet must not pass for a drop).
    pub retry: bool,
    /// The destination's kernel answers it (TCP, UDP, ICMP echo): the answer must come back.
    pub answer: bool,
    /// The kernel can carry and show it (not an IPv6 extension header, not protocol 0 or 255).
    pub carried: bool,
}

/// Bytes per probe on the wire.
pub const PROBE_BYTES: usize = 12;

/// The probes as bytes.
pub fn encode_probes(probes: &[WireProbe]) -> Vec<u8> {
    let mut out = Vec::with_capacity(probes.len() * PROBE_BYTES);
    for p in probes {
        out.extend_from_slice(&p.src.to_le_bytes());
        out.extend_from_slice(&p.dst.to_le_bytes());
        out.extend_from_slice(&p.port.to_le_bytes());
        out.push(p.proto);
        out.push(
            u8::from(p.v6)
                | u8::from(p.retry) << 1
                | u8::from(p.answer) << 2
                | u8::from(p.carried) << 3,
        );
    }
    out
}

/// The probes of [`encode_probes`].
pub fn decode_probes(bytes: &[u8]) -> Result<Vec<WireProbe>, String> {
    if !bytes.len().is_multiple_of(PROBE_BYTES) {
        return Err(format!("{} bytes of probes", bytes.len()));
    }
    Ok(bytes
        .chunks_exact(PROBE_BYTES)
        .map(|b| {
            let flags = b[11];
            WireProbe {
                src: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                dst: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
                port: u16::from_le_bytes([b[8], b[9]]),
                proto: b[10],
                v6: flags & 1 != 0,
                retry: flags & 2 != 0,
                answer: flags & 4 != 0,
                carried: flags & 8 != 0,
            }
        })
        .collect())
}

/// What the fabric must do. The JSON line is followed by `probes` probes of
/// [`PROBE_BYTES`] bytes ([`encode_probes`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    pub nodes: Vec<Node>,
    pub probes: usize,
    pub script: String,
    pub table: String,
    pub enforce: Enforce,
    pub timeout_ms: u32,
    /// Marks every process of the run (in their command lines), so that a test can find
    /// them.
    pub run_id: String,
}

/// What the fabric hands an endpoint agent.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AgentConfig {
    pub host: String,
    pub v6: bool,
}

/// The result of one probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It arrived (and its answer came back, for TCP, UDP and ICMP echo).
    Open,
    /// Nothing came back before the timeout: dropped on the way.
    Timeout,
    /// The sending namespace's own rules refused to send it (per-endpoint enforcement).
    Blocked,
    /// It arrived, but the destination's answer (SYN-ACK or reset, port unreachable, echo
    /// reply) never came back: the kernel lets the connection start and breaks it.
    NoAnswer,
    /// An ICMP error other than port unreachable (no route, administratively prohibited).
    Unreachable,
    /// The kernel cannot carry this protocol or show its arrival (an IPv6 extension header
    /// number, protocol 0 or 255).
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
            Outcome::NoAnswer => "no-answer",
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
    (Outcome::NoAnswer, 'a'),
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
    /// Starting the endpoints' agents until every one is ready.
    pub boot_ms: u64,
    /// Veth pairs, addresses, routes, neighbours, and the check that every endpoint answers.
    pub wire_ms: u64,
    /// `nft -c` and loading the script.
    pub load_ms: u64,
    /// The kernel's classification of every endpoint address.
    pub classify_ms: u64,
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
    /// Per endpoint, the class (mark) the kernel's class maps give its IPv4 and IPv6 address
    /// (in the fabric's table, or the first endpoint's with per-endpoint enforcement).
    pub classes: Vec<[Option<u32>; 2]>,
    /// Per-endpoint enforcement: every endpoint table that classifies an address otherwise.
    pub class_mismatches: Vec<String>,
}

/// Why a run could not happen (exit status 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What is missing or broke: `root`, `nft`, `namespaces`, `nftables`, `boot`, `load`,
    /// `endpoint` (an endpoint's agent died), `internal`.
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
