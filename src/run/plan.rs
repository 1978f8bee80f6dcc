//! The plan of a run, computed from the checked policy alone: which endpoints boot with which
//! addresses, the flows of the truth tables, and the probes with the evaluator's verdict and
//! deciding rule of each. Pure: no system calls, the same policy always gives the same plan.
//!
//! Two plans prove the same tables (docs/run.md, "Why the class proof covers the matrix"):
//!
//! - **exhaustive**: one probe per cell: every ordered pair of endpoints, every flow of the
//!   tables, in each family both ends have.
//! - **classes** (the default): the compiled ruleset decides a new connection from the source
//!   address's class, the destination address's class, the protocol and the port (or ICMP
//!   type) alone. So, once the kernel is shown to classify every endpoint address as the
//!   evaluator does (the fabric asks the kernel's own lookup of the class maps), one endpoint
//!   per class stands for its class, and between two classes the ports (types, protocols)
//!   split into ranges on which neither the evaluator nor the ruleset can change its answer:
//!   the cuts are the edges of every filter entry of the contracts that apply between the two
//!   classes, and conntrack's own boundaries between ICMP types (requests, untracked neighbour
//!   discovery and multicast listener types, the rest). Both edges of every range are probed;
//!   what no applicable filter names falls through the verdict maps to the intra-group set and
//!   the default drop alike, so one probe per conntrack kind (new, invalid, untracked) covers
//!   it. A table cell is then the result of the probes that cover it.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::wire::{Node, WireProbe};
use crate::eval::{self, Flow, Proto, Reason, Verdict};
use crate::model::{EndpointId, EntryProto, GroupId, Party, Policy};
use crate::net::Family;

mod flows;

use flows::{
    FAMILIES, answered, carried, entry_in, fam_index, judge, space_of, spaces, table_flows,
    track_runs, value,
};
pub use flows::{ICMPV6_UNTRACKED, Track, echo, track, unbootable};

/// Limits and kind of a plan.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Probe at most this many flows (an even sample; assertions are always probed).
    pub max_probes: Option<usize>,
    /// One probe per cell of the tables instead of the class proof.
    pub exhaustive: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Classes,
    Exhaustive,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Classes => "classes",
            Mode::Exhaustive => "exhaustive",
        }
    }
}

/// A booted endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanNode {
    pub endpoint: EndpointId,
    /// `tenant/name`, for reports.
    pub name: String,
    pub node: Node,
}

/// What a probe stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Covers {
    /// Its own cell only (the exhaustive plan, an assertion's probe).
    Exact,
    /// Ports (ICMP types, protocol numbers) `lo..=hi` of its protocol between the two
    /// classes: a range on which neither the evaluator nor the ruleset changes its answer.
    Range(u16, u16),
    /// Every flow of this conntrack kind between the two classes that no applicable filter
    /// names.
    Rest(Track),
}

/// One probe: the first packet of a new connection from one endpoint to another, and what the
/// evaluator says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Indexes into [`Plan::nodes`].
    pub src: u32,
    pub dst: u32,
    pub family: Family,
    pub flow: Flow,
    pub expect: Verdict,
    /// The evaluator's deciding rule.
    pub reason: Reason,
    pub covers: Covers,
}

/// The probes that cover the cells between two classes (classes plan).
#[derive(Clone, Debug, Default)]
struct PairCover {
    /// (protocol, lo, hi, probes at the range's edges).
    ranges: Vec<(Proto, u16, u16, [u32; 2])>,
    /// Per [`Track`] (new, invalid, untracked): the probe for what no range covers.
    rest: [Option<u32>; 3],
}

#[derive(Clone, Debug)]
enum Cells {
    /// Exhaustive: the first probe of each (family, source, destination); then one per flow.
    Direct(HashMap<(u8, u32, u32), u32>),
    /// Classes: each node's class key per family, and the cover of each pair of keys.
    Classes {
        keys: [Vec<Option<u32>>; 2],
        pairs: HashMap<(u8, u32, u32), PairCover>,
    },
}

impl Default for Cells {
    fn default() -> Self {
        Cells::Direct(HashMap::new())
    }
}

