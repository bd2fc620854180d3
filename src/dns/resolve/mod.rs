//! Answering: the pipeline of stages for one question and the verdict it
//! reaches, the answers' shapes, the response cache, the upstreams behind
//! it, and the record of each lookup. Knows nothing of the wire.

pub mod answer;
pub mod cache;
pub mod check;
pub mod forward;
pub mod pipeline;
pub mod rebinding;
pub mod recorder;
pub mod settings;
pub mod share;
#[cfg(any(test, feature = "testkit"))]
pub mod table;
pub mod upstream;
pub mod verdict;

use std::sync::Arc;

use anyhow::Result;

use crate::config::Config;
use crate::metrics::UpstreamStats;

use forward::Forwarder;
use upstream::{CachedUpstream, UpstreamLimits};

/// The upstream the config asks for, behind the response cache.
pub fn upstream_for(config: &Config, stats: Arc<UpstreamStats>) -> Result<CachedUpstream> {
    let resolver = &config.resolver;
    if resolver.cache_mb.is_none()
        && let Some(entries) = &resolver.cache_entries
    {
        tracing::warn!(
            "{}: [resolver] cache_entries = {} is replaced by cache_mb; it is taken as cache_mb = {} (write that instead)",
            config.origin.display_name,
            entries.get_ref(),
            resolver.cache_bytes() >> 20
        );
    }
    let limits = UpstreamLimits {
        cache_bytes: resolver.cache_bytes(),
        max_in_flight: resolver.max_in_flight,
        max_in_flight_per_client: resolver.per_client_share(),
    };
    Ok(CachedUpstream::new(
        Box::new(Forwarder::new(config)?),
        limits,
        stats,
    ))
}

#[cfg(test)]
mod tests;
