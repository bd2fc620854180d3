//! Where the repeated-question stage keeps its answers: shards, each with
//! its own lock, a table of entries and an index of their keys' hashes,
//! within a budget counted in the bytes the allocator gives them.
//!
//! A full shard makes room second-chance style: a hand goes round its
//! entries; one asked again since the hand last passed (up to
//! [`MAX_CREDIT`] times) is passed over, a credit spent, and one that was
//! not, or whose lease is over or whose settings are gone, leaves. The
//! hand spends at most one credit for each new answer; when it finds no
//! entry to drop, the new answer is not kept. So when the questions
//! asked in turn are more than fit (a pass over 30,000 names in the same
//! order), the answers kept stay kept and their repeats are answered,
//! where dropping the oldest would drop each just before it is asked again.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use crate::policy::Explanation;
use crate::policy::clients::ProfileId;

use super::entry::{Entry, MAX_CREDIT};
use super::{Keep, MAX_RESPONSE, RepeatKey, Repeated};

/// Shards, so the reader threads rarely wait on the same lock.
const SHARDS: usize = 16;
/// Explanations of blocks a shard shares between its answers; the
/// answers of a name rule's or a time rule's blocks each keep their own.
const SHARED_EXPLANATIONS: usize = 8;

#[derive(Default)]
struct Shard {
    /// Positions in `entries`, by the entry's hash.
    index: HashTable<u32>,
    entries: Slots,
    /// Where the hand is in `entries`.
    hand: usize,
    /// The entries' bytes, as allocated.
    heap_bytes: usize,
    /// Blocks' explanations without their rules, newest last.
    explanations: Vec<Arc<Explanation>>,
}

/// Entries in a slot each, allocated [`CHUNK`] slots at a time: a shard
/// grows without moving what it holds, leaving no freed runs of slots
/// behind for the allocator to keep, and gives a chunk back as it empties.
#[derive(Default)]
struct Slots {
    chunks: Vec<Vec<Entry>>,
    len: usize,
}

/// Slots allocated at a time (about 6 KB).
const CHUNK: usize = 64;

impl Slots {
    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slots allocated.
    fn capacity(&self) -> usize {
        self.chunks.len() * CHUNK
    }

    fn push(&mut self, entry: Entry) {
        if self.len == self.capacity() {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks[self.len / CHUNK].push(entry);
        self.len += 1;
    }

    /// Takes the entry at `at` out, the last moving into its place.
    fn swap_remove(&mut self, at: usize) -> Option<Entry> {
        let last_chunk = self.chunks.last_mut()?;
        let last = last_chunk.pop()?;
        if last_chunk.is_empty() {
            self.chunks.pop();
        }
        self.len -= 1;
        if at == self.len {
            return Some(last);
        }
        Some(std::mem::replace(&mut self[at], last))
    }
}

impl std::ops::Index<usize> for Slots {
    type Output = Entry;

    #[inline]
    fn index(&self, at: usize) -> &Entry {
        &self.chunks[at / CHUNK][at % CHUNK]
    }
}

impl std::ops::IndexMut<usize> for Slots {
    #[inline]
    fn index_mut(&mut self, at: usize) -> &mut Entry {
        &mut self.chunks[at / CHUNK][at % CHUNK]
    }
}

/// Where a new entry goes.
enum Room {
    /// After the others.
    Added,
    /// In place of the entry there, which leaves.
    InPlaceOf(usize),
}

/// What an index of `capacity` entries takes: a u32 and a control byte
/// per bucket, a power of two of them at most seven eighths full.
fn index_bytes(capacity: usize) -> usize {
    let buckets = if capacity == 0 {
        return 0;
    } else if capacity < 8 {
        (capacity + 1).next_power_of_two()
    } else {
        (capacity * 8).div_ceil(7).next_power_of_two()
    };
    buckets * (size_of::<u32>() + 1) + 16
}

impl Shard {
    /// Bytes held: the entries' bytes, their slots and the index.
    fn held(&self) -> usize {
        self.heap_bytes
            + self.entries.capacity() * size_of::<Entry>()
            + index_bytes(self.index.capacity())
    }

    #[inline]
    fn position(&self, hash: u64) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(hash, |&at| entries[at as usize].hash == hash)
            .map(|&at| at as usize)
    }

