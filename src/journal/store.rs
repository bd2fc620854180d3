//! Turns one batch of events into rows: which blocked lookups are new
//! rows and which are retries of a row (collapsing browser retries), kept
//! in a memory of recent rows; the transaction itself is `commit.rs`.
//! Retries of a row already written, sent as events or counted where they
//! were answered ([`super::folds`]), are counted in memory and added to it
//! once its collapse window has ended (one UPDATE for all of them), or at
//! a flush.
//!
//! A batch either commits whole or leaves no trace in the database, and
//! its rows enter the collapse memory only once it has, so the writer can
//! simply retry it; the repeats taken from the folds for it wait in
//! memory for the retry.

use super::devices::DeviceDirectory;
use super::folds::{Fold, FoldTicket, Folded, hour_of};
use super::retention::PruneJob;
use super::schema;
use super::{AlertSent, AuditEntry, BlockEvent, JournalError, QueryEvent};
use commit::reseed_ids;
use foldhash::{HashMap, HashMapExt};
use rusqlite::Connection;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

mod commit;

pub enum Item {
    /// A blocked lookup, and the count its client's later repeats of it
    /// may be folded into (see [`super::folds`]), opened with its row.
    Block(BlockEvent, Option<FoldTicket>),
    Query(QueryEvent),
    /// Allowed lookups of one profile in one hour, counted without events.
    Lookups {
        hour_unix_ms: i64,
        profile: String,
        count: u64,
    },
    Audit(AuditEntry),
    Alert(AlertSent),
    /// Write the repeats counted for each row whose collapse window has
    /// ended by `now_unix_ms` (every row: `i64::MAX`). Without it a batch
    /// only counts repeats of rows already written, in memory: under a
    /// flood of repeats (a browser retrying, an app polling) the updates
    /// cost the writer more than everything else it does, and a row that
    /// takes no more repeats needs one UPDATE, not one a second. The
    /// writer asks for this once a second, with every row at a flush.
    Repeats {
        now_unix_ms: i64,
    },
}

#[derive(Debug, Default, Clone, Copy)]
pub struct BatchOutcome {
    pub events: u64,
    pub blocked_events: u64,
    /// Repeats of logged lookups are counted but not yet in their rows.
    pub repeats_unwritten: bool,
    /// Rows have counts open where lookups are answered: the writer takes
    /// them at least every flush interval.
    pub folds_open: bool,
}

/// A committed row that later repeats can still be added to.
struct Recent {
    id: i64,
    first_at: i64,
    /// Repeats counted since the row was last written, and the latest.
    unwritten: i64,
    unwritten_last_at: i64,
    /// Counts of this row's repeats kept where they are answered.
    folds: Vec<Arc<Fold>>,
}

impl Recent {
    /// Takes what this row's folds have counted into its unwritten
    /// repeats (their hourly figures into `folded`); closes them all when
    /// `close`.
    fn take_folds(&mut self, close: bool, folded: &mut Folded) {
        for fold in &self.folds {
            let taken = fold.take(close);
            if taken.count == 0 {
                continue;
            }
            let count = folded.add(fold, taken);
            self.unwritten = self.unwritten.saturating_add(count);
            self.unwritten_last_at = self.unwritten_last_at.max(taken.last_at);
        }
        if close {
            self.folds.clear();
        }
    }
}

/// One row to insert or bump, standing for `count` events.
struct Op<'a> {
    key: Vec<u8>,
    /// The first of this op's events in the batch.
    event: &'a BlockEvent,
    /// A committed row to add to, if one is still within the window.
    existing: Option<i64>,
    /// When the row's window began (the existing row's first attempt).
    first_at: i64,
    last_at: i64,
    count: i64,
    id: i64,
    /// This batch added its count to the existing row.
    bumped: bool,
    /// Counts to open with the row, for its clients' later repeats.
    tickets: Vec<&'a FoldTicket>,
}

pub struct Store {
    path: PathBuf,
    conn: Option<Connection>,
    devices: DeviceDirectory,
    recent: HashMap<Vec<u8>, Recent>,
    repeats_unwritten: bool,
    latest_at: i64,
    collapse_ms: i64,
    full_log: bool,
    /// After a damaged file is set aside, the fresh file's ids start here
    /// (see [`Store::set_aside`]).
    reseed_ids_at: Option<i64>,
    /// Repeats taken from the folds, for the next commit.
    folded: Folded,
    /// Repeats of rows no longer remembered (a new row took the lookup's
    /// place), for the next commit: (id, count, latest).
    orphans: Vec<(i64, i64, i64)>,
    /// Set by a fold's first count after a take: the writer has the folds
    /// taken within the flush interval only when one was counted in.
    fold_signal: Arc<AtomicBool>,
}