#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub mode: Option<Mode>,
    pub nodes: Vec<PlanNode>,
    /// Endpoints that are not booted, and why.
    pub skipped: Vec<String>,
    /// The flows of the truth tables, per family (IPv4, IPv6).
    pub flows: [Vec<Flow>; 2],
    pub probes: Vec<Probe>,
    /// Probes of the exhaustive plan (the cells of the tables).
    pub total: usize,
    /// Probes of this plan before sampling.
    pub planned: usize,
    /// Per family, each node's class (the evaluator's class id of its address).
    pub classes: [Vec<Option<u32>>; 2],
    /// Flows the plan names that the kernel cannot carry or show (reported as `~`).
    pub uncarried: Vec<String>,
    /// What the run does not try, and why.
    pub unplanned: Vec<String>,
    cells: Cells,
    /// Sampling: plan index to probe index (`u32::MAX`: not probed).
    remap: Option<Vec<u32>>,
    /// Assertion probes: (family, source, destination, flow) to probe index.
    exact: HashMap<(u8, u32, u32, Flow), u32>,
    /// The same, by pair: (flow number, probe index).
    exact_pairs: HashMap<(u8, u32, u32), Vec<(u32, u32)>>,
}

/// The probes of one cell (at most the two edges of a range and an assertion's own probe).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cell {
    probes: [u32; 3],
    n: u8,
}

impl Cell {
    fn push(&mut self, k: u32) {
        if self.as_slice().contains(&k) || usize::from(self.n) >= self.probes.len() {
            return;
        }
        self.probes[usize::from(self.n)] = k;
        self.n += 1;
    }

    pub fn as_slice(&self) -> &[u32] {
        &self.probes[..usize::from(self.n)]
    }
}

/// Why a policy cannot be booted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanError(pub String);

