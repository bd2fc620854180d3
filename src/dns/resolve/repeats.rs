//! The first stage on UDP, after the access check and the rate limit: a
//! question asked again is answered from the bytes of the answer given to
//! it last time, with the ID put in and the TTLs counted down, and recorded
//! and counted as the whole pipeline would have. The rest of the pipeline
//! runs only when the question is new.
//!
//! Why it cannot answer what the whole pipeline would not:
//! - The key is the query's every byte after its ID (flags, counts, the
//!   question in its case, the OPT record: RD, CD, DO and the payload
//!   size), the listener, the client's profile, and the generation of the
//!   settings and staff overrides in force, which every reload, rule of
//!   time and unlock granted or ended changes ([`super::pipeline::InForce`]).
//! - Only an answer that was ready at once is kept, and never one a staff
//!   unlock released (its expiry is judged per query), a safe-search
//!   rewrite, one the rebinding guard cut (it counts each), a SERVFAIL, a
//!   truncated answer, or a blocked answer while any unlock is in force
//!   (one might release it for the next client).
//! - An answer from the response cache is kept on that entry's [`Lease`]:
//!   never past its expiry, its removal or replacement, or the start of its
//!   early refresh; its TTLs are counted down as the entry's would be.
//!
//! Memory is bounded in bytes (half the response cache's budget at start:
//! 16 MiB by default, room for about 40,000 answers, [`budget_for`]),
//! spread over shards each with its own lock; a full shard drops its
//! oldest entries first, one at a time, without looking at the rest. The
//! answers of a generation no longer in force are never met again and
//! leave in their turn.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use foldhash::fast::RandomState;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RecordType};

use crate::journal::Folds;
use crate::policy::Explanation;
use crate::policy::clients::ProfileId;
use crate::policy::overrides::OverrideSet;

use super::answer::Answer;
use super::cache::Lease;
use super::pipeline::{InForce, Pipeline};
use super::recorder::domain_text;
use super::settings::Client;
use super::verdict::Verdict;

/// What the kept answers may take together beside a response cache of
/// `cache_bytes`: half as much (a Pi that sets `cache_mb` lower shrinks
/// both). The bench's mix of 30,000 names (two thirds allowed or missing,
/// one third blocked) needs about 12 MB.
pub fn budget_for(cache_bytes: usize) -> usize {
    cache_bytes / 2
}

/// Shards, so the reader threads rarely wait on the same lock.
const SHARDS: usize = 16;
/// The longest response kept: the largest a UDP answer is sent.
pub const MAX_RESPONSE: usize = 1232;
/// What an entry costs besides its bytes: the boxed entry, its slot in the
/// table (counted twice, as a table keeps up to half its slots empty) and
/// in the order of arrival.
const ENTRY_OVERHEAD: usize =
    size_of::<Entry>() + 2 * (size_of::<(u64, Box<Entry>)>() + 1) + size_of::<u64>();

/// A question as this stage knows it: borrowed from the datagram.
pub struct RepeatKey<'q> {
    hash: u64,
    /// The query after its ID.
    query: &'q [u8],
    listener: Option<usize>,
    profile: ProfileId,
    generation: u64,
}

/// What a blocked lookup's record needs besides the client and the time.
#[derive(Debug)]
pub struct BlockedLookup {
    /// The name as the block log writes it.
    pub name: String,
    pub record_type: RecordType,
    pub explanation: Explanation,
    /// Each client's repeats of it, counted for the block log.
    pub folds: Folds,
}

/// What the pipeline's run says about keeping the answer it gave.
pub struct Keep {
    pub profile: ProfileId,
    /// The response cache's lease on the answer, if it came from there.
    pub lease: Option<Lease>,
    /// Every record is the upstream's: its TTLs count down on the lease.
    pub counts_down: bool,
    /// For a blocked answer, what each repeat records.
    pub blocked: Option<Arc<BlockedLookup>>,
}

