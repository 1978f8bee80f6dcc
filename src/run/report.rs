//! The report of a run, for people (IPv4 and IPv6 truth tables, the kernel's classification,
//! disagreements with their rules and spans, assertions, counters, times) and as JSON (the same,
//! plus every probe's result with the fields another tool needs to recompute the tables).
//! Pure: the same inputs give the same text.

use std::collections::HashMap;
use std::fmt::Write;

use serde_json::{Value, json};

use super::compare::{AssertStatus, Findings};
use super::plan::{Covers, Mode, Plan};
use super::wire::{Enforce, Outcome, Results};
use crate::diag::Span;
use crate::eval::{Proto, Reason, Verdict};
use crate::net::Family;
use crate::text::{LineIndex, count, place};

/// Everything a report shows.
pub struct Input<'a> {
    /// The policy file's name and text (for `file:line:col`).
    pub file: &'a str,
    pub src: &'a str,
    pub policy: &'a crate::model::Policy,
    pub enforce: Enforce,
    pub plan: &'a Plan,
    pub findings: &'a Findings,
    pub results: &'a Results,
    /// The decoded outcomes of `results`, one per probe of the plan.
    pub outcomes: &'a [Outcome],
    /// Milliseconds of the caller's own phases: planning, and the whole run so far.
    pub plan_ms: u64,
    pub total_ms: u64,
    /// The element a fault injection removed from the script.
    pub injected: Option<&'a str>,
}

/// Cell marks of the truth tables.
pub const LEGEND: &str = "+ allowed, . denied (both agree with the evaluator); ! the kernel allowed what the \
     evaluator denies; x the kernel denied what the evaluator allows; ? it arrived but its answer \
     never came back, or an ICMP error or local error; ~ planned, but the kernel cannot carry it \
     (or show its arrival); blank: not planned (the two have no address of this family)";

/// Tables of more endpoints than this are summarised in the text report, and their rows are
/// left out of the JSON report (every probe's row is there: they can be recomputed).
pub const TEXT_TABLE_MAX: usize = 256;

fn mark(expect: Verdict, o: Outcome, agree: bool) -> u8 {
    match o {
        Outcome::Unsupported => b'~',
        Outcome::NoAnswer | Outcome::Unreachable | Outcome::Error => b'?',
        _ if agree && expect == Verdict::Allow => b'+',
        _ if agree => b'.',
        Outcome::Open => b'!',
        _ => b'x',
    }
}

fn rank(c: u8) -> u8 {
    match c {
        b'!' => 6,
        b'x' => 5,
        b'?' => 4,
        b'+' => 3,
        b'.' => 2,
        b'~' => 1,
        _ => 0,
    }
}

fn fam(f: Family) -> usize {
    usize::from(f == Family::V6)
}

/// One table per group of flows of a family with the same marks everywhere: (flow names,
/// rows). Cells are the marks of the probes that cover them.
pub fn tables(i: &Input, family: Family) -> Vec<(Vec<String>, Vec<String>)> {
    let plan = i.plan;
    let n = plan.nodes.len();
    let flows = &plan.flows[fam(family)];
    if flows.is_empty() || n == 0 {
        return Vec::new();
    }
    let has = |k: usize| match family {
        Family::V4 => plan.nodes[k].node.v4.is_some(),
        Family::V6 => plan.nodes[k].node.v6.is_some(),
    };
    if !(0..n).any(has) {
        return Vec::new();
    }
    let mut grids: Vec<Vec<u8>> = vec![vec![b' '; n * n]; flows.len()];
    let mut cells = Vec::new();
    for a in 0..n {
        if !has(a) {
            continue;
        }
        for b in 0..n {
            if a == b || !has(b) {
                continue;
            }
            plan.pair_cells_into(family, a, b, &mut cells);
            for (fi, probes) in cells.iter().enumerate() {
                let mut c = b' ';
                for &k in probes.as_slice() {
                    let k = k as usize;
                    let o = i.outcomes.get(k).copied().unwrap_or(Outcome::Error);
                    let agree = i.findings.agree.get(k).copied().unwrap_or(false);
                    let m = mark(plan.probes[k].expect, o, agree);
                    if rank(m) > rank(c) {
                        c = m;
                    }
                }
                grids[fi][a * n + b] = c;
            }
        }
    }
    let mut groups: Vec<(Vec<String>, Vec<u8>)> = Vec::new();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    for (fi, g) in grids.into_iter().enumerate() {
        let name = flows[fi].to_string();
        match index.get(&g) {
            Some(&k) => groups[k].0.push(name),
            None => {
                index.insert(g.clone(), groups.len());
                groups.push((vec![name], g));
            }
        }
    }
    groups
        .into_iter()
        .map(|(names, g)| {
            let rows = g
                .chunks(n.max(1))
                .map(|r| String::from_utf8_lossy(r).into_owned())
                .collect();
            (names, rows)
        })
        .collect()
}

