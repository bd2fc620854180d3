//! The response cache in front of the upstreams: answers kept for their TTL
//! and shared, not copied, with every query they serve; questions already on
//! their way upstream are joined rather than asked again. The cache is
//! bounded in bytes, each answer counted at what it really costs, so a
//! flood of large answers cannot take more memory than a flood of small.
//!
//! A hit costs one hash, one short lock of one shard and an `Arc` clone.
//! The hash is foldhash's, seeded per process: several times faster than
//! the standard SipHash on short names, and still not predictable from
//! outside. TTLs
//! count down: once a second at most, an entry's records are rewritten with
//! the time left, so a client never caches an answer longer than the upstream
//! allowed.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

use foldhash::fast::RandomState;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::proto::serialize::binary::BinEncodable;
use tokio::sync::watch;

use crate::metrics::UpstreamStats;

use super::answer::{UpstreamAnswer, WireRecords};

/// Shards, so queries on different cores rarely wait on the same lock.
const SHARDS: usize = 16;
/// Answers are kept at most this long, whatever their TTL says.
const MAX_TTL_SECS: u32 = 86_400;
/// A negative answer without an SOA to say how long it holds.
const DEFAULT_NEGATIVE_TTL_SECS: u32 = 60;

/// A question, hashed once per query; the name and type are kept to tell
/// apart the (vanishingly rare) questions whose hashes collide.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuestionKey(u64);

struct Entry {
    name: Name,
    record_type: RecordType,
    stored: Instant,
    expires: Instant,
    /// The answer with its TTLs counted down by `age_secs` (one copy: the
    /// countdown goes on from it, so the original need not be kept).
    current: Arc<UpstreamAnswer>,
    age_secs: u32,
    /// What the entry costs, from [`entry_bytes`].
    bytes: usize,
}

/// One shard's answers and the bytes they cost together.
#[derive(Default)]
struct Shard {
    map: HashMap<QuestionKey, Entry, RandomState>,
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
/// after it grows; the answer behind its `Arc` with the counts; the header
/// of the wire copy the codec adds.
const ENTRY_OVERHEAD: usize = 2 * (size_of::<(QuestionKey, Entry)>() + 1)
    + size_of::<UpstreamAnswer>()
    + 2 * size_of::<usize>()
    + size_of::<WireRecords>();

/// What an answer for `name` costs in the cache: [`ENTRY_OVERHEAD`], the
/// name, and each record's struct plus twice its wire length (once for the
/// decoded names and data on the heap, once for the codec's wire copy).
fn entry_bytes(name: &Name, answer: &UpstreamAnswer) -> usize {
    let records: usize = answer
        .answers
        .iter()
        .chain(&answer.authorities)
        .map(|record| size_of::<Record>() + 2 * wire_len(record))
        .sum();
    ENTRY_OVERHEAD + name.len() + records
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
    /// Questions being asked upstream now, with the channel their answer comes on.
    in_flight: Mutex<HashMap<QuestionKey, AnswerSoon, RandomState>>,
    stats: Arc<UpstreamStats>,
}

/// Where a question on its way upstream will have its answer.
type AnswerSoon = watch::Receiver<Option<Arc<UpstreamAnswer>>>;

/// What a caller of [`ResponseCache::lookup`] should do.
pub enum Lookup<'a> {
    Hit(Arc<UpstreamAnswer>),
    /// Another query is asking upstream: wait for its answer.
    Wait(watch::Receiver<Option<Arc<UpstreamAnswer>>>),
    /// Ask upstream, then hand the answer to [`Asking::finish`].
    Ask(Asking<'a>),
}

/// The right, and duty, to ask upstream for one question; dropping it
/// unfinished (a cancelled query) lets the waiting queries ask themselves.
pub struct Asking<'a> {
    cache: &'a ResponseCache,
    key: QuestionKey,
    sender: watch::Sender<Option<Arc<UpstreamAnswer>>>,
}

