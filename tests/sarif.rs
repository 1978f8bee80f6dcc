//! SARIF 2.1.0 output (`gbpc::render::sarif`): every policy of the repository, broken ones
//! included, renders to a log the official OASIS schema (`schemas/sarif-schema-2.1.0.json`)
//! accepts; regions, UTF-16 columns, related locations, fixes and rules say what they should.

use std::path::PathBuf;

use gbpc::diag::{Code, Diagnostic, Span};
use serde_json::Value;

use crate::support::{files, repo, snapshot};

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo().join("schemas/sarif-schema-2.1.0.json"))
        .expect("schema file");
    let mut schema: Value = serde_json::from_str(&text).expect("schema JSON");
    // The official schema's `language` pattern (of `run` and `toolComponent`) has a stray `]`,
    // which the draft-07 meta-schema's `regex` format rejects, so with format checks on the
    // schema would not load. Only that pattern is repaired, in memory (gbpc's log has no
    // `language`); formats such as `uri` and `uri-reference` are then checked in gbpc's output.
    const BROKEN: &str = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$";
    fn repair(v: &mut Value) -> usize {
        match v {
            Value::Object(m) => {
                let mut n = 0;
                if m.get("pattern").and_then(Value::as_str) == Some(BROKEN) {
                    m.insert("pattern".into(), "^[a-zA-Z]{2}(-[a-zA-Z]{2})?$".into());
                    n += 1;
                }
                n + m.values_mut().map(repair).sum::<usize>()
            }
            Value::Array(a) => a.iter_mut().map(repair).sum(),
            _ => 0,
        }
    }
    assert_eq!(
        repair(&mut schema),
        2,
        "the schema's language patterns changed: review"
    );
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(true)
        .build(&schema)
        .expect("schema compiles")
}

fn assert_valid(v: &jsonschema::Validator, what: &str, log: &Value) {
    let errors: Vec<String> = v
        .iter_errors(log)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: not valid SARIF 2.1.0: {errors:#?}"
    );
}

/// The diagnostics of a file, as `gbpc check` computes them (an undecodable file gives its one
/// E002 against the lossy text, as the binary does).
fn diagnostics(bytes: &[u8]) -> (String, Vec<Diagnostic>) {
    match gbpc::syntax::decode(bytes) {
        Ok(src) => (src.to_string(), gbpc::check_source(src).diagnostics()),
        Err(d) => (String::from_utf8_lossy(bytes).into_owned(), vec![d]),
    }
}

fn render(name: &str, src: &str) -> Value {
    let (_, diags) = diagnostics(src.as_bytes());
    serde_json::from_str(&gbpc::render::sarif(&diags, name, src)).expect("SARIF is JSON")
}

fn all_policies() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in [
        "examples",
        "tests/broken",
        "tests/lint",
        "tests/fmt",
        "tests/regress",
    ] {
        v.extend(files(dir, "gbp"));
    }
    v
}

#[test]
fn every_policy_renders_a_schema_valid_log() {
    let v = validator();
    let mut results = 0;
    for p in all_policies() {
        let bytes = std::fs::read(&p).expect("read policy");
        let (src, diags) = diagnostics(&bytes);
        let name = p.strip_prefix(repo()).unwrap_or(&p).display().to_string();
        let text = gbpc::render::sarif(&diags, &name, &src);
        let log: Value = serde_json::from_str(&text).expect("SARIF is JSON");
        assert_valid(&v, &name, &log);
        let run = &log["runs"][0];
        assert_eq!(
            run["results"].as_array().map(Vec::len),
            Some(diags.len()),
            "{name}"
        );
        for (r, d) in run["results"].as_array().into_iter().flatten().zip(&diags) {
            assert_eq!(r["ruleId"], d.code.as_str(), "{name}");
            let rule = &run["tool"]["driver"]["rules"][r["ruleIndex"].as_u64().unwrap() as usize];
            assert_eq!(
                rule["id"], r["ruleId"],
                "{name}: ruleIndex points at its rule"
            );
            assert_eq!(
                r["level"],
                if d.is_error() { "error" } else { "warning" },
                "{name}"
            );
        }
        results += diags.len();
        // Deterministic: the same input renders byte-identical output.
        assert_eq!(text, gbpc::render::sarif(&diags, &name, &src), "{name}");
    }
    assert!(results > 50, "the corpus exercised only {results} results");
}