impl Keep {
    /// Whether, and how, the answer the pipeline gave at once to `name`
    /// and `record_type`, on `verdict`, with `overrides` in force, may be
    /// given again from its bytes; None when it may not.
    pub fn of(
        verdict: &Verdict,
        answer: &Answer,
        overrides: &OverrideSet,
        (name, record_type): (&Name, RecordType),
    ) -> Option<Keep> {
        // Released by a staff unlock (judged by the clock per query), or
        // rewritten for safe search (two TTLs of different ages).
        if verdict.unlock.is_some() || verdict.rewrite.is_some() {
            return None;
        }
        if answer.code == ResponseCode::ServFail {
            return None;
        }
        // The rebinding guard took addresses out (and counts each answer
        // it does that to): its note is not the upstream's.
        if let Some(upstream) = &answer.upstream
            && answer.explanation.is_none()
            && answer.extended_error != upstream.extended_error
        {
            return None;
        }
        let blocked = match &answer.explanation {
            // An unlock in force might release it for the next client.
            Some(_) if !overrides.is_empty() => return None,
            Some(explanation) => Some(Arc::new(BlockedLookup {
                name: domain_text(name),
                record_type,
                explanation: explanation.clone(),
                folds: Folds::default(),
            })),
            None => None,
        };
        let counts_down =
            answer.upstream.is_some() && answer.answers.is_empty() && answer.authorities.is_empty();
        // An upstream's answer (or a block it gave away) is kept only on
        // its cache entry's lease.
        let from_upstream = answer.upstream.is_some() || verdict.alias.is_some();
        if from_upstream && verdict.cached.is_none() {
            return None;
        }
        Some(Keep {
            profile: verdict.profile,
            lease: verdict.cached.clone(),
            counts_down,
            blocked,
        })
    }
}

/// What a repeat found: the record it makes.
pub struct Repeated {
    pub profile: ProfileId,
    pub blocked: Option<Arc<BlockedLookup>>,
    /// It stands for a response cache hit.
    pub leased: bool,
}

struct Entry {
    query: Box<[u8]>,
    listener: Option<usize>,
    profile: ProfileId,
    generation: u64,
    response: Box<[u8]>,
    /// Where each record's TTL is in `response`, when they count down.
    ttl_offsets: Box<[u16]>,
    lease: Option<Lease>,
    blocked: Option<Arc<BlockedLookup>>,
    bytes: usize,
}

impl Entry {
    fn is_for(&self, key: &RepeatKey) -> bool {
        self.generation == key.generation
            && self.profile == key.profile
            && self.listener == key.listener
            && *self.query == *key.query
    }
}

#[derive(Default)]
struct Shard {
    map: HashMap<u64, Box<Entry>, RandomState>,
    /// Hashes in the order they were first kept; one per entry.
    arrivals: VecDeque<u64>,
    bytes: usize,
}

/// The answers kept, by question.
pub struct Repeats {
    shards: Box<[Mutex<Shard>]>,
    bytes_per_shard: usize,
    hasher: RandomState,
}

impl Repeats {
    /// A store of at most `budget_bytes`.
    pub fn new(budget_bytes: usize) -> Repeats {
        Repeats {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            bytes_per_shard: budget_bytes.div_ceil(SHARDS).max(1),
            hasher: RandomState::default(),
        }
    }

