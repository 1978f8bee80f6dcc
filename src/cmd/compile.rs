//! `gbpc compile`: lower a checked policy for a target.
//!
//! As ripgrep does, the arguments are first parsed as given (every target-specific flag is an
//! `Option`, so "given" and "defaulted" differ), then [`plan`] validates them and derives what
//! to do before anything is read or written: a flag that applies to none of the selected targets
//! is a usage error (exit 2), never silently ignored.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use gbpc::diag::{Code, Diagnostic, Span};
use gbpc::lower::{k8s, nft};

use super::{Style, output};

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
pub enum Target {
    K8s,
    Nft,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::K8s => "k8s",
            Target::Nft => "nft",
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Json,
    Yaml,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DenyMode {
    /// A deny is an error for the k8s target (NetworkPolicy cannot deny).
    Error,
    /// Lower denies to AdminNetworkPolicy (policy.networking.k8s.io/v1alpha1).
    Admin,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Enforce {
    /// Rules in the routed fabric's forward hook.
    Fabric,
    /// Rules in each endpoint's own input and output hooks.
    Endpoint,
}

/// The arguments as given. Target-specific flags are `Option`s (or `false`): [`plan`] knows
/// which ones the user set and applies the defaults.
#[derive(clap::Args)]
pub struct CompileArgs {
    /// The policy file, or `-` for standard input.
    file: PathBuf,
    #[arg(long, value_enum)]
    target: Target,
    /// k8s: output format [default: json].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// k8s: what to do with deny subjects [default: error].
    #[arg(long, value_enum)]
    k8s_deny: Option<DenyMode>,
    /// k8s: allow egress DNS to the cluster resolver (kube-system/kube-dns) from every group.
    #[arg(long)]
    allow_dns: bool,
    /// nft: where the rules are enforced [default: fabric].
    #[arg(long, value_enum)]
    enforce: Option<Enforce>,
    /// nft: the name of the table (replaced as a whole on load) [default: gbpc]: a word nft
    /// reads as one name, not one of its keywords.
    #[arg(long, value_parser = nft::parse_table_name)]
    table: Option<String>,
    /// Write the output here instead of stdout (`-`: stdout). A regular file is replaced
    /// atomically (nothing is written on error), a symbolic link is written through, a device or
    /// FIFO is written directly; naming an input file is an error.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Compile a policy that declares no tenant (its ruleset allows nothing) instead of refusing
    /// it with E005.
    #[arg(long)]
    allow_empty: bool,
}

/// One lowering to run.
pub enum Lowering {
    K8s(k8s::Options),
    Nft(nft::Options),
}

/// What `compile` will do: validated and with every default applied.
pub struct Plan {
    file: PathBuf,
    lowering: Lowering,
    output: Option<PathBuf>,
    allow_empty: bool,
}

/// The target-specific flags the user gave, each with the target it applies to.
fn given_target_flags(a: &CompileArgs) -> Vec<(&'static str, Target)> {
    [
        (a.format.is_some(), "--format", Target::K8s),
        (a.k8s_deny.is_some(), "--k8s-deny", Target::K8s),
        (a.allow_dns, "--allow-dns", Target::K8s),
        (a.enforce.is_some(), "--enforce", Target::Nft),
        (a.table.is_some(), "--table", Target::Nft),
    ]
    .into_iter()
    .filter(|(given, _, _)| *given)
    .map(|(_, flag, t)| (flag, t))
    .collect()
}

/// Validate the arguments and derive the plan; `Err` is the usage error's message.
pub fn plan(a: CompileArgs) -> Result<Plan, String> {
    // The selected targets. (When `--target` becomes optional, compiling to every target, this
    // is the list of them; the check below stays as it is.)
    let targets = [a.target];
    for (flag, applies) in given_target_flags(&a) {
        if !targets.contains(&applies) {
            let selected: Vec<&str> = targets.iter().map(|t| t.name()).collect();
            return Err(format!(
                "{flag} applies only to --target {}; it has no effect with --target {}",
                applies.name(),
                selected.join(", ")
            ));
        }
    }
    let lowering = match a.target {
        Target::K8s => Lowering::K8s(k8s::Options {
            format: match a.format.unwrap_or(Format::Json) {
                Format::Json => k8s::Format::Json,
                Format::Yaml => k8s::Format::Yaml,
            },
            deny: match a.k8s_deny.unwrap_or(DenyMode::Error) {
                DenyMode::Error => k8s::DenyMode::Error,
                DenyMode::Admin => k8s::DenyMode::Admin,
            },
            allow_dns: a.allow_dns,
        }),
        Target::Nft => Lowering::Nft(nft::Options {
            table: a.table.unwrap_or_else(|| nft::Options::default().table),
            enforce: match a.enforce.unwrap_or(Enforce::Fabric) {
                Enforce::Fabric => nft::Enforce::Fabric,
                Enforce::Endpoint => nft::Enforce::Endpoint,
            },
        }),
    };
    Ok(Plan {
        file: a.file,
        lowering,
        output: a.output,
        allow_empty: a.allow_empty,
    })
}

/// A usage error of `compile`, in clap's format (with the usage line), exit 2.
fn usage_error(message: &str) -> ExitCode {
    let mut cmd = <super::Cli as clap::CommandFactory>::command();
    cmd.build();
    let err = match cmd.find_subcommand_mut("compile") {
        Some(sub) => sub.error(clap::error::ErrorKind::ArgumentConflict, message),
        None => clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, message),
    };
    super::clap_message(&err)
}

/// E005: refuse to compile a policy without tenants (its ruleset drops every flow).
fn empty_ruleset() -> Diagnostic {
    Diagnostic::error(
        Code::EmptyRuleset,
        "the policy declares no tenant: its compiled ruleset would drop every flow",
    )
    .primary(Span::new(0, 0), "no `tenant` in this file")
    .help(
        "is this the right file? To compile the empty ruleset on purpose, add `--allow-empty`; \
         nothing was written",
    )
}

pub fn run(args: CompileArgs, color: bool, json: bool, sarif: bool) -> output::Outcome {
    let plan = plan(args).map_err(|m| usage_error(&m))?;
    let style = Style {
        color,
        json,
        sarif,
        json_stdout: false,
    };
    let source = super::read(&plan.file)?;
    // Where the output goes is decided (and an output that is the input refused) before the
    // policy is even checked.
    let dest = match &plan.output {
        Some(path) => Some(output::destination(
            path,
            std::slice::from_ref(&source.input),
        )?),
        None => None,
    };
    let (name, src, checked) = super::load_source(source, style)?;
    if !checked.ok() {
        return Err(super::reject(&checked, &name, &src, style));
    }
    let empty = checked.policy.tenants.is_empty();
    // W006 says the same as E005, and `--allow-empty` asked for the empty ruleset on purpose.
    let checker_warnings = checked
        .warnings
        .iter()
        .filter(|w| !(empty && w.code == Code::NoTenant));
    if empty && !plan.allow_empty {
        let mut all: Vec<Diagnostic> = checker_warnings.cloned().collect();
        all.push(empty_ruleset());
        gbpc::diag::sort(&mut all);
        super::report(&all, &name, &src, style)?;
        super::summary_line(
            style,
            format!("{name}: {}", gbpc::render::summary(1, all.len() - 1)),
        )?;
        return Err(ExitCode::from(1));
    }
    let result = match &plan.lowering {
        Lowering::K8s(o) => k8s::lower(&checked.policy, o),
        Lowering::Nft(o) => nft::lower(&checked.policy, o),
    };
    let lowered = match result {
        Ok(l) => l,
        Err(errors) => {
            let mut all = errors.clone();
            all.extend(checker_warnings.cloned());
            gbpc::diag::sort(&mut all);
            super::report(&all, &name, &src, style)?;
            super::summary_line(
                style,
                format!(
                    "{name}: {}",
                    gbpc::render::summary(errors.len(), all.len() - errors.len())
                ),
            )?;
            return Err(ExitCode::from(1));
        }
    };
    let mut warnings: Vec<Diagnostic> =
        checker_warnings.chain(&lowered.warnings).cloned().collect();
    gbpc::diag::sort(&mut warnings);
    super::report(&warnings, &name, &src, style)?;
    match (&dest, &plan.output) {
        (Some(d), Some(path)) => output::write(d, lowered.text.as_bytes(), path)?,
        _ => output::out(&lowered.text)?,
    }
    Ok(ExitCode::SUCCESS)
}
