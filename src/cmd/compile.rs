//! `gbpc compile`: lower a checked policy for one target (`--target`, to standard output or
//! `-o`), or for every target into an output directory (no `--target`; `--out-dir`, by default
//! `<policy>.out` beside the policy): the Kubernetes objects one file per namespace plus one for
//! the cluster-scoped objects and a `kustomization.yaml`, and the nftables scripts.
//!
//! As ripgrep does, the arguments are first parsed as given (every target-specific flag is an
//! `Option`, so "given" and "defaulted" differ), then [`plan`] validates them and derives what
//! to do before anything is read or written: a flag that applies to none of the selected targets
//! is a usage error (exit 2), never silently ignored.

#[path = "outdir.rs"]
mod outdir;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum DenyMode {
    /// Compile denies away: the NetworkPolicies allow exactly what the policy allows.
    Subtract,
    /// Denies as ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2) in the Admin tier.
    Cluster,
    /// Legacy: denies as AdminNetworkPolicy (policy.networking.k8s.io/v1alpha1).
    #[value(name = "anp-v1alpha1")]
    AnpV1alpha1,
    /// A deny is an error.
    Error,
    /// Renamed: `cluster` or `anp-v1alpha1` (a usage error that says so).
    #[value(hide = true)]
    Admin,
}

/// `--enforce` of `compile` and `run`.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Enforce {
    /// Rules in the routed fabric's forward hook.
    Fabric,
    /// Rules in each endpoint's own input and output hooks.
    Endpoint,
}

