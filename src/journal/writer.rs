//! The writer task: the only owner of the journal's write connection. It
//! drains the resolver's queue into batches, commits each in one
//! transaction on a blocking thread, and rides out a full or read-only disk
//! by holding events in memory and retrying with backoff.
//!
//! The queue is drained even while SQLite works, so the resolver's
//! `try_send` only fails when both the queue and the memory buffer are full.

use super::damage::is_damaged;
use super::folds::FoldTicket;
use super::giving_way::GivingWay;
use super::retention::{PruneJob, PruneReport};
use super::schema::{describe, is_storage_error};
use super::stats::Shared;
use super::store::{BatchOutcome, Item, Store};
use super::{
    AlertSent, AuditEntry, BlockEvent, DeviceDirectory, JournalConfig, JournalError, QueryEvent,
};
use crate::clock::format_utc;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::time::sleep_until;

mod set_aside;

pub enum Msg {
    Block(BlockEvent, Option<FoldTicket>),
    Query(QueryEvent),
    Audit(AuditEntry),
    Alert(AlertSent),
    Flush(oneshot::Sender<()>),
    Prune(oneshot::Sender<PruneReport>),
    /// A reload's retention periods and device names.
    Retune(Retune),
}

/// What a reload changes in a running journal.
pub struct Retune {
    pub blocked_retention_days: u32,
    pub full_retention_days: u32,
    pub full_log: bool,
    pub devices: DeviceDirectory,
}

/// Retention runs this long after start, then daily, so that a restart
/// loop does not prune on every boot before the resolver is serving.
const FIRST_PRUNE_AFTER: Duration = Duration::from_secs(60);
const PRUNE_EVERY: Duration = Duration::from_secs(24 * 3600);
/// How soon a retention run held for an untrusted clock is looked at again.
const PRUNE_HELD_RETRY: Duration = Duration::from_secs(600);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// After this many failures in a row the file is reopened: it may sit on
/// a remounted filesystem now.
const REOPEN_EVERY: u32 = 3;
/// A batch of one that still fails this often, for a reason other than
/// storage, holds an event SQLite will never take; it is dropped.
const POISON_ATTEMPTS: u32 = 5;
/// At shutdown, attempts before unwritable events are given up.
const SHUTDOWN_ATTEMPTS: u32 = 5;
const DROP_LOG_EVERY: Duration = Duration::from_secs(10);
const MAX_WAIT: Duration = Duration::from_secs(3600);
/// While a batch is open, events are left to pile up in the channel this
/// long and then taken together: under load a wake-up per event (a thread
/// switch) cost more than the event itself.
const GATHER: Duration = Duration::from_millis(10);
/// How often the writer takes the counts of allowed lookups into the
/// hourly figures (so a lookup may count in the next hour by up to this
/// much) and has the repeats of rows whose window has ended written.
const ROUND_EVERY: Duration = Duration::from_secs(1);
/// The longest the log's work gives way to answering: past this the
/// machine is busy (answers alone, or anything else) and the work goes on
/// at the normal priority, so the log falls at most this far behind.
const LONGEST_GIVING_WAY: Duration = Duration::from_millis(50);

struct Failure {
    since_ms: i64,
    attempts: u32,
    backoff: Duration,
    retry_at: Instant,
}

/// The writer future's state; spawn [`JournalTask::run`] on the runtime.
pub struct JournalTask {
    rx: mpsc::Receiver<Msg>,
    shared: Arc<Shared>,
    store: Arc<Mutex<Store>>,
    /// The store's work at the idle priority while answers want the CPU.
    giving_way: Arc<GivingWay>,
    pending: VecDeque<Item>,
    in_flight: usize,
    /// Events committed or given up since start; flush waiters wait for it.
    done_seq: u64,
    waiters: Vec<(u64, oneshot::Sender<()>)>,
    prune: Option<PruneJob>,
    prune_waiters: Vec<oneshot::Sender<PruneReport>>,
    next_prune: Instant,
    batch_started: Option<Instant>,
    next_round: Instant,
    /// The store holds repeats not yet written to their rows.
    repeats_unwritten: bool,
    /// Rows have repeats counted where they are answered (see
    /// `super::folds`): taken every flush interval, as their events would
    /// have been written.
    folds_open: bool,
    next_fold_take: Instant,
    /// Set by the first repeat counted in a fold since the last take.
    fold_signal: Arc<std::sync::atomic::AtomicBool>,
    failing: Option<Failure>,
    attempt_size: usize,
    closed: bool,
    config: JournalConfig,
    drops_logged: u64,
    drop_logged_at: Instant,
}

