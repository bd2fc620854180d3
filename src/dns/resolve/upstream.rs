//! Where answers come from when the cache has none, behind one small
//! trait: the forwarder today, and anything else that answers a question
//! (the recursor, the school's local zones, a test's fixed records). In
//! front of it, shared by all: the response cache, the joining of a
//! question already on its way, the bound on lookups in flight and each
//! client's share of it, and the figures for `/metrics`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RecordType};

use crate::dns::protocol::EDE_OTHER;
use crate::metrics::{UpstreamHealth, UpstreamStats};

use super::answer::{ExtendedError, UpstreamAnswer};
use super::cache::{Lookup, ResponseCache};
use super::share::{ClientShares, Requester};

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
    /// Bounds those one client may hold.
    shares: ClientShares,
    cache: ResponseCache,
    stats: Arc<UpstreamStats>,
}

/// How much the cache and the lookups in flight may take.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamLimits {
    pub cache_bytes: usize,
    pub max_in_flight: usize,
    pub max_in_flight_per_client: usize,
}

/// Why a question was not asked upstream: it gets SERVFAIL at once, with
/// an Extended DNS Error saying which bound it met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// The asking client already has its share of lookups in flight.
    ClientShare,
    /// Every client together has `max_in_flight` lookups in flight.
    Everyone,
}

impl Busy {
    pub fn extended_error(self) -> ExtendedError {
        let text = match self {
            Busy::ClientShare => "Lollipop: too many lookups waiting from this device",
            Busy::Everyone => "Lollipop: too many lookups waiting upstream",
        };
        ExtendedError {
            code: EDE_OTHER,
            text: text.into(),
        }
    }
}

impl CachedUpstream {
    pub fn new(
        upstream: Box<dyn Upstream>,
        limits: UpstreamLimits,
        stats: Arc<UpstreamStats>,
    ) -> CachedUpstream {
        CachedUpstream {
            upstream,
            in_flight: tokio::sync::Semaphore::new(limits.max_in_flight.max(1)),
            shares: ClientShares::new(limits.max_in_flight_per_client),
            cache: ResponseCache::new(limits.cache_bytes, stats.clone()),
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

    /// Bytes the response cache holds now.
    pub fn cached_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// The answer for `name`/`record_type`: from the cache, from a lookup
    /// of the same question already in flight, or from the upstream if
    /// `requester` has a slot of its share left and the pool one to give.
    pub async fn resolve(
        &self,
        name: &Name,
        record_type: RecordType,
        requester: Requester<'_>,
    ) -> Result<Arc<UpstreamAnswer>, Busy> {
        let key = self.cache.key(name, record_type);
        match self.cache.lookup(key, name, record_type) {
            Lookup::Hit(answer) => Ok(answer),
            Lookup::Ask(asking) => {
                // Refused, `asking` is dropped unfinished: anyone who
                // joined meanwhile asks with a share of their own.
                let answer = self.ask(name, record_type, requester).await?;
                Ok(asking.finish(name, record_type, answer))
            }
            Lookup::Wait(mut answer) => {
                let shared = answer
                    .wait_for(Option::is_some)
                    .await
                    .ok()
                    .and_then(|answer| answer.clone());
                match shared {
                    Some(answer) => Ok(answer),
                    // The query that was asking gave up: ask ourselves.
                    None => self.ask(name, record_type, requester).await.map(Arc::new),
                }
            }
        }
    }

    /// One lookup at the upstream, timed for `/metrics`. The client's share
    /// is taken before the pool's slot, so a client over its share never
    /// holds a slot of the pool, not even for a moment.
    async fn ask(
        &self,
        name: &Name,
        record_type: RecordType,
        requester: Requester<'_>,
    ) -> Result<UpstreamAnswer, Busy> {
        let Some(_share) = self.shares.take(requester) else {
            self.stats.share_refused.fetch_add(1, Relaxed);
            tracing::debug!(%name, %record_type, client = %requester.address, "client over its share of upstream lookups: SERVFAIL");
            return Err(Busy::ClientShare);
        };
        let Ok(_slot) = self.in_flight.try_acquire() else {
            self.stats.pool_refused.fetch_add(1, Relaxed);
            tracing::debug!(%name, %record_type, "too many upstream lookups at once: SERVFAIL");
            return Err(Busy::Everyone);
        };
        let started = Instant::now();
        let answer = self.upstream.ask(name, record_type).await;
        self.stats.observe(started.elapsed());
        self.stats
            .note_outcome(answer.code == ResponseCode::ServFail);
        Ok(answer)
    }
}
