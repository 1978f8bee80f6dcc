//! Documentation that is generated from the code stays in step with it.

use crate::support::repo;

/// `docs/diagnostics.md` lists every code with its summary; regenerate with
/// `UPDATE_DOCS=1 cargo test --test tests docs`.
#[test]
fn diagnostics_doc_lists_every_code() {
    let mut doc = String::from(
        "# Diagnostic codes\n\n\
         Every finding of `gbpc check` and `gbpc compile` carries one of these stable codes. Errors\n\
         (`E`) make the command exit with status 1 and stop any output; warnings (`W`) do not.\n\
         Each diagnostic also has a primary span, secondary spans where another place is involved,\n\
         and help. This file is generated from `src/diag.rs` by a test.\n\n\
         | code | meaning |\n|---|---|\n",
    );
    for c in gbpc::diag::Code::ALL {
        doc.push_str(&format!("| `{}` | {} |\n", c.as_str(), c.summary()));
    }
    let path = repo().join("docs/diagnostics.md");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &doc).unwrap_or_else(|e| panic!("{e}"));
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        current, doc,
        "docs/diagnostics.md is stale: run UPDATE_DOCS=1 cargo test --test tests docs"
    );
}

/// Every example named in the README exists, and every example is named in the README.
#[test]
fn readme_names_every_example() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap_or_default();
    for e in crate::support::examples() {
        let name = e
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        assert!(
            readme.contains(&name),
            "README.md does not mention examples/{name}"
        );
    }
}