impl JournalTask {
    pub(super) fn open(
        config: JournalConfig,
        devices: DeviceDirectory,
        rx: mpsc::Receiver<Msg>,
        shared: Arc<Shared>,
    ) -> Result<Self, JournalError> {
        let mut config = config;
        // Bounded so that deadline arithmetic on Instant cannot overflow.
        config.flush_interval = config.flush_interval.min(MAX_WAIT);
        config.retry_max_backoff = config.retry_max_backoff.min(MAX_WAIT);
        let collapse_ms = config.collapse_window.as_millis().min(i64::MAX as u128) as i64;
        let store = Store::new(config.path.clone(), devices, collapse_ms, config.full_log);
        let fold_signal = store.fold_signal();
        let store = Arc::new(Mutex::new(store));
        let mut task = JournalTask {
            rx,
            shared,
            store: store.clone(),
            giving_way: Arc::default(),
            pending: VecDeque::new(),
            in_flight: 0,
            done_seq: 0,
            waiters: Vec::new(),
            prune: None,
            prune_waiters: Vec::new(),
            next_prune: Instant::now() + FIRST_PRUNE_AFTER,
            batch_started: None,
            next_round: Instant::now() + ROUND_EVERY,
            repeats_unwritten: false,
            folds_open: false,
            next_fold_take: Instant::now(),
            fold_signal,
            failing: None,
            attempt_size: config.batch_max.max(1),
            closed: false,
            config,
            drops_logged: 0,
            drop_logged_at: Instant::now(),
        };
        let opened = {
            let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
            let opened = store.ensure_open().map(|_| ());
            task.shared.set_db_bytes(store.db_bytes());
            opened
        };
        let opened = match opened {
            Err(e) if task.config.set_aside_damaged && is_damaged(&e) => {
                let clock = task.config.clock.clone();
                let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
                let kept = store.set_aside(&clock);
                let replaced = kept.is_ok();
                task.on_damage(&e, kept);
                if replaced {
                    store.ensure_open().map(|_| ())
                } else {
                    Ok(())
                }
            }
            other => other,
        };
        match opened {
            Ok(()) => Ok(task),
            Err(e) if is_storage_error(&e) => {
                task.note_failure(&e);
                Ok(task)
            }
            Err(e) => Err(e),
        }
    }