/// Plan a run of `p` (a policy without errors).
pub fn plan(p: &Policy, o: &Options) -> Result<Plan, PlanError> {
    let mut out = Plan {
        mode: Some(if o.exhaustive {
            Mode::Exhaustive
        } else {
            Mode::Classes
        }),
        ..Plan::default()
    };
    let mut seen: BTreeSet<IpAddr> = BTreeSet::new();
    for (i, e) in p.endpoints.iter().enumerate() {
        let name = p.endpoint_name(EndpointId(i as u32));
        let mut v4: Option<Ipv4Addr> = None;
        let mut v6: Option<Ipv6Addr> = None;
        for c in e.addrs.iter().filter(|c| c.is_host()) {
            let ip = c.ip();
            if let Some(why) = unbootable(ip) {
                return Err(PlanError(format!(
                    "endpoint `{name}` cannot be booted at {ip}: the address is {why}"
                )));
            }
            if !seen.insert(ip) {
                return Err(PlanError(format!(
                    "endpoint `{name}` has address {ip}, which another endpoint has too"
                )));
            }
            match ip {
                IpAddr::V4(a) if v4.is_none() => v4 = Some(a),
                IpAddr::V6(a) if v6.is_none() => v6 = Some(a),
                _ => {}
            }
        }
        if v4.is_none() && v6.is_none() {
            out.skipped.push(format!("{name}: no address"));
            continue;
        }
        out.nodes.push(PlanNode {
            endpoint: EndpointId(i as u32),
            name: name.clone(),
            node: Node {
                host: e.name.clone(),
                name,
                v4,
                v6,
            },
        });
    }
    out.flows = table_flows(p);
    for family in FAMILIES {
        for f in &out.flows[fam_index(family)] {
            if !carried(family, *f) {
                out.uncarried.push(format!(
                    "{f} over {}: not an upper-layer protocol the kernel can carry and show",
                    family.as_str()
                ));
            }
        }
    }
    let n = out.nodes.len();
    for family in FAMILIES {
        out.classes[fam_index(family)] = out
            .nodes
            .iter()
            .map(|nd| addr_of(&nd.node, family).map(|a| p.classes.class_of(family, a)))
            .collect();
    }
    // The cells of the tables.
    let pairs_of = |family: Family| -> usize {
        let k = out
            .nodes
            .iter()
            .filter(|nd| addr_of(&nd.node, family).is_some())
            .count();
        k * k.saturating_sub(1)
    };
    out.total = FAMILIES
        .iter()
        .map(|&f| pairs_of(f) * out.flows[fam_index(f)].len())
        .sum();
    let node_groups: Vec<&[GroupId]> = out
        .nodes
        .iter()
        .map(|nd| p.endpoint(nd.endpoint).groups.as_slice())
        .collect();
    let groups = |i: usize| node_groups[i];
    let mut probes: Vec<Probe> = Vec::new();
    if o.exhaustive {
        let mut base = HashMap::new();
        for a in 0..n {
            for b in 0..n {
                if a == b {
                    continue;
                }
                let (sg, dg) = (groups(a), groups(b));
                let app = eval::applicable(p, sg, dg);
                for family in FAMILIES {
                    if addr_of(&out.nodes[a].node, family).is_none()
                        || addr_of(&out.nodes[b].node, family).is_none()
                    {
                        continue;
                    }
                    base.insert(
                        (fam_index(family) as u8, a as u32, b as u32),
                        probes.len() as u32,
                    );
                    for &flow in &out.flows[fam_index(family)] {
                        let (expect, reason) = judge(p, &app, sg, dg, family, flow);
                        probes.push(Probe {
                            src: a as u32,
                            dst: b as u32,
                            family,
                            flow,
                            expect,
                            reason,
                            covers: Covers::Exact,
                        });
                    }
                }
            }
        }
        out.cells = Cells::Direct(base);
    } else {
        // Class keys: nodes whose address has the same class and who have the same groups.
        let mut keys: [Vec<Option<u32>>; 2] = Default::default();
        let mut reps: [Vec<usize>; 2] = Default::default();
        for family in FAMILIES {
            let f = fam_index(family);
            let mut ids: HashMap<(u32, &[GroupId]), u32> = HashMap::new();
            for i in 0..n {
                let k = out.classes[f][i].map(|c| {
                    *ids.entry((c, groups(i))).or_insert_with(|| {
                        reps[f].push(i);
                        (reps[f].len() - 1) as u32
                    })
                });
                keys[f].push(k);
            }
        }
        let mut pairs = HashMap::new();
        for family in FAMILIES {
            let f = fam_index(family);
            let flows = &out.flows[f];
            for (ka, &a) in reps[f].iter().enumerate() {
                for (kb, &b) in reps[f].iter().enumerate() {
                    if ka == kb {
                        // One class: probe between two of its members, if it has two.
                        let Some(b2) = (0..n).find(|&j| j != a && keys[f][j] == Some(ka as u32))
                        else {
                            continue;
                        };
                        let cover = cover_pair(p, family, flows, a, b2, groups, &mut probes);
                        pairs.insert((f as u8, ka as u32, kb as u32), cover);
                        continue;
                    }
                    let cover = cover_pair(p, family, flows, a, b, groups, &mut probes);
                    pairs.insert((f as u8, ka as u32, kb as u32), cover);
                }
            }
        }
        out.cells = Cells::Classes { keys, pairs };
    }
    // Every assertion between booted endpoints gets its own probe (or the plan's probe of
    // exactly that flow between exactly those two, if it has one).
    let mut asserted: BTreeSet<(u32, u32)> = BTreeSet::new();
    for a in &p.asserts {
        if let (Some((s, _)), Some((d, _))) = (
            party_node(&out.nodes, &a.from),
            party_node(&out.nodes, &a.to),
        ) {
            asserted.insert((s as u32, d as u32));
        }
    }
    let mut same: HashMap<(u8, u32, u32, Flow), u32> = HashMap::new();
    if !o.exhaustive {
        for (k, pr) in probes.iter().enumerate() {
            if asserted.contains(&(pr.src, pr.dst)) {
                same.entry((fam_index(pr.family) as u8, pr.src, pr.dst, pr.flow))
                    .or_insert(k as u32);
            }
        }
    }
    for a in &p.asserts {
        let (Some((s, sf)), Some((d, df))) = (
            party_node(&out.nodes, &a.from),
            party_node(&out.nodes, &a.to),
        ) else {
            continue;
        };
        if s == d {
            continue;
        }
        for family in FAMILIES {
            if sf.is_some_and(|x| x != family)
                || df.is_some_and(|x| x != family)
                || addr_of(&out.nodes[s].node, family).is_none()
                || addr_of(&out.nodes[d].node, family).is_none()
                || !flow_in_family(a.flow, family)
            {
                continue;
            }
            let key = (fam_index(family) as u8, s as u32, d as u32, a.flow);
            if out.exact.contains_key(&key) {
                continue;
            }
            if let Some(k) = out
                .plan_cell(family, s, d, a.flow)
                .or(same.get(&key).copied())
            {
                out.exact.insert(key, k);
                continue;
            }
            let (sg, dg) = (groups(s), groups(d));
            let app = eval::applicable(p, sg, dg);
            let (expect, reason) = judge(p, &app, sg, dg, family, a.flow);
            out.exact.insert(key, probes.len() as u32);
            probes.push(Probe {
                src: s as u32,
                dst: d as u32,
                family,
                flow: a.flow,
                expect,
                reason,
                covers: Covers::Exact,
            });
        }
    }
    for (&(f, a, b, flow), &k) in &out.exact {
        if let Some(fi) = out.flows[usize::from(f)].iter().position(|x| *x == flow) {
            out.exact_pairs
                .entry((f, a, b))
                .or_default()
                .push((fi as u32, k));
        }
    }
    for list in out.exact_pairs.values_mut() {
        list.sort_unstable();
    }
    out.planned = probes.len();
    out.probes = match o.max_probes {
        Some(max) if probes.len() > max => {
            let keep = sample(&out.exact, probes.len(), max);
            let mut remap = vec![u32::MAX; probes.len()];
            let mut kept = Vec::new();
            for (i, pr) in probes.into_iter().enumerate() {
                if keep[i] {
                    remap[i] = kept.len() as u32;
                    kept.push(pr);
                }
            }
            out.remap = Some(remap);
            kept
        }
        _ => probes,
    };
    out.unplanned = unplanned(p, &out);
    Ok(out)
}

