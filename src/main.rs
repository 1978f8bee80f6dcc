//! The `gbpc` command: reads a policy, checks it, lowers it, and decides how to render findings
//! and which exit code to return (0 success, 1 the policy has errors, 2 usage or I/O error).

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// mimalloc instead of glibc's allocator: the compiler allocates many small objects (parse pairs,
/// model, lowered objects) and frees them all at once; glibc spent a quarter of a large
/// Kubernetes compile in malloc/free/consolidation.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use gbpc::diag::Diagnostic;
use gbpc::lower::{k8s, nft};

#[path = "cmd/analysis.rs"]
mod cmd_analysis;
#[path = "cmd/completions.rs"]
mod cmd_completions;
#[path = "cmd/fmt.rs"]
mod cmd_fmt;
#[path = "cmd/lsp.rs"]
mod cmd_lsp;
#[path = "cmd/run.rs"]
mod cmd_run;
#[path = "cmd/synth.rs"]
mod cmd_synth;

#[derive(Parser)]
#[command(
    name = "gbpc",
    version,
    about = "Group-based policy compiler: endpoint groups and contracts to Kubernetes and nftables"
)]
struct Cli {
    /// Colour in diagnostics: auto (when stderr is a terminal), always, never.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    color: Color,
    /// How diagnostics are written: for people, one JSON object per line, or one SARIF 2.1.0
    /// log (check and compile only; docs/diagnostics-json.md). `check` writes them to stdout,
    /// `compile` to stderr.
    #[arg(long, global = true, value_enum, default_value_t = MessageFormat::Human)]
    message_format: MessageFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum MessageFormat {
    Human,
    Json,
    /// A SARIF 2.1.0 log, for GitHub code scanning and other dashboards.
    Sarif,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Target {
    K8s,
    Nft,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Yaml,
}

#[derive(Clone, Copy, ValueEnum)]
enum DenyMode {
    /// A deny is an error for the k8s target (NetworkPolicy cannot deny).
    Error,
    /// Lower denies to AdminNetworkPolicy (policy.networking.k8s.io/v1alpha1).
    Admin,
}

#[derive(Clone, Copy, ValueEnum)]
enum Enforce {
    /// Rules in the routed fabric's forward hook.
    Fabric,
    /// Rules in each endpoint's own input and output hooks.
    Endpoint,
}

#[derive(Subcommand)]
enum Command {
    /// Explain the verdict of one flow: the deciding rule and every subject that matched.
    Explain(cmd_analysis::ExplainArgs),
    /// Every (group, protocol, ports) a group may open connections to.
    Query(cmd_analysis::QueryArgs),
    /// Flows two versions of a policy decide differently (exit 0 equivalent, 1 not).
    Diff(cmd_analysis::DiffArgs),
    /// The contract graph as Graphviz DOT or Mermaid.
    Graph(cmd_analysis::GraphArgs),
    /// Group-to-group connectivity as text, CSV or HTML.
    Matrix(cmd_analysis::MatrixArgs),
    /// The language server, over standard input and output (docs/editors.md).
    Lsp(cmd_lsp::LspArgs),
    /// Rewrite policies in canonical layout (`--check`: only report, exit 1 if one would change).
    Fmt(cmd_fmt::FmtArgs),
    /// Boot the endpoints in containers, load the compiled rules and prove them with traffic.
    Run(cmd_run::RunArgs),
    /// Print the completion script of a shell (bash, zsh, fish) to standard output.
    Completions(cmd_completions::CompletionsArgs),
    /// Man pages from these options: gbpc(1) to standard output, or every page into --dir.
    Man(cmd_completions::ManArgs),
    /// Hidden helpers for differential testing (`__synth`, `__k8s-fixture`, `__eval-matrix`).
    #[command(flatten)]
    Synth(cmd_synth::SynthCommand),
    /// Check a policy: diagnostics, and proof of its assertions.
    Check {
        /// The policy file, or `-` for standard input.
        file: PathBuf,
    },
    /// Compile a policy for a target.
    Compile {
        /// The policy file, or `-` for standard input.
        file: PathBuf,
        #[arg(long, value_enum)]
        target: Target,
        /// Output format of the k8s target.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// What the k8s target does with deny subjects.
        #[arg(long, value_enum, default_value_t = DenyMode::Error)]
        k8s_deny: DenyMode,
        /// k8s: allow egress DNS to the cluster resolver (kube-system/kube-dns) from every group.
        #[arg(long)]
        allow_dns: bool,
        /// nft: where the rules are enforced.
        #[arg(long, value_enum, default_value_t = Enforce::Fabric)]
        enforce: Enforce,
        /// nft: the name of the table (replaced as a whole on load).
        #[arg(long, default_value = "gbpc")]
        table: String,
        /// Write the output here (atomically: nothing is written on error) instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(2),
            };
        }
    };
    let json = cli.message_format == MessageFormat::Json;
    let sarif = cli.message_format == MessageFormat::Sarif;
    if sarif && !matches!(cli.command, Command::Check { .. } | Command::Compile { .. }) {
        eprintln!("error: --message-format sarif applies to `check` and `compile` only");
        return ExitCode::from(2);
    }
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    match cli.command {
        Command::Explain(a) => cmd_analysis::explain(a, color, json),
        Command::Query(a) => cmd_analysis::query(a, color, json),
        Command::Diff(a) => cmd_analysis::diff(a, color, json),
        Command::Graph(a) => cmd_analysis::graph(a, color, json),
        Command::Matrix(a) => cmd_analysis::matrix(a, color, json),
        Command::Lsp(a) => cmd_lsp::run(a),
        Command::Fmt(a) => cmd_fmt::run(a, color, json),
        Command::Run(a) => cmd_run::run(a, color, json),
        Command::Synth(c) => cmd_synth::run(c),
        Command::Completions(a) => {
            cmd_completions::completions(a, <Cli as clap::CommandFactory>::command())
        }
        Command::Man(a) => cmd_completions::man(a, <Cli as clap::CommandFactory>::command()),
        Command::Check { file } => check(
            &file,
            Style {
                color,
                json,
                sarif,
                json_stdout: true,
            },
        ),
        Command::Compile {
            file,
            target,
            format,
            k8s_deny,
            allow_dns,
            enforce,
            table,
            output,
        } => {
            let result = match target {
                Target::K8s => Lowering::K8s(k8s::Options {
                    format: match format {
                        Format::Json => k8s::Format::Json,
                        Format::Yaml => k8s::Format::Yaml,
                    },
                    deny: match k8s_deny {
                        DenyMode::Error => k8s::DenyMode::Error,
                        DenyMode::Admin => k8s::DenyMode::Admin,
                    },
                    allow_dns,
                }),
                Target::Nft => Lowering::Nft(nft::Options {
                    table,
                    enforce: match enforce {
                        Enforce::Fabric => nft::Enforce::Fabric,
                        Enforce::Endpoint => nft::Enforce::Endpoint,
                    },
                }),
            };
            compile(
                &file,
                result,
                output.as_deref(),
                Style {
                    color,
                    json,
                    sarif,
                    json_stdout: false,
                },
            )
        }
    }
}

