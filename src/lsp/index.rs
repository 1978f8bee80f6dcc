//! The name index of a document: every definition and every reference of a tenant, filter,
//! contract, group or endpoint, with its span and what it denotes. It is built from the syntax
//! tree alone, so it works on a file with errors; go to definition, find references, rename,
//! hover and completion all read it.

use std::collections::BTreeSet;

use crate::diag::Span;
use crate::syntax::ast;

/// The kinds of named objects a reference can point at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Tenant,
    Filter,
    Contract,
    Group,
    Endpoint,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tenant => "tenant",
            Kind::Filter => "filter",
            Kind::Contract => "contract",
            Kind::Group => "group",
            Kind::Endpoint => "endpoint",
        }
    }
}

/// What a name denotes: its kind, the tenant whose scope holds it, and the name. Two
/// occurrences with the same key are the same object (for a tenant, `tenant` and `name` are
/// both the tenant's name).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub kind: Kind,
    pub tenant: String,
    pub name: String,
}

/// One place where a name is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Occurrence {
    pub key: Key,
    /// The name itself (for `tenant/name`, only one of the two parts).
    pub span: Span,
    /// A declaration rather than a use.
    pub def: bool,
}

/// Every occurrence of every name in a document, in text order.
#[derive(Debug, Default)]
pub struct Index {
    occurrences: Vec<Occurrence>,
}

impl Index {
    pub fn build(file: &ast::File) -> Index {
        let mut b = Builder {
            defs: BTreeSet::new(),
            out: Vec::new(),
        };
        b.definitions(file);
        b.references(file);
        let mut occurrences = b.out;
        occurrences.sort_by_key(|o| (o.span.start, o.span.end));
        Index { occurrences }
    }

    /// The occurrence under a cursor at `offset` (a cursor just after a name is on it).
    pub fn at(&self, offset: usize) -> Option<&Occurrence> {
        let after = self.occurrences.partition_point(|o| o.span.start <= offset);
        let o = self.occurrences.get(after.checked_sub(1)?)?;
        (offset <= o.span.end).then_some(o)
    }

    /// Every occurrence of an object, definitions included, in text order.
    pub fn occurrences<'a>(&'a self, key: &'a Key) -> impl Iterator<Item = &'a Occurrence> + 'a {
        self.occurrences.iter().filter(move |o| &o.key == key)
    }

    pub fn definitions<'a>(&'a self, key: &'a Key) -> impl Iterator<Item = &'a Occurrence> + 'a {
        self.occurrences(key).filter(|o| o.def)
    }

    pub fn is_defined(&self, key: &Key) -> bool {
        self.definitions(key).next().is_some()
    }

    /// The names of a kind declared in a tenant, sorted and without duplicates.
    pub fn names(&self, kind: Kind, tenant: &str) -> Vec<&str> {
        let set: BTreeSet<&str> = self
            .occurrences
            .iter()
            .filter(|o| o.def && o.key.kind == kind && o.key.tenant == tenant)
            .map(|o| o.key.name.as_str())
            .collect();
        set.into_iter().collect()
    }
}

struct Builder {
    defs: BTreeSet<Key>,
    out: Vec<Occurrence>,
}

fn key(kind: Kind, tenant: &str, name: &str) -> Key {
    Key {
        kind,
        tenant: tenant.to_string(),
        name: name.to_string(),
    }
}

impl Builder {
    fn push(&mut self, key: Key, span: Span, def: bool) {
        // A name lost to a syntax error is empty: nothing to point at.
        if key.name.is_empty() || span.is_empty() {
            return;
        }
        if def {
            self.defs.insert(key.clone());
        }
        self.out.push(Occurrence { key, span, def });
    }

    fn def(&mut self, kind: Kind, tenant: &str, id: &ast::Ident) {
        self.push(key(kind, tenant, &id.text), id.span, true);
    }

    fn definitions(&mut self, file: &ast::File) {
        for t in &file.tenants {
            let tn = t.name.text.as_str();
            self.def(Kind::Tenant, tn, &t.name);
            for item in &t.items {
                match item {
                    ast::Item::Filter(f) => self.def(Kind::Filter, tn, &f.name),
                    ast::Item::Contract(c) => self.def(Kind::Contract, tn, &c.name),
                    ast::Item::Group(g) => {
                        self.def(Kind::Group, tn, &g.name);
                        for e in &g.endpoints {
                            self.def(Kind::Endpoint, tn, &e.name);
                        }
                    }
                    ast::Item::Any(_) | ast::Item::Assert(_) => {}
                }
            }
        }
    }

