//! One notion of a line end, and `ip/N` probes: a generated policy with CRLF line ends and
//! random stray vertical space (see `src/line_ends.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gbpc_fuzz::line_ends::check(data);
});
