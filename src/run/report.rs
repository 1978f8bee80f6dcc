//! The report of a run, for people (truth tables, disagreements with their rules and spans,
//! assertions, counters, times) and as JSON. Pure: the same inputs give the same text.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Value, json};

use super::compare::{AssertStatus, Findings};
use super::plan::Plan;
use super::wire::{Enforce, Outcome, Results};
use crate::diag::Span;
use crate::eval::{Proto, Verdict};
use crate::text::LineIndex;

/// Everything a report shows.
pub struct Input<'a> {
    /// The policy file's name and text (for `file:line:col`).
    pub file: &'a str,
    pub src: &'a str,
    pub enforce: Enforce,
    pub plan: &'a Plan,
    pub findings: &'a Findings,
    pub results: &'a Results,
    /// The decoded outcomes of `results`, one per probe of the plan.
    pub outcomes: &'a [Outcome],
    pub total_ms: u64,
    /// The element a fault injection removed from the script.
    pub injected: Option<&'a str>,
}

/// Cell marks of the truth tables.
pub const LEGEND: &str = "+ allowed, . denied (both agree with the evaluator); ! the kernel allowed what the \
     evaluator denies; x the kernel denied what the evaluator allows; ? reset, ICMP error or \
     local error; ~ the kernel cannot carry it";

