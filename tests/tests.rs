//! The one test binary: every integration test module is listed here (ripgrep's layout).
//! Tests may panic: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cases;
mod docs;
mod k8s;
mod nft;
