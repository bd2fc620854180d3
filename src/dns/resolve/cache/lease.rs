//! The time the cache runs on, and the lease on a live answer it gives:
//! how long that answer may be given again as it is, from its bytes, by
//! the stage that answers repeated questions.

use std::sync::Weak;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Instant;

/// The time the cache runs on: the monotonic clock, or in a unit test one
/// the test holds still and moves (`hold_time`), so that a test can let an
/// answer run out without waiting for it.
pub fn now() -> Instant {
    #[cfg(test)]
    if let Some(held) = HELD.with(std::cell::Cell::get) {
        return held;
    }
    Instant::now()
}

#[cfg(test)]
thread_local! {
    static HELD: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// Holds this thread's [`now`] at `at` (None: the monotonic clock again).
#[cfg(test)]
pub fn hold_time(at: Option<Instant>) {
    HELD.with(|held| held.set(at));
}

/// How long the live answer an entry just gave may be given again as it
/// was, with its TTLs counted down as the entry's would be: what the
/// stage that answers a repeated question from its bytes keeps beside them.
#[derive(Clone, Debug)]
pub struct Lease {
    /// Gone once the entry is (replaced by a refresh, pushed out, expired
    /// and removed): then the next query goes through the cache again.
    /// Counts the answers given under the lease, which are the entry's
    /// hits too (a popular answer is refreshed early).
    pub(super) alive: Weak<AtomicU32>,
    /// When the entry was stored: its TTLs count down from then, a whole
    /// second at a time.
    pub stored: Instant,
    /// The whole seconds already counted down in the answer given.
    pub age_secs: u32,
    /// Its expiry, or, for an answer the cache would refresh early, when
    /// that refresh may begin (so the queries that would ask for it reach
    /// the cache).
    pub until: Instant,
}

impl Lease {
    /// Whether the entry still holds, and would give the same answer, at
    /// `now`; if so, the answer given again is counted as its hit.
    pub fn hit(&self, now: Instant) -> bool {
        if now >= self.until {
            return false;
        }
        match self.alive.upgrade() {
            Some(hits) => {
                hits.fetch_add(1, Relaxed);
                true
            }
            None => false,
        }
    }

    /// The whole seconds to count down, from the answer given, at `now`.
    pub fn countdown_at(&self, now: Instant) -> u32 {
        let age =
            u32::try_from(now.saturating_duration_since(self.stored).as_secs()).unwrap_or(u32::MAX);
        age.saturating_sub(self.age_secs)
    }
}

impl Lease {
    /// The lease as an answer given again from its bytes keeps it, beside
    /// thousands of others: when it was stored, in nanoseconds after
    /// `epoch` (the store's start; a lease stored before it is not kept),
    /// and its end as whole milliseconds after that, rounded down, so the
    /// kept lease never outlives this one. None for a lease longer than 49
    /// days (a u32 of milliseconds).
    pub fn kept(self, epoch: Instant) -> Option<KeptLease> {
        let stored_nanos = self.stored.checked_duration_since(epoch)?.as_nanos();
        let until_ms = self
            .until
            .saturating_duration_since(self.stored)
            .as_millis();
        Some(KeptLease {
            alive: self.alive,
            stored_nanos: u64::try_from(stored_nanos).ok()?,
            age_secs: self.age_secs,
            until_ms: u32::try_from(until_ms).ok()?,
        })
    }

    /// A lease on `hits` (the entry's hit count: dropping it is the entry
    /// going) stored at `stored` and ending at `until`.
    #[cfg(test)]
    pub fn for_tests(hits: &std::sync::Arc<AtomicU32>, stored: Instant, until: Instant) -> Lease {
        Lease {
            alive: std::sync::Arc::downgrade(hits),
            stored,
            age_secs: 0,
            until,
        }
    }
}

/// A [`Lease`] in 24 bytes instead of 48: how the stage that answers
/// repeated questions keeps one for each answer it holds. Its times are
/// counted from the store's `epoch`, which each call is given.
#[derive(Debug)]
pub struct KeptLease {
    alive: Weak<AtomicU32>,
    stored_nanos: u64,
    age_secs: u32,
    until_ms: u32,
}

impl KeptLease {
    /// The time since the entry was stored, at `now`, in nanoseconds.
    #[inline]
    fn elapsed_nanos(&self, epoch: Instant, now: Instant) -> u64 {
        let since_epoch = now.saturating_duration_since(epoch).as_nanos();
        u64::try_from(since_epoch)
            .unwrap_or(u64::MAX)
            .saturating_sub(self.stored_nanos)
    }

    #[inline]
    fn is_over_after(&self, elapsed_nanos: u64) -> bool {
        elapsed_nanos / 1_000_000 >= u64::from(self.until_ms)
    }

    /// If the entry still holds at `now`, the whole seconds to count down
    /// the answer given, as [`Lease::countdown_at`], with the answer given
    /// again counted as the entry's hit ([`Lease::hit`]); None if not.
    #[inline]
    pub fn hit(&self, epoch: Instant, now: Instant) -> Option<u32> {
        let elapsed = self.elapsed_nanos(epoch, now);
        if self.is_over_after(elapsed) {
            return None;
        }
        self.alive.upgrade()?.fetch_add(1, Relaxed);
        let age = u32::try_from(elapsed / 1_000_000_000).unwrap_or(u32::MAX);
        Some(age.saturating_sub(self.age_secs))
    }

    /// The entry is gone (replaced, pushed out, removed) or its time is
    /// up at `now`: the answer kept on this lease is never given again.
    pub fn is_over(&self, epoch: Instant, now: Instant) -> bool {
        self.is_over_after(self.elapsed_nanos(epoch, now)) || self.alive.strong_count() == 0
    }
}