    /// Runs until every [`super::Journal`] handle is dropped and the
    /// remaining events are written (or, if the disk stays unwritable,
    /// given up after a few attempts).
    pub async fn run(mut self) {
        loop {
            let now = Instant::now();
            if now >= self.next_round || self.closed {
                self.take_tally(now);
                self.take_repeats();
            }
            if self.folds_open && now >= self.next_fold_take && self.failing.is_none() {
                self.take_folds(now);
            }
            if self.write_due(now) {
                self.write_batch().await;
                continue;
            }
            // Retention is abandoned at shutdown; it runs again next start.
            if self.closed && self.pending.is_empty() {
                break;
            }
            let may_retry = self.failing.as_ref().is_none_or(|f| now >= f.retry_at);
            if may_retry && self.prune_due(now) {
                self.prune_step().await;
                continue;
            }
            let deadline = self.next_wakeup(now);
            if !self.pending.is_empty() && !self.closed && self.failing.is_none() {
                sleep_until(deadline.min(now + GATHER).into()).await;
                self.take_queued();
                continue;
            }
            tokio::select! {
                msg = self.rx.recv(), if !self.closed => self.accept(msg),
                _ = sleep_until(deadline.into()) => {}
            }
        }
        // Closing checkpoints the WAL into the file: disk work, so not on
        // the runtime's own thread.
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || {
            store.lock().unwrap_or_else(PoisonError::into_inner).close()
        })
        .await;
        self.finish_waiters();
    }

    fn write_due(&self, now: Instant) -> bool {
        if self.pending.is_empty() {
            return false;
        }
        if let Some(f) = &self.failing {
            return now >= f.retry_at;
        }
        self.closed
            || self.pending.len() >= self.config.batch_max.max(1)
            || !self.waiters.is_empty()
            || self
                .batch_started
                .is_some_and(|t| now >= t + self.config.flush_interval)
    }

    fn prune_due(&mut self, now: Instant) -> bool {
        if self.prune.is_none() && now >= self.next_prune {
            if self
                .config
                .prune_hold
                .load(std::sync::atomic::Ordering::Relaxed)
            {
                // Looked at again soon: the clock may be set any minute.
                self.next_prune = now + PRUNE_HELD_RETRY;
            } else {
                self.next_prune = now + PRUNE_EVERY;
                self.start_prune();
            }
        }
        self.prune.is_some()
    }

    fn start_prune(&mut self) {
        self.prune = Some(PruneJob::new(
            self.config.clock.now_unix_ms(),
            self.config.blocked_retention_days,
            self.config.full_retention_days,
        ));
    }

    fn next_wakeup(&self, now: Instant) -> Instant {
        let mut at = (now + MAX_WAIT).min(self.next_round);
        if let Some(f) = &self.failing {
            if !self.pending.is_empty() || self.prune.is_some() {
                at = at.min(f.retry_at);
            }
        } else {
            at = at.min(self.next_prune);
            if self.folds_open {
                at = at.min(self.next_fold_take);
            }
            if let Some(t) = self.batch_started {
                at = at.min(t + self.config.flush_interval);
            }
        }
        at
    }

    fn accept(&mut self, msg: Option<Msg>) {
        let Some(mut msg) = msg else {
            self.closed = true;
            return;
        };
        // Take whatever else is already queued, to spare a wake-up per event.
        let mut budget = self.config.batch_max.max(1);
        loop {
            self.handle(msg);
            budget -= 1;
            if budget == 0 {
                break;
            }
            match self.rx.try_recv() {
                Ok(next) => msg = next,
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.closed = true;
                    break;
                }
            }
        }
        self.publish_pending();
    }

    /// Takes every event already queued, without waiting.
    fn take_queued(&mut self) {
        match self.rx.try_recv() {
            Ok(msg) => self.accept(Some(msg)),
            Err(mpsc::error::TryRecvError::Empty) => {}
            Err(mpsc::error::TryRecvError::Disconnected) => self.closed = true,
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Block(ev, ticket) => self.push(Item::Block(ev, ticket)),
            Msg::Query(q) => self.push(Item::Query(q)),
            Msg::Audit(a) => self.push(Item::Audit(a)),
            Msg::Alert(a) => self.push(Item::Alert(a)),
            Msg::Flush(done) => {
                self.take_tally(Instant::now());
                // Always: a batch still being written may leave repeats
                // in memory that this flush must see written, windows
                // ended or not.
                self.push(Item::Repeats {
                    now_unix_ms: i64::MAX,
                });
                let target = self.done_seq + (self.in_flight + self.pending.len()) as u64;
                self.waiters.push((target, done));
                self.finish_waiters();
            }
            Msg::Prune(done) => {
                // Asked for or daily, a run with a wrong date would delete
                // the block log all the same.
                if self
                    .config
                    .prune_hold
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    let _ = done.send(PruneReport {
                        held: true,
                        ..PruneReport::default()
                    });
                    return;
                }
                self.prune_waiters.push(done);
                if self.prune.is_none() {
                    self.start_prune();
                }
            }
            Msg::Retune(retune) => {
                self.config.blocked_retention_days = retune.blocked_retention_days;
                self.config.full_retention_days = retune.full_retention_days;
                self.config.full_log = retune.full_log;
                // A batch being written holds the store for a moment; the
                // new names and logging apply from the next batch.
                let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
                store.set_devices(retune.devices);
                store.set_full_log(retune.full_log);
            }
        }
    }

    /// Has the store write, with the next batch, the repeats it holds for
    /// rows whose collapse window has ended (each row then takes one
    /// UPDATE for all its repeats), or all of them at shutdown.
    fn take_repeats(&mut self) {
        if std::mem::take(&mut self.repeats_unwritten) || (self.closed && self.folds_open) {
            let now_unix_ms = if self.closed {
                i64::MAX
            } else {
                self.config.clock.now_unix_ms()
            };
            self.push(Item::Repeats { now_unix_ms });
        }
    }

    /// Has the next batch, written at once if nothing else waits, take
    /// the repeats counted where they were answered, if any were: so they
    /// reach the log within the flush interval, as their events would have.
    fn take_folds(&mut self, now: Instant) {
        self.next_fold_take = now + self.config.flush_interval;
        // Nothing counted since the last take: nothing to write.
        if !self.fold_signal.swap(false, Relaxed) {
            return;
        }
        let alone = self.pending.is_empty();
        self.push(Item::Repeats {
            now_unix_ms: self.config.clock.now_unix_ms(),
        });
        if alone && !self.pending.is_empty() {
            self.batch_started = Some(now.checked_sub(self.config.flush_interval).unwrap_or(now));
        }
        self.publish_pending();
    }

    /// Moves the allowed lookups counted since the last time into the
    /// queue, as one item per profile for the hour it is now.
    fn take_tally(&mut self, now: Instant) {
        self.next_round = now + ROUND_EVERY;
        let hour_unix_ms = self.config.clock.now_unix_ms().div_euclid(3_600_000) * 3_600_000;
        let counts: Vec<(String, u64)> = self
            .shared
            .tallies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|(profile, counter)| {
                let count = counter.swap(0, Relaxed);
                (count > 0).then(|| (profile.clone(), count))
            })
            .collect();
        for (profile, count) in counts {
            self.push(Item::Lookups {
                hour_unix_ms,
                profile,
                count,
            });
        }
    }

    fn push(&mut self, item: Item) {
        if self.pending.len() + self.in_flight >= self.config.pending_max.max(1) {
            self.shared.drop_item(&item);
            return;
        }
        if self.pending.is_empty() {
            self.batch_started = Some(Instant::now());
        }
        self.pending.push_back(item);
    }

    fn publish_pending(&self) {
        let n = (self.pending.len() + self.in_flight) as u64;
        self.shared.set_pending(n);
    }

    /// Runs `f` on a blocking thread while still draining the queue, giving
    /// way to answering unless the log has fallen a batch behind.
    async fn blocking<T, F>(&mut self, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> T + Send + 'static,
    {
        let store = self.store.clone();
        let giving_way = self.giving_way.clone();
        let started = Instant::now();
        let handle = tokio::task::spawn_blocking({
            let giving_way = giving_way.clone();
            let behind = self.behind();
            move || {
                giving_way.run(behind, || {
                    let mut guard = store.lock().unwrap_or_else(PoisonError::into_inner);
                    f(&mut guard)
                })
            }
        });
        tokio::pin!(handle);
        // The queue is emptied every GATHER rather than on each event: a
        // wake-up per event costs the DNS threads more than the event.
        loop {
            tokio::select! {
                res = &mut handle => return res.ok(),
                _ = tokio::time::sleep(GATHER), if !self.closed => {
                    self.take_queued();
                    if self.behind() || started.elapsed() >= LONGEST_GIVING_WAY {
                        giving_way.stop();
                    }
                }
            }
        }
    }

    /// Whether the log's work must not give way: a batch or more waiting
    /// behind it, or closing.
    fn behind(&self) -> bool {
        self.closed || self.pending.len() + self.rx.len() >= self.config.batch_max.max(1)
    }

    async fn write_batch(&mut self) {
        let n = self.pending.len().min(self.attempt_size);
        let batch: Vec<Item> = self.pending.drain(..n).collect();
        self.in_flight = n;
        self.batch_started = (!self.pending.is_empty()).then(Instant::now);
        let reopen = self
            .failing
            .as_ref()
            .is_some_and(|f| f.attempts > 0 && f.attempts % REOPEN_EVERY == 0);
        let recovering = self.failing.is_some();
        let set_aside = self.config.set_aside_damaged;
        let clock = self.config.clock.clone();
        let result = self
            .blocking(move |store| {
                if reopen {
                    store.close();
                }
                let result = store.write(&batch);
                if result.is_ok() && recovering {
                    store.checkpoint();
                }
                // Moved aside here, off the runtime's threads: renames can
                // wait on a struggling SD card.
                let kept = match &result {
                    Err(e) if set_aside && is_damaged(e) => Some(store.set_aside(&clock)),
                    _ => None,
                };
                (batch, result, store.db_bytes(), kept)
            })
            .await;
        self.in_flight = 0;
        match result {
            Some((_, Ok(outcome), bytes, _)) => self.on_written(n, outcome, bytes),
            Some((batch, Err(e), bytes, Some(kept))) => {
                self.shared.set_db_bytes(bytes);
                // Nothing in the batch reached the damaged file's
                // replacement: all of it goes again, into the fresh log.
                for item in batch.into_iter().rev() {
                    self.pending.push_front(item);
                }
                self.batch_started.get_or_insert_with(Instant::now);
                self.on_damage(&e, kept);
                self.give_up_if_closing();
            }
            Some((batch, Err(e), bytes, None)) => {
                self.shared.set_db_bytes(bytes);
                let poison = batch.len() == 1
                    && !is_storage_error(&e)
                    && self
                        .failing
                        .as_ref()
                        .is_some_and(|f| f.attempts + 1 >= POISON_ATTEMPTS);
                if poison {
                    tracing::error!(error = %e, "journal event rejected by SQLite; dropped");
                    batch.iter().for_each(|item| self.shared.drop_item(item));
                    self.done_seq += 1;
                } else {
                    for item in batch.into_iter().rev() {
                        self.pending.push_front(item);
                    }
                    self.batch_started.get_or_insert_with(Instant::now);
                }
                self.note_failure(&e);
                self.give_up_if_closing();
            }
            None => {
                // The blocking thread panicked: the batch went with it.
                tracing::error!(events = n, "journal writer thread panicked; batch lost");
                self.shared.drop_other(n as u64);
                self.done_seq += n as u64;
            }
        }
        self.publish_pending();
        self.finish_waiters();
        self.log_drops();
    }

    fn on_written(&mut self, n: usize, outcome: BatchOutcome, bytes: u64) {
        self.done_seq += n as u64;
        self.repeats_unwritten = outcome.repeats_unwritten;
        self.folds_open = outcome.folds_open;
        self.shared
            .add_batch(outcome.events, outcome.blocked_events, bytes);
        self.attempt_size = self.config.batch_max.max(1);
        self.recovered();
    }

    fn recovered(&mut self) {
        if let Some(f) = self.failing.take() {
            tracing::info!(
                since = %format_utc(f.since_ms),
                attempts = f.attempts,
                "journal writing again"
            );
            self.shared.set_error(None, None);
        }
    }

    fn note_failure(&mut self, e: &JournalError) {
        let now = Instant::now();
        let f = self.failing.get_or_insert(Failure {
            since_ms: self.config.clock.now_unix_ms(),
            attempts: 0,
            backoff: Duration::ZERO,
            retry_at: now,
        });
        f.attempts += 1;
        f.backoff = if f.backoff.is_zero() {
            FIRST_BACKOFF
        } else {
            (f.backoff * 2).min(self.config.retry_max_backoff.max(FIRST_BACKOFF))
        };
        f.retry_at = now + f.backoff;
        // Less at a time gets through when only a little space comes back.
        self.attempt_size = (self.attempt_size / 2).max(1);
        let message = format!("{} (since {})", describe(e), format_utc(f.since_ms));
        if f.attempts == 1 {
            tracing::error!(error = %message, "journal cannot write; holding events in memory");
        } else if f.attempts.is_power_of_two() {
            tracing::warn!(error = %message, attempts = f.attempts, "journal still cannot write");
        }
        let since = f.since_ms;
        self.shared.set_error(Some(message), Some(since));
    }

    fn give_up_if_closing(&mut self) {
        let attempts = self.failing.as_ref().map_or(0, |f| f.attempts);
        if !self.closed || attempts < SHUTDOWN_ATTEMPTS {
            return;
        }
        tracing::error!(
            events = self.pending.len(),
            "journal shutting down with events it could not write"
        );
        for item in self.pending.drain(..) {
            self.shared.drop_item(&item);
            self.done_seq += 1;
        }
    }

    async fn prune_step(&mut self) {
        let Some(mut job) = self.prune.take() else {
            return;
        };
        let result = self
            .blocking(move |store| {
                let r = store.prune_step(&mut job);
                (job, r, store.db_bytes())
            })
            .await;
        match result {
            Some((job, Ok(()), bytes)) => {
                self.shared.set_db_bytes(bytes);
                self.recovered();
                if job.is_done() {
                    tracing::info!(report = ?job.report, "journal retention done");
                    for done in self.prune_waiters.drain(..) {
                        let _ = done.send(job.report.clone());
                    }
                } else {
                    self.prune = Some(job);
                }
            }
            Some((job, Err(e), _)) => {
                self.prune = Some(job);
                self.note_failure(&e);
            }
            None => {
                // Waiters see `None` rather than hang; the daily run retries.
                tracing::error!("journal retention thread panicked");
                self.prune_waiters.clear();
            }
        }
    }

    fn finish_waiters(&mut self) {
        let done = self.done_seq;
        let everything = self.closed && self.pending.is_empty() && self.in_flight == 0;
        let (ready, waiting): (Vec<_>, Vec<_>) = self
            .waiters
            .drain(..)
            .partition(|(seq, _)| everything || *seq <= done);
        self.waiters = waiting;
        for (_, tx) in ready {
            let _ = tx.send(());
        }
    }

    fn log_drops(&mut self) {
        let dropped = self.shared.dropped();
        if dropped > self.drops_logged && self.drop_logged_at.elapsed() >= DROP_LOG_EVERY {
            tracing::warn!(
                dropped_since_last = dropped - self.drops_logged,
                "journal dropped events: queue or memory buffer full"
            );
            self.drops_logged = dropped;
            self.drop_logged_at = Instant::now();
        }
    }
}
