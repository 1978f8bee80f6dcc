//! The name index of a document: every definition and every reference of a tenant, filter,
//! contract, group or endpoint, with its span and what it denotes. It is built from the syntax
//! tree alone, so it works on a file with errors; go to definition, find references, rename,
//! hover and completion all read it.

use std::collections::{BTreeSet, HashMap, HashSet};

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

/// A name in the index's table of names (every distinct name of the document once).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(u32);

/// What a name denotes: its kind, the tenant whose scope holds it, and the name. Two
/// occurrences with the same key are the same object (for a tenant, `tenant` and `name` are
/// both the tenant's name). The names are entries of the index's table ([`Index::name`]), so
/// that an occurrence takes 32 bytes, not two strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub kind: Kind,
    pub tenant: Name,
    pub name: Name,
}

/// One place where a name is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Occurrence {
    pub key: Key,
    /// A declaration rather than a use.
    pub def: bool,
    /// For a declaration: an external group, or a global contract.
    pub flag: bool,
    /// The name itself (for `tenant/name`, only one of the two parts).
    pub span: Span,
}

/// Every occurrence of every name in a document, in text order, with the table of names.
/// A handful of allocations however large the document (the names are one string).
#[derive(Debug, Default)]
pub struct Index {
    /// Every distinct name, one after the other; name `i` ends at `ends[i]`.
    names: String,
    ends: Vec<u32>,
    /// Names, sorted: for looking a name up.
    sorted: Vec<Name>,
    occurrences: Vec<Occurrence>,
}

impl Index {
    pub fn build(file: &ast::File) -> Index {
        let mut b = Builder {
            ids: HashMap::new(),
            names: String::new(),
            ends: Vec::new(),
            defs: HashSet::new(),
            out: Vec::new(),
        };
        b.definitions(file);
        b.references(file);
        let mut occurrences = b.out;
        occurrences.sort_by_key(|o| (o.span.start, o.span.end));
        occurrences.shrink_to_fit();
        let mut index = Index {
            names: b.names,
            ends: b.ends,
            sorted: Vec::new(),
            occurrences,
        };
        index.names.shrink_to_fit();
        let mut sorted: Vec<Name> = (0..index.ends.len() as u32).map(Name).collect();
        sorted.sort_by(|&a, &b| index.name(a).cmp(index.name(b)));
        index.sorted = sorted;
        index
    }

    /// The text of a name.
    pub fn name(&self, n: Name) -> &str {
        let i = n.0 as usize;
        let start = match i.checked_sub(1) {
            Some(p) => self.ends.get(p).map_or(0, |&e| e as usize),
            None => 0,
        };
        let end = self.ends.get(i).map_or(start, |&e| e as usize);
        self.names.get(start..end).unwrap_or("")
    }

    /// A name of the document (`None`: it is written nowhere in it).
    pub fn lookup(&self, text: &str) -> Option<Name> {
        let i = self
            .sorted
            .binary_search_by(|&n| self.name(n).cmp(text))
            .ok()?;
        self.sorted.get(i).copied()
    }

    /// The key of `kind` `tenant/name` (`None`: one of the names is written nowhere, so the
    /// object is not in the document).
    pub fn key(&self, kind: Kind, tenant: &str, name: &str) -> Option<Key> {
        Some(Key {
            kind,
            tenant: self.lookup(tenant)?,
            name: self.lookup(name)?,
        })
    }

    /// The occurrence under a cursor at `offset` (a cursor just after a name is on it).
    pub fn at(&self, offset: usize) -> Option<&Occurrence> {
        let after = self.occurrences.partition_point(|o| o.span.start <= offset);
        let o = self.occurrences.get(after.checked_sub(1)?)?;
        (offset <= o.span.end).then_some(o)
    }

    /// Every occurrence of an object, definitions included, in text order.
    pub fn occurrences(&self, key: Key) -> impl Iterator<Item = &Occurrence> + '_ {
        self.occurrences.iter().filter(move |o| o.key == key)
    }

    pub fn definitions(&self, key: Key) -> impl Iterator<Item = &Occurrence> + '_ {
        self.occurrences(key).filter(|o| o.def)
    }

    pub fn is_defined(&self, key: Key) -> bool {
        self.definitions(key).next().is_some()
    }

    /// Every declaration of a kind, in text order.
    pub fn declarations(&self, kind: Kind) -> impl Iterator<Item = &Occurrence> + '_ {
        self.occurrences
            .iter()
            .filter(move |o| o.def && o.key.kind == kind)
    }

    /// The names of a kind declared in a tenant, sorted and without duplicates.
    pub fn names(&self, kind: Kind, tenant: &str) -> Vec<&str> {
        let Some(t) = self.lookup(tenant) else {
            return Vec::new();
        };
        let set: BTreeSet<&str> = self
            .declarations(kind)
            .filter(|o| o.key.tenant == t)
            .map(|o| self.name(o.key.name))
            .collect();
        set.into_iter().collect()
    }
}

