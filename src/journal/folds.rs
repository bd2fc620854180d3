//! Repeats of a blocked lookup counted where they are answered: one
//! client's repeats of one kept blocked answer (the repeated-question
//! stage's entry holds its [`Folds`]) add one to a count under a lock
//! nobody else waits on, and the block log's writer takes the count into
//! the lookup's row, instead of each repeat crossing the writer's queue as
//! an event of its own and being matched to its row there.
//!
//! A count holds only repeats the writer would have put into that row
//! itself, so the rows, their counts and times, and the hourly figures are
//! what the events would have made:
//! - The count is opened by the writer once the event that asked for it is
//!   in a row, with that row's window: from its first attempt for the
//!   collapse window, and never past the end of that hour (the hourly
//!   figures count a repeat in the hour it happened). A repeat outside the
//!   window, or before the count is opened, goes as an event, as before.
//! - The writer takes what is counted with each batch (and every flush
//!   interval in which any count was made), and closes a count, taking
//!   what it holds under the same lock, when the row's window has ended or
//!   before it forgets the row; after that the next repeat goes as an event
//!   and asks for a new count. An event that never reaches a row (dropped
//!   by a full queue) closes the count it asked for.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use foldhash::fast::RandomState;

/// Clients counted apart for one kept blocked answer; past this a new
/// client's repeats go as events.
const CLIENTS_MAX: usize = 4_096;

type Table = HashMap<IpAddr, Arc<Fold>, RandomState>;

#[cfg(test)]
thread_local! {
    /// Repeats this thread has counted in folds, for tests that must see
    /// folding happen.
    pub static COUNTED_HERE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The counts of one blocked lookup's repeats, by client. A clone shares
/// the same counts.
#[derive(Default, Clone)]
pub struct Folds {
    table: Arc<Mutex<Table>>,
}

/// What became of a repeat offered to [`Folds::count`].
pub enum Repeat {
    /// Counted: it reaches the block log with its row's other repeats.
    Counted,
    /// Not counted: send it as an event, with the ticket if there is one
    /// (the writer then opens a count for this client's later repeats).
    Send(Option<FoldTicket>),
}

/// One client's repeats of one blocked lookup, not yet taken by the writer.
pub struct Fold {
    state: Mutex<State>,
    /// Set with each count and cleared by the writer's take, so a take
    /// finds a fold nobody counted in without its lock.
    counted: AtomicBool,
    /// The hourly figures' profile and category for these repeats.
    profile: Arc<str>,
    category: Option<Arc<str>>,
    client: IpAddr,
    table: Weak<Mutex<Table>>,
}

#[derive(Default)]
struct State {
    /// The row's window, `from_ms` inclusive, `until_ms` exclusive; set
    /// once the row exists.
    opened: bool,
    /// The writer's signal that some fold has counted since its last take.
    signal: Option<Arc<AtomicBool>>,
    from_ms: i64,
    until_ms: i64,
    count: u64,
    last_at: i64,
    closed: bool,
}

/// What the writer takes from a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    pub count: u64,
    /// The latest repeat counted (meaningless when `count` is 0).
    pub last_at: i64,
    /// The start of the hour every counted repeat fell in.
    pub hour_unix_ms: i64,
}

/// Repeats the writer has taken from the folds and not yet committed:
/// their hourly figures (hour, profile, category) and how many events
/// they stand for.
#[derive(Default)]
pub(super) struct Folded {
    pub hourly: HashMap<HourKey, i64, RandomState>,
    pub events: u64,
}

type HourKey = (i64, Arc<str>, Option<Arc<str>>);

impl Folded {
    /// Adds what was `taken` from `fold`; gives its count.
    pub fn add(&mut self, fold: &Fold, taken: Taken) -> i64 {
        let count = i64::try_from(taken.count).unwrap_or(i64::MAX);
        let key = (
            taken.hour_unix_ms,
            fold.profile.clone(),
            fold.category.clone(),
        );
        *self.hourly.entry(key).or_default() += count;
        self.events += taken.count;
        count
    }

    pub fn merge(&mut self, other: Folded) {
        for (key, n) in other.hourly {
            *self.hourly.entry(key).or_default() += n;
        }
        self.events += other.events;
    }
}

