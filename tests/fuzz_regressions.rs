//! Invariants the fuzz targets (fuzz/) check, run here on every example and broken case so a
//! finding stays fixed: every diagnostic's labels and fixes lie inside the source, on UTF-8
//! character boundaries (tests/broken/non-ascii-stray-text.gbp was a span cutting `é`,
//! tests/broken/vertical-tab-before-stray.gbp one starting at a vertical tab and cutting `ʗ`).

use crate::support::{examples, files};

fn spans_on_char_boundaries(name: &str, src: &str) {
    let checked = gbpc::check_source(src);
    for d in checked.diagnostics() {
        let spans = d
            .labels
            .iter()
            .map(|l| l.span)
            .chain(d.fixes.iter().map(|f| f.span));
        for s in spans {
            assert!(
                s.start <= s.end && s.end <= src.len(),
                "{name}: {} span {}..{} outside {} bytes",
                d.code,
                s.start,
                s.end,
                src.len()
            );
            assert!(
                src.is_char_boundary(s.start) && src.is_char_boundary(s.end),
                "{name}: {} span {}..{} cuts a character",
                d.code,
                s.start,
                s.end
            );
        }
    }
}

#[test]
fn diagnostic_spans_never_cut_a_character() {
    let mut paths = files("tests/broken", "gbp");
    paths.extend(examples());
    for path in &paths {
        let bytes = std::fs::read(path).unwrap_or_default();
        if let Ok(src) = gbpc::syntax::decode(&bytes) {
            spans_on_char_boundaries(&path.display().to_string(), src);
        }
    }
}
