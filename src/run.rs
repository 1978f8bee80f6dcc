//! Run mode: boot one container per declared endpoint in a routed fabric that lives in
//! namespaces of its own, load the compiled nftables script, probe every pair with real
//! traffic and compare each result with the evaluator.
//!
//! The pure parts (what to boot, which probes, how results compare and read) are
//! [`plan`], [`compare`], [`report`] and [`inject`]; [`packet`] builds and reads the crafted
//! probe packets; [`wire`] is the message format between the processes of a run. The side effects sit at the edges: [`host`] starts the fabric from the
//! caller's namespaces, [`fabric`] boots endpoints, wires them with [`netlink`], loads the rules
//! and drives the probes of [`probe`]; [`agent`] is what runs inside each endpoint.

pub mod agent;
pub mod compare;
pub mod fabric;
pub mod host;
pub mod inject;
mod netlink;
pub mod packet;
pub mod plan;
mod probe;
pub mod report;
mod sys;
pub mod wire;

/// The address of the fabric on its `lo`: every endpoint's IPv4 gateway.
pub const GATEWAY4: std::net::Ipv4Addr = std::net::Ipv4Addr::new(169, 254, 1, 1);
/// The link-local address of every fabric-side veth: every endpoint's IPv6 gateway.
pub const GATEWAY6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

/// The argument that turns the gbpc binary into one of the run's processes (it re-executes
/// itself through `/proc/self/exe`).
pub const AGENT_FLAG: &str = "--agent";

/// The argument that carries the run's name ([`host::run_id`]) to every process of the run.
pub const RUN_ID_FLAG: &str = "--run-id";
