//! A policy built from a test's config text as the service builds it: the
//! config's lists compiled into the test's own directory, the embedded
//! safe-search map. Shared by the unit tests that decide names.

use std::path::Path;
use std::sync::Arc;

use crate::config::{Config, ConfigOrigin};
use crate::lists::compile::compile;
use crate::lists::store::CompiledLists;

use super::Policy;
use super::safesearch::SafeSearchMap;

/// Parses `text`, compiles its lists into `dir` and builds the policy.
pub fn policy_from_config(text: &str, dir: &Path) -> Policy {
    let config = Config::parse(text, ConfigOrigin::default()).expect("config");
    let specs: Vec<_> = crate::lists::acquire::sources::configured(&config)
        .into_iter()
        .map(|source| source.spec)
        .collect();
    let out = dir.join("lists.lollipop");
    compile(&specs, &out).expect("compile");
    let lists = Arc::new(CompiledLists::open(&out).expect("open"));
    let safe_search = Arc::new(SafeSearchMap::embedded().expect("safe search map"));
    Policy::build(&config, lists, safe_search, &[]).expect("policy")
}
