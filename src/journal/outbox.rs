//! The block log as the central shippers' on-disk buffer (src/ship): reads,
//! in id order, the rows a destination has not taken yet (blocked lookups,
//! alerts sent, the audit trail), and moves that destination's cursor once
//! the destination has them. Cursors live in the journal itself, so a
//! crash or SIGKILL loses no progress beyond the batch in flight.
//!
//! Uses its own connection: it never waits on the resolver or the writer
//! task, and the writer only waits on it for the moment a cursor moves.

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::read::{BLOCKED_COLUMNS, BlockedRow, blocked_row};

/// What a shipped row is: each has its own table, ids and cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Blocked,
    Alert,
    Audit,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Blocked, Kind::Alert, Kind::Audit];

    /// The name used in cursors, central tables' rows and syslog MSGIDs.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Blocked => "blocked",
            Kind::Alert => "alert",
            Kind::Audit => "audit",
        }
    }

    fn table(self) -> &'static str {
        match self {
            Kind::Blocked => "blocked",
            Kind::Alert => "alerts_sent",
            Kind::Audit => "audit",
        }
    }

    /// The kind kept in `table`, if shippers take that table.
    pub(super) fn of_table(table: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.table() == table)
    }
}

/// An alert delivery as shipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShipAlert {
    pub id: i64,
    pub at_unix_ms: i64,
    pub alert_id: i64,
    pub channel: String,
    pub outcome: String,
    pub category: String,
    pub device: String,
    pub name: Option<String>,
    pub events: i64,
}

/// An audit entry as shipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShipAudit {
    pub id: i64,
    pub at_unix_ms: i64,
    pub who: String,
    pub action: String,
    pub detail: String,
    pub reason: Option<String>,
}

/// Rows read for one destination in one go, each kind in id order.
#[derive(Clone, Debug, Default)]
pub struct ShipBatch {
    pub blocked: Vec<BlockedRow>,
    pub alerts: Vec<ShipAlert>,
    pub audit: Vec<ShipAudit>,
}

impl ShipBatch {
    pub fn len(&self) -> usize {
        self.blocked.len() + self.alerts.len() + self.audit.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The last id of each kind the batch holds.
    fn last_ids(&self) -> [(Kind, Option<i64>); 3] {
        [
            (Kind::Blocked, self.blocked.last().map(|r| r.id)),
            (Kind::Alert, self.alerts.last().map(|r| r.id)),
            (Kind::Audit, self.audit.last().map(|r| r.id)),
        ]
    }
}

/// How far a destination is behind, for the page and `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Rows in the block log not yet taken.
    pub backlog: u64,
    /// Rows retention deleted before they were taken.
    pub dropped: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("block log {path}: {error}")]
    Sqlite {
        path: PathBuf,
        error: rusqlite::Error,
    },
    #[error(
        "block log {path} is at schema version {found}, not {wanted}: it is being migrated or is from another build"
    )]
    Version {
        path: PathBuf,
        found: i64,
        wanted: i64,
    },
}

/// The shippers' view of the block log at one path.
pub struct Outbox {
    path: PathBuf,
    /// Every configured destination: registered whenever a file is opened
    /// (a replaced log starts with no cursors).
    destinations: Vec<String>,
    conn: Option<Connection>,
    /// (device, inode) of the file the connection holds: a damaged log set
    /// aside and replaced is noticed, and the new file read instead.
    file: Option<(u64, u64)>,
}

const SELECT_ALERTS: &str = "SELECT id, at, alert_id, channel, outcome, category, device, name, \
     events FROM alerts_sent WHERE id > ?1 ORDER BY id LIMIT ?2";
const SELECT_AUDIT: &str = "SELECT id, at, actor, action, detail, reason FROM audit \
     WHERE id > ?1 ORDER BY id LIMIT ?2";

