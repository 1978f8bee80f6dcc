//! Differential tests on generated policies (`gbpc::synth`): every one checks clean and lowers
//! for both targets, its nftables script loads (`nft -c`) in a throwaway network namespace, and
//! `gbpc run` (the kernel, probe by probe) agrees with the evaluator on a handful of them. The
//! Kubernetes side against an independent engine is scripts/nca-diff.sh.

use std::process::Command;
use std::time::Instant;

use gbpc::lower::{k8s, nft};
use gbpc::synth::{self, Size};

use crate::support::kernel_ready;

/// Every generated policy (200 of the default size, 50 large) checks without errors and
/// compiles for nftables and for Kubernetes (denies compiled away, the default) without
/// errors; the same seed gives byte-identical output.
#[test]
fn generated_policies_compile_for_both_targets() {
    let k8s_opts = k8s::Options {
        format: k8s::Format::Json,
        deny: k8s::DenyMode::Subtract,
        allow_dns: false,
    };
    let mut denies = 0;
    let mut globals = 0;
    let cases = (1..=200)
        .map(|s| (s, Size::DEFAULT))
        .chain((1..=50).map(|s| (s, Size::LARGE)));
    for (seed, size) in cases {
        let text = synth::policy(seed, size);
        assert_eq!(text, synth::policy(seed, size), "seed {seed}");
        let c = gbpc::check_source(&text);
        assert!(c.ok(), "seed {seed} {size:?}: {:#?}\n{text}", c.errors);
        let n = nft::lower(&c.policy, &nft::Options::default())
            .unwrap_or_else(|e| panic!("seed {seed}: nft: {e:#?}\n{text}"));
        assert!(n.text.contains("table inet gbpc"), "seed {seed}");
        let k = k8s::lower(&c.policy, &k8s_opts)
            .unwrap_or_else(|e| panic!("seed {seed}: k8s: {e:#?}\n{text}"));
        let v: serde_json::Value = serde_json::from_str(&k.text).unwrap();
        assert!(
            v["items"].as_array().is_some_and(|a| !a.is_empty()),
            "seed {seed}"
        );
        denies += usize::from(text.contains(" deny "));
        globals += usize::from(text.contains("global contract"));
    }
    // The generator covers what it claims to.
    assert!(
        denies > 40 && globals > 40,
        "denies {denies}, globals {globals}"
    );
}

/// The nftables scripts of 20 generated policies pass `nft -c -f` in a new network namespace.
#[test]
fn generated_nft_scripts_load() {
    if !kernel_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for seed in (1..=200).step_by(10) {
        let c = gbpc::check_source(&synth::policy(seed, Size::DEFAULT));
        assert!(c.ok(), "seed {seed}");
        for enforce in [nft::Enforce::Fabric, nft::Enforce::Endpoint] {
            let o = nft::Options {
                enforce,
                ..nft::Options::default()
            };
            let text = nft::lower(&c.policy, &o).unwrap().text;
            let f = dir.path().join(format!("seed-{seed}.nft"));
            std::fs::write(&f, &text).unwrap();
            let out = Command::new("unshare")
                .args(["--net", "nft", "-c", "-f"])
                .arg(&f)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "seed {seed}: nft -c failed: {}\n{text}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// `gbpc run` on five generated policies (at most 20 endpoints each), in both enforcement
/// modes: every probe the kernel answers must agree with the evaluator (exit 0).
#[test]
fn gbpc_run_agrees_on_generated_policies() {
    if !kernel_ready() {
        return;
    }
    // One run at a time in this test binary: the run tests look for leftovers of their own.
    let _g = crate::run::RUNS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut failed = Vec::new();
    for seed in [1, 2, 3, 5, 8] {
        let text = synth::policy(seed, Size::SMALL);
        let f = dir.path().join(format!("seed-{seed}.gbp"));
        std::fs::write(&f, &text).unwrap();
        for mode in ["fabric", "endpoint"] {
            let t = Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_gbpc"))
                .arg("run")
                .arg(&f)
                .args(["--enforce", mode, "--color", "never"])
                .output()
                .unwrap();
            let code = out.status.code().unwrap_or(-1);
            let stdout = String::from_utf8_lossy(&out.stdout);
            eprintln!(
                "seed {seed} --enforce {mode}: exit {code} in {:.1?}",
                t.elapsed()
            );
            if code != 0 || !stdout.contains("ok: every probe agrees") {
                failed.push(format!(
                    "seed {seed} {mode}: exit {code}\n{stdout}\n{}\n{text}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// Every regression case of tests/regress checks clean and compiles for both targets.
#[test]
fn regression_cases_compile() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/regress");
    let entries = std::fs::read_dir(dir).unwrap();
    let mut n = 0;
    for e in entries {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "gbp") {
            continue;
        }
        let c = gbpc::check_source(&std::fs::read_to_string(&path).unwrap());
        assert!(c.ok(), "{}: {:#?}", path.display(), c.errors);
        for deny in [k8s::DenyMode::Subtract, k8s::DenyMode::Cluster] {
            let k8s_opts = k8s::Options {
                format: k8s::Format::Json,
                deny,
                allow_dns: false,
            };
            assert!(
                k8s::lower(&c.policy, &k8s_opts).is_ok(),
                "{}",
                path.display()
            );
        }
        assert!(
            nft::lower(&c.policy, &nft::Options::default()).is_ok(),
            "{}",
            path.display()
        );
        n += 1;
    }
    assert!(n > 0, "no regression case in {dir}");
}
