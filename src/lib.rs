//! gbpc: a group-based policy compiler. Endpoint groups provide and consume contracts; gbpc
//! checks the policy, answers verdicts with an evaluator, and lowers it to Kubernetes
//! NetworkPolicy and to nftables.
//!
//! The pipeline, one module each: [`syntax`] (text to tree), [`model`] (names resolved and
//! checked, the graph), [`eval`] (the verdict of a flow), [`lower`] (backends). The library
//! never prints; the binary chooses renderers and exit codes.

pub mod diag;
pub mod eval;
pub mod lower;
pub mod model;
pub mod net;
pub mod render;
pub mod syntax;
pub mod text;

/// Parse and check a policy: every syntax and semantic finding, and the model.
pub fn check_source(src: &str) -> model::Checked {
    let parsed = syntax::parse(src);
    let mut checked = model::check(&parsed.file);
    if !parsed.errors.is_empty() {
        checked.errors.extend(parsed.errors);
        diag::sort(&mut checked.errors);
    }
    checked
}