/// Makes `destinations` the ones with cursors: a new one starts at the
/// beginning of the log (a trust sees the school's history), and one no
/// longer configured is forgotten, so retention stops counting rows
/// against it.
fn register(conn: &Connection, destinations: &[String]) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    let known: Vec<String> = tx
        .prepare("SELECT DISTINCT destination FROM ship_cursor")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for gone in known.iter().filter(|d| !destinations.contains(d)) {
        tx.execute("DELETE FROM ship_cursor WHERE destination = ?1", [gone])?;
    }
    for destination in destinations {
        for kind in Kind::ALL {
            tx.execute(
                "INSERT OR IGNORE INTO ship_cursor (destination, kind) VALUES (?1, ?2)",
                params![destination, kind.as_str()],
            )?;
        }
    }
    tx.commit()
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl Outbox {
    pub fn new(path: impl Into<PathBuf>, destinations: Vec<String>) -> Outbox {
        Outbox {
            path: path.into(),
            destinations,
            conn: None,
            file: None,
        }
    }

    fn error(&self, error: rusqlite::Error) -> OutboxError {
        OutboxError::Sqlite {
            path: self.path.clone(),
            error,
        }
    }

    fn conn(&mut self) -> Result<&Connection, OutboxError> {
        let now = file_id(&self.path);
        if self.conn.is_some() && now != self.file {
            self.conn = None;
        }
        if self.conn.is_none() {
            // Never created here: the writer creates and migrates the file.
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = Connection::open_with_flags(&self.path, flags).map_err(|e| self.error(e))?;
            conn.busy_timeout(Duration::from_secs(5))
                .map_err(|e| self.error(e))?;
            let found = super::schema::user_version(&conn).map_err(|e| self.error(e))?;
            if found != super::SCHEMA_VERSION {
                return Err(OutboxError::Version {
                    path: self.path.clone(),
                    found,
                    wanted: super::SCHEMA_VERSION,
                });
            }
            register(&conn, &self.destinations).map_err(|e| self.error(e))?;
            self.file = now;
            self.conn = Some(conn);
        }
        self.conn
            .as_ref()
            .ok_or_else(|| self.error(rusqlite::Error::InvalidQuery))
    }

    /// Drops the connection: the next call opens the file afresh.
    pub fn close(&mut self) {
        self.conn = None;
    }

    /// The newest blocked row's id (0 for an empty log).
    pub fn newest_blocked(&mut self) -> Result<i64, OutboxError> {
        let path = self.path.clone();
        self.conn()?
            .query_row("SELECT COALESCE(max(id), 0) FROM blocked", [], |r| r.get(0))
            .map_err(|error| OutboxError::Sqlite { path, error })
    }

    /// Up to `max_rows` of each kind that `destination` has not taken,
    /// blocked rows only up to id `blocked_upto` (rows whose repeats may
    /// still be added are left for later).
    pub fn read(
        &mut self,
        destination: &str,
        max_rows: usize,
        blocked_upto: i64,
    ) -> Result<ShipBatch, OutboxError> {
        let path = self.path.clone();
        let conn = self.conn()?;
        let limit = max_rows as i64;
        let run = || -> rusqlite::Result<ShipBatch> {
            // One read transaction: every kind from the same moment.
            let tx = conn.unchecked_transaction()?;
            let cursor = |kind: Kind| -> rusqlite::Result<i64> {
                Ok(tx
                    .query_row(
                        "SELECT last_id FROM ship_cursor WHERE destination = ?1 AND kind = ?2",
                        params![destination, kind.as_str()],
                        |r| r.get(0),
                    )
                    .optional()?
                    .unwrap_or(0))
            };
            let mut batch = ShipBatch::default();
            let after = cursor(Kind::Blocked)?;
            batch.blocked = tx
                .prepare_cached(&format!(
                    "SELECT {BLOCKED_COLUMNS} FROM blocked WHERE id > ?1 AND id <= ?2 \
                     ORDER BY id LIMIT ?3"
                ))?
                .query_map(params![after, blocked_upto, limit], blocked_row)?
                .collect::<rusqlite::Result<_>>()?;
            let after = cursor(Kind::Alert)?;
            batch.alerts = tx
                .prepare_cached(SELECT_ALERTS)?
                .query_map(params![after, limit], |r| {
                    Ok(ShipAlert {
                        id: r.get(0)?,
                        at_unix_ms: r.get(1)?,
                        alert_id: r.get(2)?,
                        channel: r.get(3)?,
                        outcome: r.get(4)?,
                        category: r.get(5)?,
                        device: r.get(6)?,
                        name: r.get(7)?,
                        events: r.get(8)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let after = cursor(Kind::Audit)?;
            batch.audit = tx
                .prepare_cached(SELECT_AUDIT)?
                .query_map(params![after, limit], |r| {
                    Ok(ShipAudit {
                        id: r.get(0)?,
                        at_unix_ms: r.get(1)?,
                        who: r.get(2)?,
                        action: r.get(3)?,
                        detail: r.get(4)?,
                        reason: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            tx.commit()?;
            Ok(batch)
        };
        run().map_err(|error| OutboxError::Sqlite { path, error })
    }

    /// Records that `destination` has everything in `batch`.
    pub fn advance(&mut self, destination: &str, batch: &ShipBatch) -> Result<(), OutboxError> {
        let path = self.path.clone();
        let conn = self.conn()?;
        let run = || -> rusqlite::Result<()> {
            let tx = conn.unchecked_transaction()?;
            for (kind, last) in batch.last_ids() {
                let Some(last) = last else { continue };
                tx.execute(
                    "INSERT INTO ship_cursor (destination, kind, last_id) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (destination, kind) DO UPDATE \
                     SET last_id = max(last_id, excluded.last_id)",
                    params![destination, kind.as_str(), last],
                )?;
            }
            tx.commit()
        };
        run().map_err(|error| OutboxError::Sqlite { path, error })
    }

    /// How far `destination` is behind, and what retention took from it.
    pub fn progress(&mut self, destination: &str) -> Result<Progress, OutboxError> {
        let path = self.path.clone();
        let conn = self.conn()?;
        progress_of(conn, destination).map_err(|error| OutboxError::Sqlite { path, error })
    }
}

/// [`Outbox::progress`] for a reader that must not write (the command
/// line): opens the block log at `path` read-only.
pub fn shipping_progress(path: &Path, destination: &str) -> Result<Progress, OutboxError> {
    let error = |error| OutboxError::Sqlite {
        path: path.to_path_buf(),
        error,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(error)?;
    progress_of(&conn, destination).map_err(error)
}

fn progress_of(conn: &Connection, destination: &str) -> rusqlite::Result<Progress> {
    let mut progress = Progress::default();
    for kind in Kind::ALL {
        let (last_id, dropped): (i64, i64) = conn
            .query_row(
                "SELECT last_id, dropped FROM ship_cursor WHERE destination = ?1 AND kind = ?2",
                params![destination, kind.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or((0, 0));
        // A range of the rowid: no scan of the rows already taken.
        let backlog: i64 = conn.query_row(
            &format!("SELECT count(*) FROM {} WHERE id > ?1", kind.table()),
            [last_id],
            |r| r.get(0),
        )?;
        progress.backlog += backlog.max(0) as u64;
        progress.dropped += dropped.max(0) as u64;
    }
    Ok(progress)
}