struct Builder {
    ids: HashMap<String, Name>,
    names: String,
    ends: Vec<u32>,
    defs: HashSet<Key>,
    out: Vec<Occurrence>,
}

impl Builder {
    fn intern(&mut self, text: &str) -> Name {
        if let Some(&n) = self.ids.get(text) {
            return n;
        }
        let n = Name(self.ends.len() as u32);
        self.names.push_str(text);
        // A file has at most 64 MiB, so its names fit in `u32` offsets.
        self.ends
            .push(u32::try_from(self.names.len()).unwrap_or(u32::MAX));
        self.ids.insert(text.to_string(), n);
        n
    }

    fn key(&mut self, kind: Kind, tenant: &str, name: &str) -> Key {
        Key {
            kind,
            tenant: self.intern(tenant),
            name: self.intern(name),
        }
    }

    fn push(&mut self, kind: Kind, tenant: &str, name: &str, span: Span, def: bool, flag: bool) {
        // A name lost to a syntax error is empty: nothing to point at.
        if name.is_empty() || span.is_empty() {
            return;
        }
        let key = self.key(kind, tenant, name);
        if def {
            self.defs.insert(key);
        }
        self.out.push(Occurrence {
            key,
            def,
            flag,
            span,
        });
    }

    fn def(&mut self, kind: Kind, tenant: &str, id: &ast::Ident, flag: bool) {
        self.push(kind, tenant, &id.text, id.span, true, flag);
    }

    fn definitions(&mut self, file: &ast::File) {
        for t in &file.tenants {
            let tn = t.name.text.as_str();
            self.def(Kind::Tenant, tn, &t.name, false);
            for item in &t.items {
                match item {
                    ast::Item::Filter(f) => self.def(Kind::Filter, tn, &f.name, false),
                    ast::Item::Contract(c) => self.def(Kind::Contract, tn, &c.name, c.global),
                    ast::Item::Group(g) => {
                        let external = g.kind == ast::GroupKind::External;
                        self.def(Kind::Group, tn, &g.name, external);
                        for e in &g.endpoints {
                            self.def(Kind::Endpoint, tn, &e.name, false);
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
                self.push(Kind::Tenant, &t.text, &t.text, t.span, false, false);
                t.text.as_str()
            }
            None => tenant,
        };
        self.push(kind, scope, &r.name.text, r.name.span, false, false);
    }

    fn is_def(&mut self, kind: Kind, tenant: &str, name: &str) -> bool {
        let key = self.key(kind, tenant, name);
        self.defs.contains(&key)
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
                            self.push(Kind::Group, tn, &parent.text, parent.span, false, false);
                        }
                        for r in g.provides.iter().chain(&g.consumes) {
                            self.reference(Kind::Contract, tn, r);
                        }
                    }
                    ast::Item::Any(a) => {
                        // The `any` keyword stands for the tenant's `any` group.
                        let kw = Span::new(a.span.start, a.span.start + "any".len());
                        self.push(Kind::Group, tn, "any", kw, false, false);
                        for r in a.provides.iter().chain(&a.consumes) {
                            self.reference(Kind::Contract, tn, r);
                        }
                    }
                    ast::Item::Assert(a) => {
                        for target in [&a.from, &a.to] {
                            if let ast::Target::Ref(r) = target {
                                // An endpoint, or (an error the checker reports) a group.
                                let scope = r.tenant.as_ref().map_or(tn, |t| t.text.as_str());
                                let name = r.name.text.as_str();
                                let kind = if !self.is_def(Kind::Endpoint, scope, name)
                                    && self.is_def(Kind::Group, scope, name)
                                {
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
                .map(|o| (o.key.kind, ix.name(o.key.tenant).to_string(), o.def))
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
        let web_contract = ix.key(Kind::Contract, "a", "web");
        assert_eq!(web_contract.map(|k| ix.occurrences(k).count()), Some(3));
        assert_eq!(ix.key(Kind::Contract, "a", "nowhere"), None);
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