const RECENT_MAX: usize = 100_000;
/// Below this many slots the collapse memory is not worth shrinking.
const RECENT_SHRINK_FLOOR: usize = 1_024;

/// Identifies "the same lookup again". Beyond the five fields that make a
/// browser retry, list, rule and action are included so that a policy
/// reload mid-window never hides which rule blocked a later attempt.
/// Bytes, not text: the client's address first, as its 4 or 16 bytes
/// after a byte saying how many; then each field as a byte saying whether
/// it is there and, if so, its length (four bytes) and its bytes, so no
/// two different events share a key. Written without the address as text,
/// as this runs for every blocked lookup sent as an event.
fn collapse_key(ev: &BlockEvent) -> Vec<u8> {
    let fields = [
        Some(ev.name.as_str()),
        Some(ev.query_type),
        Some(&*ev.profile),
        ev.category.as_deref(),
        ev.list.as_deref(),
        ev.rule.as_deref(),
        Some(ev.action),
    ];
    let mut key =
        Vec::with_capacity(fields.iter().flatten().map(|f| f.len() + 5).sum::<usize>() + 24);
    match ev.client.to_canonical() {
        IpAddr::V4(ip) => {
            key.push(4);
            key.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            key.push(16);
            key.extend_from_slice(&ip.octets());
        }
    }
    for field in fields {
        match field {
            Some(f) => {
                key.push(1);
                // A field past 4 GiB cannot be in an event; saturated all
                // the same rather than wrapped.
                key.extend_from_slice(&u32::try_from(f.len()).unwrap_or(u32::MAX).to_le_bytes());
                key.extend_from_slice(f.as_bytes());
            }
            None => key.push(0),
        }
    }
    key
}

/// The client's address as the log shows it: the canonical form's text
/// (an IPv4-mapped IPv6 address as IPv4). IPv4, nearly every client, is
/// written digit by digit, sparing the formatter (about 1,300
/// instructions a row).
pub(super) fn address_text(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V4(ip) => {
            let mut text = String::with_capacity(15);
            for (i, octet) in ip.octets().into_iter().enumerate() {
                if i > 0 {
                    text.push('.');
                }
                if octet >= 100 {
                    text.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    text.push(char::from(b'0' + octet / 10 % 10));
                }
                text.push(char::from(b'0' + octet % 10));
            }
            text
        }
        ip => ip.to_string(),
    }
}

impl Store {
    /// Names devices from `devices` from now on (a reload).
    pub fn set_devices(&mut self, devices: DeviceDirectory) {
        self.devices = devices;
    }

    /// Whether allowed lookups are written too (the opt-in full query log).
    pub fn set_full_log(&mut self, full_log: bool) {
        self.full_log = full_log;
    }

    pub fn new(path: PathBuf, devices: DeviceDirectory, collapse_ms: i64, full_log: bool) -> Self {
        Store {
            path,
            conn: None,
            devices,
            recent: HashMap::new(),
            repeats_unwritten: false,
            latest_at: i64::MIN,
            collapse_ms,
            full_log,
            reseed_ids_at: None,
            folded: Folded::default(),
            orphans: Vec::new(),
            fold_signal: Arc::default(),
        }
    }

    /// Set when a repeat has been counted in a fold since it was last
    /// cleared; the writer clears it when it has the folds taken.
    pub fn fold_signal(&self) -> Arc<AtomicBool> {
        self.fold_signal.clone()
    }