fn mark(expect: Verdict, o: Outcome, agree: bool) -> u8 {
    match o {
        Outcome::Unsupported => b'~',
        Outcome::Refused | Outcome::Unreachable | Outcome::Error => b'?',
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

/// One table per group of flows with the same marks everywhere: (flow names, rows).
pub fn tables(i: &Input) -> Vec<(Vec<String>, Vec<String>)> {
    let n = i.plan.nodes.len();
    // Echo of both families is one table.
    let key = |proto: Proto, port: u16| -> (u8, u16) {
        match proto {
            Proto::Tcp => (0, port),
            Proto::Udp => (1, port),
            Proto::Sctp => (2, port),
            _ => (3, 0),
        }
    };
    let mut grids: BTreeMap<(u8, u16), Vec<u8>> = BTreeMap::new();
    for f in &i.plan.flows {
        grids.insert(key(f.proto, f.port), vec![b' '; n * n]);
    }
    for (pi, p) in i.plan.probes.iter().enumerate() {
        let o = i.outcomes.get(pi).copied().unwrap_or(Outcome::Error);
        let agree = i.findings.agree.get(pi).copied().unwrap_or(false);
        let c = mark(p.expect, o, agree);
        if let Some(g) = grids.get_mut(&key(p.flow.proto, p.flow.port)) {
            let cell = &mut g[p.src * n + p.dst];
            if rank(c) > rank(*cell) {
                *cell = c;
            }
        }
    }
    let mut groups: Vec<(Vec<String>, Vec<u8>)> = Vec::new();
    for ((k, port), g) in grids {
        let name = match k {
            0 => format!("tcp/{port}"),
            1 => format!("udp/{port}"),
            2 => format!("sctp/{port}"),
            _ => "icmp echo".to_string(),
        };
        match groups.iter_mut().find(|(_, og)| *og == g) {
            Some((names, _)) => names.push(name),
            None => groups.push((vec![name], g)),
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

fn place(file: &str, src: &str, ix: &LineIndex, span: Span) -> String {
    let pos = ix.position(src, span.start);
    format!("{file}:{}:{}", pos.line + 1, pos.col_chars + 1)
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
    let _ = writeln!(
        s,
        "{} probes{}: {} allowed, {} denied",
        plan.probes.len(),
        if plan.probes.len() < plan.total {
            format!(" (an even sample of {})", plan.total)
        } else {
            String::new()
        },
        f.allowed,
        plan.probes.len() - f.allowed - f.unsupported
    );
    let n = plan.nodes.len();
    let width = plan.nodes.iter().map(|x| x.name.len()).max().unwrap_or(0);
    let pad = 5 + width;
    let _ = writeln!(
        s,
        "\nTruth tables (rows: sources, columns: destinations by number)"
    );
    let _ = writeln!(s, "  {LEGEND}");
    for (names, rows) in tables(i) {
        let _ = writeln!(s);
        s.push_str(&wrap(&names, 96, ""));
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
    if !f.disagreements.is_empty() {
        let _ = writeln!(s, "\nDisagreements ({}):", f.disagreements.len());
        for d in &f.disagreements {
            let _ = writeln!(
                s,
                "  {} -> {} {} ({}): kernel {}, evaluator {}",
                d.src,
                d.dst,
                d.flow,
                d.family.as_str(),
                d.outcome.as_str(),
                d.expect.as_str()
            );
            let at = d
                .span
                .map(|sp| format!(" at {}", place(i.file, i.src, &ix, sp)))
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
            let at = place(i.file, i.src, &ix, a.span);
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
                AssertStatus::NotProvable(why) => {
                    let _ = writeln!(s, "  not proved  {} at {at}: {why}", a.text);
                }
            }
        }
    }
    for u in &plan.unprobed {
        let _ = writeln!(s, "not probed: {u}");
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
        "\nboot {}, load {}, probe {} ({} retried), total {}",
        secs(t.boot_ms),
        secs(t.load_ms),
        secs(t.probe_ms),
        i.results.retried,
        secs(i.total_ms)
    );
    let failed = f
        .asserts
        .iter()
        .filter(|a| matches!(a.status, AssertStatus::Fails(_)))
        .count();
    if f.ok() {
        let _ = writeln!(
            s,
            "ok: every probe agrees with the evaluator and every provable assertion holds"
        );
    } else {
        let _ = writeln!(
            s,
            "FAILED: {} disagreement{}, {} failing assertion{}",
            f.disagreements.len(),
            if f.disagreements.len() == 1 { "" } else { "s" },
            failed,
            if failed == 1 { "" } else { "s" }
        );
    }
    s
}

fn digit(c: usize) -> char {
    char::from(b'0' + (c % 10) as u8)
}

/// The report as one JSON document.
pub fn json(i: &Input) -> Value {
    let ix = LineIndex::new(i.src);
    let f = i.findings;
    let plan = i.plan;
    let span = |sp: Span| {
        let pos = ix.position(i.src, sp.start);
        json!({"file": i.file, "line": pos.line + 1, "column": pos.col_chars + 1})
    };
    let endpoints: Vec<Value> = plan
        .nodes
        .iter()
        .enumerate()
        .map(|(k, n)| {
            json!({"index": k + 1, "name": n.name, "hostname": n.node.host,
                   "ipv4": n.node.v4, "ipv6": n.node.v6})
        })
        .collect();
    let tables: Vec<Value> = tables(i)
        .into_iter()
        .map(|(names, rows)| json!({"flows": names, "rows": rows}))
        .collect();
    let dis: Vec<Value> = f
        .disagreements
        .iter()
        .map(|d| {
            json!({"from": d.src, "to": d.dst, "family": d.family.as_str(),
                   "flow": d.flow.to_string(), "kernel": d.outcome.as_str(),
                   "evaluator": d.expect.as_str(), "rule": d.rule,
                   "span": d.span.map(span)})
        })
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
                AssertStatus::NotProvable(why) => ("not-provable", json!(why)),
            };
            json!({"assert": a.text, "span": span(a.span), "status": status, "detail": detail})
        })
        .collect();
    let t = &i.results.timings;
    json!({
        "file": i.file,
        "enforce": i.enforce,
        "ok": f.ok(),
        "endpoints": endpoints,
        "not_booted": plan.skipped,
        "probes": {
            "probed": plan.probes.len(),
            "planned": plan.total,
            "allowed": f.allowed,
            "unsupported": f.unsupported,
            "retried": i.results.retried,
            "disagreements": f.disagreements.len(),
        },
        "legend": LEGEND,
        "tables": tables,
        "disagreements": dis,
        "assertions": asserts,
        "counters": i.results.counters,
        "not_probed": plan.unprobed,
        "notes": i.results.notes,
        "fault_injected": i.injected,
        "timings_ms": {"boot": t.boot_ms, "load": t.load_ms, "probe": t.probe_ms, "total": i.total_ms},
    })
}
