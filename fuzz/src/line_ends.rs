//! The line-end class (docs/language.md, "Line ends") and `ip/N` probes, for the `line_ends`
//! target: a generated policy is written with CRLF line ends, with characters that are not line
//! ends of the language (a lone CR, VT, FF, NEL, U+2028, U+2029) put at random places, and with
//! its `ip` probes given protocol numbers, and the invariants that make "one notion of a line
//! end" hold are checked on every output.

use gbpc::diag::{Code, Diagnostic, Span};

/// Vertical space that is not a line end of the language.
pub const STRAY: &[&str] = &["\r", "\u{0B}", "\u{0C}", "\u{85}", "\u{2028}", "\u{2029}"];

/// Protocol numbers for `ip/N` probes: the five with a form of their own, and others.
const IP_PROTOS: &[u8] = &[1, 6, 17, 58, 132, 0, 47, 50, 89, 255];

/// What a check says, positions as line and column of every output (terminal header, JSON).
fn findings(src: &str) -> Vec<(String, String, Option<Span>)> {
    let c = gbpc::check_source(src);
    c.diagnostics()
        .iter()
        .map(|d| (d.code.to_string(), d.message.clone(), d.primary_span()))
        .collect()
}

/// `[file:line:column]` of each snippet of a terminal rendering.
fn headers(out: &str) -> Vec<(usize, usize)> {
    out.lines()
        .filter_map(|l| {
            let h = l.split_once("╭─[")?.1.strip_suffix(']')?;
            let mut it = h.rsplitn(3, ':');
            let col = it.next()?.parse().ok()?;
            let line = it.next()?.parse().ok()?;
            Some((line, col))
        })
        .collect()
}

