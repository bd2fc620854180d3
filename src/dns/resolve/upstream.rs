//! Where answers come from when the cache has none, behind one small
//! trait: the forwarder today, and anything else that answers a question
//! (the recursor, the school's local zones, a test's fixed records). In
//! front of it, shared by all: the response cache, the joining of a
//! question already on its way, the bound on lookups in flight, and the
//! figures for `/metrics`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RecordType};

use crate::metrics::{UpstreamHealth, UpstreamStats};

use super::answer::UpstreamAnswer;
use super::cache::{Lookup, ResponseCache};

/// An answer on its way from an upstream.
pub type Asked<'a> = Pin<Box<dyn Future<Output = UpstreamAnswer> + Send + 'a>>;

/// A source of answers. It never fails: a failure is an answer too
/// (SERVFAIL), as a client expects.
pub trait Upstream: Send + Sync {
    fn ask<'a>(&'a self, name: &'a Name, record_type: RecordType) -> Asked<'a>;
}

/// An upstream behind the response cache.
pub struct CachedUpstream {
    upstream: Box<dyn Upstream>,
    /// Bounds the lookups waiting on the upstream at once.
    in_flight: tokio::sync::Semaphore,
    cache: ResponseCache,
    stats: Arc<UpstreamStats>,
}

impl CachedUpstream {
    pub fn new(
        upstream: Box<dyn Upstream>,
        cache_entries: usize,
        max_in_flight: usize,
        stats: Arc<UpstreamStats>,
    ) -> CachedUpstream {
        CachedUpstream {
            upstream,
            in_flight: tokio::sync::Semaphore::new(max_in_flight.max(1)),
            cache: ResponseCache::new(cache_entries, stats.clone()),
            stats,
        }
    }

    /// Whether the upstream is answering, for the status page.
    pub fn health(&self) -> UpstreamHealth {
        self.stats.health()
    }

    /// Answers held in the response cache now.
    pub fn cached_answers(&self) -> usize {
        self.cache.len()
    }

    /// The answer for `name`/`record_type`: from the cache, from a lookup
    /// of the same question already in flight, or from the upstream.
    pub async fn resolve(&self, name: &Name, record_type: RecordType) -> Arc<UpstreamAnswer> {
        let key = self.cache.key(name, record_type);
        match self.cache.lookup(key, name, record_type) {
            Lookup::Hit(answer) => answer,
            Lookup::Ask(asking) => {
                let answer = self.ask(name, record_type).await;
                asking.finish(name, record_type, answer)
            }
            Lookup::Wait(mut answer) => {
                let shared = answer
                    .wait_for(Option::is_some)
                    .await
                    .ok()
                    .and_then(|answer| answer.clone());
                match shared {
                    Some(answer) => answer,
                    // The query that was asking gave up: ask ourselves.
                    None => Arc::new(self.ask(name, record_type).await),
                }
            }
        }
    }

    /// One lookup at the upstream, timed for `/metrics`.
    async fn ask(&self, name: &Name, record_type: RecordType) -> UpstreamAnswer {
        let Ok(_slot) = self.in_flight.try_acquire() else {
            tracing::debug!(%name, %record_type, "too many upstream lookups at once: SERVFAIL");
            return UpstreamAnswer::servfail();
        };
        let started = Instant::now();
        let answer = self.upstream.ask(name, record_type).await;
        self.stats.observe(started.elapsed());
        self.stats
            .note_outcome(answer.code == ResponseCode::ServFail);
        answer
    }
}
