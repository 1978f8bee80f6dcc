//! Kernel results against the evaluator: the kernel's classification of every endpoint
//! address against the evaluator's classes, every probe's outcome read as a verdict, each
//! disagreement with the rule that decided the evaluator's verdict, and every assertion of the
//! policy proved (or not) by the probes. Pure.

use std::net::IpAddr;

use super::plan::{Covers, Plan, party_node};
use super::wire::Outcome;
use crate::diag::Span;
use crate::eval::{Decision, Flow, Verdict};
use crate::model::{Expect, Policy};
use crate::net::Family;

/// The verdict a probe's outcome shows, if it shows one: arrived (and answered) is allow; a
/// drop (silence, or refused to send by the sender's own rules) is deny. An arrival whose
/// answer is lost, an ICMP error or a local error shows neither.
pub fn kernel_verdict(o: Outcome) -> Option<Verdict> {
    match o {
        Outcome::Open => Some(Verdict::Allow),
        Outcome::Timeout | Outcome::Blocked => Some(Verdict::Deny),
        Outcome::NoAnswer | Outcome::Unreachable | Outcome::Error | Outcome::Unsupported => None,
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
    pub covers: Covers,
}

/// An endpoint address the kernel classifies otherwise than the evaluator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Misclassified {
    pub endpoint: String,
    pub addr: IpAddr,
    /// The evaluator's class, and the kernel's (none: no element holds the address).
    pub expected: u32,
    pub kernel: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssertStatus {
    Holds,
    /// The kernel did otherwise (the outcomes seen).
    Fails(Vec<Outcome>),
    /// Planned, but the kernel cannot carry or show the flow.
    NotCarried(String),
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
    pub misclassified: Vec<Misclassified>,
    /// Per-endpoint enforcement: endpoint tables that classify otherwise than the first.
    pub table_mismatches: Vec<String>,
    pub asserts: Vec<AssertResult>,
    /// Probes the kernel cannot carry, not counted as disagreements.
    pub unsupported: usize,
    pub allowed: usize,
}

impl Findings {
    pub fn ok(&self) -> bool {
        self.disagreements.is_empty()
            && self.misclassified.is_empty()
            && self.table_mismatches.is_empty()
            && !self
                .asserts
                .iter()
                .any(|a| matches!(a.status, AssertStatus::Fails(_)))
    }

    pub fn failing_asserts(&self) -> usize {
        self.asserts
            .iter()
            .filter(|a| matches!(a.status, AssertStatus::Fails(_)))
            .count()
    }
}

/// What the kernel said about the run besides the probes' outcomes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Kernel<'a> {
    /// Per endpoint, the class its IPv4 and IPv6 address has in the kernel's class maps.
    pub classes: &'a [[Option<u32>; 2]],
    pub table_mismatches: &'a [String],
}

/// Compare `outcomes` (one per probe of `plan`) and the kernel's classes with the evaluator.
pub fn compare(p: &Policy, plan: &Plan, outcomes: &[Outcome], kernel: Kernel) -> Findings {
    let mut f = Findings {
        table_mismatches: kernel.table_mismatches.to_vec(),
        ..Findings::default()
    };
    for (i, n) in plan.nodes.iter().enumerate() {
        for (k, addr) in [n.node.v4.map(IpAddr::V4), n.node.v6.map(IpAddr::V6)]
            .into_iter()
            .enumerate()
        {
            let (Some(addr), Some(expected)) = (addr, plan.classes[k].get(i).copied().flatten())
            else {
                continue;
            };
            let got = kernel.classes.get(i).and_then(|c| c[k]);
            if got != Some(expected) {
                f.misclassified.push(Misclassified {
                    endpoint: n.name.clone(),
                    addr,
                    expected,
                    kernel: got,
                });
            }
        }
    }
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
            let dec = Decision {
                verdict: pr.expect,
                reason: pr.reason,
            };
            f.disagreements.push(Disagreement {
                probe: i,
                src: plan.nodes[pr.src as usize].name.clone(),
                dst: plan.nodes[pr.dst as usize].name.clone(),
                family: pr.family,
                flow: pr.flow,
                expect: pr.expect,
                outcome: o,
                rule: dec.describe(p),
                span: dec.span(p),
                covers: pr.covers,
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
        return AssertStatus::NotProvable(
            "not planned: no booted endpoint has that address".into(),
        );
    };
    if s == d {
        return AssertStatus::NotProvable("not planned: both ends are the same endpoint".into());
    }
    let want = match a.expect {
        Expect::Allow => Verdict::Allow,
        Expect::Deny => Verdict::Deny,
    };
    let mut seen = Vec::new();
    let mut any = false;
    let mut uncarried = false;
    for family in [Family::V4, Family::V6] {
        if sf.is_some_and(|f| f != family) || df.is_some_and(|f| f != family) {
            continue;
        }
        let fi = match plan.flows[usize::from(family == Family::V6)]
            .iter()
            .position(|f| *f == a.flow)
        {
            Some(fi) => fi,
            None => continue,
        };
        for k in plan.covering(family, s, d, fi) {
            let o = outcomes.get(k as usize).copied().unwrap_or(Outcome::Error);
            if o == Outcome::Unsupported {
                uncarried = true;
                continue;
            }
            any = true;
            if kernel_verdict(o) != Some(want) {
                seen.push(o);
            }
        }
    }
    if !any {
        return if uncarried {
            AssertStatus::NotCarried(format!(
                "planned, but the kernel cannot carry {} or show its arrival",
                a.flow
            ))
        } else {
            AssertStatus::NotProvable(
                "not planned: the two ends share no address family for this flow".into(),
            )
        };
    }
    if seen.is_empty() {
        AssertStatus::Holds
    } else {
        AssertStatus::Fails(seen)
    }
}
