//! Arbitrary bytes through decode, parse and check: no panic, no hang, spans inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = gbpc::syntax::decode(data) else {
        return;
    };
    let parsed = gbpc::syntax::parse(src);
    gbpc_fuzz::check_spans(src, &parsed.errors);
    let checked = gbpc::check_parsed(&parsed);
    gbpc_fuzz::check_spans(src, &checked.errors);
    gbpc_fuzz::check_spans(src, &checked.warnings);
});