/// Carried by the event that asked for a count, to the writer, which opens
/// it with the event's row; dropped unopened (the event was dropped, or
/// never written), it closes the count, so later repeats go as events.
pub struct FoldTicket {
    fold: Arc<Fold>,
    attached: AtomicBool,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn hour_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(3_600_000) * 3_600_000
}

impl Folds {
    /// Counts a repeat by `client` at `at_ms`, if its count is open and the
    /// time falls in its row's window; otherwise says to send the event,
    /// with a ticket for a new count when this client has none that can
    /// still be opened. `profile` and `category` are the event's.
    pub fn count(
        &self,
        client: IpAddr,
        at_ms: i64,
        profile: &Arc<str>,
        category: &Option<Arc<str>>,
    ) -> Repeat {
        let mut table = locked(&self.table);
        if let Some(fold) = table.get(&client) {
            let mut state = locked(&fold.state);
            if !state.closed && state.from_ms <= at_ms && at_ms < state.until_ms {
                state.count += 1;
                state.last_at = state.last_at.max(at_ms);
                if !fold.counted.load(Relaxed) {
                    fold.counted.store(true, Relaxed);
                    if let Some(signal) = &state.signal
                        && !signal.load(Relaxed)
                    {
                        signal.store(true, Relaxed);
                    }
                }
                #[cfg(test)]
                COUNTED_HERE.with(|n| n.set(n.get() + 1));
                return Repeat::Counted;
            }
            if !state.closed && !state.opened {
                // Its event has not reached its row yet.
                return Repeat::Send(None);
            }
            // Closed, or this repeat is outside the row's window: it makes
            // or finds another row, which gets a count of its own. The
            // writer still holds the old count and takes what it has.
            drop(state);
            table.remove(&client);
        }
        if table.len() >= CLIENTS_MAX {
            return Repeat::Send(None);
        }
        let fold = Arc::new(Fold {
            state: Mutex::default(),
            counted: AtomicBool::new(false),
            profile: profile.clone(),
            category: category.clone(),
            client,
            table: Arc::downgrade(&self.table),
        });
        table.insert(client, fold.clone());
        Repeat::Send(Some(FoldTicket {
            fold,
            attached: AtomicBool::new(false),
        }))
    }

    /// Clients with a count, open or waiting for its row.
    pub fn len(&self) -> usize {
        locked(&self.table).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for Folds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Folds")
            .field("clients", &self.len())
            .finish()
    }
}

impl FoldTicket {
    /// The count, for the writer to open with its row once the row is
    /// committed; the first call only (a batch is written once).
    pub(super) fn attach(&self) -> Option<Arc<Fold>> {
        (!self.attached.swap(true, Relaxed)).then(|| self.fold.clone())
    }
}

impl Drop for FoldTicket {
    fn drop(&mut self) {
        if !*self.attached.get_mut() {
            self.fold.take(true);
        }
    }
}

impl Fold {
    /// Counts from now on the repeats at or after `from_ms` (the row's
    /// first attempt) and before `until_ms` (its window's end, or the end
    /// of that hour, whichever is first), setting `signal` with the first
    /// count after each take.
    pub(super) fn open(&self, from_ms: i64, until_ms: i64, signal: &Arc<AtomicBool>) {
        let mut state = locked(&self.state);
        state.opened = true;
        state.signal = Some(signal.clone());
        state.from_ms = from_ms;
        state.until_ms = until_ms.min(hour_of(from_ms).saturating_add(3_600_000));
    }

    /// What has been counted since the last time, and, when `close`, no
    /// more: the client's next repeat goes as an event.
    pub(super) fn take(&self, close: bool) -> Taken {
        // Cleared before the lock: a count made after it is taken now or
        // sets it again for the next take. Only set under the lock, with
        // the count, so a clear flag means nothing waits.
        if !close && !self.counted.swap(false, Relaxed) {
            return Taken {
                count: 0,
                last_at: i64::MIN,
                hour_unix_ms: 0,
            };
        }
        let taken = {
            let mut state = locked(&self.state);
            let taken = Taken {
                count: std::mem::take(&mut state.count),
                last_at: state.last_at,
                hour_unix_ms: hour_of(state.from_ms),
            };
            state.closed |= close;
            taken
        };
        if close && let Some(table) = self.table.upgrade() {
            let mut table = locked(&table);
            if table
                .get(&self.client)
                .is_some_and(|fold| std::ptr::eq(Arc::as_ptr(fold), self))
            {
                table.remove(&self.client);
            }
        }
        taken
    }
}
