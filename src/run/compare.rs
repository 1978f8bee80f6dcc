//! Kernel results against the evaluator: every probe's outcome read as a verdict, each
//! disagreement with the rule that decided the evaluator's verdict, and every assertion of the
//! policy proved (or not) by the probes. Pure.

use super::plan::{Plan, party_node};
use super::wire::Outcome;
use crate::diag::Span;
use crate::eval::{self, Flow, Proto, Verdict};
use crate::model::{Expect, Policy};
use crate::net::Family;

/// The verdict a probe's outcome shows, if it shows one: open is allow; a drop (timeout, or
/// refused to send by the sender's own rules) is deny. A reset, an ICMP error or a local
/// error shows neither: something other than the policy answered.
pub fn kernel_verdict(o: Outcome) -> Option<Verdict> {
    match o {
        Outcome::Open => Some(Verdict::Allow),
        Outcome::Timeout | Outcome::Blocked => Some(Verdict::Deny),
        Outcome::Refused | Outcome::Unreachable | Outcome::Error | Outcome::Unsupported => None,
    }
}

/// A probe whose outcome is not what the evaluator says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disagreement {
    pub probe: usize,
    pub src: String,
    pub dst: String,
    pub family: Family,
    pub flow: Flow,
    pub expect: Verdict,
    pub outcome: Outcome,
    /// The evaluator's deciding rule, in the policy's terms.
    pub rule: String,
    pub span: Option<Span>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssertStatus {
    Holds,
    /// The kernel did otherwise (the outcomes seen).
    Fails(Vec<Outcome>),
    /// No probe can show it, and why.
    NotProvable(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssertResult {
    pub text: String,
    pub span: Span,
    pub status: AssertStatus,
}

/// Everything a run found.
#[derive(Clone, Debug, Default)]
pub struct Findings {
    /// Per probe: agrees with the evaluator.
    pub agree: Vec<bool>,
    pub disagreements: Vec<Disagreement>,
    pub asserts: Vec<AssertResult>,
    /// Probes the kernel could not carry (no SCTP), not counted as disagreements.
    pub unsupported: usize,
    pub allowed: usize,
}

impl Findings {
    pub fn ok(&self) -> bool {
        self.disagreements.is_empty()
            && !self
                .asserts
                .iter()
                .any(|a| matches!(a.status, AssertStatus::Fails(_)))
    }
}

/// Compare `outcomes` (one per probe of `plan`) with the evaluator.
pub fn compare(p: &Policy, plan: &Plan, outcomes: &[Outcome]) -> Findings {
    let mut f = Findings::default();
    for (i, pr) in plan.probes.iter().enumerate() {
        let o = outcomes.get(i).copied().unwrap_or(Outcome::Error);
        if o == Outcome::Unsupported {
            f.unsupported += 1;
            f.agree.push(true);
            continue;
        }
        let ok = kernel_verdict(o) == Some(pr.expect);
        if o == Outcome::Open {
            f.allowed += 1;
        }
        f.agree.push(ok);
        if !ok {
            let s = &plan.nodes[pr.src];
            let d = &plan.nodes[pr.dst];
            let fam = eval::Families::of(pr.family);
            let ends = (
                eval::End::new(&p.endpoint(s.endpoint).groups, fam),
                eval::End::new(&p.endpoint(d.endpoint).groups, fam),
            );
            let dec = eval::Conn::new(ends.0, ends.1, pr.flow).map(|c| eval::decide(p, &c));
            f.disagreements.push(Disagreement {
                probe: i,
                src: s.name.clone(),
                dst: d.name.clone(),
                family: pr.family,
                flow: pr.flow,
                expect: pr.expect,
                outcome: o,
                rule: dec
                    .as_ref()
                    .map_or_else(|x| x.describe(), |d| d.describe(p)),
                span: dec.as_ref().ok().and_then(|d| d.span(p)),
            });
        }
    }
    for a in &p.asserts {
        let status = assertion(plan, outcomes, a);
        f.asserts.push(AssertResult {
            text: a.text.clone(),
            span: a.span,
            status,
        });
    }
    f
}

fn assertion(plan: &Plan, outcomes: &[Outcome], a: &crate::model::Assertion) -> AssertStatus {
    let (Some((s, sf)), Some((d, df))) = (
        party_node(&plan.nodes, &a.from),
        party_node(&plan.nodes, &a.to),
    ) else {
        return AssertStatus::NotProvable("no booted endpoint has that address".into());
    };
    if s == d {
        return AssertStatus::NotProvable("both ends are the same endpoint".into());
    }
    let probe_able = match a.flow.proto {
        Proto::Tcp | Proto::Udp | Proto::Sctp => true,
        Proto::Icmp => a.flow.port == 8,
        Proto::Icmpv6 => a.flow.port == 128,
        Proto::Other(_) => false,
    };
    if !probe_able {
        return AssertStatus::NotProvable(format!("{} is not probed", a.flow));
    }
    let want = match a.expect {
        Expect::Allow => Verdict::Allow,
        Expect::Deny => Verdict::Deny,
    };
    let mut seen = Vec::new();
    let mut any = false;
    for (i, pr) in plan.probes.iter().enumerate() {
        if pr.src != s
            || pr.dst != d
            || pr.flow != a.flow
            || sf.is_some_and(|f| f != pr.family)
            || df.is_some_and(|f| f != pr.family)
        {
            continue;
        }
        let o = outcomes.get(i).copied().unwrap_or(Outcome::Error);
        if o == Outcome::Unsupported {
            continue;
        }
        any = true;
        if kernel_verdict(o) != Some(want) {
            seen.push(o);
        }
    }
    if !any {
        return AssertStatus::NotProvable("no probe of this flow between the two ends".into());
    }
    if seen.is_empty() {
        AssertStatus::Holds
    } else {
        AssertStatus::Fails(seen)
    }
}
