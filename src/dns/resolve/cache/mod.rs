//! The response cache in front of the upstreams: answers kept for their TTL
//! and shared, not copied, with every query they serve. The cache is
//! bounded in bytes, each answer counted at what it really costs, so a
//! flood of large answers cannot take more memory than a flood of small.
//! Past its TTL an answer is kept a while longer to be served stale when
//! the upstreams do not answer (RFC 8767); a failure is kept for a few
//! seconds (RFC 9520), so a dead name is not asked again at every query;
//! a popular answer close to its end is marked for a refresh before it
//! runs out. Joining questions already on their way upstream is `joining`'s.
//!
//! A hit costs one hash, one short lock of one shard and an `Arc` clone.
//! The hash is foldhash's, seeded per process: several times faster than
//! the standard SipHash on short names, and still not predictable from
//! outside. TTLs count down: once a second at most, an entry's records are
//! rewritten with the time left, so a client never caches an answer longer
//! than the upstream allowed.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

use foldhash::fast::RandomState;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::dns::protocol::EDE_STALE_ANSWER;
use crate::metrics::UpstreamStats;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::proto::serialize::binary::BinEncodable;

use super::answer::{ExtendedError, UpstreamAnswer, WireRecords};

mod joining;
mod lease;
pub use joining::{AnswerSoon, Asking, Begin, Lookup};
#[cfg(test)]
pub use lease::hold_time;
pub use lease::{KeptLease, Lease, now};

/// Shards, so queries on different cores rarely wait on the same lock.
const SHARDS: usize = 16;
/// Answers are kept at most this long, whatever their TTL says.
const MAX_TTL_SECS: u32 = 86_400;
/// A negative answer without an SOA to say how long it holds.
const DEFAULT_NEGATIVE_TTL_SECS: u32 = 60;
/// After a stale answer's refresh failed, it is not tried again for this
/// long (RFC 8767's failure recheck timer).
const STALE_RECHECK_SECS: u64 = 30;
/// Answers with a shorter TTL are not refreshed early: they churn anyway.
const PREFETCH_MIN_TTL_SECS: u32 = 10;
/// An answer asked this many times in its TTL counts as popular.
const PREFETCH_MIN_HITS: u32 = 3;

/// How long answers outlive their TTL, and what becomes of failures.
#[derive(Debug, Clone, Copy)]
pub struct CachePolicy {
    /// How long past its TTL an answer may still be served stale (zero: never).
    pub stale_window: Duration,
    /// The TTL a stale answer is given (RFC 8767 suggests 30 s).
    pub stale_ttl: u32,
    /// How long a failure (SERVFAIL) is kept (RFC 9520; zero: not kept).
    pub failure_ttl: u32,
    /// Whether popular answers are refreshed before they run out.
    pub prefetch: bool,
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy {
            stale_window: Duration::from_secs(86_400),
            stale_ttl: 30,
            failure_ttl: 5,
            prefetch: true,
        }
    }
}

/// What the cache holds for a question.
pub enum Cached {
    /// A live answer; `refresh` when it is popular and about to run out.
    Fresh {
        answer: Arc<UpstreamAnswer>,
        refresh: bool,
    },
    /// Past its TTL but still servable; `refresh` unless a refresh failed
    /// in the last [`STALE_RECHECK_SECS`].
    Stale {
        answer: Arc<UpstreamAnswer>,
        refresh: bool,
    },
    Missing,
}

/// A question, hashed once per query; the name and type are kept to tell
/// apart the (vanishingly rare) questions whose hashes collide.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuestionKey(u64);

struct Entry {
    name: Name,
    record_type: RecordType,
    stored: Instant,
    expires: Instant,
    /// Until when it may be served stale: `expires` for a failure.
    stale_until: Instant,
    /// A refresh failed: the stale answer is served without asking until then.
    recheck_after: Option<Instant>,
    /// The TTL it came with, and how often it was asked for since.
    original_ttl: u32,
    hits: u32,
    /// A refresh was asked for already.
    refreshing: bool,
    /// The stale form (TTLs at the stale TTL, EDE 3), made on first use.
    stale: Option<Arc<UpstreamAnswer>>,
    /// The answer with its TTLs counted down by `age_secs` (one copy: the
    /// countdown goes on from it, so the original need not be kept).
    current: Arc<UpstreamAnswer>,
    age_secs: u32,
    /// What the entry costs, from [`entry_bytes`].
    bytes: usize,
    /// Dropped with the entry: the [`Lease`]s it gave end with it. Holds
    /// the hits given under them, not yet in `hits`.
    life: Arc<AtomicU32>,
}

