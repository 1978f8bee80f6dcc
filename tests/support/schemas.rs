//! The strict Kubernetes schemas of `schemas/` (draft 7): one loader for the tests
//! (`crate::support::schemas`) and the fuzz targets (`fuzz/src/lib.rs` includes this file).

use std::path::Path;

/// A schema compiled as every schema of the repository is: draft 7.
pub fn compile(schema: &serde_json::Value) -> jsonschema::Validator {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .build(schema)
        .expect("schema compiles")
}

/// `dir/file`, read and compiled.
pub fn load(dir: &Path, file: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(dir.join(file)).expect("schema file");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema JSON");
    compile(&schema)
}

/// A validator for every kind gbpc emits, and the name rules that hold for all of them.
pub struct Schemas {
    pub np: jsonschema::Validator,
    pub anp: jsonschema::Validator,
    pub cnp: jsonschema::Validator,
    /// Names and labels, for every kind (what the API server checks beyond OpenAPI:
    /// `schemas/k8s-names.json`).
    pub names: jsonschema::Validator,
}

impl Schemas {
    /// The schemas in `dir` (the repository's `schemas/`).
    pub fn load(dir: &Path) -> Schemas {
        Schemas {
            np: load(dir, "networkpolicy-networking-v1.json"),
            anp: load(dir, "adminnetworkpolicy-policy-v1alpha1.json"),
            cnp: load(dir, "clusternetworkpolicy-policy-v1alpha2.json"),
            names: load(dir, "k8s-names.json"),
        }
    }

    /// The schema of an object of kind `kind`, if gbpc emits that kind.
    pub fn of_kind(&self, kind: &str) -> Option<&jsonschema::Validator> {
        match kind {
            "NetworkPolicy" => Some(&self.np),
            "AdminNetworkPolicy" => Some(&self.anp),
            "ClusterNetworkPolicy" => Some(&self.cnp),
            _ => None,
        }
    }
}
