//! The analysis subcommands: `explain`, `query`, `diff`, `graph`, `matrix`. Arguments and
//! rendering choices live here; the answers come from `gbpc::analysis`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use gbpc::analysis;

use super::Style;
use super::output::{self, Outcome};

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum TextOrJson {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum MatrixFormat {
    Text,
    Csv,
    Html,
}

#[derive(Args)]
pub struct ExplainArgs {
    /// The policy file, or `-` for standard input.
    file: PathBuf,
    /// Source: an endpoint (`web1`, `tenant/web1`), a group (`web`, `tenant/web`; stands for
    /// a member of that group only) or an address. A name that means both (or names several)
    /// is an error: `endpoint:NAME` and `group:NAME` name one kind explicitly.
    #[arg(long)]
    from: String,
    /// Destination, in the same forms as --from.
    #[arg(long)]
    to: String,
    /// The flow, as assertions write it: tcp/5432, udp/53, icmp/echo-request, ip/47.
    #[arg(long)]
    port: String,
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    format: TextOrJson,
}

#[derive(Args)]
pub struct QueryArgs {
    /// The policy file, or `-` for standard input.
    file: PathBuf,
    /// Source group (`web` or `tenant/web`), or `any` for every group.
    #[arg(long)]
    from: String,
    /// Destination group, or `any` for every group (`tenant/any` is that tenant's `any`).
    #[arg(long, default_value = "any")]
    to: String,
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    format: TextOrJson,
}

#[derive(Args)]
pub struct DiffArgs {
    /// The old version of the policy.
    old: PathBuf,
    /// The new version.
    new: PathBuf,
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    format: TextOrJson,
}

#[derive(Args)]
pub struct GraphArgs {
    /// The policy file, or `-` for standard input.
    file: PathBuf,
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    format: GraphFormat,
}

#[derive(Args)]
pub struct MatrixArgs {
    /// The policy file, or `-` for standard input.
    file: PathBuf,
    #[arg(long, value_enum, default_value_t = MatrixFormat::Text)]
    format: MatrixFormat,
}

fn style(color: bool, json: bool) -> Style {
    Style {
        color,
        json,
        sarif: false,
        json_stdout: false,
    }
}

/// Load and check; a policy with errors is reported and gives `on_error`.
fn load_ok(
    file: &Path,
    st: Style,
    on_error: u8,
) -> Result<(String, String, gbpc::model::Checked), ExitCode> {
    let (name, src, checked) = match super::load(file, st) {
        Ok(x) => x,
        Err(code) => {
            return Err(if on_error == 2 {
                ExitCode::from(2)
            } else {
                code
            });
        }
    };
    if !checked.ok() {
        let code = super::reject(&checked, &name, &src, st);
        return Err(if code == ExitCode::from(1) {
            ExitCode::from(on_error)
        } else {
            code
        });
    }
    Ok((name, src, checked))
}

/// The answer on standard output (a write error is exit 2).
fn emit(text: &str) -> Outcome {
    output::out(text)?;
    Ok(ExitCode::SUCCESS)
}

fn usage(msg: &str) -> ExitCode {
    output::fail(msg)
}

pub fn explain(a: ExplainArgs, color: bool, json: bool) -> Outcome {
    let (name, src, checked) = load_ok(&a.file, style(color, json), 1)?;
    let p = &checked.policy;
    let from = analysis::resolve(p, &a.from).map_err(|e| usage(&format!("--from: {e}")))?;
    let to = analysis::resolve(p, &a.to).map_err(|e| usage(&format!("--to: {e}")))?;
    let flow = analysis::parse_flow(&a.port).map_err(|e| usage(&format!("--port: {e}")))?;
    let e = analysis::explain::explain(p, from, to, flow).map_err(|e| usage(&e))?;
    emit(&match a.format {
        TextOrJson::Text => analysis::explain::text(&e, &name, &src),
        TextOrJson::Json => analysis::explain::json(&e, p, &name, &src),
    })
}

fn groups_arg(p: &gbpc::model::Policy, text: &str) -> Result<Vec<gbpc::model::GroupId>, String> {
    if text == "any" {
        Ok(analysis::real_groups(p))
    } else {
        analysis::resolve_group(p, text).map(|g| vec![g])
    }
}

pub fn query(a: QueryArgs, color: bool, json: bool) -> Outcome {
    let (_, _, checked) = load_ok(&a.file, style(color, json), 1)?;
    let p = &checked.policy;
    let from = groups_arg(p, &a.from).map_err(|e| usage(&format!("--from: {e}")))?;
    let to = groups_arg(p, &a.to).map_err(|e| usage(&format!("--to: {e}")))?;
    let r = analysis::query::query(p, &from, &to);
    emit(&match a.format {
        TextOrJson::Text => analysis::query::text(p, &r, &from),
        TextOrJson::Json => analysis::query::json(p, &r),
    })
}

/// Exit 0 if the versions are equivalent, 1 if not, 2 on usage or I/O errors or when either
/// version has errors.
pub fn diff(a: DiffArgs, color: bool, json: bool) -> Outcome {
    let st = style(color, json);
    let (_, _, old) = load_ok(&a.old, st, 2)?;
    let (_, _, new) = load_ok(&a.new, st, 2)?;
    let r = analysis::diff::diff(&old.policy, &new.policy);
    output::out(&match a.format {
        TextOrJson::Text => analysis::diff::text(&r),
        TextOrJson::Json => analysis::diff::json(&r),
    })?;
    Ok(if r.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn graph(a: GraphArgs, color: bool, json: bool) -> Outcome {
    let (_, _, checked) = load_ok(&a.file, style(color, json), 1)?;
    emit(&match a.format {
        GraphFormat::Dot => analysis::graph::dot(&checked.policy),
        GraphFormat::Mermaid => analysis::graph::mermaid(&checked.policy),
    })
}

pub fn matrix(a: MatrixArgs, color: bool, json: bool) -> Outcome {
    let (name, _, checked) = load_ok(&a.file, style(color, json), 1)?;
    // Streamed: a row at a time, never the whole matrix in memory.
    let p = &checked.policy;
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = match a.format {
        MatrixFormat::Text => analysis::matrix::write_text(p, &mut out),
        MatrixFormat::Csv => analysis::matrix::write_csv(p, &mut out),
        MatrixFormat::Html => match analysis::matrix::write_html(p, &name, &mut out) {
            Ok(()) => Ok(()),
            Err(analysis::matrix::HtmlError::Io(e)) => Err(e),
            Err(analysis::matrix::HtmlError::TooLarge(msg)) => {
                return Err(usage(&format!("matrix --format html: {msg}")));
            }
        },
    };
    written
        .and_then(|()| out.flush())
        .map_err(output::stdout_failed)?;
    Ok(ExitCode::SUCCESS)
}
