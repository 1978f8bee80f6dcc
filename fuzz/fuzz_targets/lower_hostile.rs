//! The name-hostile generator (every nft keyword, YAML special words, digit-first and
//! 63-character names as names; YAML-ambiguous label keys and values): every policy checks
//! clean, its nftables scripts pass `nft -c` (both modes) and its Kubernetes objects pass the
//! strict schemas, JSON and YAML. Run it in a network namespace of its own:
//! `unshare --net cargo fuzz run ...` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gbpc_fuzz::lower_hostile(data));
