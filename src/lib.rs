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
        diag::sort(&mut checked.warnings);
    }
    checked
}