#[test]
fn rules_are_the_code_table() {
    // A clean policy: no results (an empty file has W006).
    let log = render("x.gbp", "tenant t {\n}\n");
    let rules = log["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules");
    assert_eq!(rules.len(), Code::ALL.len());
    for (r, c) in rules.iter().zip(Code::ALL) {
        assert_eq!(r["id"], c.as_str());
        assert_eq!(r["shortDescription"]["text"], c.summary());
        let level = if c.as_str().starts_with("gbpc::E") {
            "error"
        } else {
            "warning"
        };
        assert_eq!(r["defaultConfiguration"]["level"], level, "{}", c.as_str());
    }
    assert_eq!(log["runs"][0]["results"], serde_json::json!([]));
    assert_eq!(log["version"], "2.1.0");
    assert_eq!(log["runs"][0]["columnKind"], "utf16CodeUnits");
}

/// The 1-based (line, UTF-16 column) of a byte offset.
fn line_col16(src: &str, offset: usize) -> (u64, u64) {
    let before = &src[..offset];
    let line = before.matches('\n').count() as u64 + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].encode_utf16().count() as u64 + 1)
}

fn region_of(src: &str, needle: &str) -> Value {
    let at = src.find(needle).expect("needle in source");
    let (sl, sc) = line_col16(src, at);
    let (el, ec) = line_col16(src, at + needle.len());
    serde_json::json!({ "startLine": sl, "startColumn": sc, "endLine": el, "endColumn": ec })
}

#[test]
fn regions_count_columns_in_utf16_code_units() {
    // Before the undefined contract on its line: `é` (1 UTF-16 unit, 2 bytes) and `😀` (2 units,
    // 4 bytes) in a quoted label value.
    let src = "tenant shop {\n  group web { select app=web, note=\"é😀\" address 198.18.1.0/24 provides nope }\n}\n";
    let log = render("u.gbp", src);
    let results = log["runs"][0]["results"].as_array().expect("results");
    let r = results
        .iter()
        .find(|r| r["ruleId"] == "gbpc::E010")
        .unwrap_or_else(|| panic!("an E010 among {results:#?}"));
    let region = &r["locations"][0]["physicalLocation"]["region"];
    assert_eq!(*region, region_of(src, "nope"));
    // By hand: `  group web { select app=web, note="é😀" address 198.18.1.0/24 provides ` is 71
    // characters, 72 UTF-16 units (the emoji takes two), so `nope` starts at column 73 (and
    // would be at 72 in characters, at 76 in bytes).
    assert_eq!(region["startLine"], 2);
    assert_eq!(region["startColumn"], 73);
    assert_eq!(region["endColumn"], 77);
}