    pub fn ensure_open(&mut self) -> Result<&mut Connection, JournalError> {
        if self.conn.is_some() && !self.files_in_place() {
            // Someone deleted the log's WAL (or the log) while it was open:
            // SQLite would go on writing into the unlinked file, where no
            // page, report or export ever sees it. Closing checkpoints what
            // the WAL holds into the log file; the log is then opened again.
            tracing::warn!(path = %self.path.display(), "the block log's files were deleted while open; reopening it");
            self.conn = None;
            if !self.path.exists() {
                // A fresh log: as for one set aside, its ids must not be
                // the deleted log's again.
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                self.forget_rows(now_ms);
            }
        }
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => {
                // Before SQLite opens it: on a read-only disk SQLite would
                // only say "read-only", hiding that the file is junk.
                super::damage::check_header(&self.path)?;
                let conn = schema::open_writer(&self.path)?;
                if let Some(floor) = self.reseed_ids_at.take() {
                    reseed_ids(&conn, floor)?;
                }
                conn
            }
        };
        Ok(self.conn.insert(conn))
    }

    /// Whether the log file and its WAL are still where the open
    /// connection put them.
    fn files_in_place(&self) -> bool {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        self.path.exists() && Path::new(&wal).exists()
    }

    /// Drops the connection so the next write reopens the file: after
    /// repeated failures the file or its mount may have been replaced.
    pub fn close(&mut self) {
        self.conn = None;
    }

    /// Closes the damaged file and moves it aside, so the next write
    /// starts a fresh one. Rows it remembers for collapsing retries are in
    /// the damaged file, so they are forgotten.
    pub fn set_aside(&mut self, clock: &crate::clock::Clock) -> std::io::Result<PathBuf> {
        // Closing would checkpoint the WAL into the damaged file, which can
        // mend its first page and hide the damage from the next look while
        // the rest stays junk. The WAL is kept beside it instead.
        if let Some(conn) = self.conn.take() {
            let _ = conn.set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                true,
            );
        }
        self.forget_rows(clock.now_unix_ms());
        super::damage::set_aside(&self.path, clock)
    }

    /// Forgets the rows of a log that is gone (set aside, or deleted), at
    /// `now_ms`, so the next write starts a fresh one.
    fn forget_rows(&mut self, now_ms: i64) {
        // The rows are in the old file: their repeats go with it, as those
        // counted in memory always have; the hourly figures of the folded
        // ones are kept for the fresh file.
        for recent in self.recent.values_mut() {
            recent.take_folds(true, &mut self.folded);
        }
        self.recent.clear();
        self.orphans.clear();
        self.repeats_unwritten = false;
        // Ids are keys outside this file too (the trust's central log keys
        // rows by box and id), so the fresh file must not use them again.
        // The old file's last id may be unreadable; ids restart at the
        // time in seconds times 1000, above any the old file reached unless
        // it averaged 1000 rows a second since its own start.
        self.reseed_ids_at = Some(now_ms.max(0) / 1000 * 1000);
    }

    /// The database and WAL sizes on disk.
    pub fn db_bytes(&self) -> u64 {
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        size(&self.path) + size(Path::new(&wal))
    }

    /// Gives back WAL space after an outage, when the WAL may have grown
    /// to fill the disk.
    pub fn checkpoint(&mut self) {
        if let Some(conn) = &self.conn
            && let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        {
            tracing::debug!(error = %e, "journal checkpoint failed");
        }
    }

    pub fn prune_step(&mut self, job: &mut PruneJob) -> Result<(), JournalError> {
        let conn = self.ensure_open()?;
        job.step(conn)?;
        Ok(())
    }

    /// Commits `items` in one transaction, with the repeats folded where
    /// they were answered since the last batch.
    pub fn write(&mut self, items: &[Item]) -> Result<BatchOutcome, JournalError> {
        // The latest time any Repeats item asks for: rows whose window
        // has ended by then have their repeats written.
        let repeats_by = items
            .iter()
            .filter_map(|item| match item {
                Item::Repeats { now_unix_ms } => Some(*now_unix_ms),
                _ => None,
            })
            .max();
        // The folds first, so a row whose window has ended is written with
        // every repeat it took; its folds close with it.
        let collapse_ms = self.collapse_ms;
        let due = |first_at: i64| repeats_by.is_some_and(|now| !within(collapse_ms, first_at, now));
        for recent in self.recent.values_mut() {
            if !recent.folds.is_empty() {
                recent.take_folds(due(recent.first_at), &mut self.folded);
            }
        }
        let folded = std::mem::take(&mut self.folded);
        match self.write_items(items, repeats_by, &folded) {
            Ok(mut outcome) => {
                outcome.events += folded.events;
                outcome.blocked_events += folded.events;
                Ok(outcome)
            }
            Err(e) => {
                // Not committed: they go with the next attempt.
                self.folded.merge(folded);
                Err(e)
            }
        }
    }

    fn write_items(
        &mut self,
        items: &[Item],
        repeats_by: Option<i64>,
        folded: &Folded,
    ) -> Result<BatchOutcome, JournalError> {
        let mut outcome = BatchOutcome::default();
        let mut ops: Vec<Op<'_>> = Vec::new();
        let mut staged: HashMap<Vec<u8>, usize> = HashMap::with_capacity(items.len());
        let mut queries: Vec<&QueryEvent> = Vec::new();
        let mut blocked_queries: Vec<&BlockEvent> = Vec::new();
        let mut audits: Vec<&AuditEntry> = Vec::new();
        let mut alerts: Vec<&AlertSent> = Vec::new();
        let mut hourly: HashMap<(i64, &str, &str), (i64, i64)> = HashMap::new();
        for item in items {
            // Each allowed lookup counts as written, as its event would have.
            outcome.events += match item {
                Item::Lookups { count, .. } => *count,
                Item::Repeats { .. } => 0,
                _ => 1,
            };
            match item {
                Item::Block(ev, ticket) => {
                    outcome.blocked_events += 1;
                    self.plan_block(ev, ticket.as_ref(), &mut ops, &mut staged);
                    // A blocked lookup is also a lookup: counted here, so
                    // the resolver sends one message for it, not two.
                    let hour = hour_of(ev.at_unix_ms);
                    let category = ev.category.as_deref().unwrap_or("");
                    let slot = hourly.entry((hour, &ev.profile, category)).or_default();
                    slot.0 += 1;
                    slot.1 += 1;
                    if self.full_log {
                        blocked_queries.push(ev);
                    }
                }
                Item::Query(q) => {
                    let hour = hour_of(q.at_unix_ms);
                    let category = if q.blocked {
                        q.category.as_deref().unwrap_or("")
                    } else {
                        ""
                    };
                    let slot = hourly.entry((hour, &q.profile, category)).or_default();
                    slot.0 += 1;
                    slot.1 += i64::from(q.blocked);
                    if self.full_log {
                        queries.push(q);
                    }
                }
                Item::Lookups {
                    hour_unix_ms,
                    profile,
                    count,
                } => {
                    let slot = hourly.entry((*hour_unix_ms, profile, "")).or_default();
                    slot.0 += i64::try_from(*count).unwrap_or(i64::MAX);
                }
                Item::Audit(a) => audits.push(a),
                Item::Alert(a) => alerts.push(a),
                Item::Repeats { .. } => {}
            }
        }
        for ((hour, profile, category), n) in &folded.hourly {
            let slot = hourly
                .entry((*hour, profile, category.as_deref().unwrap_or("")))
                .or_default();
            slot.0 += n;
            slot.1 += n;
        }
        let collapse_ms = self.collapse_ms;
        let due = |first_at: i64| repeats_by.is_some_and(|now| !within(collapse_ms, first_at, now));
        let mut earlier_repeats: Vec<(i64, i64, i64)> = self
            .recent
            .values()
            .filter(|r| r.unwritten > 0 && due(r.first_at))
            .map(|r| (r.id, r.unwritten, r.unwritten_last_at))
            .chain(self.orphans.iter().copied())
            .collect();
        // In the table's order, so each page of rows is read and written
        // once per round, not once per row in the memory's hash order.
        earlier_repeats.sort_unstable();

        let nothing = ops.is_empty()
            && earlier_repeats.is_empty()
            && hourly.is_empty()
            && queries.is_empty()
            && blocked_queries.is_empty()
            && audits.is_empty()
            && alerts.is_empty();
        if !nothing {
            self.commit(
                &mut ops,
                &earlier_repeats,
                &queries,
                &blocked_queries,
                &hourly,
                &audits,
                &alerts,
                &due,
            )?;
        }
        self.orphans.clear();

        if repeats_by.is_some() {
            self.recent
                .values_mut()
                .filter(|r| due(r.first_at))
                .for_each(|r| r.unwritten = 0);
        }
        // Only now that the rows exist may later repeats be added to them.
        for op in ops {
            self.latest_at = self.latest_at.max(op.last_at);
            let fresh = || Recent {
                id: op.id,
                first_at: op.first_at,
                unwritten: 0,
                unwritten_last_at: i64::MIN,
                folds: Vec::new(),
            };
            let recent = match self.recent.entry(op.key) {
                Entry::Occupied(slot) if op.existing.is_some() && !op.bumped => {
                    let recent = slot.into_mut();
                    recent.unwritten += op.count;
                    recent.unwritten_last_at = recent.unwritten_last_at.max(op.last_at);
                    recent
                }
                Entry::Occupied(mut slot) => {
                    let mut old = std::mem::replace(slot.get_mut(), fresh());
                    // A new row took the lookup's place before the old
                    // one's repeats were written: they go with the next
                    // batch, not lost with the memory of the row.
                    old.take_folds(true, &mut self.folded);
                    if old.unwritten > 0 && old.id != op.id {
                        self.orphans
                            .push((old.id, old.unwritten, old.unwritten_last_at));
                    }
                    slot.into_mut()
                }
                Entry::Vacant(slot) => slot.insert(fresh()),
            };
            for ticket in &op.tickets {
                if let Some(fold) = ticket.attach() {
                    fold.open(
                        recent.first_at,
                        recent.first_at.saturating_add(collapse_ms),
                        &self.fold_signal,
                    );
                    recent.folds.push(fold);
                }
            }
        }
        let horizon = self.latest_at.saturating_sub(self.collapse_ms);
        let folded = &mut self.folded;
        // A row past its window is kept until its last repeats are
        // written; one forgotten has its folds closed first (what they
        // hold is kept), so its later repeats come as events again.
        let mut forget = |r: &mut Recent, keep: bool| {
            if !keep {
                r.take_folds(true, folded);
            }
            keep || r.unwritten > 0
        };
        self.recent
            .retain(|_, r| forget(r, r.first_at >= horizon || r.unwritten > 0));
        // A flood of distinct names must not grow memory without bound;
        // forgetting only means a later repeat gets its own row.
        if self.recent.len() > RECENT_MAX {
            self.recent.retain(|_, r| forget(r, r.unwritten > 0));
        }
        // A burst of distinct names grows the table; once the burst is
        // past its window the table is given back, not kept at its size.
        if self.recent.capacity() > 4 * self.recent.len().max(RECENT_SHRINK_FLOOR) {
            self.recent.shrink_to_fit();
        }
        let (mut unwritten, mut folds_open) = (false, false);
        for r in self.recent.values() {
            unwritten |= r.unwritten > 0;
            folds_open |= !r.folds.is_empty();
        }
        // Taken from folds closed above: committed with the next batch.
        self.repeats_unwritten = unwritten || !self.orphans.is_empty() || self.folded.events > 0;
        outcome.repeats_unwritten = self.repeats_unwritten;
        outcome.folds_open = folds_open;
        Ok(outcome)
    }

    fn within_window(&self, first_at: i64, at: i64) -> bool {
        within(self.collapse_ms, first_at, at)
    }

    fn plan_block<'a>(
        &mut self,
        ev: &'a BlockEvent,
        ticket: Option<&'a FoldTicket>,
        ops: &mut Vec<Op<'a>>,
        staged: &mut HashMap<Vec<u8>, usize>,
    ) {
        let at = ev.at_unix_ms;
        let key = collapse_key(ev);
        if let Some(op) = staged.get(&key).and_then(|&i| ops.get_mut(i))
            && at >= op.first_at
            && at.saturating_sub(op.first_at) < self.collapse_ms
        {
            op.count += 1;
            op.last_at = op.last_at.max(at);
            op.tickets.extend(ticket);
            return;
        }
        let existing = self
            .recent
            .get(&key)
            .filter(|r| self.within_window(r.first_at, at))
            .map(|r| (r.id, r.first_at));
        staged.insert(key.clone(), ops.len());
        ops.push(Op {
            key,
            event: ev,
            existing: existing.map(|(id, _)| id),
            first_at: existing.map_or(at, |(_, first_at)| first_at),
            last_at: at,
            count: 1,
            id: 0,
            bumped: false,
            tickets: ticket.into_iter().collect(),
        });
    }
}

/// Whether `at` falls in the collapse window of a row first seen at
/// `first_at`. A row dated after `at` (the clock was set back) is outside:
/// its repeats are written rather than held until the clock catches up.
fn within(collapse_ms: i64, first_at: i64, at: i64) -> bool {
    at >= first_at && at.saturating_sub(first_at) < collapse_ms
}
