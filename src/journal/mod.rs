//! The journal: the SQLite log of every blocked attempt (device, IP,
//! person where known, time, what was blocked) that a school's head teacher
//! and designated safeguarding lead rely on.
//!
//! The resolver hands events to [`Journal`] without ever waiting on disk;
//! a single writer task ([`JournalTask`]) batches them into SQLite, and the
//! UI reads through separate read-only connections ([`JournalReader`]).

mod csv;
mod damage;
mod devices;
mod folds;
mod giving_way;
mod leases;
mod outbox;
mod read;
mod retention;
pub mod reverse;
mod schema;
mod stats;
mod store;
mod writer;

#[cfg(test)]
mod tests;

pub use csv::write_csv;
pub use damage::{DamageReport, is_damaged, set_aside};
pub use devices::{DeviceDirectory, DeviceEntry, DeviceInfo, ReverseLookup};
#[cfg(test)]
pub use folds::COUNTED_HERE;
pub use folds::{FoldTicket, Folds, Repeat};
pub use leases::LeaseFormat;
pub use outbox::{
    Kind, Outbox, OutboxError, Progress, ShipAlert, ShipAudit, ShipBatch, shipping_progress,
};
pub use read::{AuditRow, BlockedRow, HourlyRow, JournalReader, LogFilter, query_blocked};
pub use retention::PruneReport;
pub use schema::SCHEMA_VERSION;
pub use stats::JournalStats;
pub use writer::JournalTask;

use crate::clock::{Clock, TimeZone};
use stats::Shared;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use writer::Msg;

/// One blocked lookup, built on the resolver's hot path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockEvent {
    pub at_unix_ms: i64,
    pub client: IpAddr,
    /// The listen address or VLAN label the query arrived on.
    pub listener: Option<Arc<str>>,
    pub profile: Arc<str>,
    /// Query name, lower case, no trailing dot.
    pub name: String,
    /// "A", "AAAA", "HTTPS", ...
    pub query_type: &'static str,
    pub category: Option<Arc<str>>,
    pub list: Option<Arc<str>>,
    /// `None` for hidden (licensed) lists.
    pub rule: Option<String>,
    /// "null", "nxdomain", "blockpage", "walled-garden", "special".
    pub action: &'static str,
    pub locked: bool,
}

/// Any answered lookup, blocked or not: feeds the hourly aggregates, and
/// the full query log when that is switched on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryEvent {
    pub at_unix_ms: i64,
    pub client: IpAddr,
    pub profile: String,
    pub name: String,
    pub query_type: String,
    pub blocked: bool,
    pub category: Option<String>,
}

/// Allowed lookups counted for the hourly figures without an event each
/// (an event per lookup cost more than answering it). The writer takes the
/// counts at least once a second and with every batch, into the hour it
/// takes them in. Only the full query log, which keeps names, sends
/// [`QueryEvent`]s for allowed lookups instead.
#[derive(Clone, Default)]
pub struct LookupTally {
    slots: Vec<Arc<AtomicU64>>,
}

impl LookupTally {
    /// One allowed lookup by `profile` (an index of the policy's profiles).
    #[inline]
    pub fn count(&self, profile: usize) {
        if let Some(slot) = self.slots.get(profile) {
            slot.fetch_add(1, Relaxed);
        }
    }
}

/// A change made by a person (unblocking a site, changing a profile).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub at_unix_ms: i64,
    pub actor: String,
    pub action: String,
    pub detail: String,
    pub reason: Option<String>,
}

/// One delivery of a safeguarding alert on one channel, as it ended: kept
/// so the school (and a trust's central log) can see what was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertSent {
    pub at_unix_ms: i64,
    /// The alerter's number for the message (the same on every channel).
    pub alert_id: u64,
    /// "email" or "webhook".
    pub channel: String,
    /// "sent" or "failed".
    pub outcome: String,
    pub category: String,
    /// The device as the message named it.
    pub device: String,
    /// The first site the message named; `None` when withheld (a locked
    /// list's names are never repeated).
    pub name: Option<String>,
    /// Block events the message reported.
    pub events: u64,
}

