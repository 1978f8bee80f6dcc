//! nftables backend (being written).
use super::LowerResult;
use crate::model::Policy;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Enforce { #[default] Fabric, Endpoint }

#[derive(Clone, Debug)]
pub struct Options { pub table: String, pub enforce: Enforce }

impl Default for Options {
    fn default() -> Self { Options { table: "gbpc".into(), enforce: Enforce::Fabric } }
}

pub fn lower(_p: &Policy, _o: &Options) -> LowerResult { Ok(Default::default()) }
