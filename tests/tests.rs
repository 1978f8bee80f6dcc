//! The one test binary: every integration test module is listed here (ripgrep's layout).
//! Tests may panic: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod analysis;
mod cases;
mod cli;
mod completions;
mod differential;
mod docs;
mod fmt;
mod fuzz_regressions;
mod gitops;
mod k8s;
mod lsp;
mod nft;
mod nft_coexist;
mod run;
mod sarif;
mod support;
mod yaml_back;