impl From<Enforce> for nft::Enforce {
    fn from(e: Enforce) -> nft::Enforce {
        match e {
            Enforce::Fabric => nft::Enforce::Fabric,
            Enforce::Endpoint => nft::Enforce::Endpoint,
        }
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum NftLayout {
    /// Maps keyed by the packet's addresses: no mark is written, other rulesets' `meta mark`
    /// and `ct mark` stay as they set them.
    Addresses,
    /// Maps keyed by classes the chain writes into `meta mark` and `ct mark` (fewer elements;
    /// overwrites both marks of new connections).
    Marks,
}

/// The arguments as given. Target-specific flags are `Option`s (or `false`): [`plan`] knows
/// which ones the user set and applies the defaults.
#[derive(clap::Args)]
pub struct CompileArgs {
    /// The policy file, or `-` for standard input.
    file: PathBuf,
    /// Compile for this target only, to standard output (or `-o`). Without it, every target is
    /// built into the output directory (`--out-dir`).
    #[arg(long, value_enum)]
    target: Option<Target>,
    /// k8s: output format [default: json with --target, yaml in the output directory].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// k8s: what to do with deny subjects [default: subtract].
    #[arg(long, value_enum)]
    k8s_deny: Option<DenyMode>,
    /// k8s: allow egress DNS to the cluster resolver (kube-system/kube-dns) from every group.
    #[arg(long)]
    allow_dns: bool,
    /// nft: where the rules are enforced [default: fabric with --target; both scripts in the
    /// output directory].
    #[arg(long, value_enum)]
    enforce: Option<Enforce>,
    /// nft: the name of the table (replaced as a whole on load) [default: gbpc]: a word nft
    /// reads as one name, not one of its keywords.
    #[arg(long, value_parser = nft::parse_table_name)]
    table: Option<String>,
    /// nft: how the chain looks up the classes of a packet's addresses [default: addresses].
    #[arg(long, value_enum)]
    nft_layout: Option<NftLayout>,
    /// With --target: write the output here instead of stdout (`-`: stdout). A regular file is
    /// replaced atomically (nothing is written on error), a symbolic link is written through, a
    /// device or FIFO is written directly; naming an input file is an error.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Without --target: the output directory, replaced as a whole [default: `NAME.out` beside
    /// the policy `NAME.gbp`]. gbpc only replaces a directory it wrote (or an empty one).
    #[arg(long)]
    out_dir: Option<PathBuf>,
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

/// Where the output goes.
pub enum Dest {
    /// One target to standard output, or to `-o`.
    Stream(Option<PathBuf>),
    /// Every target into a directory.
    Dir(PathBuf),
}

/// What `compile` will do: validated and with every default applied.
pub struct Plan {
    file: PathBuf,
    /// The lowerings, each with its file in the output directory (nftables; the Kubernetes
    /// objects are split per namespace).
    lowerings: Vec<(&'static str, Lowering)>,
    dest: Dest,
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
        (a.nft_layout.is_some(), "--nft-layout", Target::Nft),
    ]
    .into_iter()
    .filter(|(given, _, _)| *given)
    .map(|(_, flag, t)| (flag, t))
    .collect()
}

/// The output directory beside a policy `DIR/NAME.gbp`: `DIR/NAME.out`.
fn default_out_dir(file: &Path) -> Option<PathBuf> {
    if file.as_os_str() == "-" {
        return None;
    }
    let stem = file.file_stem()?;
    let mut name = stem.to_os_string();
    name.push(".out");
    Some(match file.parent() {
        Some(p) => p.join(name),
        None => PathBuf::from(name),
    })
}

/// Validate the arguments and derive the plan; `Err` is the usage error's message.
pub fn plan(a: CompileArgs) -> Result<Plan, String> {
    // The selected targets: the one asked for, or every target.
    let targets: Vec<Target> = match a.target {
        Some(t) => vec![t],
        None => vec![Target::K8s, Target::Nft],
    };
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
    let dest = match (a.target, a.output, a.out_dir) {
        (Some(_), _, Some(_)) => {
            return Err(
                "--out-dir is where every target goes when there is no --target; with --target the output goes to standard output or -o"
                    .into(),
            );
        }
        (None, Some(_), _) => {
            return Err(
                "-o writes one target (with --target); without --target every target is written into the directory of --out-dir"
                    .into(),
            );
        }
        (Some(_), output, None) => Dest::Stream(output),
        (None, None, Some(dir)) => Dest::Dir(dir),
        (None, None, None) => Dest::Dir(default_out_dir(&a.file).ok_or(
            "reading the policy from standard input, name the output directory with --out-dir (or choose one target with --target)",
        )?),
    };
    let in_dir = matches!(dest, Dest::Dir(_));
    let mut lowerings = Vec::new();
    for t in targets {
        match t {
            Target::K8s => lowerings.push((
                "k8s",
                Lowering::K8s(k8s::Options {
                    format: match a.format {
                        Some(Format::Json) => k8s::Format::Json,
                        Some(Format::Yaml) => k8s::Format::Yaml,
                        None if in_dir => k8s::Format::Yaml,
                        None => k8s::Format::Json,
                    },
                    deny: match a.k8s_deny.unwrap_or(DenyMode::Subtract) {
                        DenyMode::Subtract => k8s::DenyMode::Subtract,
                        DenyMode::Cluster => k8s::DenyMode::Cluster,
                        DenyMode::AnpV1alpha1 => k8s::DenyMode::Admin,
                        DenyMode::Error => k8s::DenyMode::Error,
                        DenyMode::Admin => {
                            return Err(
                                "--k8s-deny admin is gone: denies are compiled away by default; use `--k8s-deny cluster` for ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2), or `--k8s-deny anp-v1alpha1` for the legacy AdminNetworkPolicy"
                                    .into(),
                            );
                        }
                    },
                    allow_dns: a.allow_dns,
                }),
            )),
            Target::Nft => {
                let table = a
                    .table
                    .clone()
                    .unwrap_or_else(|| nft::Options::default().table);
                let modes: Vec<(&'static str, nft::Enforce)> = match a.enforce {
                    Some(Enforce::Fabric) => vec![("nft/fabric.nft", nft::Enforce::Fabric)],
                    Some(Enforce::Endpoint) => {
                        vec![("nft/endpoint.nft", nft::Enforce::Endpoint)]
                    }
                    // In the directory, both scripts: a routed fabric and per-endpoint hosts
                    // need different hooks, and each is cheap.
                    None if in_dir => vec![
                        ("nft/fabric.nft", nft::Enforce::Fabric),
                        ("nft/endpoint.nft", nft::Enforce::Endpoint),
                    ],
                    None => vec![("nft/fabric.nft", nft::Enforce::Fabric)],
                };
                for (file, enforce) in modes {
                    lowerings.push((
                        file,
                        Lowering::Nft(nft::Options {
                            table: table.clone(),
                            enforce,
                            layout: match a.nft_layout {
                                None | Some(NftLayout::Addresses) => nft::Layout::Addresses,
                                Some(NftLayout::Marks) => nft::Layout::Marks,
                            },
                        }),
                    ));
                }
            }
        }
    }
    Ok(Plan {
        file: a.file,
        lowerings,
        dest,
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

/// The name objects record as their source: the policy file's own name.
fn source_name(file: &Path) -> String {
    if file.as_os_str() == "-" {
        return "<stdin>".into();
    }
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string())
}

/// What a lowering produced.
enum Output {
    K8s(k8s::Bundle, k8s::Format),
    Text(String),
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
    let inputs = std::slice::from_ref(&source.input).to_vec();
    // Where the output goes is decided (and an output that is the input refused) before the
    // policy is even checked.
    let dest = match &plan.dest {
        Dest::Stream(Some(path)) => Some(output::destination(path, &inputs)?),
        _ => None,
    };
    let (name, src, checked) = super::load_source(source, style)?;
    if !checked.ok() {
        return Err(super::reject(&checked, &name, &src, style));
    }
    let empty = checked.policy.tenants.is_empty();
    // W006 says the same as E005, and `--allow-empty` asked for the empty ruleset on purpose.
    let checker_warnings: Vec<Diagnostic> = checked
        .warnings
        .iter()
        .filter(|w| !(empty && w.code == Code::NoTenant))
        .cloned()
        .collect();
    if empty && !plan.allow_empty {
        let mut all = checker_warnings.clone();
        all.push(empty_ruleset());
        gbpc::diag::sort(&mut all);
        return Err(super::fail(&all, 1, &name, &src, style));
    }
    let src_name = source_name(&plan.file);
    let mut outputs: Vec<(&'static str, Output)> = Vec::new();
    let mut errors: Vec<Diagnostic> = Vec::new();
    let mut warnings: Vec<Diagnostic> = checker_warnings;
    for (file, lowering) in &plan.lowerings {
        let result = match lowering {
            Lowering::K8s(o) => k8s::objects(&checked.policy, o, Some(&src_name)).map(|mut b| {
                let w = std::mem::take(&mut b.warnings);
                (Output::K8s(b, o.format), w)
            }),
            Lowering::Nft(o) => {
                nft::lower(&checked.policy, o).map(|l| (Output::Text(l.text), l.warnings))
            }
        };
        match result {
            Ok((out, w)) => {
                warnings.extend(w);
                outputs.push((file, out));
            }
            Err(e) => errors.extend(e),
        }
    }
    // The same finding from two lowerings (both nftables scripts) is said once.
    let dedup = |v: &mut Vec<Diagnostic>| {
        gbpc::diag::sort(v);
        v.dedup_by(|a, b| {
            a.code == b.code && a.message == b.message && a.primary_span() == b.primary_span()
        });
    };
    if !errors.is_empty() {
        dedup(&mut errors);
        let n = errors.len();
        let mut all = errors;
        all.extend(warnings);
        dedup(&mut all);
        return Err(super::fail(&all, n, &name, &src, style));
    }
    dedup(&mut warnings);
    super::report(&warnings, &name, &src, style)?;
    match &plan.dest {
        Dest::Stream(path) => {
            let text = match outputs.pop() {
                Some((_, Output::Text(t))) => t,
                Some((_, Output::K8s(b, format))) => {
                    let items: Vec<&k8s::Item> = b.items.iter().collect();
                    match k8s::render(&items, format) {
                        Ok(t) => t,
                        Err(e) => {
                            super::report(&e, &name, &src, style)?;
                            return Err(ExitCode::from(1));
                        }
                    }
                }
                None => String::new(),
            };
            match (&dest, path) {
                (Some(d), Some(path)) => output::write(d, text.as_bytes(), path)?,
                _ => output::out(&text)?,
            }
        }
        Dest::Dir(dir) => {
            let files = match directory_files(outputs, &src_name) {
                Ok(f) => f,
                Err(e) => {
                    super::report(&e, &name, &src, style)?;
                    return Err(ExitCode::from(1));
                }
            };
            let about = format!(
                "compiled from {src_name} (sha256:{})",
                k8s::sha256_hex(src.as_bytes())
            );
            outdir::write(dir, &files, &about, &inputs)?;
            let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
            output::out(&format!(
                "{}: wrote {} ({})\n",
                name,
                dir.display(),
                names.join(", ")
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The files of the output directory: `k8s/<namespace>.yaml` per namespace,
/// `k8s/_cluster.yaml` for the cluster-scoped objects (no namespace name has `_`),
/// `kustomization.yaml` listing them, and the nftables scripts.
fn directory_files(
    outputs: Vec<(&'static str, Output)>,
    src_name: &str,
) -> Result<Vec<outdir::OutFile>, Vec<Diagnostic>> {
    let mut files = Vec::new();
    let mut resources = Vec::new();
    for (file, out) in outputs {
        match out {
            Output::Text(text) => files.push(outdir::OutFile {
                path: file.to_string(),
                bytes: text.into_bytes(),
            }),
            Output::K8s(bundle, format) => {
                let ext = match format {
                    k8s::Format::Json => "json",
                    k8s::Format::Yaml => "yaml",
                };
                let mut by_ns: BTreeMap<Option<&str>, Vec<&k8s::Item>> = BTreeMap::new();
                for it in &bundle.items {
                    by_ns.entry(it.namespace.as_deref()).or_default().push(it);
                }
                for (ns, items) in by_ns {
                    let path = match ns {
                        None => format!("k8s/_cluster.{ext}"),
                        Some(ns) => format!("k8s/{ns}.{ext}"),
                    };
                    let text = k8s::render(&items, format)?;
                    resources.push(path.clone());
                    files.push(outdir::OutFile {
                        path,
                        bytes: text.into_bytes(),
                    });
                }
                let mut k = format!(
                    "# Generated by gbpc from {src_name}; do not edit: run `gbpc compile` again.\n\
                     # Apply: kubectl apply -k . --prune -l app.kubernetes.io/managed-by=gbpc \\\n\
                     #   --prune-allowlist=networking.k8s.io/v1/NetworkPolicy \\\n\
                     #   --prune-allowlist=policy.networking.k8s.io/v1alpha2/ClusterNetworkPolicy\n\
                     apiVersion: kustomize.config.k8s.io/v1beta1\n\
                     kind: Kustomization\n\
                     resources:\n"
                );
                for r in &resources {
                    k.push_str(&format!("- {r}\n"));
                }
                files.push(outdir::OutFile {
                    path: "kustomization.yaml".into(),
                    bytes: k.into_bytes(),
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}