/// How the journal stores and keeps its records.
#[derive(Clone, Debug)]
pub struct JournalConfig {
    pub path: PathBuf,
    /// Also keep every lookup, not only blocked ones.
    pub full_log: bool,
    pub blocked_retention_days: u32,
    pub full_retention_days: u32,
    /// Events waiting for the writer; past this, record_* drops and counts.
    pub channel_capacity: usize,
    /// Most events per transaction.
    pub batch_max: usize,
    /// Longest an event waits before its batch is committed.
    pub flush_interval: Duration,
    /// Repeats of one lookup within this time of the first are one row.
    pub collapse_window: Duration,
    /// The zone reports and exports are shown in; storage is always UTC.
    pub time_zone: TimeZone,
    /// Events held in memory while the disk cannot be written.
    pub pending_max: usize,
    /// Longest wait between attempts while the disk cannot be written.
    pub retry_max_backoff: Duration,
    /// A damaged or foreign file (at open or found while writing) is set
    /// aside and a fresh log started, instead of failing the open (at
    /// start) or holding events until the file is mended (while running).
    pub set_aside_damaged: bool,
    /// What "now" is for retention, the hourly figures and failure times;
    /// a test sets it to prune without waiting.
    pub clock: Clock,
    /// Set while the clock cannot be trusted for retention (a Pi that
    /// booted in 1970, a jump far ahead): the daily pruning waits, so a
    /// wrong date never deletes the block log.
    pub prune_hold: Arc<std::sync::atomic::AtomicBool>,
}

impl JournalConfig {
    /// The recommended settings for a journal at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JournalConfig {
            path: path.into(),
            full_log: false,
            blocked_retention_days: 365,
            full_retention_days: 7,
            channel_capacity: 65_536,
            batch_max: 5_000,
            flush_interval: Duration::from_millis(200),
            collapse_window: Duration::from_secs(10),
            time_zone: TimeZone::EuropeLondon,
            pending_max: 200_000,
            retry_max_backoff: Duration::from_secs(5),
            set_aside_damaged: false,
            clock: Clock::system(),
            prune_hold: Arc::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("journal schema version {found} is not the {supported} this build uses")]
    SchemaMismatch { found: i64, supported: i64 },
    #[error("{0} holds tables but is not a journal database")]
    NotAJournal(PathBuf),
}

struct Inner {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
    time_zone: TimeZone,
    prune_hold: Arc<std::sync::atomic::AtomicBool>,
}

/// The resolver's handle on the journal; cheap to clone.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

impl Journal {
    /// Opens or creates the database and migrates it. Errors about the
    /// storage itself (read-only, full, missing mount) do not fail the
    /// open: DNS must keep working, so the writer keeps events in memory,
    /// reports the error in [`Journal::stats`] and retries. A file that is
    /// not a journal, or is from a newer build, fails here.
    pub fn open(
        config: JournalConfig,
        devices: DeviceDirectory,
    ) -> Result<(Journal, JournalTask), JournalError> {
        let (tx, rx) = mpsc::channel(config.channel_capacity.max(1));
        let shared = Arc::new(Shared::default());
        let time_zone = config.time_zone;
        let prune_hold = config.prune_hold.clone();
        let task = JournalTask::open(config, devices, rx, shared.clone())?;
        let inner = Inner {
            tx,
            shared,
            time_zone,
            prune_hold,
        };
        Ok((
            Journal {
                inner: Arc::new(inner),
            },
            task,
        ))
    }

    /// Holds the daily retention run while `hold` (the clock is not to be
    /// trusted with deleting records), or lets it run again.
    pub fn hold_pruning(&self, hold: bool) {
        let was = self
            .inner
            .prune_hold
            .swap(hold, std::sync::atomic::Ordering::Relaxed);
        if was != hold {
            tracing::info!(
                "block log retention {}",
                if hold {
                    "waits until the clock can be trusted"
                } else {
                    "runs again: the clock is trusted"
                }
            );
        }
    }