/// One shard's answers and the bytes they cost together. Entries are
/// boxed: the table keeps up to half its slots empty after it grows, and
/// an empty slot costs the slot's size, 16 bytes rather than an entry's
/// ~200 (about 2 MB less for 20,000 answers).
#[derive(Default)]
struct Shard {
    map: HashMap<QuestionKey, Box<Entry>, RandomState>,
    bytes: usize,
}

impl Shard {
    fn remove(&mut self, key: &QuestionKey) {
        if let Some(entry) = self.map.remove(key) {
            self.bytes -= entry.bytes;
        }
    }
}

/// What every entry costs besides its name and records: its slot in the
/// table, counted twice since the table keeps up to half its slots empty
/// after it grows, and the boxed entry it points to, rounded up to the
/// allocator's next size class (32 bytes apart at this size); the answer
/// behind its `Arc` with the counts; the header of the wire copy the codec
/// adds.
const ENTRY_OVERHEAD: usize = 2 * (size_of::<(QuestionKey, Box<Entry>)>() + 1)
    + size_of::<Entry>().next_multiple_of(32)
    + size_of::<UpstreamAnswer>()
    + 2 * size_of::<usize>()
    + size_of::<WireRecords>()
    // The entry's life (two counts and its hits).
    + 2 * size_of::<usize>() + size_of::<u64>();

/// What an answer for `name` costs in the cache: [`ENTRY_OVERHEAD`], the
/// name, and each record's struct plus twice its wire length (once for the
/// decoded names and data on the heap, once for the codec's wire copy),
/// the unvalidated data kept for CD clients counted the same way.
fn entry_bytes(name: &Name, answer: &UpstreamAnswer) -> usize {
    let records = |answer: &UpstreamAnswer| -> usize {
        answer
            .answers
            .iter()
            .chain(&answer.authorities)
            .map(|record| size_of::<Record>() + 2 * wire_len(record))
            .sum()
    };
    let unchecked = answer.unchecked.as_deref().map_or(0, |unchecked| {
        size_of::<UpstreamAnswer>() + records(unchecked)
    });
    ENTRY_OVERHEAD + name.len() + records(answer) + unchecked
}

/// A record's length on the wire, uncompressed.
fn wire_len(record: &Record) -> usize {
    // A record that does not encode will not be sent either; count it at
    // the largest a UDP answer may be rather than not at all.
    record
        .to_bytes()
        .map_or(usize::from(u16::MAX), |bytes| bytes.len())
}

pub struct ResponseCache {
    shards: Vec<Mutex<Shard>>,
    bytes_per_shard: usize,
    hasher: RandomState,
    policy: CachePolicy,
    /// Questions being asked upstream now, with the channel their answer comes on.
    in_flight: Mutex<HashMap<QuestionKey, AnswerSoon, RandomState>>,
    stats: Arc<UpstreamStats>,
}

impl ResponseCache {
    /// A cache of at most `budget_bytes` of answers.
    pub fn new(
        budget_bytes: usize,
        policy: CachePolicy,
        stats: Arc<UpstreamStats>,
    ) -> ResponseCache {
        ResponseCache {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            bytes_per_shard: budget_bytes.div_ceil(SHARDS).max(1),
            hasher: RandomState::default(),
            policy,
            in_flight: Mutex::new(HashMap::with_hasher(RandomState::default())),
            stats,
        }
    }

    pub fn key(&self, name: &Name, record_type: RecordType) -> QuestionKey {
        let mut hasher = self.hasher.build_hasher();
        // Name hashes case-insensitively, as DNS compares names.
        name.hash(&mut hasher);
        u16::from(record_type).hash(&mut hasher);
        QuestionKey(hasher.finish())
    }

    fn shard(&self, key: QuestionKey) -> &Mutex<Shard> {
        &self.shards[(key.0 as usize) % SHARDS]
    }

