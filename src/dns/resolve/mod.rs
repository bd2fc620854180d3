//! Answering: the pipeline of stages for one question and the verdict it
//! reaches, the answers' shapes, the response cache, the upstreams behind
//! it, and the record of each lookup. Knows nothing of the wire.

pub mod answer;
pub mod cache;
pub mod check;
pub mod forward;
pub mod pipeline;
pub mod recorder;
pub mod settings;
pub mod upstream;
pub mod verdict;

use std::sync::Arc;

use anyhow::Result;

use crate::config::Config;
use crate::metrics::UpstreamStats;

use forward::Forwarder;
use upstream::CachedUpstream;

/// The upstream the config asks for, behind the response cache.
pub fn upstream_for(config: &Config, stats: Arc<UpstreamStats>) -> Result<CachedUpstream> {
    let cache_entries = usize::try_from(config.resolver.cache_entries).unwrap_or(usize::MAX);
    Ok(CachedUpstream::new(
        Box::new(Forwarder::new(config)?),
        cache_entries,
        config.resolver.max_in_flight,
        stats,
    ))
}

#[cfg(test)]
mod tests;
