//! The journal's health figures: counters the writer updates and any
//! handle reads at once, without waiting on the writer or the disk.

use super::damage::DamageReport;
use super::store::Item;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

/// What the writer has done, for the status page and monitoring.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JournalStats {
    /// Events committed (blocked, query and audit).
    pub written: u64,
    pub blocked_written: u64,
    /// Events lost: queue full, memory buffer full, or given up at shutdown.
    pub dropped: u64,
    pub blocked_dropped: u64,
    pub batches: u64,
    /// Events received but not yet committed.
    pub pending: u64,
    /// The database file plus its WAL.
    pub db_bytes: u64,
    /// The most recent write failure, kept after recovery so it can be
    /// reported, e.g. "disk full: ... (since 2025-06-01T10:00:00Z)".
    pub last_error: Option<String>,
    /// Set while writes are failing.
    pub failing_since_unix_ms: Option<i64>,
    /// The last time the file was found damaged, if ever since start.
    pub damage: Option<DamageReport>,
    /// Damaged files set aside since start.
    pub set_aside: u64,
}

impl JournalStats {
    /// The file is damaged and could not be replaced: nothing is saved.
    pub fn degraded(&self) -> bool {
        self.damage.as_ref().is_some_and(DamageReport::degraded)
    }
}

/// Counters the handle reads without touching the writer.
pub struct Shared {
    written: AtomicU64,
    blocked_written: AtomicU64,
    dropped: AtomicU64,
    blocked_dropped: AtomicU64,
    batches: AtomicU64,
    pending: AtomicU64,
    db_bytes: AtomicU64,
    error: Mutex<(Option<String>, Option<i64>)>,
    set_aside: AtomicU64,
    /// Whoever must tell the school (the alerts) watches this.
    damage: tokio::sync::watch::Sender<Option<DamageReport>>,
    /// Each profile's allowed lookups not yet taken by the writer.
    pub tallies: Mutex<Vec<(String, Arc<AtomicU64>)>>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            written: AtomicU64::new(0),
            blocked_written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            blocked_dropped: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            db_bytes: AtomicU64::new(0),
            error: Mutex::new((None, None)),
            set_aside: AtomicU64::new(0),
            damage: tokio::sync::watch::Sender::new(None),
            tallies: Mutex::new(Vec::new()),
        }
    }
}

impl Shared {
    /// Records what was found and done about a damaged file.
    pub fn set_damage(&self, report: DamageReport) {
        if report.kept_as.is_some() {
            self.set_aside.fetch_add(1, Relaxed);
        }
        self.damage.send_replace(Some(report));
    }

    pub fn watch_damage(&self) -> tokio::sync::watch::Receiver<Option<DamageReport>> {
        self.damage.subscribe()
    }

    pub fn drop_blocked(&self, n: u64) {
        self.dropped.fetch_add(n, Relaxed);
        self.blocked_dropped.fetch_add(n, Relaxed);
    }

    pub fn drop_other(&self, n: u64) {
        self.dropped.fetch_add(n, Relaxed);
    }

    pub fn drop_item(&self, item: &Item) {
        match item {
            Item::Block(..) => self.drop_blocked(1),
            Item::Lookups { count, .. } => self.drop_other(*count),
            Item::Repeats { .. } => {}
            _ => self.drop_other(1),
        }
    }

    pub fn set_error(&self, message: Option<String>, since: Option<i64>) {
        let mut slot = self.error.lock().unwrap_or_else(PoisonError::into_inner);
        if message.is_some() {
            slot.0 = message;
        }
        slot.1 = since;
    }

    pub fn add_batch(&self, events: u64, blocked_events: u64, db_bytes: u64) {
        self.written.fetch_add(events, Relaxed);
        self.blocked_written.fetch_add(blocked_events, Relaxed);
        self.batches.fetch_add(1, Relaxed);
        self.db_bytes.store(db_bytes, Relaxed);
    }

    pub fn set_db_bytes(&self, bytes: u64) {
        self.db_bytes.store(bytes, Relaxed);
    }

    pub fn set_pending(&self, n: u64) {
        self.pending.store(n, Relaxed);
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    pub fn snapshot(&self) -> JournalStats {
        let (last_error, failing_since_unix_ms) = self
            .error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        JournalStats {
            written: self.written.load(Relaxed),
            blocked_written: self.blocked_written.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            blocked_dropped: self.blocked_dropped.load(Relaxed),
            batches: self.batches.load(Relaxed),
            pending: self.pending.load(Relaxed),
            db_bytes: self.db_bytes.load(Relaxed),
            last_error,
            failing_since_unix_ms,
            damage: self.damage.borrow().clone(),
            set_aside: self.set_aside.load(Relaxed),
        }
    }
}
