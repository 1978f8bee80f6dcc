//! Reading gbpc's YAML output back as a YAML 1.1 reader does (kubectl reads YAML 1.1: `on`,
//! `yes`, `y` are booleans, `010` is octal), keys included: each document becomes the JSON
//! value a Kubernetes client would send, or an error when a key would not be a string. The
//! tests (`tests/k8s.rs`) and the fuzz targets (`fuzz/src/lib.rs` includes this file) compare
//! it with the JSON output.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A YAML node with its scalars typed by the reader, mapping keys too.
enum Node {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML node")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        i128::try_from(v)
            .map(Node::Int)
            .map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
        let mut v = Vec::new();
        while let Some(n) = a.next_element()? {
            v.push(n);
        }
        Ok(Node::Seq(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
        let mut v = Vec::new();
        while let Some(kv) = a.next_entry()? {
            v.push(kv);
        }
        Ok(Node::Map(v))
    }
}

fn to_json(n: Node, path: &str) -> Result<Value, String> {
    Ok(match n {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(b),
        Node::Int(i) => match (u64::try_from(i), i64::try_from(i)) {
            (Ok(u), _) => Value::from(u),
            (_, Ok(s)) => Value::from(s),
            _ => return Err(format!("{path}: integer {i} out of range")),
        },
        Node::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(format!("<non-finite {f}>"))),
        Node::Str(s) => Value::String(s),
        Node::Seq(v) => Value::Array(
            v.into_iter()
                .enumerate()
                .map(|(i, n)| to_json(n, &format!("{path}/{i}")))
                .collect::<Result<_, _>>()?,
        ),
        Node::Map(kvs) => {
            let mut m = serde_json::Map::new();
            for (k, v) in kvs {
                let key = match k {
                    Node::Str(s) => s,
                    Node::Null => return Err(format!("{path}: a key reads as null")),
                    Node::Bool(b) => return Err(format!("{path}: a key reads as the boolean {b}")),
                    Node::Int(i) => return Err(format!("{path}: a key reads as the integer {i}")),
                    Node::Float(f) => return Err(format!("{path}: a key reads as the number {f}")),
                    Node::Seq(_) | Node::Map(_) => {
                        return Err(format!("{path}: a key is not a scalar"));
                    }
                };
                let value = to_json(v, &format!("{path}/{key}"))?;
                if m.insert(key.clone(), value).is_some() {
                    return Err(format!("{path}: key `{key}` twice"));
                }
            }
            Value::Object(m)
        }
    })
}

/// The documents of a YAML stream as JSON values, scalars typed by YAML 1.1 rules (keys too);
/// an error for an unreadable stream or a key that does not read as a string.
pub fn read_documents(yaml: &str) -> Result<Vec<Value>, String> {
    let options = serde_saphyr::options! {
        legacy_octal_numbers: true,
    };
    let docs: Vec<Node> =
        serde_saphyr::from_multiple_with_options(yaml, options).map_err(|e| e.to_string())?;
    docs.into_iter()
        .enumerate()
        .map(|(i, d)| to_json(d, &format!("document {i}")))
        .collect()
}
