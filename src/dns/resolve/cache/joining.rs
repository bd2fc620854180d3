//! Questions on their way upstream: the first query to miss the cache asks,
//! and every other query for the same question meanwhile waits for that
//! answer instead of asking again. The right to ask is an [`Asking`], owned
//! (not borrowed), so a refresh can go on in the background after the
//! query that started it has been answered.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, PoisonError};

use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RecordType};
use tokio::sync::watch;

use super::super::answer::UpstreamAnswer;
use super::{Cached, Lease, QuestionKey, ResponseCache, cacheable_ttl, now};

/// Where a question on its way upstream will have its answer.
pub type AnswerSoon = watch::Receiver<Option<Arc<UpstreamAnswer>>>;

/// What a caller of [`ResponseCache::lookup`] should do.
pub enum Lookup {
    Hit(Arc<UpstreamAnswer>),
    /// A hit that is popular and about to run out: answer with it, and
    /// refresh it in the background.
    HitRefresh(Arc<UpstreamAnswer>),
    /// Only a stale answer is held: refresh it if `refresh`, and serve it
    /// if the refresh does not come in time.
    Stale {
        answer: Arc<UpstreamAnswer>,
        refresh: bool,
    },
    /// Another query is asking upstream: wait for its answer.
    Wait(AnswerSoon),
    /// Ask upstream, then hand the answer to [`Asking::finish`].
    Ask(Asking),
}

/// Who asks upstream for a question.
pub enum Begin {
    Ask(Asking),
    Wait(AnswerSoon),
}

/// The right, and duty, to ask upstream for one question; dropping it
/// unfinished (a cancelled query) lets the waiting queries ask themselves.
pub struct Asking {
    cache: Arc<ResponseCache>,
    key: QuestionKey,
    sender: watch::Sender<Option<Arc<UpstreamAnswer>>>,
}

impl Drop for Asking {
    fn drop(&mut self) {
        self.cache
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

impl ResponseCache {
    /// The cached answer, or what to do instead.
    pub fn lookup(
        self: &Arc<Self>,
        key: QuestionKey,
        name: &Name,
        record_type: RecordType,
    ) -> Lookup {
        match self.get(key, name, record_type, now()) {
            Cached::Fresh { answer, refresh } => return self.hit(answer, refresh),
            Cached::Stale { answer, refresh } => {
                self.stats.cache_misses.fetch_add(1, Relaxed);
                return Lookup::Stale { answer, refresh };
            }
            Cached::Missing => {}
        }
        self.stats.cache_misses.fetch_add(1, Relaxed);
        match self.begin(key) {
            Begin::Ask(asking) => Lookup::Ask(asking),
            Begin::Wait(soon) => {
                self.stats.coalesced.fetch_add(1, Relaxed);
                Lookup::Wait(soon)
            }
        }
    }

    /// The cached answer if a live one is held ([`Lookup::Hit`] or
    /// [`Lookup::HitRefresh`], counted as a hit), with its [`Lease`]; else
    /// None, with nothing counted, begun or changed, so that
    /// [`ResponseCache::lookup`] can follow as if this had not looked.
    pub fn peek(
        &self,
        key: QuestionKey,
        name: &Name,
        record_type: RecordType,
    ) -> Option<(Lookup, Lease)> {
        let (answer, refresh, lease) = self.get_fresh(key, name, record_type, now())?;
        Some((self.hit(answer, refresh), lease))
    }

    /// Counts a hit that the stage answering repeated questions gave from
    /// an answer this cache leased it, as the hit it stands for.
    pub fn count_repeated_hit(&self) {
        self.stats.cache_hits.fetch_add(1, Relaxed);
    }

    /// A live answer served, counted as a hit.
    fn hit(&self, answer: Arc<UpstreamAnswer>, refresh: bool) -> Lookup {
        self.stats.cache_hits.fetch_add(1, Relaxed);
        if refresh {
            Lookup::HitRefresh(answer)
        } else {
            Lookup::Hit(answer)
        }
    }

    /// Asks for the question unless a lookup of it is already on its way.
    pub fn begin(self: &Arc<Self>, key: QuestionKey) -> Begin {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(receiver) = in_flight.get(&key) {
            return Begin::Wait(receiver.clone());
        }
        let (sender, receiver) = watch::channel(None);
        in_flight.insert(key, receiver);
        Begin::Ask(Asking {
            cache: self.clone(),
            key,
            sender,
        })
    }
}

impl Asking {
    /// Where the answer will come, for a caller that hands this on.
    pub fn subscribe(&self) -> AnswerSoon {
        self.sender.subscribe()
    }

    /// Keeps `answer` as the cache's rules say and hands it to every query
    /// that waited for it.
    pub fn finish(
        self,
        name: &Name,
        record_type: RecordType,
        answer: UpstreamAnswer,
    ) -> Arc<UpstreamAnswer> {
        let answer = Arc::new(answer);
        if answer.code == ResponseCode::ServFail {
            self.cache
                .failed(self.key, name, record_type, answer.clone());
        } else if let Some(ttl) = cacheable_ttl(&answer) {
            self.cache
                .insert(self.key, name, record_type, answer.clone(), ttl, true);
        }
        self.sender.send_replace(Some(answer.clone()));
        answer
    }
}
