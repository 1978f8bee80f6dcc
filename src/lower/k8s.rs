//! Kubernetes backend (being written).
use super::LowerResult;
use crate::model::Policy;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Json,
    Yaml,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DenyMode {
    #[default]
    Error,
    Admin,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub format: Format,
    pub deny: DenyMode,
    pub allow_dns: bool,
}

pub fn lower(_p: &Policy, _o: &Options) -> LowerResult {
    Ok(Default::default())
}