    /// What the cache holds for the question at `now`.
    fn get(&self, key: QuestionKey, name: &Name, record_type: RecordType, now: Instant) -> Cached {
        let mut shard = self
            .shard(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = shard.map.get_mut(&key) else {
            return Cached::Missing;
        };
        if entry.record_type != record_type || entry.name != *name {
            return Cached::Missing;
        }
        if now >= entry.stale_until {
            shard.remove(&key);
            return Cached::Missing;
        }
        if now >= entry.expires {
            let answer = entry
                .stale
                .get_or_insert_with(|| Arc::new(stale_form(&entry.current, self.policy.stale_ttl)))
                .clone();
            let refresh = entry.recheck_after.is_none_or(|after| now >= after);
            if refresh {
                // One refresh at a time: the next is due after the recheck time.
                entry.recheck_after = Some(now + Duration::from_secs(STALE_RECHECK_SECS));
            }
            return Cached::Stale { answer, refresh };
        }
        let (answer, refresh, _) = self.serve_fresh(entry, now);
        Cached::Fresh { answer, refresh }
    }

    /// The live answer for the question at `now`, if one is held, whether
    /// to refresh it, and its lease; a miss or a stale answer is left
    /// exactly as it was, for [`ResponseCache::get`].
    fn get_fresh(
        &self,
        key: QuestionKey,
        name: &Name,
        record_type: RecordType,
        now: Instant,
    ) -> Option<(Arc<UpstreamAnswer>, bool, Lease)> {
        let mut shard = self
            .shard(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = shard.map.get_mut(&key)?;
        if entry.record_type != record_type || entry.name != *name || now >= entry.expires {
            return None;
        }
        Some(self.serve_fresh(entry, now))
    }

    /// A live `entry` served at `now`: its TTLs counted down, its hit
    /// counted, whether it is due for a refresh (marked as asked), and
    /// how long the answer given may be given again ([`Lease`]).
    fn serve_fresh(&self, entry: &mut Entry, now: Instant) -> (Arc<UpstreamAnswer>, bool, Lease) {
        let age = u32::try_from(now.duration_since(entry.stored).as_secs()).unwrap_or(u32::MAX);
        if age > entry.age_secs {
            entry.current = Arc::new(counted_down(&entry.current, age - entry.age_secs));
            entry.age_secs = age;
        }
        let leased_hits = entry.life.swap(0, Relaxed);
        entry.hits = entry.hits.saturating_add(1).saturating_add(leased_hits);
        let left = entry.original_ttl.saturating_sub(age);
        let refresh = self.policy.prefetch
            && !entry.refreshing
            && entry.original_ttl >= PREFETCH_MIN_TTL_SECS
            && entry.hits >= PREFETCH_MIN_HITS
            && left.saturating_mul(10) <= entry.original_ttl;
        if refresh {
            entry.refreshing = true;
        }
        // A popular answer is refreshed once no more than a tenth of its
        // TTL is left; from then on every query must reach the entry.
        let until = if self.policy.prefetch && entry.original_ttl >= PREFETCH_MIN_TTL_SECS {
            let window = entry.original_ttl - entry.original_ttl / 10;
            entry
                .expires
                .min(entry.stored + Duration::from_secs(u64::from(window)))
        } else {
            entry.expires
        };
        let lease = Lease {
            alive: Arc::downgrade(&entry.life),
            stored: entry.stored,
            age_secs: entry.age_secs,
            until,
        };
        (entry.current.clone(), refresh, lease)
    }

    /// A failed lookup: a stale answer is kept (and not refreshed again for
    /// a while); otherwise the failure itself is kept for the failure TTL.
    fn failed(
        &self,
        key: QuestionKey,
        name: &Name,
        record_type: RecordType,
        failure: Arc<UpstreamAnswer>,
    ) {
        let now = now();
        {
            let mut shard = self
                .shard(key)
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = shard.map.get_mut(&key)
                && entry.record_type == record_type
                && entry.name == *name
                && entry.stale_until > entry.expires
                && now < entry.stale_until
            {
                entry.recheck_after = Some(now + Duration::from_secs(STALE_RECHECK_SECS));
                return;
            }
        }
        if self.policy.failure_ttl > 0 {
            self.stats.failures_cached.fetch_add(1, Relaxed);
            self.insert(
                key,
                name,
                record_type,
                failure,
                self.policy.failure_ttl,
                false,
            );
        }
    }

    fn insert(
        &self,
        key: QuestionKey,
        name: &Name,
        record_type: RecordType,
        answer: Arc<UpstreamAnswer>,
        ttl: u32,
        may_go_stale: bool,
    ) {
        let bytes = entry_bytes(name, &answer);
        if bytes > self.bytes_per_shard {
            // Larger than a shard may hold: not kept rather than emptying
            // the shard for it.
            return;
        }
        let now = now();
        let mut shard = self
            .shard(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        shard.remove(&key);
        if shard.bytes + bytes > self.bytes_per_shard {
            let Shard { map, bytes: held } = &mut *shard;
            // Room is made from what is past serving first, then from
            // what is only servable stale, then from anything.
            map.retain(|_, entry| {
                let keep = entry.stale_until > now;
                if !keep {
                    *held -= entry.bytes;
                }
                keep
            });
            if *held + bytes > self.bytes_per_shard {
                map.retain(|_, entry| {
                    let keep = entry.expires > now;
                    if !keep {
                        *held -= entry.bytes;
                    }
                    keep
                });
            }
            // Still full of live answers: make room by dropping some; the
            // hash spreads the choice.
            while shard.bytes + bytes > self.bytes_per_shard {
                let Some(victim) = shard.map.keys().next().copied() else {
                    break;
                };
                shard.remove(&victim);
            }
        }
        shard.bytes += bytes;
        let expires = now + Duration::from_secs(u64::from(ttl));
        shard.map.insert(
            key,
            Box::new(Entry {
                name: name.clone(),
                record_type,
                stored: now,
                expires,
                stale_until: if may_go_stale {
                    expires + self.policy.stale_window
                } else {
                    expires
                },
                recheck_after: None,
                original_ttl: ttl,
                hits: 0,
                refreshing: false,
                stale: None,
                current: answer,
                age_secs: 0,
                bytes,
                life: Arc::new(AtomicU32::new(0)),
            }),
        );
    }

    /// The most its answers may cost together, in bytes.
    pub fn budget(&self) -> usize {
        self.bytes_per_shard * SHARDS
    }

    /// Answers held now (for tests and the status page).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).map.len())
            .sum()
    }

    /// Bytes the answers held now cost, as [`entry_bytes`] counts them.
    pub fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).bytes)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn cacheable_ttl(answer: &UpstreamAnswer) -> Option<u32> {
    match answer.code {
        ResponseCode::NoError if !answer.answers.is_empty() => {
            answer.answers.iter().map(|r| r.ttl).min()
        }
        ResponseCode::NoError | ResponseCode::NXDomain => Some(
            answer
                .authorities
                .iter()
                .find_map(|record| match &record.data {
                    RData::SOA(soa) => Some(record.ttl.min(soa.minimum)),
                    _ => None,
                })
                .unwrap_or(DEFAULT_NEGATIVE_TTL_SECS),
        ),
        _ => None,
    }
    .filter(|&ttl| ttl > 0)
    .map(|ttl| ttl.min(MAX_TTL_SECS))
}

/// `answer` as served past its TTL: every TTL at `ttl`, and an Extended
/// DNS Error saying it is stale.
fn stale_form(answer: &UpstreamAnswer, ttl: u32) -> UpstreamAnswer {
    let mut stale = answer.clone();
    for record in stale.answers.iter_mut().chain(stale.authorities.iter_mut()) {
        record.ttl = ttl;
    }
    stale.extended_error = Some(ExtendedError {
        code: EDE_STALE_ANSWER,
        text: "Lollipop: a stale answer, kept from earlier: the upstream servers did not answer in time".into(),
    });
    stale
}

/// `answer` with every TTL lowered by `age` seconds. Its wire form, if
/// the codec has written it, is carried over with the TTLs rewritten in
/// place, so the first response after a countdown copies bytes rather than
/// writing the records again.
fn counted_down(answer: &UpstreamAnswer, age: u32) -> UpstreamAnswer {
    let wire = answer
        .wire
        .get()
        .map(|wire| wire.as_ref().and_then(|wire| wire.counted_down(age)));
    let mut answer = answer.clone();
    for record in answer
        .answers
        .iter_mut()
        .chain(answer.authorities.iter_mut())
    {
        record.ttl = record.ttl.saturating_sub(age);
    }
    if let Some(Some(wire)) = wire {
        answer.wire = OnceLock::from(Some(wire));
    }
    answer.unchecked = answer
        .unchecked
        .as_deref()
        .map(|unchecked| Arc::new(counted_down(unchecked, age)));
    answer
}

#[cfg(test)]
mod tests;