    /// The key of `query` (its bytes after the ID) from a client of
    /// `profile` on `listener`, under the settings of `generation`.
    pub fn key<'q>(
        &self,
        query: &'q [u8],
        listener: Option<usize>,
        profile: ProfileId,
        generation: u64,
    ) -> RepeatKey<'q> {
        let mut hasher = self.hasher.build_hasher();
        query.hash(&mut hasher);
        listener.hash(&mut hasher);
        profile.hash(&mut hasher);
        generation.hash(&mut hasher);
        RepeatKey {
            hash: hasher.finish(),
            query,
            listener,
            profile,
            generation,
        }
    }

    fn shard(&self, hash: u64) -> &Mutex<Shard> {
        &self.shards[(hash as usize) % self.shards.len()]
    }

    /// The answer kept for `key`, if it still holds at `now`, with `id`
    /// put in and its TTLs counted down, handed to `send`; what to record.
    pub fn answer(
        &self,
        key: &RepeatKey,
        id: [u8; 2],
        now: Instant,
        send: impl FnOnce(&[u8]),
    ) -> Option<Repeated> {
        let mut response = [0u8; MAX_RESPONSE];
        let (len, repeated) = {
            let shard = self
                .shard(key.hash)
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let entry = shard.map.get(&key.hash)?;
            if !entry.is_for(key) || entry.lease.as_ref().is_some_and(|l| !l.hit(now)) {
                return None;
            }
            let len = entry.response.len();
            response.get_mut(..len)?.copy_from_slice(&entry.response);
            if let Some(lease) = &entry.lease {
                let age = lease.countdown_at(now);
                if age > 0 {
                    for &offset in &entry.ttl_offsets {
                        let at = usize::from(offset);
                        let ttl = response.get_mut(at..at + 4)?;
                        let left = u32::from_be_bytes([ttl[0], ttl[1], ttl[2], ttl[3]])
                            .saturating_sub(age);
                        ttl.copy_from_slice(&left.to_be_bytes());
                    }
                }
            }
            let repeated = Repeated {
                profile: entry.profile,
                blocked: entry.blocked.clone(),
                leased: entry.lease.is_some(),
            };
            (len, repeated)
        };
        response[..2].copy_from_slice(&id);
        send(&response[..len]);
        Some(repeated)
    }

    /// Keeps `response`, the answer to `key` that `keep` describes, whose
    /// records' TTLs are at `ttl_offsets` (None for a truncated response,
    /// or one the codec could not walk: never kept); a response too long
    /// is not kept either.
    pub fn remember(
        &self,
        key: &RepeatKey,
        keep: Keep,
        response: &[u8],
        ttl_offsets: Option<Vec<u16>>,
    ) {
        if response.len() > MAX_RESPONSE || response.len() < 12 || keep.profile != key.profile {
            return;
        }
        let Some(ttl_offsets) = ttl_offsets else {
            return;
        };
        // TTLs made here (a block, a special answer) never count down.
        let ttl_offsets: Box<[u16]> = if keep.counts_down {
            ttl_offsets.into()
        } else {
            Box::default()
        };
        if keep.counts_down && keep.lease.is_none() {
            return;
        }
        let blocked_bytes = keep.blocked.as_ref().map_or(0, |blocked| {
            size_of::<BlockedLookup>() + 2 * size_of::<usize>() + blocked.name.len()
        });
        let bytes = ENTRY_OVERHEAD
            + key.query.len()
            + response.len()
            + 2 * ttl_offsets.len()
            + blocked_bytes;
        if bytes > self.bytes_per_shard {
            return;
        }
        let entry = Box::new(Entry {
            query: key.query.into(),
            listener: key.listener,
            profile: key.profile,
            generation: key.generation,
            response: response.into(),
            ttl_offsets,
            lease: keep.lease,
            blocked: keep.blocked,
            bytes,
        });
        let mut shard = self
            .shard(key.hash)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Shard {
            map,
            arrivals,
            bytes: held,
        } = &mut *shard;
        if let Some(old) = map.get_mut(&key.hash) {
            // The same question (or one whose hash collides) again: it
            // keeps its place in the order of arrival.
            *held = *held - old.bytes + bytes;
            *old = entry;
        } else {
            *held += bytes;
            map.insert(key.hash, entry);
            arrivals.push_back(key.hash);
        }
        // The oldest go first; each arrival is one entry, so this never
        // looks at more than it drops.
        while *held > self.bytes_per_shard {
            let Some(oldest) = arrivals.pop_front() else {
                break;
            };
            if let Some(gone) = map.remove(&oldest) {
                *held -= gone.bytes;
            }
        }
    }

    /// Answers kept now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).map.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the answers kept cost, as counted against the budget.
    pub fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).bytes)
            .sum()
    }
}

