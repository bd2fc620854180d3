//! A policy built from a test's config text as the service builds it: the
//! config's lists compiled into the test's own directory, the embedded
//! safe-search map. Shared by the unit tests that decide names, and the
//! compiled lists alone by those that build settings of their own.

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
    let lists = compiled_lists(&config, dir);
    let safe_search = Arc::new(SafeSearchMap::embedded().expect("safe search map"));
    Policy::build(&config, lists, safe_search, &[]).expect("policy")
}

/// The lists `config` names, compiled into `dir` and opened.
pub fn compiled_lists(config: &Config, dir: &Path) -> Arc<CompiledLists> {
    let specs: Vec<_> = crate::lists::acquire::sources::configured(config)
        .into_iter()
        .map(|source| source.spec)
        .collect();
    let out = dir.join("lists.lollipop");
    compile(&specs, &out).expect("compile");
    Arc::new(CompiledLists::open(&out).expect("open"))
}