impl Drop for Asking<'_> {
    fn drop(&mut self) {
        self.cache
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

impl ResponseCache {
    /// A cache of at most `budget_bytes` of answers.
    pub fn new(budget_bytes: usize, stats: Arc<UpstreamStats>) -> ResponseCache {
        ResponseCache {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            bytes_per_shard: budget_bytes.div_ceil(SHARDS).max(1),
            hasher: RandomState::default(),
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

    /// The cached answer, or what to do instead.
    pub fn lookup(&self, key: QuestionKey, name: &Name, record_type: RecordType) -> Lookup<'_> {
        if let Some(answer) = self.get(key, name, record_type, Instant::now()) {
            self.stats.cache_hits.fetch_add(1, Relaxed);
            return Lookup::Hit(answer);
        }
        self.stats.cache_misses.fetch_add(1, Relaxed);
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(receiver) = in_flight.get(&key) {
            self.stats.coalesced.fetch_add(1, Relaxed);
            return Lookup::Wait(receiver.clone());
        }
        let (sender, receiver) = watch::channel(None);
        in_flight.insert(key, receiver);
        Lookup::Ask(Asking {
            cache: self,
            key,
            sender,
        })
    }

    fn get(
        &self,
        key: QuestionKey,
        name: &Name,
        record_type: RecordType,
        now: Instant,
    ) -> Option<Arc<UpstreamAnswer>> {
        let mut shard = self
            .shard(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = shard.map.get_mut(&key)?;
        if entry.record_type != record_type || entry.name != *name {
            return None;
        }
        if now >= entry.expires {
            shard.remove(&key);
            return None;
        }
        let age = u32::try_from(now.duration_since(entry.stored).as_secs()).unwrap_or(u32::MAX);
        if age > entry.age_secs {
            entry.current = Arc::new(counted_down(&entry.current, age - entry.age_secs));
            entry.age_secs = age;
        }
        Some(entry.current.clone())
    }

    fn insert(
        &self,
        key: QuestionKey,
        name: &Name,
        record_type: RecordType,
        answer: Arc<UpstreamAnswer>,
        ttl: u32,
    ) {
        let bytes = entry_bytes(name, &answer);
        if bytes > self.bytes_per_shard {
            // Larger than a shard may hold: not kept rather than emptying
            // the shard for it.
            return;
        }
        let now = Instant::now();
        let mut shard = self
            .shard(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        shard.remove(&key);
        if shard.bytes + bytes > self.bytes_per_shard {
            let Shard { map, bytes: held } = &mut *shard;
            map.retain(|_, entry| {
                let live = entry.expires > now;
                if !live {
                    *held -= entry.bytes;
                }
                live
            });
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
        shard.map.insert(
            key,
            Entry {
                name: name.clone(),
                record_type,
                stored: now,
                expires: now + Duration::from_secs(u64::from(ttl)),
                current: answer,
                age_secs: 0,
                bytes,
            },
        );
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

impl Asking<'_> {
    /// Stores the upstream's answer, wakes the queries that waited for it,
    /// and returns it shared.
    pub fn finish(
        self,
        name: &Name,
        record_type: RecordType,
        answer: UpstreamAnswer,
    ) -> Arc<UpstreamAnswer> {
        let answer = Arc::new(answer);
        if let Some(ttl) = cacheable_ttl(&answer) {
            self.cache
                .insert(self.key, name, record_type, answer.clone(), ttl);
        }
        self.sender.send_replace(Some(answer.clone()));
        answer
    }
}

/// How long an answer may be kept: the smallest TTL of its records, or for
/// a negative answer the SOA's negative TTL (RFC 2308). Failures are not kept.
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

/// `answer` with every TTL lowered by `age` seconds.
fn counted_down(answer: &UpstreamAnswer, age: u32) -> UpstreamAnswer {
    let mut answer = answer.clone();
    for record in answer
        .answers
        .iter_mut()
        .chain(answer.authorities.iter_mut())
    {
        record.ttl = record.ttl.saturating_sub(age);
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::rr::rdata::A;

    fn answer(ttl: u32) -> UpstreamAnswer {
        answer_for(&Name::from_ascii("www.example.org.").unwrap(), ttl)
    }

    fn answer_for(name: &Name, ttl: u32) -> UpstreamAnswer {
        UpstreamAnswer::new(
            ResponseCode::NoError,
            vec![Record::from_rdata(
                name.clone(),
                ttl,
                RData::A(A::new(192, 0, 2, 1)),
            )],
            Vec::new(),
        )
    }

    fn ask<'a>(cache: &'a ResponseCache, name: &Name) -> Lookup<'a> {
        cache.lookup(cache.key(name, RecordType::A), name, RecordType::A)
    }

    #[test]
    fn a_stored_answer_is_shared_case_insensitively_and_counted() {
        let stats = Arc::new(UpstreamStats::default());
        let cache = ResponseCache::new(1 << 20, stats.clone());
        let name = Name::from_ascii("www.example.org.").unwrap();
        let Lookup::Ask(asking) = ask(&cache, &name) else {
            panic!("empty cache should ask");
        };
        let stored = asking.finish(&name, RecordType::A, answer(300));
        let upper = Name::from_ascii("WWW.Example.ORG.").unwrap();
        let Lookup::Hit(hit) = ask(&cache, &upper) else {
            panic!("should hit");
        };
        assert!(Arc::ptr_eq(&hit, &stored), "a hit shares, not copies");
        assert!(matches!(
            cache.lookup(cache.key(&name, RecordType::AAAA), &name, RecordType::AAAA),
            Lookup::Ask(_)
        ));
        assert_eq!(stats.cache_hits.load(Relaxed), 1);
        assert_eq!(stats.cache_misses.load(Relaxed), 2);
    }

    #[test]
    fn ttls_count_down_and_expired_answers_go() {
        let cache = ResponseCache::new(1 << 20, Arc::default());
        let name = Name::from_ascii("www.example.org.").unwrap();
        let key = cache.key(&name, RecordType::A);
        cache.insert(key, &name, RecordType::A, Arc::new(answer(10)), 10);
        let later = Instant::now() + Duration::from_millis(3_500);
        let hit = cache.get(key, &name, RecordType::A, later).unwrap();
        assert!(
            (6..=7).contains(&hit.answers[0].ttl),
            "{}",
            hit.answers[0].ttl
        );
        let expired = Instant::now() + Duration::from_secs(11);
        assert!(cache.get(key, &name, RecordType::A, expired).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn a_second_asker_waits_for_the_first() {
        let stats = Arc::new(UpstreamStats::default());
        let cache = ResponseCache::new(1 << 20, stats.clone());
        let name = Name::from_ascii("www.example.org.").unwrap();
        let Lookup::Ask(asking) = ask(&cache, &name) else {
            panic!("first asks");
        };
        let Lookup::Wait(receiver) = ask(&cache, &name) else {
            panic!("second waits");
        };
        asking.finish(&name, RecordType::A, answer(60));
        assert!(receiver.borrow().is_some());
        assert_eq!(stats.coalesced.load(Relaxed), 1);
        // The question is no longer in flight: a later miss asks again.
        assert!(matches!(
            cache.lookup(cache.key(&name, RecordType::MX), &name, RecordType::MX),
            Lookup::Ask(_)
        ));
    }

    #[test]
    fn failures_are_not_kept_and_negative_answers_follow_the_soa() {
        let mut failed = answer(60);
        failed.code = ResponseCode::ServFail;
        assert_eq!(cacheable_ttl(&failed), None);
        let nxdomain = UpstreamAnswer::new(ResponseCode::NXDomain, Vec::new(), Vec::new());
        assert_eq!(cacheable_ttl(&nxdomain), Some(DEFAULT_NEGATIVE_TTL_SECS));
        assert_eq!(cacheable_ttl(&answer(0)), None);
        assert_eq!(cacheable_ttl(&answer(999_999)), Some(MAX_TTL_SECS));
    }

    /// An answer of `count` TXT records of `len` bytes each.
    fn txt_answer(owner: &Name, count: usize, len: usize) -> UpstreamAnswer {
        use hickory_resolver::proto::rr::rdata::TXT;
        let records = (0..count)
            .map(|i| {
                let text = format!("{i:04}{}", "x".repeat(len));
                Record::from_rdata(owner.clone(), 60, RData::TXT(TXT::new(vec![text])))
            })
            .collect();
        UpstreamAnswer::new(ResponseCode::NoError, records, Vec::new())
    }

    /// Fills a cache of `budget` bytes with `names` answers made by `make`.
    fn fill(budget: usize, names: usize, make: impl Fn(&Name) -> UpstreamAnswer) -> ResponseCache {
        let cache = ResponseCache::new(budget, Arc::default());
        for i in 0..names {
            let name = Name::from_ascii(format!("n{i}.example.org.")).unwrap();
            let key = cache.key(&name, RecordType::TXT);
            cache.insert(key, &name, RecordType::TXT, Arc::new(make(&name)), 60);
        }
        cache
    }

    #[test]
    fn large_answers_keep_the_cache_within_its_byte_budget() {
        const BUDGET: usize = 256 * 1024;
        // Ten 200-byte strings: about 7.8 KiB an answer, 2,000 of them asked.
        let cache = fill(BUDGET, 2_000, |name| txt_answer(name, 10, 200));
        assert!(cache.bytes() <= BUDGET, "{} > {BUDGET}", cache.bytes());
        let held: usize = cache
            .shards
            .iter()
            .flat_map(|s| {
                let shard = s.lock().unwrap();
                shard.map.values().map(|e| e.bytes).collect::<Vec<_>>()
            })
            .sum();
        assert_eq!(held, cache.bytes(), "the running total matches the entries");
        assert!(!cache.is_empty() && cache.len() < 100, "{}", cache.len());
    }

    #[test]
    fn small_answers_fit_many_more_than_large_ones_in_the_same_budget() {
        const BUDGET: usize = 256 * 1024;
        let small = fill(BUDGET, 5_000, |name| answer_for(name, 60));
        let large = fill(BUDGET, 5_000, |name| txt_answer(name, 10, 200));
        assert!(small.bytes() <= BUDGET && large.bytes() <= BUDGET);
        assert!(
            small.len() > 5 * large.len(),
            "small {} large {}",
            small.len(),
            large.len()
        );
        // A one-address answer costs under 1 KiB as counted here: the
        // figure the default budget was sized by.
        let one = answer_for(&Name::from_ascii("www.example.org.").unwrap(), 60);
        let cost = entry_bytes(&Name::from_ascii("www.example.org.").unwrap(), &one);
        assert!((200..1024).contains(&cost), "{cost}");
    }

    #[test]
    fn an_answer_larger_than_a_shard_is_not_kept() {
        let cache = fill(SHARDS * 1024, 1, |name| txt_answer(name, 10, 200));
        assert!(cache.is_empty());
        assert_eq!(cache.bytes(), 0);
    }
}