/// The stage's part of the pipeline: the key, the answer given again,
/// and what is kept.
impl Pipeline {
    /// The key under which `query` (a UDP query's bytes after its ID, as
    /// the codec accepts for this stage) from `client` is kept, on
    /// `in_force`; None when this stage is off, or the full query log is
    /// on (it writes every name, which this stage does not keep).
    pub fn repeat_key<'q>(
        &self,
        in_force: &InForce,
        query: &'q [u8],
        client: Client,
    ) -> Option<RepeatKey<'q>> {
        let repeats = self.repeats()?;
        let settings = &in_force.settings;
        if settings.full_query_log {
            return None;
        }
        let profile = settings.policy.profile_for(client.address, client.listener);
        Some(repeats.key(query, client.listener, profile, in_force.generation))
    }

    /// Stage 0 on UDP: the answer given last time to the same question
    /// (`key`), if it still holds, with `id` and its TTLs counted down,
    /// handed to `send` and recorded as the whole pipeline records it;
    /// false when there is none and the pipeline must run.
    pub fn answer_repeat(
        &self,
        in_force: &InForce,
        key: &RepeatKey,
        id: [u8; 2],
        client: Client,
        send: impl FnOnce(&[u8]),
    ) -> bool {
        let Some(repeats) = self.repeats() else {
            return false;
        };
        let Some(repeated) = repeats.answer(key, id, super::cache::now(), send) else {
            return false;
        };
        let settings = &in_force.settings;
        if repeated.leased {
            settings.upstream.count_repeated_hit();
        }
        self.recorder().record_repeat(
            settings,
            repeated.profile,
            repeated.blocked.as_deref(),
            client,
        );
        true
    }

    /// Keeps `response`, the answer to `key` written as `keep` says may be
    /// given again; `ttl_offsets`, where its records' TTLs are (None when
    /// it was truncated or could not be walked: then it is not kept).
    pub fn remember(
        &self,
        key: &RepeatKey,
        keep: Keep,
        response: &[u8],
        ttl_offsets: Option<Vec<u16>>,
    ) {
        if let Some(repeats) = self.repeats() {
            repeats.remember(key, keep, response, ttl_offsets);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep() -> Keep {
        Keep {
            profile: 0,
            lease: None,
            counts_down: false,
            blocked: None,
        }
    }

    /// A query of `name` as the key holds it (its bytes after the ID).
    fn query(name: &str) -> Vec<u8> {
        let mut bytes = vec![1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            bytes.push(label.len() as u8);
            bytes.extend(label.bytes());
        }
        bytes.extend([0, 0, 1, 0, 1]);
        bytes
    }

    #[test]
    fn a_full_store_drops_its_oldest_answers_and_stays_within_its_budget() {
        let budget = 64 * 1024;
        let repeats = Repeats::new(budget);
        let response = [0x55u8; 100];
        let names: Vec<String> = (0..2_000).map(|i| format!("n{i}.example")).collect();
        for name in &names {
            let query = query(name);
            let key = repeats.key(&query, Some(0), 0, 1);
            repeats.remember(&key, keep(), &response, Some(Vec::new()));
            assert!(repeats.bytes() <= budget, "{} bytes held", repeats.bytes());
        }
        let held = |name: &str| {
            let query = query(name);
            let key = repeats.key(&query, Some(0), 0, 1);
            repeats
                .answer(&key, [9, 9], Instant::now(), |bytes| {
                    assert_eq!(bytes[..2], [9, 9]);
                    assert_eq!(bytes[2..], response[2..]);
                })
                .is_some()
        };
        assert!(held("n1999.example"), "the newest answer is kept");
        assert!(!held("n0.example"), "the oldest answer made room");
        assert!(repeats.len() < names.len() / 2);
        // Another generation, profile or listener is another question.
        let query = query("n1999.example");
        for key in [
            repeats.key(&query, Some(0), 0, 2),
            repeats.key(&query, Some(0), 1, 1),
            repeats.key(&query, Some(1), 0, 1),
            repeats.key(&query, None, 0, 1),
        ] {
            assert!(
                repeats
                    .answer(&key, [0, 0], Instant::now(), |_| {})
                    .is_none()
            );
        }
    }

    #[test]
    fn an_answer_is_kept_only_with_its_ttls_places_and_if_they_count_down_a_lease() {
        let repeats = Repeats::new(1 << 20);
        let query = query("www.example");
        let key = repeats.key(&query, None, 0, 1);
        let counting = || Keep {
            counts_down: true,
            ..keep()
        };
        // No lease: nothing says how long it holds.
        repeats.remember(&key, counting(), &[0; 40], Some(vec![30]));
        // Too long for a UDP answer.
        repeats.remember(&key, keep(), &[0; MAX_RESPONSE + 1], Some(Vec::new()));
        // Truncated, or not walked: no places for its TTLs.
        repeats.remember(&key, keep(), &[0; 40], None);
        assert!(repeats.is_empty());
    }
}