    /// Takes the entry at `at` out; the last entry moves into its place.
    fn remove(&mut self, at: usize) -> Option<Entry> {
        let Shard { index, entries, .. } = self;
        let hash = entries[at].hash;
        if let Ok(found) = index.find_entry(hash, |&i| i as usize == at) {
            found.remove();
        }
        let last = entries.len() - 1;
        if at != last {
            let moved = entries[last].hash;
            if let Some(slot) = index.find_mut(moved, |&i| i as usize == last) {
                *slot = at as u32;
            }
        }
        let gone = entries.swap_remove(at);
        if let Some(gone) = &gone {
            self.heap_bytes -= gone.cost();
        }
        if self.hand >= self.entries.len() {
            self.hand = 0;
        }
        gone
    }

    /// Makes room within `budget` for an entry of `cost` bytes for a
    /// question of `generation`, taking the place of the first entry the
    /// hand finds spent or not asked again since it last passed, and
    /// spending at most one credit on the way. None when there is no room
    /// (the new entry is then not kept).
    fn make_room(
        &mut self,
        cost: usize,
        (generation, epoch, now): (u64, Instant, Instant),
        budget: usize,
    ) -> Option<Room> {
        let mut credits_spent = 0;
        loop {
            let slots = self.entries.capacity()
                + if self.entries.len() == self.entries.capacity() {
                    CHUNK
                } else {
                    0
                };
            let index = self.index.capacity().max(self.index.len() + 1);
            let after = self.heap_bytes + slots * size_of::<Entry>() + index_bytes(index);
            if after + cost <= budget {
                let Shard { index, entries, .. } = self;
                index.reserve(1, |&at| entries[at as usize].hash);
                return Some(Room::Added);
            }
            if self.entries.is_empty() || credits_spent == 1 {
                return None;
            }
            let at = self.hand;
            let held = self.held();
            let entry = &mut self.entries[at];
            if entry.credit == 0 || entry.is_spent(generation, epoch, now) {
                if held - entry.cost() + cost <= budget {
                    self.hand = (at + 1) % self.entries.len();
                    return Some(Room::InPlaceOf(at));
                }
                // Too small a place: dropped, and the hand looks on.
                self.remove(at);
            } else {
                entry.credit -= 1;
                credits_spent += 1;
                self.hand = (at + 1) % self.entries.len();
            }
        }
    }

    /// The shared explanation equal to `explanation` without its rule.
    fn shared_explanation(&mut self, explanation: &Explanation) -> Arc<Explanation> {
        let mut without_rule = explanation.clone();
        without_rule.rule = None;
        if let Some(shared) = self.explanations.iter().find(|e| ***e == without_rule) {
            return shared.clone();
        }
        let shared = Arc::new(without_rule);
        if self.explanations.len() == SHARED_EXPLANATIONS {
            self.explanations.remove(0);
        }
        self.explanations.push(shared.clone());
        shared
    }

    /// Drops entries, from the hand on, until the shard is within `budget`,
    /// its slots and index cut down to the entries left.
    fn shrink_to(&mut self, budget: usize) {
        let fits = |shard: &Shard| {
            let left = shard.entries.len();
            let slots = left.div_ceil(CHUNK) * CHUNK;
            shard.heap_bytes + slots * size_of::<Entry>() + index_bytes(left) <= budget
        };
        while !self.entries.is_empty() && !fits(self) {
            let at = self.hand;
            self.remove(at);
        }
        if self.entries.is_empty() {
            *self = Shard::default();
        } else if self.held() > budget {
            let Shard { index, entries, .. } = self;
            index.shrink_to(entries.len(), |&at| entries[at as usize].hash);
        }
    }
}

/// The answers kept, by question.
pub struct Repeats {
    shards: Box<[Mutex<Shard>]>,
    /// What the kept leases' times count from.
    epoch: Instant,
    budget_per_shard: AtomicUsize,
    hasher: RandomState,
}

impl Repeats {
    /// A store of at most `budget_bytes`.
    pub fn new(budget_bytes: usize) -> Repeats {
        Repeats {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            epoch: super::super::cache::now(),
            budget_per_shard: AtomicUsize::new(budget_bytes / SHARDS),
            hasher: RandomState::default(),
        }
    }

    /// Holds the store to `budget_bytes` from now on, dropping answers at
    /// once if it holds more (a reload that made the response cache
    /// smaller).
    pub fn set_budget(&self, budget_bytes: usize) {
        let per_shard = budget_bytes / SHARDS;
        if self.budget_per_shard.swap(per_shard, Relaxed) == per_shard {
            return;
        }
        for shard in &self.shards {
            lock(shard).shrink_to(per_shard);
        }
    }