fn flow_in_family(flow: Flow, family: Family) -> bool {
    !matches!(
        (flow.proto, family),
        (Proto::Icmp, Family::V6) | (Proto::Icmpv6, Family::V4)
    )
}

fn addr_of(n: &Node, family: Family) -> Option<u128> {
    match family {
        Family::V4 => n.v4.map(|a| u128::from(u32::from(a))),
        Family::V6 => n.v6.map(u128::from),
    }
}

/// The probes between two classes (represented by endpoints `a` and `b`): both edges of every
/// range of every space an applicable filter names, and one probe per conntrack kind for
/// what no range covers.
fn cover_pair<'p>(
    p: &'p Policy,
    family: Family,
    flows: &[Flow],
    a: usize,
    b: usize,
    groups: impl Fn(usize) -> &'p [GroupId],
    probes: &mut Vec<Probe>,
) -> PairCover {
    let (sg, dg) = (groups(a), groups(b));
    let app = eval::applicable(p, sg, dg);
    let mut cover = PairCover::default();
    let push = |flow: Flow, covers: Covers, probes: &mut Vec<Probe>| -> u32 {
        let (expect, reason) = judge(p, &app, sg, dg, family, flow);
        probes.push(Probe {
            src: a as u32,
            dst: b as u32,
            family,
            flow,
            expect,
            reason,
            covers,
        });
        (probes.len() - 1) as u32
    };
    let mut covered = vec![false; flows.len()];
    for (space, max) in spaces(family).into_iter().filter(|_| !app.is_empty()) {
        // The entries of the applicable contracts about this space.
        let mut cuts: BTreeSet<u32> = BTreeSet::new();
        let mut named = false;
        for &(c, _, _) in &app {
            for s in &p.contract(c).subjects {
                for &(fid, _) in &s.filters {
                    for e in &p.filter(fid).entries {
                        if !entry_in(e, space) {
                            continue;
                        }
                        named = true;
                        if e.proto == EntryProto::Ip {
                            continue;
                        }
                        for &(lo, hi) in &e.ranges {
                            cuts.insert(lo.into());
                            cuts.insert(u32::from(hi) + 1);
                        }
                    }
                }
            }
        }
        if !named {
            continue;
        }
        for (lo, hi) in track_runs(space) {
            cuts.insert(lo.into());
            cuts.insert(u32::from(hi) + 1);
        }
        cuts.insert(0);
        let cuts: Vec<u32> = cuts.into_iter().filter(|&c| c <= u32::from(max)).collect();
        for (i, &lo) in cuts.iter().enumerate() {
            let hi = cuts.get(i + 1).map_or(u32::from(max), |n| n - 1);
            let (lo, hi) = (lo as u16, hi as u16);
            let inside: Vec<usize> = flows
                .iter()
                .enumerate()
                .filter(|(_, f)| space_of(f.proto) == space && (lo..=hi).contains(&value(**f)))
                .map(|(k, _)| k)
                .collect();
            let (Some(&first), Some(&last)) = (inside.first(), inside.last()) else {
                continue;
            };
            for &k in &inside {
                covered[k] = true;
            }
            let x = push(flows[first], Covers::Range(lo, hi), probes);
            let y = if last == first {
                x
            } else {
                push(flows[last], Covers::Range(lo, hi), probes)
            };
            cover.ranges.push((space, lo, hi, [x, y]));
        }
    }
    for (k, f) in flows.iter().enumerate() {
        if covered[k] {
            continue;
        }
        let t = track(*f) as usize;
        if cover.rest[t].is_none() {
            cover.rest[t] = Some(push(*f, Covers::Rest(track(*f)), probes));
        }
    }
    cover
}

