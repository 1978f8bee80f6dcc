//! Navigation over the name index: go to definition, find references, rename (with
//! prepareRename), and the document outline.

use lsp_types as lsp;

use super::doc::{Doc, Encoding};
use super::index::Kind;
use crate::diag::Span;
use crate::model::validate;
use crate::syntax::ast;

/// Where the object under the cursor is declared (several places for a duplicate).
pub fn definition(doc: &Doc, offset: usize) -> Vec<Span> {
    match doc.index.at(offset) {
        Some(o) => doc.index.definitions(o.key).map(|d| d.span).collect(),
        None => Vec::new(),
    }
}

/// Every place the object under the cursor is written.
pub fn references(doc: &Doc, offset: usize, include_declaration: bool) -> Vec<Span> {
    match doc.index.at(offset) {
        Some(o) => doc
            .index
            .occurrences(o.key)
            .filter(|r| include_declaration || !r.def)
            .map(|r| r.span)
            .collect(),
        None => Vec::new(),
    }
}

/// The name under the cursor if it can be renamed: its span and its text. `Ok(None)`: the
/// cursor is on nothing renameable; `Err`: on a name that cannot be renamed, and why.
pub fn prepare_rename(doc: &Doc, offset: usize) -> Result<Option<(Span, String)>, String> {
    let Some(o) = doc.index.at(offset) else {
        return Ok(None);
    };
    let name = doc.index.name(o.key.name);
    if o.key.kind == Kind::Group && name == "any" {
        return Err("`any` is the tenant-wide group; it cannot be renamed".to_string());
    }
    if !doc.index.is_defined(o.key) {
        return Err(format!(
            "{} `{name}` is not defined in this file, so there is nothing to rename",
            o.key.kind.as_str(),
        ));
    }
    Ok(Some((o.span, name.to_string())))
}

/// The edits that rename the object under the cursor to `new_name` everywhere in the document.
pub fn rename(doc: &Doc, offset: usize, new_name: &str) -> Result<Vec<(Span, String)>, String> {
    let Some((_, old)) = prepare_rename(doc, offset)? else {
        return Err("there is no name to rename here".to_string());
    };
    let Some(o) = doc.index.at(offset) else {
        return Err("there is no name to rename here".to_string());
    };
    if new_name == old {
        return Ok(Vec::new());
    }
    let kind = o.key.kind;
    validate::dns_label(kind.as_str(), new_name).map_err(|inv| match inv.suggestion {
        Some(s) => format!("{}; {} (try `{s}`)", inv.message, inv.help),
        None => format!("{}; {}", inv.message, inv.help),
    })?;
    if kind == Kind::Group && new_name == "any" {
        return Err("`any` is reserved for the tenant-wide group".to_string());
    }
    let tenant = doc.index.name(o.key.tenant);
    let taken = match kind {
        Kind::Tenant => doc.index.key(kind, new_name, new_name),
        _ => doc.index.key(kind, tenant, new_name),
    };
    if taken.is_some_and(|k| doc.index.is_defined(k)) {
        return Err(match kind {
            Kind::Tenant => format!("tenant `{new_name}` already exists"),
            _ => format!(
                "{} `{new_name}` already exists in tenant `{tenant}`",
                kind.as_str(),
            ),
        });
    }
    Ok(doc
        .index
        .occurrences(o.key)
        .map(|r| (r.span, new_name.to_string()))
        .collect())
}

/// The outline of a document, kept with its analysis (the syntax tree is not): the symbols in
/// preorder in one vector, their details in one string. A handful of allocations however
/// large the document.
#[derive(Default)]
pub struct Outline {
    symbols: Vec<Symbol>,
    details: String,
}

/// One symbol. Its name is the text of `sel`; offsets are `u32` (a file has at most 64 MiB).
struct Symbol {
    kind: lsp::SymbolKind,
    /// The name was lost to a syntax error.
    unnamed: bool,
    /// The whole declaration, and its name.
    span: (u32, u32),
    sel: (u32, u32),
    /// Its detail in `details`.
    detail: (u32, u32),
    /// The position after its last descendant; `None`: it has no list of children (a
    /// filter has none, a group may have an empty one).
    end: Option<u32>,
}

