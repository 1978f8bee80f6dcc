//! The one test binary: every integration test module is listed here (ripgrep's layout).

mod cases;
mod docs;
mod k8s;
mod nft;
