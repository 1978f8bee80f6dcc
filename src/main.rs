//! The `gbpc` command: reads a policy, checks it, lowers it, and decides how to render findings
//! and which exit code to return (0 success, 1 the policy has errors, 2 usage or I/O error).

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// mimalloc instead of glibc's allocator: the compiler allocates many small objects (parse pairs,
/// model, lowered objects) and frees them all at once; glibc spent a quarter of a large
/// Kubernetes compile in malloc/free/consolidation.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use gbpc::diag::Diagnostic;
use gbpc::text::count;

#[path = "cmd/analysis.rs"]
mod cmd_analysis;
#[path = "cmd/compile.rs"]
mod cmd_compile;
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
#[path = "cmd/output.rs"]
mod output;

#[derive(Parser)]
#[command(
    name = "gbpc",
    version,
    about = "Group-based policy compiler: endpoint groups and contracts to Kubernetes and nftables"
)]
struct Cli {
    /// Colour in diagnostics: auto (when stderr is a terminal that shows colour and NO_COLOR is
    /// not set to a non-empty value), always, never.
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
    Compile(cmd_compile::CompileArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return clap_message(&e),
    };
    let json = cli.message_format == MessageFormat::Json;
    let sarif = cli.message_format == MessageFormat::Sarif;
    if sarif && !matches!(cli.command, Command::Check { .. } | Command::Compile(_)) {
        return output::fail("--message-format sarif applies to `check` and `compile` only");
    }
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => gbpc::render::auto_color(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
            std::env::var_os("TERM").as_deref(),
        ),
    };
    output::status(match cli.command {
        Command::Explain(a) => cmd_analysis::explain(a, color, json),
        Command::Query(a) => cmd_analysis::query(a, color, json),
        Command::Diff(a) => cmd_analysis::diff(a, color, json),
        Command::Graph(a) => cmd_analysis::graph(a, color, json),
        Command::Matrix(a) => cmd_analysis::matrix(a, color, json),
        Command::Lsp(a) => Ok(cmd_lsp::run(a)),
        Command::Fmt(a) => cmd_fmt::run(a, color, json),
        Command::Run(a) => Ok(cmd_run::run(a, color, json)),
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
        Command::Compile(a) => cmd_compile::run(a, color, json, sarif),
    })
}

/// Help, version, or a usage error from clap: written with fallible writes (help and version to
/// standard output, errors to standard error), coloured as clap would.
fn clap_message(e: &clap::Error) -> ExitCode {
    let to_stdout = !e.use_stderr();
    let terminal = if to_stdout {
        std::io::stdout().is_terminal()
    } else {
        std::io::stderr().is_terminal()
    };
    let styled = e.render();
    let text = if gbpc::render::auto_color(
        terminal,
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("TERM").as_deref(),
    ) {
        styled.ansi().to_string()
    } else {
        styled.to_string()
    };
    let written = if to_stdout {
        output::out(&text)
    } else {
        output::err(&text)
    };
    match written {
        Ok(()) => ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(output::USAGE)),
        Err(code) => code,
    }
}

/// A policy as read: its name for messages, its bytes, and the file it came from.
struct Source {
    input: output::Input,
    bytes: Vec<u8>,
}

/// Read the policy; a usage or I/O problem is exit 2, undecodable text is a diagnostic (exit 1).
fn read(file: &Path) -> Result<Source, ExitCode> {
    read_file(file, false)
}