/// Keep every assertion probe and an even spread of `max` probes.
fn sample(exact: &HashMap<(u8, u32, u32, Flow), u32>, n: usize, max: usize) -> Vec<bool> {
    let mut keep = vec![false; n];
    for &k in exact.values() {
        keep[k as usize] = true;
    }
    for i in 0..max {
        if let Some(k) = keep.get_mut(i * n / max) {
            *k = true;
        }
    }
    keep
}

/// What the run does not try, and why.
fn unplanned(p: &Policy, plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    let prefixes = p
        .groups
        .iter()
        .filter(|g| !g.nets.is_empty() && g.endpoints.is_empty())
        .count();
    if prefixes > 0 {
        out.push(format!(
            "{} with prefixes but no endpoint: no address of them is booted \
             (`gbpc compile` tests classify every prefix against the evaluator)",
            crate::text::count(prefixes, "group")
        ));
    }
    out.push(
        "ports (ICMP types, protocol numbers) other than the tables' columns: each column \
         stands for the range it is an edge of"
            .into(),
    );
    if plan.probes.len() < plan.planned {
        out.push(format!(
            "{} of {} probes (an even sample, every assertion kept)",
            plan.probes.len(),
            plan.planned
        ));
    }
    out
}

/// The node an assertion's party stands for, if it was booted.
pub fn party_node(nodes: &[PlanNode], party: &Party) -> Option<(usize, Option<Family>)> {
    match party {
        Party::Endpoint(e) => nodes
            .iter()
            .position(|n| n.endpoint == *e)
            .map(|i| (i, None)),
        Party::Address(c) => {
            let ip = c.ip();
            nodes
                .iter()
                .position(|n| {
                    n.node.v4.map(IpAddr::V4) == Some(ip) || n.node.v6.map(IpAddr::V6) == Some(ip)
                })
                .map(|i| (i, Some(c.family)))
        }
    }
}

impl Plan {
    /// The plan index of the exhaustive probe of a cell (before sampling).
    fn plan_cell(&self, family: Family, a: usize, b: usize, flow: Flow) -> Option<u32> {
        let Cells::Direct(base) = &self.cells else {
            return None;
        };
        let f = fam_index(family);
        let fi = self.flows[f].iter().position(|x| *x == flow)?;
        base.get(&(f as u8, a as u32, b as u32))
            .map(|&k| k + fi as u32)
    }

    fn probe_index(&self, plan_index: u32) -> Option<u32> {
        match &self.remap {
            None => Some(plan_index),
            Some(r) => r
                .get(plan_index as usize)
                .copied()
                .filter(|&k| k != u32::MAX),
        }
    }

    /// The probes that prove the cell (family, source `a`, destination `b`, flow number `fi`
    /// of the family's table flows): empty where nothing was planned or sampled.
    pub fn covering(&self, family: Family, a: usize, b: usize, fi: usize) -> Vec<u32> {
        self.pair_cells(family, a, b)
            .into_iter()
            .nth(fi)
            .unwrap_or_default()
    }

    /// The probes of every cell between two nodes in a family, per flow of the family's table
    /// flows (one lookup per pair: the tables of thousands of endpoints).
    pub fn pair_cells(&self, family: Family, a: usize, b: usize) -> Vec<Vec<u32>> {
        let mut out = Vec::new();
        self.pair_cells_into(family, a, b, &mut out);
        out.iter().map(|c| c.as_slice().to_vec()).collect()
    }

