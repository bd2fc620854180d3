//! Answering: the pipeline of stages for one question and the verdict it
//! reaches, the answers' shapes, the response cache, the upstreams behind
//! it, and the record of each lookup. Knows nothing of the wire, but for
//! the bytes of answers given before, which `repeats` keeps and the codec
//! reads the TTLs of.

pub mod after_upstream;
pub mod answer;
pub mod cache;
pub mod check;
pub mod exchange;
pub mod forward;
pub mod pipeline;
pub mod rebinding;
pub mod recorder;
pub mod recursor;
pub mod repeats;
pub mod root_files;
pub mod settings;
pub mod share;
#[cfg(any(test, feature = "testkit"))]
pub mod table;
pub mod trusted_clock;
pub mod upstream;
pub mod validated;
pub mod validating;
pub mod validation_time;
pub mod verdict;
pub mod zones;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::clock::Clock;
use crate::config::{Config, DnssecMode, ResolverMode};
use crate::metrics::UpstreamStats;

use cache::CachePolicy;
use forward::Forwarder;
use recursor::Recursor;
use upstream::{CachedUpstream, UpstreamLimits, UpstreamTiming};
use validating::ValidatingForwarder;
use zones::ZoneRouter;

/// The TTL a stale answer is served with (RFC 8767 suggests 30 s).
const STALE_TTL_SECS: u32 = 30;

/// The upstream the config asks for, behind the response cache.
pub fn upstream_for(
    config: &Config,
    stats: Arc<UpstreamStats>,
    clock: &Clock,
) -> Result<CachedUpstream> {
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
    // The school's zones and local names are routed first in both modes.
    let upstreams: Box<dyn upstream::Upstream> = match resolver.mode {
        ResolverMode::Forward if resolver.dnssec_mode() == DnssecMode::Validate => {
            Box::new(ValidatingForwarder::new(config, clock, stats.clone())?)
        }
        ResolverMode::Forward => {
            // No signatures checked here: no clock warning either (one
            // left from recursion before a reload would be stale).
            stats
                .clock_untrusted
                .store(false, std::sync::atomic::Ordering::Relaxed);
            Box::new(Forwarder::new(config)?)
        }
        ResolverMode::Recursive => {
            if !config.upstream.is_empty() {
                tracing::info!(
                    "{}: [resolver] mode = \"recursive\": the [[upstream]] servers are not asked (set mode = \"forward\" to use them)",
                    config.origin.display_name
                );
            }
            Box::new(Recursor::new(config, clock, stats.clone())?)
        }
    };
    Ok(CachedUpstream::new(
        Box::new(ZoneRouter::new(config, upstreams)),
        limits,
        timing_for(config),
        stats,
    ))
}

/// The answer deadline and the serve-stale and failure-caching rules the
/// config's `[resolver]` asks for.
pub fn timing_for(config: &Config) -> UpstreamTiming {
    let resolver = &config.resolver;
    UpstreamTiming {
        answer_within: Duration::from_millis(resolver.answer_within_ms),
        stale_after: Duration::from_millis(resolver.stale_answer_after_ms),
        cache: CachePolicy {
            stale_window: Duration::from_secs(resolver.serve_stale_secs),
            stale_ttl: STALE_TTL_SECS,
            failure_ttl: resolver.failure_cache_secs,
            prefetch: resolver.prefetch,
        },
    }
}

#[cfg(test)]
mod tests;
