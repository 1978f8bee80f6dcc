//! gbpc: a group-based policy compiler. Endpoint groups provide and consume contracts; gbpc
//! checks the policy, answers verdicts with an evaluator, and lowers it to Kubernetes
//! NetworkPolicy and to nftables.
//!
//! The pipeline, one module each: [`syntax`] (text to tree), [`model`] (names resolved and
//! checked, the graph), [`eval`] (the verdict of a flow), [`lower`] (backends). The library
//! never prints; the binary chooses renderers and exit codes.

pub mod analysis;
pub mod diag;
pub mod eval;
pub mod fmt;
pub mod lower;
pub mod lsp;
pub mod model;
pub mod net;
pub mod render;
pub mod run;
pub mod syntax;
pub mod synth;
pub mod text;

/// Parse and check a policy: every syntax and semantic finding, and the model.
pub fn check_source(src: &str) -> model::Checked {
    check_parsed(&syntax::parse(src))
}

/// Check an already parsed policy (the language server keeps the tree too): the same findings
/// as [`check_source`].
pub fn check_parsed(parsed: &syntax::Parsed) -> model::Checked {
    let mut checked = model::check(&parsed.file);
    if !parsed.errors.is_empty() {
        checked.errors.extend(parsed.errors.iter().cloned());
        diag::sort(&mut checked.errors);
    }
    if checked.errors.is_empty() {
        checked
            .warnings
            .extend(analysis::lint::lint(&checked.policy));
        if checked.policy.tenants.is_empty() {
            checked.warnings.push(no_tenant());
        }
        diag::sort(&mut checked.warnings);
    }
    checked
}

/// W006: a policy with no tenant is almost always a mistake (the wrong file, an empty one, one
/// commented out), and its compiled ruleset drops every flow; `compile` refuses it (E005).
fn no_tenant() -> diag::Diagnostic {
    diag::Diagnostic::warning(
        diag::Code::NoTenant,
        "the policy declares no tenant: it allows nothing",
    )
    .primary(diag::Span::new(0, 0), "no `tenant` in this file")
    .help(
        "declare a tenant (`tenant name { ... }`); `gbpc compile` refuses a policy without one \
         unless given `--allow-empty`",
    )
}
