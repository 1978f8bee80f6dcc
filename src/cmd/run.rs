//! `gbpc run`: boot the policy's endpoints in namespaced containers, load the compiled rules,
//! probe every pair and print the truth table (exit 0 all agree, 1 a disagreement or a failing
//! assertion, 2 cannot run). Also the hidden entry points of the run's own processes
//! (`gbpc run --agent fabric|endpoint`, re-executed through /proc/self/exe).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::ValueEnum;
use gbpc::lower::nft;
use gbpc::run::{compare, host, inject, plan, report, wire};

use super::cmd_compile::Enforce;

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RunFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum AgentRole {
    Fabric,
    Endpoint,
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// The policy file, or `-` for standard input.
    #[arg(required_unless_present = "agent")]
    file: Option<PathBuf>,
    /// Where the rules are enforced.
    #[arg(long, value_enum, default_value_t = Enforce::Fabric)]
    enforce: Enforce,
    /// The report: a truth table for people, or one JSON document.
    #[arg(long, value_enum, default_value_t = RunFormat::Text)]
    format: RunFormat,
    /// How long to wait, after the last probe is sent, for probes and answers still on their
    /// way before a silent probe counts as dropped: 50 to 10000 milliseconds. A probe the
    /// evaluator allows that stays silent is sent again and waited for at least 1000 ms.
    #[arg(long, default_value_t = 400, value_name = "MS",
          value_parser = clap::value_parser!(u32).range(50..=10_000))]
    timeout_ms: u32,
    /// One probe per cell of the truth tables (every pair of endpoints, every flow) instead
    /// of the class proof (one endpoint per class, both edges of every range).
    #[arg(long)]
    exhaustive: bool,
    /// Probe at most N flows: an even sample of the plan (assertions always probed).
    #[arg(long, value_name = "N")]
    max_probes: Option<usize>,
    /// Testing the run itself: remove one permit element of this contract from the script
    /// before loading it: `tenant/contract`, `tenant/contract@SPACE` (l4, icmp, icmp6, proto)
    /// or `tenant/contract@SPACE:N` (the element whose range holds port, type or protocol N).
    #[arg(long, hide = true, value_name = "CONTRACT")]
    drop_permit: Option<String>,
    /// Internal: be one of the run's own processes.
    #[arg(long = "agent", hide = true, value_enum)]
    agent: Option<AgentRole>,
    /// Internal: the run a process belongs to (in every command line of a run).
    #[arg(long = "run-id", hide = true, value_name = "ID")]
    run_id: Option<String>,
    /// Internal: the endpoint an agent stands for (in its command line, for people).
    #[arg(long = "endpoint", hide = true, value_name = "NAME")]
    endpoint: Option<String>,
}

fn cannot_run(what: &str, message: &str) -> ExitCode {
    super::output::fail(&format!("gbpc run cannot run ({what}): {message}"))
}

pub fn run(args: RunArgs, color: bool, json_diags: bool) -> ExitCode {
    match args.agent {
        Some(AgentRole::Fabric) => return ExitCode::from(gbpc::run::fabric::main() as u8),
        Some(AgentRole::Endpoint) => return ExitCode::from(gbpc::run::agent::main() as u8),
        None => {}
    }
    let t0 = Instant::now();
    let Some(file) = args.file else {
        return cannot_run("usage", "no policy file");
    };
    let style = super::Style {
        color,
        json: json_diags,
        sarif: false,
        json_stdout: false,
    };
    if let Err(f) = host::preflight() {
        return cannot_run(&f.what, &f.message);
    }
    let (name, src, checked) = match super::load(&file, style) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if !checked.ok() {
        return super::reject(&checked, &name, &src, style);
    }
    let p = &checked.policy;
    let enforce = nft::Enforce::from(args.enforce);
    let options = nft::Options {
        table: "gbpc".into(),
        enforce,
        // Run mode reads the class maps back from the kernel and rewrites verdict elements by
        // class (src/run/netlink.rs, inject.rs): the mark layout, in namespaces of its own
        // where no other ruleset uses marks.
        layout: nft::Layout::Marks,
    };
    let lowered = match nft::lower(p, &options) {
        Ok(l) => l,
        Err(errors) => {
            return match super::report(&errors, &name, &src, style) {
                Ok(()) => ExitCode::from(1),
                Err(code) => code,
            };
        }
    };
    let mut script = lowered.text;
    let mut injected = None;
    if let Some(c) = &args.drop_permit {
        match inject::drop_permit(&script, c) {
            Ok((s, removed)) => {
                script = s;
                injected = Some(removed);
            }
            Err(e) => return cannot_run("usage", &e),
        }
    }
    let t_plan = Instant::now();
    let plan = match plan::plan(
        p,
        &plan::Options {
            max_probes: args.max_probes,
            exhaustive: args.exhaustive,
        },
    ) {
        Ok(pl) => pl,
        Err(e) => return cannot_run("plan", &e.0),
    };
    if plan.nodes.len() < 2 {
        return cannot_run(
            "plan",
            "the policy declares fewer than two endpoints with addresses: nothing to probe",
        );
    }
    let probes = wire::encode_probes(&plan.wire_probes());
    let plan_ms = t_plan.elapsed().as_millis() as u64;
    let job = wire::Job {
        nodes: plan.nodes.iter().map(|n| n.node.clone()).collect(),
        probes: plan.probes.len(),
        script,
        table: options.table.clone(),
        enforce,
        timeout_ms: args.timeout_ms,
        run_id: host::run_id(),
    };
    let tty = std::io::stderr().is_terminal();
    let mut shown = false;
    let mut progress = |phase: &str, done: usize, total: usize| {
        if tty {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[2K{phase} {done}/{total}");
            let _ = e.flush();
            shown = true;
        }
    };
    let results = host::launch(&job, &probes, &mut progress);
    if shown {
        let _ = super::output::err("\r\x1b[2K");
    }
    let results = match results {
        Ok(r) => r,
        Err(f) => return cannot_run(&f.what, &f.message),
    };
    let outcomes = wire::decode(&results.outcomes);
    let findings = compare::compare(
        p,
        &plan,
        &outcomes,
        compare::Kernel {
            classes: &results.classes,
            table_mismatches: &results.class_mismatches,
        },
    );
    let input = report::Input {
        file: &name,
        src: &src,
        policy: p,
        enforce,
        plan: &plan,
        findings: &findings,
        results: &results,
        outcomes: &outcomes,
        plan_ms,
        total_ms: t0.elapsed().as_millis() as u64,
        injected: injected.as_deref(),
    };
    let text = match args.format {
        RunFormat::Text => report::text(&input),
        RunFormat::Json => report::json_text(&input),
    };
    if let Err(code) = super::output::out(&text) {
        return code;
    }
    if findings.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
