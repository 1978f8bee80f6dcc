//! The formatter is idempotent and changes no check result. Half the inputs are raw text, half
//! generated policies (which mostly parse, so the formatter's layout paths are reached).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// What a check says, without positions (formatting moves text around).
fn findings(src: &str) -> Vec<(String, String)> {
    let c = gbpc::check_source(src);
    let mut v: Vec<(String, String)> = c
        .diagnostics()
        .iter()
        .map(|d| (d.code.to_string(), d.message.clone()))
        .collect();
    v.sort();
    v
}

fuzz_target!(|data: &[u8]| {
    let generated;
    let src = match data.split_first() {
        Some((&b, rest)) if b & 1 == 1 => match std::str::from_utf8(rest) {
            Ok(s) => s,
            Err(_) => return,
        },
        Some((_, rest)) => {
            generated = gbpc_fuzz::policy(rest);
            &generated
        }
        None => return,
    };
    let Ok(once) = gbpc::fmt::format(src) else {
        return;
    };
    match gbpc::fmt::format(&once) {
        Ok(twice) => assert_eq!(once, twice, "format is not idempotent for:\n{src}"),
        Err(e) => panic!("formatted text does not parse: {e:?}\ninput:\n{src}\nformatted:\n{once}"),
    }
    assert_eq!(
        findings(src),
        findings(&once),
        "formatting changed the check result of:\n{src}\nformatted:\n{once}"
    );
});
