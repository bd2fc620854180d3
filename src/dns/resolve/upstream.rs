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
use std::time::{Duration, Instant};

use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RecordType};
use tokio::time::timeout;

use crate::dns::protocol::{EDE_NO_REACHABLE_AUTHORITY, EDE_OTHER};
use crate::metrics::{UpstreamHealth, UpstreamStats};

use super::answer::{ExtendedError, UpstreamAnswer};
use super::cache::{AnswerSoon, Asking, Begin, CachePolicy, Lease, Lookup, ResponseCache};
use super::share::{ClientShares, Requester};

/// An answer on its way from an upstream.
pub type Asked<'a> = Pin<Box<dyn Future<Output = UpstreamAnswer> + Send + 'a>>;

/// A source of answers. It never fails: a failure is an answer too
/// (SERVFAIL), as a client expects.
pub trait Upstream: Send + Sync + 'static {
    fn ask<'a>(&'a self, name: &'a Name, record_type: RecordType) -> Asked<'a>;
}

/// An upstream behind the response cache.
pub struct CachedUpstream {
    upstream: Arc<dyn Upstream>,
    /// Bounds the lookups waiting on the upstream at once.
    in_flight: Arc<tokio::sync::Semaphore>,
    /// Bounds those one client may hold.
    shares: ClientShares,
    cache: Arc<ResponseCache>,
    timing: UpstreamTiming,
    stats: Arc<UpstreamStats>,
}

/// How much the cache and the lookups in flight may take.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamLimits {
    pub cache_bytes: usize,
    pub max_in_flight: usize,
    pub max_in_flight_per_client: usize,
}

/// How long a client waits, and what it gets when the upstreams are slow.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamTiming {
    /// Every query is answered within this, whatever the upstreams do (a
    /// stub resolver commonly gives up at 5 s).
    pub answer_within: Duration,
    /// With a stale answer held, the upstream's is waited for this long
    /// before the stale one is served (RFC 8767's client response timer).
    pub stale_after: Duration,
    pub cache: CachePolicy,
}