/// The terminal headers and the JSON positions of the same findings name the same places:
/// each header is the line and column of a label of its diagnostic (the primary one when the
/// snippet holds it).
fn positions_agree(src: &str, diags: &[Diagnostic]) {
    let ix = gbpc::text::LineIndex::new(src);
    for d in diags {
        let one = std::slice::from_ref(d);
        let term = gbpc::render::terminal(one, "f.gbp", src, false);
        let json: serde_json::Value =
            match serde_json::from_str(gbpc::render::json(one, "f.gbp", src).trim()) {
                Ok(v) => v,
                Err(e) => panic!("render::json: {e}"),
            };
        let places: Vec<(usize, usize)> = json["labels"]
            .as_array()
            .map(|ls| {
                ls.iter()
                    .map(|l| {
                        let s = &l["start"];
                        (
                            s["line"].as_u64().unwrap_or(0) as usize,
                            s["column"].as_u64().unwrap_or(0) as usize,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        for h in headers(&term) {
            assert!(
                places.contains(&h),
                "{}: terminal header {h:?} is at no label ({places:?})\n{term}",
                d.code
            );
        }
        if let Some(s) = d.primary_span() {
            let p = ix.position(src, s.start);
            assert!(
                places.contains(&(p.line + 1, p.col_chars + 1)),
                "{}",
                d.code
            );
        }
    }
}

/// Run the class on one generated policy.
pub fn check(data: &[u8]) {
    let (choices, rest) = data.split_at(data.len().min(16));
    let lf = crate::policy(rest);
    if lf.contains('\r') || gbpc::text::stray_line_breaks(&lf).next().is_some() {
        return; // the generator's raw noise: not a clean starting point
    }
    // CRLF line ends change nothing but offsets: same findings at the same lines and columns.
    let crlf = lf.replace('\n', "\r\n");
    let place = |src: &str, s: Option<Span>| {
        let ix = gbpc::text::LineIndex::new(src);
        s.map(|s| {
            let p = ix.position(src, s.start);
            (p.line, p.col_chars)
        })
    };
    let a: Vec<_> = findings(&lf)
        .into_iter()
        .map(|(c, m, s)| (c, m, place(&lf, s)))
        .collect();
    let b: Vec<_> = findings(&crlf)
        .into_iter()
        .map(|(c, m, s)| (c, m, place(&crlf, s)))
        .collect();
    assert_eq!(a, b, "CRLF changed the findings of:\n{lf}");
    assert_eq!(
        gbpc::fmt::format(&lf).ok(),
        gbpc::fmt::format(&crlf).ok(),
        "CRLF formats differently:\n{lf}"
    );
    if let Ok(out) = gbpc::fmt::format(&crlf) {
        assert!(!out.contains('\r'), "fmt wrote a CR");
    }

    // Stray line breaks at places the choices pick (char boundaries of the CRLF text).
    let mut v = crlf.clone();
    let mut put: Vec<usize> = Vec::new();
    for pair in choices.chunks(2) {
        let [k, at] = pair else { break };
        let mut i = (*at as usize * v.len()) / 256;
        while !v.is_char_boundary(i) {
            i -= 1;
        }
        let s = STRAY[*k as usize % STRAY.len()];
        // A CR before an LF would be a CRLF, and an LF after a CR would make one.
        if (s == "\r" && v[i..].starts_with('\n')) || v[..i].ends_with('\r') {
            continue;
        }
        v.insert_str(i, s);
        for p in &mut put {
            if *p >= i {
                *p += s.len();
            }
        }
        put.push(i);
    }
    put.sort_unstable();
    let checked = gbpc::check_source(&v);
    let diags = checked.diagnostics();
    crate::check_spans(&v, &diags);
    let e006: Vec<usize> = diags
        .iter()
        .filter(|d| d.code == Code::LineEnd)
        .filter_map(|d| d.primary_span().map(|s| s.start))
        .collect();
    if put.len() <= 100 {
        assert_eq!(e006, put, "E006 where the stray line ends are:\n{v:?}");
    }
    if !put.is_empty() {
        assert!(!checked.ok(), "a stray line end checked clean:\n{v:?}");
        match gbpc::fmt::format(&v) {
            Ok(_) => panic!("formatted a file with a stray line end:\n{v:?}"),
            Err(e) => assert!(e.iter().any(|d| d.code == Code::LineEnd)),
        }
        // The rest is read as with line feeds there: the same findings as that text (but its
        // lints, W101-W107, which only a policy without errors gets).
        let as_lf = gbpc::text::with_stray_line_breaks_as_lf(&v).unwrap_or_else(|| v.clone());
        let rest: Vec<_> = findings(&v)
            .into_iter()
            .filter(|(c, _, _)| c != Code::LineEnd.as_str())
            .collect();
        let want: Vec<_> = findings(&as_lf)
            .into_iter()
            .filter(|(c, _, _)| !c.starts_with("gbpc::W1"))
            .collect();
        assert_eq!(rest, want, "{v:?}");
    }
    positions_agree(&v, &diags);

    // `ip` probes with numbers: E033 exactly for the protocols with a form of their own.
    let mut n = choices.iter().copied().cycle();
    let mut probes = String::new();
    let mut rest = lf.as_str();
    while let Some(i) = rest.find(" ip ") {
        let p = IP_PROTOS[n.next().unwrap_or(0) as usize % IP_PROTOS.len()];
        probes.push_str(&rest[..i]);
        probes.push_str(&format!(" ip/{p} "));
        rest = &rest[i + 4..];
    }
    probes.push_str(rest);
    // The probes of the assertions that parsed, from the tree (not from the text, where an
    // `ip` may be a filter entry or in a comment).
    let parsed = gbpc::syntax::parse(&probes);
    let mut own: Vec<usize> = Vec::new();
    for t in &parsed.file.tenants {
        for item in &t.items {
            let gbpc::syntax::ast::Item::Assert(a) = item else {
                continue;
            };
            let n = a.probe.arg.as_deref().and_then(|x| x.parse::<u8>().ok());
            if a.probe.proto == "ip"
                && n.is_some_and(|n| gbpc::model::validate::own_form(n).is_some())
            {
                own.push(a.probe.span.start);
            }
        }
    }
    own.sort_unstable();
    own.dedup();
    let c = gbpc::check_parsed(&parsed);
    crate::check_spans(&probes, &c.errors);
    let e033: Vec<usize> = c
        .errors
        .iter()
        .filter(|d| d.code == Code::ProbeForm)
        .filter_map(|d| d.primary_span().map(|s| s.start))
        .collect();
    assert_eq!(
        e033, own,
        "E033 for every own-form probe, and only there:\n{probes}"
    );
}
