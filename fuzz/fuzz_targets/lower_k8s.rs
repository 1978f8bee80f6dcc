//! Generated policies that check clean are lowered to Kubernetes objects (JSON and YAML, both
//! deny modes); every object of the JSON output validates against the strict schemas and the
//! name rules, and the YAML output read back as kubectl reads it is the JSON output.
#![no_main]

use gbpc::lower::k8s::{self, DenyMode, Format, Options};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((src, checked)) = gbpc_fuzz::lowerable(data) else {
        return;
    };
    let flags = data.first().copied().unwrap_or(0);
    let deny = if flags & 1 == 1 {
        DenyMode::Admin
    } else {
        DenyMode::Error
    };
    let allow_dns = flags & 2 == 2;
    let json = k8s::lower(
        &checked.policy,
        &Options {
            format: Format::Json,
            deny,
            allow_dns,
        },
    );
    match &json {
        Ok(out) => {
            gbpc_fuzz::validate_k8s(&src, &out.text);
            gbpc_fuzz::check_spans(&src, &out.warnings);
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "lowering failed without a diagnostic");
            gbpc_fuzz::check_spans(&src, errors);
        }
    }
    let yaml = k8s::lower(
        &checked.policy,
        &Options {
            format: Format::Yaml,
            deny,
            allow_dns,
        },
    );
    assert_eq!(
        json.is_ok(),
        yaml.is_ok(),
        "JSON and YAML lowering disagree"
    );
    if let (Ok(json), Ok(yaml)) = (&json, &yaml) {
        gbpc_fuzz::yaml_reads_back(&src, &json.text, &yaml.text);
    }
});