fn narrow(o: usize) -> u32 {
    u32::try_from(o).unwrap_or(u32::MAX)
}

fn pack(s: Span) -> (u32, u32) {
    (narrow(s.start), narrow(s.end))
}

fn unpack((start, end): (u32, u32)) -> Span {
    Span::new(start as usize, end as usize)
}

/// What a symbol is before it goes into the outline.
struct Sym {
    name_empty: bool,
    detail: String,
    kind: lsp::SymbolKind,
    span: Span,
    sel: Span,
    children: Option<Vec<Sym>>,
}

impl Outline {
    fn push(&mut self, s: Sym) {
        let start = narrow(self.details.len());
        self.details.push_str(&s.detail);
        let detail = (start, narrow(self.details.len()));
        let at = self.symbols.len();
        self.symbols.push(Symbol {
            kind: s.kind,
            unnamed: s.name_empty,
            span: pack(s.span.join(s.sel)),
            sel: pack(s.sel),
            detail,
            end: None,
        });
        if let Some(children) = s.children {
            for c in children {
                self.push(c);
            }
            let end = narrow(self.symbols.len());
            if let Some(sym) = self.symbols.get_mut(at) {
                sym.end = Some(end);
            }
        }
    }
}

/// The outline of a syntax tree: tenants holding their filters, contracts (with subjects),
/// groups (with endpoints) and `any` blocks.
pub fn outline(file: &ast::File, src: &str) -> Outline {
    let sym =
        |name: &str, detail: String, kind, span: Span, sel: Span, children: Option<Vec<Sym>>| Sym {
            name_empty: name.is_empty(),
            detail,
            kind,
            span,
            sel,
            children,
        };
    let flat = |s: Span| {
        src.get(s.start..s.end)
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = Outline::default();
    for t in &file.tenants {
        let mut items = Vec::new();
        for item in &t.items {
            match item {
                ast::Item::Filter(f) => {
                    let entries: Vec<String> = f.entries.iter().map(|e| flat(e.span)).collect();
                    items.push(sym(
                        &f.name.text,
                        entries.join("; "),
                        lsp::SymbolKind::STRUCT,
                        f.span,
                        f.name.span,
                        None,
                    ));
                }
                ast::Item::Contract(c) => {
                    let subjects = c
                        .subjects
                        .iter()
                        .map(|s| {
                            let filters: Vec<String> =
                                s.filters.iter().map(|r| r.display()).collect();
                            sym(
                                &s.name.text,
                                format!(
                                    "{} {}{}",
                                    s.action.as_str(),
                                    filters.join(", "),
                                    if s.log { " log" } else { "" }
                                ),
                                lsp::SymbolKind::METHOD,
                                s.span,
                                s.name.span,
                                None,
                            )
                        })
                        .collect();
                    items.push(sym(
                        &c.name.text,
                        if c.global {
                            "global contract"
                        } else {
                            "contract"
                        }
                        .to_string(),
                        lsp::SymbolKind::INTERFACE,
                        c.span,
                        c.name.span,
                        Some(subjects),
                    ));
                }
                ast::Item::Group(g) => {
                    let endpoints = g
                        .endpoints
                        .iter()
                        .map(|e| {
                            let addrs: Vec<&str> =
                                e.addrs.iter().map(|a| a.text.as_str()).collect();
                            sym(
                                &e.name.text,
                                addrs.join(", "),
                                lsp::SymbolKind::VARIABLE,
                                e.span,
                                e.name.span,
                                None,
                            )
                        })
                        .collect();
                    let mut detail = match g.kind {
                        ast::GroupKind::Internal => "group".to_string(),
                        ast::GroupKind::External => "external".to_string(),
                    };
                    if !g.isolated.is_empty() {
                        detail.push_str(" isolated");
                    }
                    if !g.preferred.is_empty() {
                        detail.push_str(" preferred");
                    }
                    for p in &g.extends {
                        detail.push_str(&format!(" extends {}", p.text));
                    }
                    items.push(sym(
                        &g.name.text,
                        detail,
                        lsp::SymbolKind::CLASS,
                        g.span,
                        g.name.span,
                        Some(endpoints),
                    ));
                }
                ast::Item::Any(a) => {
                    let kw = Span::new(a.span.start, a.span.start + "any".len());
                    items.push(sym(
                        "any",
                        "every internal group of the tenant".to_string(),
                        lsp::SymbolKind::CLASS,
                        a.span,
                        kw,
                        None,
                    ));
                }
                ast::Item::Assert(_) => {}
            }
        }
        out.push(sym(
            &t.name.text,
            "tenant".to_string(),
            lsp::SymbolKind::NAMESPACE,
            t.span,
            t.name.span,
            Some(items),
        ));
    }
    out.symbols.shrink_to_fit();
    out.details.shrink_to_fit();
    out
}

/// The outline as LSP document symbols.
pub fn symbols(doc: &Doc, enc: Encoding) -> Vec<lsp::DocumentSymbol> {
    let outline = &doc.outline;
    /// The symbols from `at` to `end` (siblings, with their descendants).
    fn siblings(doc: &Doc, enc: Encoding, mut at: usize, end: usize) -> Vec<lsp::DocumentSymbol> {
        let o = &doc.outline;
        let mut out = Vec::new();
        while at < end {
            let Some(s) = o.symbols.get(at) else {
                break;
            };
            let next = s.end.map_or(at + 1, |e| (e as usize).max(at + 1));
            let sel = unpack(s.sel);
            let name = match doc.slice(sel) {
                name if !s.unnamed && !name.is_empty() => name,
                _ => "(unnamed)",
            };
            let detail = unpack(s.detail);
            let detail = o.details.get(detail.start..detail.end);
            #[allow(deprecated)] // `deprecated` is a required field of the struct
            out.push(lsp::DocumentSymbol {
                name: name.to_string(),
                detail: Some(detail.unwrap_or("").to_string()),
                kind: s.kind,
                tags: None,
                deprecated: None,
                range: doc.range(unpack(s.span), enc),
                selection_range: doc.range(sel, enc),
                children: s.end.map(|_| siblings(doc, enc, at + 1, next)),
            });
            at = next;
        }
        out
    }
    siblings(doc, enc, 0, outline.symbols.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "tenant t {\n  filter f { tcp 80 }\n  contract c { subject s permit f }\n  group g { provides c }\n  group h extends g { consumes c }\n}\n";

    fn off(needle: &str, nth: usize) -> usize {
        SRC.match_indices(needle).nth(nth).map_or(0, |(i, _)| i)
    }

    #[test]
    fn definition_and_references() {
        let doc = Doc::new(SRC.to_string(), 1);
        let c_use = off("consumes c", 0) + "consumes ".len();
        assert_eq!(
            definition(&doc, c_use),
            vec![Span::new(off("c {", 0), off("c {", 0) + 1)]
        );
        assert_eq!(references(&doc, c_use, true).len(), 3);
        assert_eq!(references(&doc, c_use, false).len(), 2);
    }

    #[test]
    fn rename_checks_the_new_name() {
        let doc = Doc::new(SRC.to_string(), 1);
        let g = off("g {", 0);
        assert_eq!(rename(&doc, g, "web").map(|e| e.len()), Ok(2));
        assert!(rename(&doc, g, "h").is_err(), "h exists");
        assert!(rename(&doc, g, "Web").is_err(), "not a DNS label");
        assert!(rename(&doc, g, "any").is_err());
        // a filter and a group may share a name
        assert!(rename(&doc, off("f {", 0), "g").is_ok());
    }
}