/// Read the policy; with `regular_only`, anything but a regular file (a device, a FIFO, standard
/// input) is refused before a byte is read (`fmt` rewrites what it reads).
fn read_file(file: &Path, regular_only: bool) -> Result<Source, ExitCode> {
    let limit = gbpc::syntax::MAX_FILE_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    if file.as_os_str() == "-" {
        let name = "<stdin>".to_string();
        if let Err(e) = std::io::stdin().take(limit).read_to_end(&mut bytes) {
            return Err(output::fail(&format!("cannot read standard input: {e}")));
        }
        let id = output::stdin_identity();
        return Ok(Source {
            input: output::Input { name, id },
            bytes,
        });
    }
    let name = file.display().to_string();
    let cannot = |e: std::io::Error| output::fail(&format!("cannot read {name}: {e}"));
    let not_regular = || {
        output::fail(&format!(
            "{name} is not a regular file: it cannot be rewritten in place (`gbpc fmt - < {name}` \
             writes the formatted text to standard output)"
        ))
    };
    // Looked at before opening: opening a FIFO would wait for a writer.
    if regular_only && !std::fs::metadata(file).map_err(cannot)?.is_file() {
        return Err(not_regular());
    }
    let f = std::fs::File::open(file).map_err(cannot)?;
    let meta = f.metadata().map_err(cannot)?;
    if meta.is_dir() {
        return Err(output::fail(&format!(
            "cannot read {name}: it is a directory"
        )));
    }
    if regular_only && !meta.is_file() {
        return Err(not_regular());
    }
    f.take(limit).read_to_end(&mut bytes).map_err(cannot)?;
    let id = meta.is_file().then(|| output::Identity::of(&meta));
    Ok(Source {
        input: output::Input { name, id },
        bytes,
    })
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

fn report(diags: &[Diagnostic], name: &str, src: &str, style: Style) -> Result<(), ExitCode> {
    if style.sarif {
        // A whole log, also without results.
        let text = gbpc::render::sarif(diags, name, src);
        return if style.json_stdout {
            output::out(&text)
        } else {
            output::err(&text)
        };
    }
    if diags.is_empty() {
        return Ok(());
    }
    if style.json {
        let text = gbpc::render::json(diags, name, src);
        return if style.json_stdout {
            output::out(&text)
        } else {
            output::err(&text)
        };
    }
    output::err(&gbpc::render::terminal(diags, name, src, style.color))
}

/// The closing line for people (JSON consumers count the objects instead).
fn summary_line(style: Style, line: String) -> Result<(), ExitCode> {
    if style.json || style.sarif {
        return Ok(());
    }
    output::err(&(line + "\n"))
}

/// Report diagnostics, the first `errors` of them errors (by count: the rest are warnings),
/// then the summary line (`NAME: 2 errors, 1 warning`), and give exit code 1 (or 2 when
/// writing failed): the early stop of every command.
fn fail(diags: &[Diagnostic], errors: usize, name: &str, src: &str, style: Style) -> ExitCode {
    match report_with_summary(diags, errors, name, src, style) {
        Ok(()) => ExitCode::from(1),
        Err(code) => code,
    }
}

/// [`report`], then the summary line; for a command that decides its exit code itself.
fn report_with_summary(
    diags: &[Diagnostic],
    errors: usize,
    name: &str,
    src: &str,
    style: Style,
) -> Result<(), ExitCode> {
    report(diags, name, src, style)?;
    let warnings = diags.len().saturating_sub(errors);
    summary_line(
        style,
        format!("{name}: {}", gbpc::render::summary(errors, warnings)),
    )
}

/// Report a policy that has errors (see [`fail`]).
fn reject(checked: &gbpc::model::Checked, name: &str, src: &str, style: Style) -> ExitCode {
    fail(
        &checked.diagnostics(),
        checked.errors.len(),
        name,
        src,
        style,
    )
}

/// Parse and check; on failure, report and return the exit code.
fn load(file: &Path, style: Style) -> Result<(String, String, gbpc::model::Checked), ExitCode> {
    load_source(read(file)?, style)
}

/// Decode and check what [`read`] read.
fn load_source(
    source: Source,
    style: Style,
) -> Result<(String, String, gbpc::model::Checked), ExitCode> {
    let Source { input, bytes } = source;
    let name = input.name;
    let src = match gbpc::syntax::decode(&bytes) {
        Ok(s) => s.to_string(),
        Err(d) => {
            let lossy =
                String::from_utf8_lossy(&bytes[..bytes.len().min(gbpc::syntax::MAX_FILE_BYTES)])
                    .into_owned();
            return Err(fail(&[d], 1, &name, &lossy, style));
        }
    };
    let checked = gbpc::check_source(&src);
    Ok((name, src, checked))
}

fn check(file: &Path, style: Style) -> output::Outcome {
    let (name, src, checked) = load(file, style)?;
    if !checked.ok() {
        return Err(reject(&checked, &name, &src, style));
    }
    report(&checked.diagnostics(), &name, &src, style)?;
    if style.json || style.sarif {
        return Ok(ExitCode::SUCCESS);
    }
    let p = &checked.policy;
    output::out(&format!(
        "{name}: ok: {}, {}, {}, {}; {} ({})\n",
        count(p.tenants.len(), "tenant"),
        count(
            p.groups
                .iter()
                .filter(|g| g.kind != gbpc::model::GroupKind::Any)
                .count(),
            "group"
        ),
        count(
            p.contracts.iter().filter(|c| c.written()).count(),
            "contract"
        ),
        count(p.endpoints.len(), "endpoint"),
        match p.asserts.len() {
            1 => "1 assertion holds".to_string(),
            n => format!("{n} assertions hold"),
        },
        gbpc::render::summary(0, checked.warnings.len()),
    ))?;
    Ok(ExitCode::SUCCESS)
}
