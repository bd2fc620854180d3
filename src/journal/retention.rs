//! Deletes records older than the school's retention periods, a few
//! thousand rows per transaction so that new events are never held up, and
//! hands the freed pages back to the filesystem with `incremental_vacuum`.
//!
//! The audit trail is not pruned: it is small and records who changed the
//! filtering, which a school may need to show long after the fact. Rows a
//! central destination has not taken yet (src/ship) are deleted all the
//! same, on time, and counted against that destination as dropped.

use rusqlite::Connection;
use serde::Serialize;

/// Rows per delete transaction: small enough that a batch of new events
/// waits milliseconds, not seconds, on an SD card.
const CHUNK_ROWS: i64 = 5_000;
const VACUUM_PAGES: i64 = 2_000;
const MS_PER_DAY: i64 = 86_400_000;

/// What one retention run removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Nothing was looked at: the clock is not trusted with deleting
    /// (`Journal::hold_pruning`).
    pub held: bool,
    pub blocked_deleted: u64,
    pub queries_deleted: u64,
    pub hourly_deleted: u64,
    pub alerts_deleted: u64,
    /// Rows deleted before a central destination had taken them, summed
    /// over destinations.
    pub unshipped_deleted: u64,
    pub pages_freed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Blocked,
    Alerts,
    Queries,
    Hourly,
    Vacuum,
    Done,
}

/// A retention run in progress; the writer calls [`PruneJob::step`]
/// between event batches until it is done.
pub struct PruneJob {
    blocked_cutoff: Option<i64>,
    queries_cutoff: Option<i64>,
    stage: Stage,
    last_freelist: Option<i64>,
    pub report: PruneReport,
}

impl PruneJob {
    /// Retention of 0 days keeps that table forever.
    pub fn new(now_unix_ms: i64, blocked_days: u32, full_days: u32) -> Self {
        let cutoff = |days: u32| (days > 0).then(|| now_unix_ms - i64::from(days) * MS_PER_DAY);
        PruneJob {
            blocked_cutoff: cutoff(blocked_days),
            queries_cutoff: cutoff(full_days),
            stage: Stage::Blocked,
            last_freelist: None,
            report: PruneReport::default(),
        }
    }

    pub fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// Does one transaction's worth of work.
    pub fn step(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        match self.stage {
            Stage::Blocked => {
                let n =
                    delete_shipped_chunk(conn, "blocked", self.blocked_cutoff, &mut self.report)?;
                self.report.blocked_deleted += n;
                if n < CHUNK_ROWS as u64 {
                    self.stage = Stage::Alerts;
                }
            }
            Stage::Alerts => {
                // Alerts name devices: kept as long as the blocks they report.
                let n = delete_shipped_chunk(
                    conn,
                    "alerts_sent",
                    self.blocked_cutoff,
                    &mut self.report,
                )?;
                self.report.alerts_deleted += n;
                if n < CHUNK_ROWS as u64 {
                    self.stage = Stage::Queries;
                }
            }
            Stage::Queries => {
                // Pruned even when the full log is off: it may have been on.
                let n = delete_chunk(conn, "queries", self.queries_cutoff)?;
                self.report.queries_deleted += n;
                if n < CHUNK_ROWS as u64 {
                    self.stage = Stage::Hourly;
                }
            }
            Stage::Hourly => {
                // A day's worth of hours is a few thousand rows at most.
                if let Some(cutoff) = self.blocked_cutoff {
                    let n = conn.execute("DELETE FROM hourly WHERE hour < ?1", [cutoff])?;
                    self.report.hourly_deleted += n as u64;
                }
                self.stage = Stage::Vacuum;
            }
            Stage::Vacuum => {
                let mode: i64 = conn.pragma_query_value(None, "auto_vacuum", |r| r.get(0))?;
                let free: i64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
                // 2 = incremental. Files created elsewhere without it keep
                // their free pages for reuse; only a full VACUUM could change
                // that, and it would lock the log for too long.
                let stuck = self.last_freelist.is_some_and(|last| free >= last);
                if mode != 2 || free == 0 || stuck {
                    self.stage = Stage::Done;
                    return Ok(());
                }
                conn.execute_batch(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES})"))?;
                self.report.pages_freed += free.min(VACUUM_PAGES) as u64;
                self.last_freelist = Some(free);
            }
            Stage::Done => {}
        }
        Ok(())
    }
}

fn delete_chunk(conn: &Connection, table: &str, cutoff: Option<i64>) -> rusqlite::Result<u64> {
    let Some(cutoff) = cutoff else {
        return Ok(0);
    };
    let sql = format!(
        "DELETE FROM {table} WHERE id IN \
         (SELECT id FROM {table} WHERE at < ?1 ORDER BY at LIMIT {CHUNK_ROWS})"
    );
    Ok(conn.execute(&sql, [cutoff])? as u64)
}

/// The ids of a chunk of `table`'s rows older than `?1`, oldest first.
pub(super) fn oldest_ids(table: &str) -> String {
    format!("SELECT id FROM {table} WHERE at < ?1 ORDER BY at LIMIT {CHUNK_ROWS}")
}

/// Deletes a chunk of `table` (a table the shippers take) older than
/// `cutoff`, and in the same transaction adds to each destination's
/// `dropped` the deleted rows it had not taken yet.
fn delete_shipped_chunk(
    conn: &Connection,
    table: &str,
    cutoff: Option<i64>,
    report: &mut PruneReport,
) -> rusqlite::Result<u64> {
    let Some(cutoff) = cutoff else {
        return Ok(0);
    };
    let Some(kind) = super::outbox::Kind::of_table(table) else {
        return delete_chunk(conn, table, Some(cutoff));
    };
    let tx = conn.unchecked_transaction()?;
    let ids: Vec<i64> = tx
        .prepare(&oldest_ids(table))?
        .query_map([cutoff], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if ids.is_empty() {
        return Ok(0);
    }
    let cursors: Vec<(String, i64)> = tx
        .prepare("SELECT destination, last_id FROM ship_cursor WHERE kind = ?1")?
        .query_map([kind.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (destination, last_id) in cursors {
        let unshipped = ids.iter().filter(|id| **id > last_id).count() as i64;
        if unshipped > 0 {
            tx.execute(
                "UPDATE ship_cursor SET dropped = dropped + ?1 \
                 WHERE destination = ?2 AND kind = ?3",
                rusqlite::params![unshipped, destination, kind.as_str()],
            )?;
            report.unshipped_deleted += unshipped as u64;
        }
    }
    let mut delete = tx.prepare(&format!("DELETE FROM {table} WHERE id = ?1"))?;
    let mut deleted = 0;
    for id in &ids {
        deleted += delete.execute([id])? as u64;
    }
    drop(delete);
    tx.commit()?;
    Ok(deleted)
}