fn secs(ms: u64) -> String {
    format!("{}.{:02} s", ms / 1000, (ms % 1000) / 10)
}

fn wrap(items: &[String], width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for it in items {
        if !line.is_empty() && line.len() + it.len() + 2 > width {
            let _ = writeln!(out, "{indent}{line},");
            line.clear();
        }
        if !line.is_empty() {
            line.push_str(", ");
        }
        line.push_str(it);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}{line}");
    }
    out
}

fn digit(c: usize) -> char {
    char::from(b'0' + (c % 10) as u8)
}

fn covers_text(c: Covers, flow: crate::eval::Flow) -> String {
    match c {
        Covers::Exact => String::new(),
        Covers::Range(lo, hi) if lo == hi => String::new(),
        Covers::Range(lo, hi) => {
            let what = match flow.proto {
                Proto::Icmp | Proto::Icmpv6 => "types",
                Proto::Other(_) => "protocols",
                _ => "ports",
            };
            format!(" [stands for {what} {lo}-{hi} between the two classes]")
        }
        Covers::Rest(t) => format!(
            " [stands for every {} flow between the two classes that no applicable filter names]",
            t.as_str()
        ),
    }
}

/// The report for a terminal.
pub fn text(i: &Input) -> String {
    let ix = LineIndex::new(i.src);
    let f = i.findings;
    let plan = i.plan;
    let mut s = String::new();
    let enforce = match i.enforce {
        Enforce::Fabric => "rules in the fabric (forward hook)",
        Enforce::Endpoint => "rules in every endpoint (input and output hooks)",
    };
    let _ = writeln!(
        s,
        "{}: {} endpoints booted, {enforce}",
        i.file,
        plan.nodes.len()
    );
    for k in &plan.skipped {
        let _ = writeln!(s, "  not booted: {k}");
    }
    if let Some(inj) = i.injected {
        let _ = writeln!(s, "fault injected: removed element `{inj}` before loading");
    }
    let proof = match plan.mode {
        Some(Mode::Exhaustive) => "exhaustive: one probe per cell".to_string(),
        _ => "classes: both edges of every range between every two classes (see docs/run.md; \
              --exhaustive probes every cell)"
            .to_string(),
    };
    let _ = writeln!(s, "proof: {proof}");
    let denied = plan.probes.len() - f.allowed - f.unsupported;
    let _ = writeln!(
        s,
        "{} probes for {} cells{}: {} allowed, {} denied{}",
        plan.probes.len(),
        plan.total,
        if plan.probes.len() < plan.planned {
            format!(" (an even sample of {} planned)", plan.planned)
        } else {
            String::new()
        },
        f.allowed,
        denied,
        if f.unsupported > 0 {
            format!(", {} planned but not carried by the kernel", f.unsupported)
        } else {
            String::new()
        }
    );
    let addresses: usize = plan.classes.iter().flatten().flatten().count();
    if f.misclassified.is_empty() && f.table_mismatches.is_empty() {
        let _ = writeln!(
            s,
            "classification: the kernel puts all {addresses} endpoint addresses in the evaluator's classes"
        );
    } else {
        let _ = writeln!(
            s,
            "\nMisclassified ({}): the kernel's class maps disagree with the evaluator",
            f.misclassified.len() + f.table_mismatches.len()
        );
        for m in &f.misclassified {
            let _ = writeln!(
                s,
                "  {} at {}: kernel {}, evaluator 0x{:x}",
                m.endpoint,
                m.addr,
                m.kernel
                    .map_or_else(|| "no class".to_string(), |k| format!("0x{k:x}")),
                m.expected
            );
        }
        for m in &f.table_mismatches {
            let _ = writeln!(s, "  {m}");
        }
    }
    let n = plan.nodes.len();
    let width = plan.nodes.iter().map(|x| x.name.len()).max().unwrap_or(0);
    let pad = 5 + width;
    for family in [Family::V4, Family::V6] {
        let ts = tables(i, family);
        if ts.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "\n{} truth tables (rows: sources, columns: destinations by number)",
            family.as_str()
        );
        let _ = writeln!(s, "  {LEGEND}");
        for (names, rows) in ts {
            let _ = writeln!(s);
            s.push_str(&wrap(&names, 96, ""));
            if n > TEXT_TABLE_MAX {
                let mut counts: Vec<(u8, usize)> = Vec::new();
                for r in &rows {
                    for c in r.bytes().filter(|c| *c != b' ') {
                        match counts.iter_mut().find(|(x, _)| *x == c) {
                            Some((_, k)) => *k += 1,
                            None => counts.push((c, 1)),
                        }
                    }
                }
                counts.sort_unstable_by_key(|(c, _)| std::cmp::Reverse(rank(*c)));
                let counts: Vec<String> = counts
                    .iter()
                    .map(|(c, k)| format!("{k} {}", char::from(*c)))
                    .collect();
                let _ = writeln!(
                    s,
                    "  {} (the table of {n} endpoints is not drawn; the JSON report's cells recompute it)",
                    counts.join(", ")
                );
                continue;
            }
            if n >= 100 {
                let h: String = (1..=n).map(|c| digit(c / 100)).collect();
                let _ = writeln!(s, "{:pad$}{h}", "");
            }
            if n >= 10 {
                let h: String = (1..=n).map(|c| digit(c / 10)).collect();
                let _ = writeln!(s, "{:pad$}{h}", "");
            }
            let h: String = (1..=n).map(digit).collect();
            let _ = writeln!(s, "{:pad$}{h}", "");
            for (r, row) in rows.iter().enumerate() {
                let _ = writeln!(s, "{:>3} {:<width$} {row}", r + 1, plan.nodes[r].name);
            }
        }
    }
    if !f.disagreements.is_empty() {
        let _ = writeln!(s, "\nDisagreements ({}):", f.disagreements.len());
        for d in &f.disagreements {
            let _ = writeln!(
                s,
                "  {} -> {} {} ({}): kernel {}, evaluator {}{}",
                d.src,
                d.dst,
                d.flow,
                d.family.as_str(),
                d.outcome.as_str(),
                d.expect.as_str(),
                covers_text(d.covers, d.flow)
            );
            let at = d
                .span
                .map(|sp| format!(" at {}", place(i.file, i.src, &ix, sp.start)))
                .unwrap_or_default();
            let _ = writeln!(s, "    evaluator: {}{at}", d.rule);
        }
    }
    if !f.asserts.is_empty() {
        let holds = f
            .asserts
            .iter()
            .filter(|a| a.status == AssertStatus::Holds)
            .count();
        let _ = writeln!(
            s,
            "\nAssertions: {holds} of {} hold in the kernel",
            f.asserts.len()
        );
        for a in &f.asserts {
            let at = place(i.file, i.src, &ix, a.span.start);
            match &a.status {
                AssertStatus::Holds => {}
                AssertStatus::Fails(seen) => {
                    let seen: Vec<&str> = seen.iter().map(|o| o.as_str()).collect();
                    let _ = writeln!(
                        s,
                        "  FAILS  {} at {at}: the kernel gave {}",
                        a.text,
                        seen.join(", ")
                    );
                }
                AssertStatus::NotCarried(why) | AssertStatus::NotProvable(why) => {
                    let _ = writeln!(s, "  not proved  {} at {at}: {why}", a.text);
                }
            }
        }
    }
    for u in &plan.uncarried {
        let _ = writeln!(s, "planned, but the kernel cannot carry it: {u}");
    }
    for u in &plan.unplanned {
        let _ = writeln!(s, "not planned: {u}");
    }
    for note in &i.results.notes {
        let _ = writeln!(s, "note: {note}");
    }
    if !f.disagreements.is_empty() && !i.results.counters.is_empty() {
        let _ = writeln!(
            s,
            "\nCounters of the loaded table (packets of new connections):"
        );
        for c in &i.results.counters {
            let _ = writeln!(s, "  {:<40} {:>8}", c.name, c.packets);
        }
    }
    let t = &i.results.timings;
    let _ = writeln!(
        s,
        "\nplan {}, boot {}, wire {}, load {}, classify {}, probe {} ({} retried), total {}",
        secs(i.plan_ms),
        secs(t.boot_ms),
        secs(t.wire_ms),
        secs(t.load_ms),
        secs(t.classify_ms),
        secs(t.probe_ms),
        i.results.retried,
        secs(i.total_ms)
    );
    let failed = f.failing_asserts();
    if f.ok() {
        let _ = writeln!(
            s,
            "ok: every probe agrees with the evaluator and every provable assertion holds"
        );
    } else {
        let mis = f.misclassified.len() + f.table_mismatches.len();
        let _ = writeln!(
            s,
            "FAILED: {}, {}{}",
            count(f.disagreements.len(), "disagreement"),
            count(failed, "failing assertion"),
            if mis > 0 {
                format!(", {mis} misclassified")
            } else {
                String::new()
            }
        );
    }
    s
}

