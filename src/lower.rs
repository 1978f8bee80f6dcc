//! Backends: the checked model lowered to Kubernetes objects ([`k8s`]) and to an nftables
//! script ([`nft`]). Both run only on a model without errors, produce deterministic text, and
//! report what they cannot express as diagnostics (errors stop the output; warnings do not).

pub mod k8s;
pub mod nft;

use crate::diag::Diagnostic;

/// A backend's output: the text and the warnings about it.
#[derive(Debug, Default)]
pub struct Lowered {
    pub text: String,
    pub warnings: Vec<Diagnostic>,
}

/// A backend's result: errors mean no output.
pub type LowerResult = Result<Lowered, Vec<Diagnostic>>;