    /// Whether retention is held for the clock ([`Journal::hold_pruning`]).
    pub fn pruning_held(&self) -> bool {
        self.inner
            .prune_hold
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Queues a blocked attempt. Never waits and never fails: when the
    /// queue is full the event is counted as dropped.
    pub fn record_block(&self, event: BlockEvent) {
        self.record_block_folding(event, None);
    }

    /// Queues a blocked attempt with the count (`ticket`, from
    /// [`Folds::count`]) its client's later repeats are to be folded into
    /// once its row is written; as [`Journal::record_block`] otherwise. A
    /// dropped event closes the count with it.
    pub fn record_block_folding(&self, event: BlockEvent, ticket: Option<FoldTicket>) {
        if self.inner.tx.try_send(Msg::Block(event, ticket)).is_err() {
            self.inner.shared.drop_blocked(1);
        }
    }

    /// Queues an allowed lookup for the aggregates (and the full log if on).
    /// Blocked lookups are counted from `record_block`: not sent here too.
    pub fn record_query(&self, event: QueryEvent) {
        if self.inner.tx.try_send(Msg::Query(event)).is_err() {
            self.inner.shared.drop_other(1);
        }
    }

    /// Counters of allowed lookups for `profiles` (in the policy's order),
    /// for [`LookupTally::count`]. A profile keeps its counter across
    /// reloads, so nothing counted is lost when the policy changes.
    pub fn lookup_tally<'a>(&self, profiles: impl IntoIterator<Item = &'a str>) -> LookupTally {
        let mut tallies = self
            .inner
            .shared
            .tallies
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let slots = profiles
            .into_iter()
            .map(
                |profile| match tallies.iter().find(|(name, _)| name == profile) {
                    Some((_, counter)) => counter.clone(),
                    None => {
                        let counter = Arc::new(AtomicU64::new(0));
                        tallies.push((profile.to_string(), counter.clone()));
                        counter
                    }
                },
            )
            .collect();
        LookupTally { slots }
    }

    /// The allowed lookups counted so far, by profile, for tests that
    /// hold two ways of answering to the same record.
    #[cfg(test)]
    pub fn lookups_counted(&self) -> Vec<(String, u64)> {
        self.inner
            .shared
            .tallies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(profile, counter)| (profile.clone(), counter.load(Relaxed)))
            .collect()
    }

    /// Queues an audit entry, with the same never-wait guarantee.
    pub fn record_audit(&self, entry: AuditEntry) {
        if self.inner.tx.try_send(Msg::Audit(entry)).is_err() {
            self.inner.shared.drop_other(1);
            tracing::error!("journal queue full: audit entry dropped");
        }
    }

    /// Queues the record of an alert delivery, with the same guarantee.
    pub fn record_alert(&self, sent: AlertSent) {
        if self.inner.tx.try_send(Msg::Alert(sent)).is_err() {
            self.inner.shared.drop_other(1);
            tracing::error!("journal queue full: the record of an alert was dropped");
        }
    }

    pub fn stats(&self) -> JournalStats {
        self.inner.shared.snapshot()
    }

    /// Changes whenever the file is found damaged: set aside (or not), so
    /// the school can be told.
    pub fn watch_damage(&self) -> tokio::sync::watch::Receiver<Option<DamageReport>> {
        self.inner.shared.watch_damage()
    }

    pub fn time_zone(&self) -> TimeZone {
        self.inner.time_zone
    }

    /// Resolves once everything recorded before the call is committed (or
    /// counted as dropped). While the disk cannot be written it waits for
    /// recovery, so shutdown code should bound it with a timeout.
    pub fn flush(&self) -> impl Future<Output = ()> + Send + 'static {
        let tx = self.inner.tx.clone();
        async move {
            let (done, wait) = oneshot::channel();
            if tx.send(Msg::Flush(done)).await.is_ok() {
                let _ = wait.await;
            }
        }
    }

    /// Puts a reload's retention periods and device names in force: the
    /// next retention run and the next logged block use them.
    pub fn retune(
        &self,
        blocked_retention_days: u32,
        full_retention_days: u32,
        full_log: bool,
        devices: DeviceDirectory,
    ) -> impl Future<Output = bool> + Send + 'static {
        let tx = self.inner.tx.clone();
        let retune = writer::Retune {
            blocked_retention_days,
            full_retention_days,
            full_log,
            devices,
        };
        async move { tx.send(Msg::Retune(retune)).await.is_ok() }
    }

    /// Runs retention now instead of waiting for the daily run, unless it
    /// is held (then the report says so and nothing is deleted). `None` if
    /// the writer has stopped.
    pub fn prune_now(&self) -> impl Future<Output = Option<PruneReport>> + Send + 'static {
        let tx = self.inner.tx.clone();
        async move {
            let (done, wait) = oneshot::channel();
            tx.send(Msg::Prune(done)).await.ok()?;
            wait.await.ok()
        }
    }
}