enum Lowering {
    K8s(k8s::Options),
    Nft(nft::Options),
}

/// Read the policy; a usage or I/O problem is exit 2, undecodable text is a diagnostic (exit 1).
fn read(file: &Path) -> Result<(String, Vec<u8>), ExitCode> {
    let name = file.display().to_string();
    let mut bytes = Vec::new();
    let res = if name == "-" {
        std::io::stdin()
            .take(gbpc::syntax::MAX_FILE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map(|_| ())
    } else {
        std::fs::File::open(file).and_then(|f| {
            f.take(gbpc::syntax::MAX_FILE_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
                .map(|_| ())
        })
    };
    match res {
        Ok(()) => Ok((if name == "-" { "<stdin>".into() } else { name }, bytes)),
        Err(e) => {
            eprintln!("error: cannot read {name}: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// How findings are rendered and where they go.
#[derive(Clone, Copy)]
struct Style {
    color: bool,
    json: bool,
    /// One SARIF log, written also when there is nothing to report.
    sarif: bool,
    /// JSON and SARIF diagnostics go to stdout (check) rather than stderr (compile).
    json_stdout: bool,
}

fn report(diags: &[Diagnostic], name: &str, src: &str, style: Style) {
    if style.sarif {
        let text = gbpc::render::sarif(diags, name, src);
        if style.json_stdout {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        } else {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
        return;
    }
    if diags.is_empty() {
        return;
    }
    if style.json {
        let text = gbpc::render::json(diags, name, src);
        if style.json_stdout {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        } else {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
        return;
    }
    let text = gbpc::render::terminal(diags, name, src, style.color);
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
}

/// The closing line for people (JSON consumers count the objects instead).
fn summary_line(style: Style, line: String) {
    if !style.json && !style.sarif {
        eprintln!("{line}");
    }
}

/// Parse and check; on failure, report and return the exit code.
fn load(file: &Path, style: Style) -> Result<(String, String, gbpc::model::Checked), ExitCode> {
    let (name, bytes) = read(file)?;
    let src = match gbpc::syntax::decode(&bytes) {
        Ok(s) => s.to_string(),
        Err(d) => {
            let lossy =
                String::from_utf8_lossy(&bytes[..bytes.len().min(gbpc::syntax::MAX_FILE_BYTES)])
                    .into_owned();
            report(&[d], &name, &lossy, style);
            summary_line(style, format!("{name}: {}", gbpc::render::summary(1, 0)));
            return Err(ExitCode::from(1));
        }
    };
    let checked = gbpc::check_source(&src);
    Ok((name, src, checked))
}

fn check(file: &Path, style: Style) -> ExitCode {
    let (name, src, checked) = match load(file, style) {
        Ok(x) => x,
        Err(code) => return code,
    };
    report(&checked.diagnostics(), &name, &src, style);
    let p = &checked.policy;
    if checked.ok() && (style.json || style.sarif) {
        ExitCode::SUCCESS
    } else if checked.ok() {
        println!(
            "{name}: ok: {}, {}, {}, {}; {} ({})",
            count(p.tenants.len(), "tenant"),
            count(
                p.groups
                    .iter()
                    .filter(|g| g.kind != gbpc::model::GroupKind::Any)
                    .count(),
                "group"
            ),
            count(p.contracts.len(), "contract"),
            count(p.endpoints.len(), "endpoint"),
            match p.asserts.len() {
                1 => "1 assertion holds".to_string(),
                n => format!("{n} assertions hold"),
            },
            gbpc::render::summary(0, checked.warnings.len()),
        );
        ExitCode::SUCCESS
    } else {
        summary_line(
            style,
            format!(
                "{name}: {}",
                gbpc::render::summary(checked.errors.len(), checked.warnings.len())
            ),
        );
        ExitCode::from(1)
    }
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn compile(file: &Path, lowering: Lowering, output: Option<&Path>, style: Style) -> ExitCode {
    let (name, src, checked) = match load(file, style) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if !checked.ok() {
        report(&checked.diagnostics(), &name, &src, style);
        summary_line(
            style,
            format!(
                "{name}: {}",
                gbpc::render::summary(checked.errors.len(), checked.warnings.len())
            ),
        );
        return ExitCode::from(1);
    }
    let result = match &lowering {
        Lowering::K8s(o) => k8s::lower(&checked.policy, o),
        Lowering::Nft(o) => nft::lower(&checked.policy, o),
    };
    let lowered = match result {
        Ok(l) => l,
        Err(errors) => {
            let mut all = errors.clone();
            all.extend(checked.warnings.iter().cloned());
            gbpc::diag::sort(&mut all);
            report(&all, &name, &src, style);
            summary_line(
                style,
                format!(
                    "{name}: {}",
                    gbpc::render::summary(errors.len(), checked.warnings.len())
                ),
            );
            return ExitCode::from(1);
        }
    };
    let mut warnings: Vec<Diagnostic> = checked
        .warnings
        .iter()
        .chain(&lowered.warnings)
        .cloned()
        .collect();
    gbpc::diag::sort(&mut warnings);
    report(&warnings, &name, &src, style);
    match output {
        None => {
            let mut out = std::io::stdout().lock();
            if out
                .write_all(lowered.text.as_bytes())
                .and_then(|_| out.flush())
                .is_err()
            {
                return ExitCode::from(2);
            }
        }
        Some(path) => {
            if let Err(e) = write_atomically(path, lowered.text.as_bytes()) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
    }
    ExitCode::SUCCESS
}

/// Write to a temporary file beside `path`, then rename over it: readers see the old file or
/// the whole new one, never a part.
fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    // A temporary file is private (0600); the result gets the mode a plainly created file
    // would have, or keeps the mode of the file it replaces.
    let mode = match std::fs::metadata(path) {
        Ok(m) => m.permissions(),
        Err(_) => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::Permissions::from_mode(0o644)
        }
    };
    tmp.as_file().set_permissions(mode)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
