//! The analysis subcommands: `explain`, `query`, `diff`, `graph`, `matrix`. Arguments and
//! rendering choices live here; the answers come from `gbpc::analysis`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use gbpc::analysis;

use super::Style;

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
    /// a member of that group only) or an address.
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
        super::report(&checked.diagnostics(), &name, &src, st);
        super::summary_line(
            st,
            format!(
                "{name}: {}",
                gbpc::render::summary(checked.errors.len(), checked.warnings.len())
            ),
        );
        return Err(ExitCode::from(on_error));
    }
    Ok((name, src, checked))
}

/// Write to stdout; a write error (a closed pipe) is exit 2.
fn write_out(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .is_ok()
}

fn emit(text: &str) -> ExitCode {
    if write_out(text) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

pub fn explain(a: ExplainArgs, color: bool, json: bool) -> ExitCode {
    let (name, src, checked) = match load_ok(&a.file, style(color, json), 1) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let p = &checked.policy;
    let from = match analysis::resolve(p, &a.from) {
        Ok(x) => x,
        Err(e) => return usage(&format!("--from: {e}")),
    };
    let to = match analysis::resolve(p, &a.to) {
        Ok(x) => x,
        Err(e) => return usage(&format!("--to: {e}")),
    };
    let flow = match analysis::parse_flow(&a.port) {
        Ok(x) => x,
        Err(e) => return usage(&format!("--port: {e}")),
    };
    let e = analysis::explain::explain(p, from, to, flow);
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

pub fn query(a: QueryArgs, color: bool, json: bool) -> ExitCode {
    let (_, _, checked) = match load_ok(&a.file, style(color, json), 1) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let p = &checked.policy;
    let from = match groups_arg(p, &a.from) {
        Ok(x) => x,
        Err(e) => return usage(&format!("--from: {e}")),
    };
    let to = match groups_arg(p, &a.to) {
        Ok(x) => x,
        Err(e) => return usage(&format!("--to: {e}")),
    };
    let r = analysis::query::query(p, &from, &to);
    emit(&match a.format {
        TextOrJson::Text => analysis::query::text(p, &r, &from),
        TextOrJson::Json => analysis::query::json(p, &r),
    })
}

/// Exit 0 if the versions are equivalent, 1 if not, 2 on usage or I/O errors or when either
/// version has errors.
pub fn diff(a: DiffArgs, color: bool, json: bool) -> ExitCode {
    let st = style(color, json);
    let (_, _, old) = match load_ok(&a.old, st, 2) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let (_, _, new) = match load_ok(&a.new, st, 2) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let r = analysis::diff::diff(&old.policy, &new.policy);
    let ok = write_out(&match a.format {
        TextOrJson::Text => analysis::diff::text(&r),
        TextOrJson::Json => analysis::diff::json(&r),
    });
    if !ok {
        ExitCode::from(2)
    } else if r.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

pub fn graph(a: GraphArgs, color: bool, json: bool) -> ExitCode {
    let (_, _, checked) = match load_ok(&a.file, style(color, json), 1) {
        Ok(x) => x,
        Err(c) => return c,
    };
    emit(&match a.format {
        GraphFormat::Dot => analysis::graph::dot(&checked.policy),
        GraphFormat::Mermaid => analysis::graph::mermaid(&checked.policy),
    })
}

pub fn matrix(a: MatrixArgs, color: bool, json: bool) -> ExitCode {
    let (name, _, checked) = match load_ok(&a.file, style(color, json), 1) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let m = analysis::matrix::matrix(&checked.policy);
    emit(&match a.format {
        MatrixFormat::Text => analysis::matrix::text(&m),
        MatrixFormat::Csv => analysis::matrix::csv(&m),
        MatrixFormat::Html => analysis::matrix::html(&m, &name),
    })
}