    /// The bytes the store may take.
    pub fn budget(&self) -> usize {
        self.budget_per_shard.load(Relaxed) * SHARDS
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
    /// An answer whose lease is over is dropped.
    pub fn answer(
        &self,
        key: &RepeatKey,
        id: [u8; 2],
        now: Instant,
        send: impl FnOnce(&[u8]),
    ) -> Option<Repeated> {
        let mut response = [0u8; MAX_RESPONSE];
        let (len, repeated) = {
            let mut shard = lock(self.shard(key.hash));
            let at = shard.position(key.hash)?;
            if !shard.entries[at].is_for(key) {
                return None;
            }
            let age = match &shard.entries[at].lease {
                Some(lease) => match lease.hit(self.epoch, now) {
                    Some(age) => age,
                    None => {
                        let gone = shard.remove(at);
                        drop(shard);
                        drop(gone);
                        return None;
                    }
                },
                None => 0,
            };
            let entry = &mut shard.entries[at];
            entry.credit = (entry.credit + 1).min(MAX_CREDIT);
            let len = entry.write(id, age, &mut response)?;
            let repeated = Repeated {
                profile: entry.profile(),
                blocked: entry.blocked_repeat(),
                leased: entry.lease.is_some(),
            };
            if entry.blocked.is_some() && repeated.blocked.is_none() {
                return None;
            }
            (len, repeated)
        };
        send(&response[..len]);
        Some(repeated)
    }

    /// Keeps `response`, the answer to `key` that `keep` describes, whose
    /// records' TTLs are at `ttl_offsets` (None for a truncated response,
    /// or one the codec could not walk: never kept), if there is room for
    /// it at `now`; a response too long is not kept either.
    pub fn remember(
        &self,
        key: &RepeatKey,
        keep: Keep,
        response: &[u8],
        ttl_offsets: Option<Vec<u16>>,
        now: Instant,
    ) {
        if response.len() > MAX_RESPONSE || response.len() < 12 || keep.profile != key.profile {
            return;
        }
        let Some(ttl_offsets) = ttl_offsets else {
            return;
        };
        // TTLs made here (a block, a special answer) never count down.
        let ttl_offsets: &[u16] = if keep.counts_down { &ttl_offsets } else { &[] };
        if keep.counts_down && keep.lease.is_none() {
            return;
        }
        let lease = match keep.lease {
            Some(lease) => match lease.kept(self.epoch) {
                Some(kept) => Some(kept),
                None => return,
            },
            None => None,
        };
        let Some(mut entry) =
            Entry::new(key, response, ttl_offsets, lease, keep.blocked.as_deref())
        else {
            return;
        };
        let cost = entry.cost();
        let budget = self.budget_per_shard.load(Relaxed);
        let mut shard = lock(self.shard(key.hash));
        entry.blocked = keep
            .blocked
            .as_ref()
            .map(|blocked| shard.shared_explanation(&blocked.explanation));
        if let Some(at) = shard.position(key.hash) {
            // The same question (or one whose hash collides) again.
            let held_without = shard.held() - shard.entries[at].cost();
            if held_without + cost > budget {
                shard.remove(at);
                return;
            }
            entry.credit = shard.entries[at].credit;
            shard.heap_bytes = shard.heap_bytes - shard.entries[at].cost() + cost;
            let old = std::mem::replace(&mut shard.entries[at], entry);
            drop(shard);
            drop(old);
            return;
        }
        let room = shard.make_room(cost, (key.generation, self.epoch, now), budget);
        let Shard {
            index,
            entries,
            heap_bytes,
            ..
        } = &mut *shard;
        match room {
            None => {}
            Some(Room::InPlaceOf(at)) => {
                let old_hash = entries[at].hash;
                if let Ok(found) = index.find_entry(old_hash, |&i| i as usize == at) {
                    found.remove();
                }
                *heap_bytes = *heap_bytes - entries[at].cost() + cost;
                let old = std::mem::replace(&mut entries[at], entry);
                index.insert_unique(key.hash, at as u32, |&i| entries[i as usize].hash);
                drop(shard);
                drop(old);
            }
            Some(Room::Added) => {
                let Ok(at) = u32::try_from(entries.len()) else {
                    return;
                };
                *heap_bytes += cost;
                entries.push(entry);
                index.insert_unique(key.hash, at, |&i| entries[i as usize].hash);
            }
        }
    }

    /// Answers kept now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).entries.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the store holds, as counted against its budget.
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|s| lock(s).held()).sum()
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}
