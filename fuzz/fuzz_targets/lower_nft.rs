//! Generated policies that check clean are lowered to nftables (both enforcement modes, both
//! layouts); the
//! script's statistics are computed, and a sample of scripts is saved for `nft -c`
//! (GBPC_FUZZ_NFT_DIR, see fuzz/README.md).
#![no_main]

use gbpc::lower::nft::{self, Enforce, Layout, Options};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((src, checked)) = gbpc_fuzz::lowerable(data) else {
        return;
    };
    let enforce = if data.first().is_some_and(|b| b & 1 == 1) {
        Enforce::Endpoint
    } else {
        Enforce::Fabric
    };
    // Both layouts: the default (maps keyed by addresses) and the mark layout.
    let layout = if data.first().is_some_and(|b| b & 2 == 2) {
        Layout::Marks
    } else {
        Layout::Addresses
    };
    let o = Options {
        table: "gbpc".into(),
        enforce,
        layout,
    };
    match nft::lower(&checked.policy, &o) {
        Ok(out) => {
            assert!(
                out.text.contains("table inet gbpc"),
                "no table in:\n{}",
                out.text
            );
            let _ = nft::stats(&out.text);
            gbpc_fuzz::check_spans(&src, &out.warnings);
            gbpc_fuzz::save_nft(&src, &out.text);
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "lowering failed without a diagnostic");
            gbpc_fuzz::check_spans(&src, &errors);
        }
    }
});