    /// [`Plan::pair_cells`] into a reused buffer.
    pub fn pair_cells_into(&self, family: Family, a: usize, b: usize, out: &mut Vec<Cell>) {
        let f = fam_index(family);
        let flows = &self.flows[f];
        out.clear();
        out.resize(flows.len(), Cell::default());
        match &self.cells {
            Cells::Direct(base) => {
                if let Some(&k) = base.get(&(f as u8, a as u32, b as u32)) {
                    for (fi, cell) in out.iter_mut().enumerate() {
                        if let Some(k) = self.probe_index(k + fi as u32) {
                            cell.push(k);
                        }
                    }
                }
            }
            Cells::Classes { keys, pairs } => {
                let (Some(Some(ka)), Some(Some(kb))) = (keys[f].get(a), keys[f].get(b)) else {
                    return;
                };
                let Some(c) = pairs.get(&(f as u8, *ka, *kb)) else {
                    return;
                };
                for (fi, flow) in flows.iter().enumerate() {
                    let v = value(*flow);
                    let sp = space_of(flow.proto);
                    let ks: &[u32] = match c
                        .ranges
                        .iter()
                        .find(|(s, lo, hi, _)| *s == sp && (*lo..=*hi).contains(&v))
                    {
                        Some((_, _, _, xy)) => xy,
                        None => c.rest[track(*flow) as usize].as_slice(),
                    };
                    for &k in ks {
                        if let Some(k) = self.probe_index(k) {
                            out[fi].push(k);
                        }
                    }
                }
            }
        }
        if let Some(list) = self.exact_pairs.get(&(f as u8, a as u32, b as u32)) {
            for &(fi, k) in list {
                if let Some(k) = self.probe_index(k) {
                    out[fi as usize].push(k);
                }
            }
        }
    }

    /// Each node's class key in a family (classes plan): nodes with one key share their
    /// probes.
    pub fn class_key(&self, family: Family, node: usize) -> Option<u32> {
        match &self.cells {
            Cells::Classes { keys, .. } => keys[fam_index(family)].get(node).copied().flatten(),
            Cells::Direct(_) => None,
        }
    }

    /// The probes as the fabric takes them.
    pub fn wire_probes(&self) -> Vec<WireProbe> {
        self.probes
            .iter()
            .map(|p| {
                let (proto, port) = match p.flow.proto {
                    Proto::Other(n) => (n, 0),
                    proto => (proto.number(), p.flow.port),
                };
                WireProbe {
                    src: p.src,
                    dst: p.dst,
                    v6: p.family == Family::V6,
                    proto,
                    port,
                    retry: p.expect == Verdict::Allow,
                    answer: answered(p.flow),
                    carried: carried(p.family, p.flow),
                }
            })
            .collect()
    }

    /// The plan for people: endpoints, flows, classes and the first probes (for snapshots).
    pub fn describe(&self, first: usize) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "mode: {}", self.mode.map_or("none", |m| m.as_str()));
        let _ = writeln!(s, "endpoints ({}):", self.nodes.len());
        for (i, n) in self.nodes.iter().enumerate() {
            let addrs: Vec<String> = FAMILIES
                .iter()
                .filter_map(|&f| {
                    let a = match f {
                        Family::V4 => n.node.v4.map(IpAddr::V4),
                        Family::V6 => n.node.v6.map(IpAddr::V6),
                    }?;
                    let class = self.classes[fam_index(f)][i]
                        .map(|c| format!(" class 0x{c:x}"))
                        .unwrap_or_default();
                    let key = self
                        .class_key(f, i)
                        .map(|k| format!(" key {k}"))
                        .unwrap_or_default();
                    Some(format!("{a}{class}{key}"))
                })
                .collect();
            let _ = writeln!(
                s,
                "  {} (hostname {}): {}",
                n.name,
                n.node.host,
                addrs.join(", ")
            );
        }
        for k in &self.skipped {
            let _ = writeln!(s, "  not booted: {k}");
        }
        for family in FAMILIES {
            let flows: Vec<String> = self.flows[fam_index(family)]
                .iter()
                .map(ToString::to_string)
                .collect();
            let _ = writeln!(s, "flows {}: {}", family.as_str(), flows.join(" "));
        }
        for u in &self.uncarried {
            let _ = writeln!(s, "cannot carry: {u}");
        }
        for u in &self.unplanned {
            let _ = writeln!(s, "not planned: {u}");
        }
        let _ = writeln!(
            s,
            "probes: {} (planned {}, cells {})",
            self.probes.len(),
            self.planned,
            self.total
        );
        for p in self.probes.iter().take(first) {
            let covers = match p.covers {
                Covers::Exact => String::new(),
                Covers::Range(lo, hi) => format!(" [covers {lo}-{hi}]"),
                Covers::Rest(t) => format!(" [covers the rest, {}]", t.as_str()),
            };
            let _ = writeln!(
                s,
                "  {} -> {} {} {}: {}{covers}",
                self.nodes[p.src as usize].name,
                self.nodes[p.dst as usize].name,
                p.family.as_str(),
                p.flow,
                p.expect.as_str()
            );
        }
        s
    }
}