impl Default for UpstreamTiming {
    fn default() -> Self {
        UpstreamTiming {
            answer_within: Duration::from_millis(4000),
            stale_after: Duration::from_millis(1800),
            cache: CachePolicy::default(),
        }
    }
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
        timing: UpstreamTiming,
        stats: Arc<UpstreamStats>,
    ) -> CachedUpstream {
        CachedUpstream {
            upstream: Arc::from(upstream),
            in_flight: Arc::new(tokio::sync::Semaphore::new(limits.max_in_flight.max(1))),
            shares: ClientShares::new(limits.max_in_flight_per_client),
            cache: Arc::new(ResponseCache::new(
                limits.cache_bytes,
                timing.cache,
                stats.clone(),
            )),
            timing,
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

    /// The most the response cache may hold, in bytes.
    pub fn cache_budget(&self) -> usize {
        self.cache.budget()
    }

    /// Bytes the response cache holds now.
    pub fn cached_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// The answer for `name`/`record_type` if the cache holds a live one
    /// (a popular one about to run out is refreshed in the background),
    /// with how long it may be given again as it is; None when the answer
    /// must wait, with nothing counted or begun, so
    /// [`CachedUpstream::resolve`] follows as if this had not been asked.
    pub fn resolve_at_once(
        self: &Arc<Self>,
        name: &Name,
        record_type: RecordType,
    ) -> Option<(Arc<UpstreamAnswer>, Lease)> {
        let key = self.cache.key(name, record_type);
        match self.cache.peek(key, name, record_type)? {
            (Lookup::HitRefresh(answer), lease) => {
                self.refresh_in_background(name, record_type, self.cache.begin(key));
                Some((answer, lease))
            }
            (Lookup::Hit(answer), lease) => Some((answer, lease)),
            (Lookup::Stale { .. } | Lookup::Wait(_) | Lookup::Ask(_), _) => None,
        }
    }

    /// Counts a cache hit for an answer given again from its bytes under
    /// a [`Lease`], as the cache would have counted it.
    pub fn count_repeated_hit(&self) {
        self.cache.count_repeated_hit();
    }

    /// The answer for `name`/`record_type`, always within `answer_within`:
    /// from the cache, from a lookup of the same question already in
    /// flight, from the upstream if `requester` has a slot of its share
    /// left and the pool one to give, or, when the upstream is slow or
    /// failing, the stale answer the cache still holds.
    pub async fn resolve(
        self: &Arc<Self>,
        name: &Name,
        record_type: RecordType,
        requester: Requester<'_>,
    ) -> Result<Arc<UpstreamAnswer>, Busy> {
        let key = self.cache.key(name, record_type);
        match self.cache.lookup(key, name, record_type) {
            Lookup::Hit(answer) => Ok(answer),
            Lookup::HitRefresh(answer) => {
                self.refresh_in_background(name, record_type, self.cache.begin(key));
                Ok(answer)
            }
            Lookup::Stale { answer, refresh } => {
                if refresh
                    && let Some(soon) =
                        self.refresh_in_background(name, record_type, self.cache.begin(key))
                    && let Some(fresh) = first_answer(soon, self.timing.stale_after).await
                    && fresh.code != ResponseCode::ServFail
                {
                    return Ok(fresh);
                }
                self.stats.stale_served.fetch_add(1, Relaxed);
                Ok(answer)
            }
            Lookup::Ask(asking) => {
                // The asking is not part of what times out: a lookup cut
                // short still leaves its failure for those who joined it.
                let answer = match timeout(
                    self.timing.answer_within,
                    self.ask(name, record_type, requester),
                )
                .await
                {
                    Ok(answer) => answer?,
                    Err(_) => self.too_slow(),
                };
                Ok(asking.finish(name, record_type, answer))
            }
            Lookup::Wait(soon) => {
                let started = Instant::now();
                match first_answer(soon, self.timing.answer_within).await {
                    Some(answer) => Ok(answer),
                    // The query that was asking gave up: ask ourselves,
                    // within what is left of this query's own deadline.
                    None => {
                        let left = self.timing.answer_within.saturating_sub(started.elapsed());
                        match timeout(left, self.ask(name, record_type, requester)).await {
                            Ok(answer) => answer.map(Arc::new),
                            Err(_) => Ok(Arc::new(self.too_slow())),
                        }
                    }
                }
            }
        }
    }

    /// Starts a lookup that goes on after the query that started it is
    /// answered, and keeps its answer in the cache; where to watch for it.
    /// None when the lookup pool is full (the stale answer is served).
    fn refresh_in_background(
        self: &Arc<Self>,
        name: &Name,
        record_type: RecordType,
        begin: Begin,
    ) -> Option<AnswerSoon> {
        let asking: Asking = match begin {
            Begin::Wait(soon) => return Some(soon),
            Begin::Ask(asking) => asking,
        };
        let Ok(slot) = self.in_flight.clone().try_acquire_owned() else {
            self.stats.pool_refused.fetch_add(1, Relaxed);
            return None;
        };
        let soon = asking.subscribe();
        self.stats.refreshes.fetch_add(1, Relaxed);
        let this = self.clone();
        let name = name.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let started = Instant::now();
            let answer = match timeout(
                this.timing.answer_within,
                this.upstream.ask(&name, record_type),
            )
            .await
            {
                Ok(answer) => {
                    this.stats
                        .note_outcome(answer.code == ResponseCode::ServFail);
                    answer
                }
                // `too_slow` counts the failure itself.
                Err(_) => this.too_slow(),
            };
            this.stats.observe(started.elapsed());
            asking.finish(&name, record_type, answer);
        });
        Some(soon)
    }

    /// The SERVFAIL for a lookup that reached the `answer_within` ceiling.
    fn too_slow(&self) -> UpstreamAnswer {
        self.stats.note_outcome(true);
        let mut answer = UpstreamAnswer::servfail();
        answer.extended_error = Some(ExtendedError {
            code: EDE_NO_REACHABLE_AUTHORITY,
            text: format!(
                "Lollipop: no upstream server answered within {:.1} s",
                self.timing.answer_within.as_secs_f32()
            )
            .into(),
        });
        answer
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

/// The answer that comes on `soon` within `wait`; None if none does, or
/// the lookup was dropped unfinished.
async fn first_answer(mut soon: AnswerSoon, wait: Duration) -> Option<Arc<UpstreamAnswer>> {
    timeout(wait, soon.wait_for(Option::is_some))
        .await
        .ok()?
        .ok()
        .and_then(|answer| answer.clone())
}
