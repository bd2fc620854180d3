//! Opens the journal's SQLite file and brings its schema up to date, one
//! numbered migration at a time, so a year of evidence survives upgrades.
//!
//! `PRAGMA user_version` holds the number of migrations applied. Migrations
//! are only ever appended; an applied one is never edited.

use super::JournalError;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 4;

const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    // 1: the block log, the optional full query log and the audit trail.
    // AUTOINCREMENT so that a reference number is never reused, even after
    // retention empties the table.
    "CREATE TABLE blocked (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        client_ip TEXT NOT NULL,
        device_name TEXT,
        mac TEXT,
        profile TEXT NOT NULL,
        name TEXT NOT NULL,
        query_type TEXT NOT NULL,
        category TEXT,
        list TEXT,
        rule TEXT,
        action TEXT NOT NULL,
        locked INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX blocked_at ON blocked(at);
    CREATE INDEX blocked_device ON blocked(device_name, at);
    CREATE INDEX blocked_profile ON blocked(profile, at);
    CREATE INDEX blocked_category ON blocked(category, at);
    CREATE TABLE queries (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        client_ip TEXT NOT NULL,
        profile TEXT NOT NULL,
        name TEXT NOT NULL,
        query_type TEXT NOT NULL,
        blocked INTEGER NOT NULL,
        category TEXT
    );
    CREATE INDEX queries_at ON queries(at);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL,
        reason TEXT
    );
    CREATE INDEX audit_at ON audit(at);",
    // 2: collapsed browser retries (count, last_at), who and where, the
    // listener, and hourly aggregates. last_at stays NULL on old rows
    // (readers use COALESCE(last_at, at)) so the upgrade does not rewrite a
    // year of rows while the resolver waits.
    "ALTER TABLE blocked ADD COLUMN last_at INTEGER;
    ALTER TABLE blocked ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE blocked ADD COLUMN owner TEXT;
    ALTER TABLE blocked ADD COLUMN room TEXT;
    ALTER TABLE blocked ADD COLUMN listener TEXT;
    CREATE INDEX blocked_client ON blocked(client_ip, at);
    CREATE TABLE hourly (
        hour INTEGER NOT NULL,
        profile TEXT NOT NULL,
        category TEXT NOT NULL,
        queries INTEGER NOT NULL DEFAULT 0,
        blocked INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (hour, profile, category)
    ) WITHOUT ROWID;",
    // 3: the alerts as delivered (or not), one row per channel, and how far
    // each central destination (src/ship) has taken each table: the block
    // log is the shippers' on-disk buffer, so progress lives beside it and
    // survives a crash. `dropped` counts rows retention deleted before they
    // were shipped.
    "CREATE TABLE alerts_sent (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        alert_id INTEGER NOT NULL,
        channel TEXT NOT NULL,
        outcome TEXT NOT NULL,
        category TEXT NOT NULL,
        device TEXT NOT NULL,
        name TEXT,
        events INTEGER NOT NULL
    );
    CREATE INDEX alerts_sent_at ON alerts_sent(at);
    CREATE TABLE ship_cursor (
        destination TEXT NOT NULL,
        kind TEXT NOT NULL,
        last_id INTEGER NOT NULL DEFAULT 0,
        dropped INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (destination, kind)
    ) WITHOUT ROWID;",
    // 4: every new row of the block log was written into each index on
    // `blocked`, the largest part of what a blocked lookup costs; two of
    // the five served no read worth that. No read looks a device name up
    // exactly (the log's device search is a substring of four columns,
    // which no index serves). A profile holds a quarter of the rows or
    // more: reading by id or by time and testing the profile is as quick
    // for every read, and the log's newest-first page far quicker (by the
    // index, each of the profile's rows had to be sorted by id first).
    // The freed pages go back to the disk with retention's vacuum.
    "DROP INDEX IF EXISTS blocked_device;
    DROP INDEX IF EXISTS blocked_profile;",
];

/// Opens (creating if needed) the writer's connection and migrates it.
pub fn open_writer(path: &Path) -> Result<Connection, JournalError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // SQLite quietly falls back to read-only when the file or its
    // filesystem is; writing would then fail on every batch, so say so now
    // and let the writer retry the open later.
    if conn.is_readonly(rusqlite::MAIN_DB)? {
        return Err(JournalError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
            Some("journal database opened read-only".into()),
        )));
    }
    let version = user_version(&conn)?;
    if version == 0 {
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if tables > 0 {
            return Err(JournalError::NotAJournal(path.to_path_buf()));
        }
        // Only takes effect before the first table exists; it lets
        // retention hand pages back with incremental_vacuum instead of a
        // full VACUUM that would lock the log for minutes.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    }
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, "journal database is not in WAL mode; readers may wait");
    }
    // NORMAL in WAL mode loses at most the last commits on power loss,
    // never consistency; FULL would fsync every batch on an SD card.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // A checkpointed WAL is cut back to this size, so a burst does not pin
    // disk space forever.
    conn.pragma_update(None, "journal_size_limit", 8 * 1024 * 1024)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Rows go in at the end of the table and of each (.., at) index, so
    // a small page cache holds what writing touches; SQLite's default is
    // 2 MiB, a noticeable part of a small appliance's memory. Negative:
    // in KiB.
    conn.pragma_update(None, "cache_size", -512)?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// A connection for the UI and CLI that can never take the writer's lock.
pub fn open_reader(path: &Path) -> Result<Connection, JournalError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(2))?;
    let found = user_version(&conn)?;
    if found != SCHEMA_VERSION {
        return Err(JournalError::SchemaMismatch {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(conn)
}

pub fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), JournalError> {
    let found = user_version(conn)?;
    if found > SCHEMA_VERSION {
        // A newer build wrote this file; touching it could lose evidence.
        return Err(JournalError::SchemaMismatch {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (done, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let next = done as i64 + 1;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", next)?;
        tx.commit()?;
        tracing::info!(path = %path.display(), version = next, "journal schema migrated");
    }
    Ok(())
}

/// Whether an error is about the storage (full, read-only, unreachable)
/// rather than about this file's contents: worth waiting out.
pub fn is_storage_error(e: &JournalError) -> bool {
    let JournalError::Sqlite(e) = e else {
        return matches!(e, JournalError::Io(_));
    };
    matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DiskFull
                | ErrorCode::ReadOnly
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::PermissionDenied
                | ErrorCode::FileLockingProtocolFailed
                | ErrorCode::OutOfMemory
        )
    )
}

/// A short label for stats and the UI: what a head teacher can act on.
pub fn describe(e: &JournalError) -> String {
    let kind = match e {
        JournalError::Sqlite(e) => match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => "disk full",
            Some(ErrorCode::ReadOnly) => "database is read-only",
            Some(ErrorCode::SystemIoFailure) => "disk I/O error",
            Some(ErrorCode::CannotOpen) => "cannot open database",
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => "database busy",
            Some(ErrorCode::PermissionDenied) => "permission denied",
            _ => "database error",
        },
        _ => "journal error",
    };
    format!("{kind}: {e}")
}