#[test]
fn secondary_labels_are_related_locations_and_fixes_are_sarif_fixes() {
    let src = "tenant shop {\n  filter https { tcp 443 }\n  filter https { tcp 8443 }\n  contract web { subject tls permit htps }\n  group web { select app=web address 198.18.1.0/24 provides web }\n  group client { select app=client address 198.18.2.0/24 consumes web }\n}\n";
    let log = render("dup.gbp", src);
    assert_valid(&validator(), "dup.gbp", &log);
    let results = log["runs"][0]["results"].as_array().expect("results");

    let dup = results
        .iter()
        .find(|r| r["ruleId"] == "gbpc::E011")
        .expect("a duplicate");
    let second = src.rfind("https").expect("second https");
    let (l, c) = line_col16(src, second);
    assert_eq!(
        dup["locations"][0]["physicalLocation"]["region"]["startLine"],
        l
    );
    assert_eq!(
        dup["locations"][0]["physicalLocation"]["region"]["startColumn"],
        c
    );
    let related = dup["relatedLocations"]
        .as_array()
        .expect("related locations");
    assert_eq!(related.len(), 1);
    assert_eq!(related[0]["id"], 1);
    assert_eq!(
        related[0]["physicalLocation"]["region"],
        region_of(src, "https")
    );
    assert!(
        related[0]["message"]["text"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{related:#?}"
    );
    assert_eq!(
        related[0]["physicalLocation"]["artifactLocation"]["uri"],
        "dup.gbp"
    );

    let typo = results
        .iter()
        .find(|r| r["ruleId"] == "gbpc::E010")
        .expect("the typo");
    let text = typo["message"]["text"].as_str().expect("message");
    assert!(text.contains("htps") && text.contains("help: "), "{text}");
    let fix = &typo["fixes"][0];
    assert!(
        fix["description"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("https"))
    );
    let change = &fix["artifactChanges"][0];
    assert_eq!(change["artifactLocation"]["uri"], "dup.gbp");
    let rep = &change["replacements"][0];
    assert_eq!(rep["deletedRegion"], region_of(src, "htps"));
    assert_eq!(rep["insertedContent"]["text"], "https");
}

#[test]
fn a_finding_without_a_place_points_at_the_file_and_empty_spans_are_insertion_points() {
    let d = Diagnostic::error(Code::TooLarge, "the input is too large");
    let at_end = Diagnostic::error(Code::Syntax, "expected `}`").primary(Span::new(9, 9), "here");
    let src = "tenant a {";
    let text = gbpc::render::sarif(&[d, at_end], "dir with space/ü.gbp", src);
    let log: Value = serde_json::from_str(&text).expect("JSON");
    assert_valid(&validator(), "synthetic", &log);
    let results = &log["runs"][0]["results"];
    let whole = &results[0]["locations"][0]["physicalLocation"];
    assert_eq!(
        whole["artifactLocation"]["uri"],
        "dir%20with%20space/%C3%BC.gbp"
    );
    assert!(whole.get("region").is_none(), "{whole:#?}");
    let region = &results[1]["locations"][0]["physicalLocation"]["region"];
    assert_eq!(
        *region,
        serde_json::json!({ "startLine": 1, "startColumn": 10, "endLine": 1, "endColumn": 10 })
    );
    let abs = gbpc::render::sarif(&[], "/srv/p.gbp", "");
    assert!(abs.contains("\"uri\": \"file:///srv/p.gbp\""), "{abs}");
}

// ---- the command line ----------------------------------------------------------------------

fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gbpc"))
        .current_dir(repo())
        .args(args)
        .output()
        .expect("run gbpc")
}

#[test]
fn check_writes_one_sarif_log_to_stdout_and_nothing_else() {
    let v = validator();
    let out = run(&[
        "check",
        "tests/broken/duplicate-definitions.gbp",
        "--message-format",
        "sarif",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let log: Value = serde_json::from_str(&text).expect("one JSON document");
    assert_valid(&v, "check", &log);
    let uri = &log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
        ["uri"];
    assert_eq!(uri, "tests/broken/duplicate-definitions.gbp");
    snapshot!("sarif-duplicate-definitions", &text);

    // A clean policy: exit 0, a log without results, no "ok" line.
    let out = run(&["check", "examples/pci.gbp", "--message-format", "sarif"]);
    assert_eq!(out.status.code(), Some(0));
    let log: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_valid(&v, "clean", &log);
    assert_eq!(log["runs"][0]["results"], serde_json::json!([]));

    // Undecodable input: the E002 as a result.
    let out = run(&[
        "check",
        "tests/broken/not-utf8.gbp",
        "--message-format",
        "sarif",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let log: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_valid(&v, "not UTF-8", &log);
    assert_eq!(log["runs"][0]["results"][0]["ruleId"], "gbpc::E002");
}

#[test]
fn compile_writes_the_output_to_stdout_and_the_sarif_log_to_stderr() {
    let out = run(&[
        "compile",
        "examples/dual-stack.gbp",
        "--target",
        "k8s",
        "--message-format",
        "sarif",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let list: Value = serde_json::from_slice(&out.stdout).expect("the k8s List");
    assert_eq!(list["kind"], "List");
    let log: Value = serde_json::from_slice(&out.stderr).expect("a SARIF log on stderr");
    assert_valid(&validator(), "compile", &log);
    // dual-stack has ICMP permits that NetworkPolicy cannot express: W010 warnings.
    let results = log["runs"][0]["results"].as_array().expect("results");
    assert!(
        results.iter().any(|r| r["ruleId"] == "gbpc::W010"),
        "{results:#?}"
    );
}

#[test]
fn sarif_is_refused_where_it_means_nothing() {
    let out = run(&[
        "fmt",
        "--check",
        "examples/pci.gbp",
        "--message-format",
        "sarif",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`check` and `compile`"));
}