    /// A reference to an object of `kind`, in `tenant` unless it is qualified.
    fn reference(&mut self, kind: Kind, tenant: &str, r: &ast::Reference) {
        let scope = match &r.tenant {
            Some(t) => {
                self.push(key(Kind::Tenant, &t.text, &t.text), t.span, false);
                t.text.as_str()
            }
            None => tenant,
        };
        self.push(key(kind, scope, &r.name.text), r.name.span, false);
    }

    fn references(&mut self, file: &ast::File) {
        for t in &file.tenants {
            let tn = t.name.text.as_str();
            for item in &t.items {
                match item {
                    ast::Item::Filter(_) => {}
                    ast::Item::Contract(c) => {
                        for s in &c.subjects {
                            for r in &s.filters {
                                self.reference(Kind::Filter, tn, r);
                            }
                        }
                    }
                    ast::Item::Group(g) => {
                        for parent in &g.extends {
                            self.push(key(Kind::Group, tn, &parent.text), parent.span, false);
                        }
                        for r in g.provides.iter().chain(&g.consumes) {
                            self.reference(Kind::Contract, tn, r);
                        }
                    }
                    ast::Item::Any(a) => {
                        // The `any` keyword stands for the tenant's `any` group.
                        let kw = Span::new(a.span.start, a.span.start + "any".len());
                        self.push(key(Kind::Group, tn, "any"), kw, false);
                        for r in a.provides.iter().chain(&a.consumes) {
                            self.reference(Kind::Contract, tn, r);
                        }
                    }
                    ast::Item::Assert(a) => {
                        for target in [&a.from, &a.to] {
                            if let ast::Target::Ref(r) = target {
                                // An endpoint, or (an error the checker reports) a group.
                                let scope = r.tenant.as_ref().map_or(tn, |t| t.text.as_str());
                                let kind = if !self.defs.contains(&key(
                                    Kind::Endpoint,
                                    scope,
                                    &r.name.text,
                                )) && self.defs.contains(&key(
                                    Kind::Group,
                                    scope,
                                    &r.name.text,
                                )) {
                                    Kind::Group
                                } else {
                                    Kind::Endpoint
                                };
                                self.reference(kind, tn, r);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(src: &str) -> Index {
        Index::build(&crate::syntax::parse(src).file)
    }

    #[test]
    fn references_resolve_by_kind_and_tenant() {
        let src = "tenant a { filter web { tcp 80 } contract web { subject s permit web }\n\
                   group web extends base { provides web consumes b/dns endpoint w1 198.18.0.1 }\n\
                   group base { } any { consumes web } assert w1 -> b/r1 tcp/53 allow }\n\
                   tenant b { global contract dns { subject s permit x } }";
        let ix = index(src);
        let at = |needle: &str, nth: usize| {
            let off = src.match_indices(needle).nth(nth).map_or(0, |(i, _)| i);
            ix.at(off + 1)
                .map(|o| (o.key.kind, o.key.tenant.clone(), o.def))
        };
        assert_eq!(at("web", 0), Some((Kind::Filter, "a".into(), true)));
        assert_eq!(at("web", 2), Some((Kind::Filter, "a".into(), false)));
        assert_eq!(at("web", 3), Some((Kind::Group, "a".into(), true)));
        assert_eq!(at("web", 4), Some((Kind::Contract, "a".into(), false)));
        assert_eq!(at("base", 0), Some((Kind::Group, "a".into(), false)));
        assert_eq!(at("b/dns", 0), Some((Kind::Tenant, "b".into(), false)));
        assert_eq!(at("dns", 0), Some((Kind::Contract, "b".into(), false)));
        assert_eq!(at("any", 0), Some((Kind::Group, "a".into(), false)));
        assert_eq!(at("r1", 0), Some((Kind::Endpoint, "b".into(), false)));
        let web_contract = key(Kind::Contract, "a", "web");
        assert_eq!(ix.occurrences(&web_contract).count(), 3);
        assert_eq!(ix.names(Kind::Group, "a"), vec!["base", "web"]);
    }

    #[test]
    fn cursor_after_a_name_is_on_it_and_whitespace_is_not() {
        let src = "tenant t { group g { } }";
        let ix = index(src);
        assert!(ix.at(7).is_some_and(|o| o.key.kind == Kind::Tenant));
        assert!(ix.at(8).is_some_and(|o| o.key.kind == Kind::Tenant));
        assert!(ix.at(9).is_none());
    }
}
