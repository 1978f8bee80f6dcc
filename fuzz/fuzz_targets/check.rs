//! Structure-aware: a policy built from the fuzz bytes by a grammar-directed generator (so most
//! inputs parse) is checked and its findings rendered for the terminal and as JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = gbpc_fuzz::policy(data);
    gbpc_fuzz::check_and_render(&src);
});