/// The fields of each row of the JSON report's `cells`.
pub const CELL_FIELDS: [&str; 12] = [
    "source",
    "destination",
    "family",
    "protocol",
    "port",
    "expected",
    "observed",
    "agrees",
    "rule",
    "covers",
    "source_class",
    "destination_class",
];

/// The report as one JSON document (the text of [`json`], with every probe's row written
/// directly: there may be millions).
pub fn json_text(i: &Input) -> String {
    let (mut v, rows) = json_parts(i);
    let rows = format!("[{rows}\n    ]");
    let text = serde_json::to_string_pretty(&v).unwrap_or_default();
    let mut out = if text.matches(ROWS).count() == 1 {
        text.replacen(ROWS, &rows, 1)
    } else {
        // A name in the policy holds the placeholder: the slow way.
        v["cells"]["rows"] = serde_json::from_str(&rows).unwrap_or(Value::Null);
        serde_json::to_string_pretty(&v).unwrap_or_default()
    };
    out.push('\n');
    out
}

/// The report as one JSON value.
pub fn json(i: &Input) -> Value {
    let text = json_text(i);
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

const ROWS: &str = "\"@rows@\"";

fn json_parts(i: &Input) -> (Value, String) {
    let ix = LineIndex::new(i.src);
    let f = i.findings;
    let plan = i.plan;
    let span = |sp: Span| Value::Object(crate::render::json_place(i.file, i.src, &ix, sp.start));
    let endpoints: Vec<Value> = plan
        .nodes
        .iter()
        .enumerate()
        .map(|(k, n)| {
            let kernel = i.results.classes.get(k).copied().unwrap_or([None, None]);
            json!({"index": k + 1, "name": n.name, "hostname": n.node.host,
                   "ipv4": n.node.v4, "ipv6": n.node.v6,
                   "class": {"ipv4": plan.classes[0].get(k).copied().flatten(),
                             "ipv6": plan.classes[1].get(k).copied().flatten()},
                   "kernel_class": {"ipv4": kernel[0], "ipv6": kernel[1]},
                   "class_key": {"ipv4": plan.class_key(Family::V4, k),
                                 "ipv6": plan.class_key(Family::V6, k)}})
        })
        .collect();
    let mut tables_json = serde_json::Map::new();
    let big = plan.nodes.len() > TEXT_TABLE_MAX;
    for family in [Family::V4, Family::V6] {
        let t: Vec<Value> = tables(i, family)
            .into_iter()
            .map(|(names, rows)| {
                if big {
                    // Recompute them from `cells` (docs/run.md).
                    json!({"flows": names, "rows": Value::Null})
                } else {
                    json!({"flows": names, "rows": rows})
                }
            })
            .collect();
        tables_json.insert(family.as_str().to_ascii_lowercase(), Value::Array(t));
    }
    // Every probe, its deciding rule by number.
    let mut rules: Vec<Value> = Vec::new();
    let mut rule_ix: HashMap<Reason, usize> = HashMap::new();
    let mut rows = String::with_capacity(plan.probes.len() * 64);
    for (k, p) in plan.probes.iter().enumerate() {
        let r = *rule_ix.entry(p.reason).or_insert_with(|| {
            let d = crate::eval::Decision {
                verdict: p.expect,
                reason: p.reason,
            };
            rules.push(json!({"rule": d.describe(i.policy), "span": d.span(i.policy).map(span)}));
            rules.len() - 1
        });
        let o = i.outcomes.get(k).copied().unwrap_or(Outcome::Error);
        let (proto, port) = match p.flow.proto {
            Proto::Other(n) => (format!("ip/{n}"), "null".to_string()),
            pr => (pr.name(), p.flow.port.to_string()),
        };
        let covers = match p.covers {
            Covers::Exact => "\"exact\"".to_string(),
            Covers::Range(lo, hi) => format!("[{lo}, {hi}]"),
            Covers::Rest(t) => format!("\"rest:{}\"", t.as_str()),
        };
        let key = |n: u32| {
            plan.class_key(p.family, n as usize)
                .map_or_else(|| "null".to_string(), |k| k.to_string())
        };
        let _ = write!(
            rows,
            "{}\n      [{}, {}, \"{}\", \"{proto}\", {port}, \"{}\", \"{}\", {}, {r}, {covers}, {}, {}]",
            if k == 0 { "" } else { "," },
            p.src + 1,
            p.dst + 1,
            p.family.as_str().to_ascii_lowercase(),
            p.expect.as_str(),
            o.as_str(),
            f.agree.get(k).copied().unwrap_or(false),
            key(p.src),
            key(p.dst)
        );
    }
    let flows: serde_json::Map<String, Value> = [Family::V4, Family::V6]
        .iter()
        .map(|&fm| {
            (
                fm.as_str().to_ascii_lowercase(),
                json!(
                    plan.flows[fam(fm)]
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                ),
            )
        })
        .collect();
    let dis: Vec<Value> = f
        .disagreements
        .iter()
        .map(|d| {
            json!({"from": d.src, "to": d.dst, "family": d.family.as_str(),
                   "flow": d.flow.to_string(), "kernel": d.outcome.as_str(),
                   "evaluator": d.expect.as_str(), "rule": d.rule,
                   "span": d.span.map(span), "probe": d.probe})
        })
        .collect();
    let misclassified: Vec<Value> = f
        .misclassified
        .iter()
        .map(|m| {
            json!({"endpoint": m.endpoint, "address": m.addr.to_string(),
                   "expected": m.expected, "kernel": m.kernel})
        })
        .chain(f.table_mismatches.iter().map(|m| json!({"detail": m})))
        .collect();
    let asserts: Vec<Value> = f
        .asserts
        .iter()
        .map(|a| {
            let (status, detail) = match &a.status {
                AssertStatus::Holds => ("holds", Value::Null),
                AssertStatus::Fails(seen) => (
                    "fails",
                    json!(seen.iter().map(|o| o.as_str()).collect::<Vec<_>>()),
                ),
                AssertStatus::NotCarried(why) => ("not-carried", json!(why)),
                AssertStatus::NotProvable(why) => ("not-planned", json!(why)),
            };
            json!({"assert": a.text, "span": span(a.span), "status": status, "detail": detail})
        })
        .collect();
    let t = &i.results.timings;
    let v = json!({
        "file": i.file,
        "enforce": i.enforce,
        "proof": plan.mode.map_or("none", |m| m.as_str()),
        "ok": f.ok(),
        "endpoints": endpoints,
        "not_booted": plan.skipped,
        "probes": {
            "probed": plan.probes.len(),
            "planned": plan.planned,
            "cells": plan.total,
            "allowed": f.allowed,
            "unsupported": f.unsupported,
            "retried": i.results.retried,
            "disagreements": f.disagreements.len(),
        },
        "legend": LEGEND,
        "flows": flows,
        "tables": tables_json,
        "cells": {"fields": CELL_FIELDS, "rules": rules, "rows": "@rows@"},
        "misclassified": misclassified,
        "disagreements": dis,
        "assertions": asserts,
        "counters": i.results.counters,
        "not_carried": plan.uncarried,
        "not_planned": plan.unplanned,
        "notes": i.results.notes,
        "fault_injected": i.injected,
        "timings_ms": {"plan": i.plan_ms, "boot": t.boot_ms, "wire": t.wire_ms,
                       "load": t.load_ms, "classify": t.classify_ms, "probe": t.probe_ms,
                       "total": i.total_ms},
    });
    (v, rows)
}
