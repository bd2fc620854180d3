//! The appliance's own records, kept apart from the block log: the status
//! page's users and tokens, the allow/deny entries and override codes made on
//! the page, and the annual filtering reviews. One small SQLite file
//! (`admin.db` in the data directory) that retention never touches.

pub mod copy;
pub mod follow;
pub mod overrides;
pub mod reviews;
pub mod rules;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use sha2::{Digest, Sha256};

pub use reviews::ReviewRow;
pub use users::{Role, SENSITIVE_CATEGORIES, User};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("the admin database {path}: {source}")]
    Database {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("could not hash the password: {0}")]
    Hash(String),
    #[error("{0} holds tables but is not Lollipop's admin database")]
    Foreign(PathBuf),
}

impl AdminError {
    /// The file is damaged or not ours (as opposed to a disk or permission
    /// fault): setting it aside and starting afresh is the way on.
    pub fn is_damaged(&self) -> bool {
        match self {
            AdminError::Foreign(_) => true,
            AdminError::Database {
                source: rusqlite::Error::SqliteFailure(failure, _),
                ..
            } => matches!(
                failure.code,
                rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
            ),
            _ => false,
        }
    }
}

/// Migrations, appended only; `PRAGMA user_version` counts those applied.
const MIGRATIONS: [&str; 1] = ["CREATE TABLE users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        code_hash TEXT,
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL
    );
    CREATE TABLE setup_tokens (
        token_hash TEXT PRIMARY KEY,
        expires_at INTEGER NOT NULL
    );
    CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        label TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL
    );
    CREATE TABLE domain_rules (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        profile TEXT NOT NULL,
        domain TEXT NOT NULL,
        action TEXT NOT NULL,
        reason TEXT NOT NULL,
        added_by TEXT NOT NULL,
        added_at INTEGER NOT NULL,
        removed_by TEXT,
        removed_at INTEGER
    );
    CREATE TABLE overrides (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        target_kind TEXT NOT NULL,
        target TEXT NOT NULL,
        scope_kind TEXT NOT NULL,
        scope TEXT NOT NULL,
        reason TEXT NOT NULL,
        granted_by TEXT NOT NULL,
        starts_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        ended_at INTEGER,
        ended_by TEXT
    );
    CREATE INDEX overrides_expires ON overrides(expires_at);
    CREATE TABLE reviews (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        held_on TEXT NOT NULL,
        participants TEXT NOT NULL,
        checked TEXT NOT NULL,
        decisions TEXT NOT NULL,
        recorded_by TEXT NOT NULL,
        recorded_at INTEGER NOT NULL
    );"];

/// The admin database, shared by the web handlers (each call is short;
/// callers on the async runtime run it through `spawn_blocking`).
#[derive(Clone)]
pub struct AdminStore {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
}

impl AdminStore {
    /// Opens (creating if needed) and migrates `path`.
    pub fn open(path: &Path) -> Result<AdminStore, AdminError> {
        let db_error = |source| AdminError::Database {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|error| {
                AdminError::Invalid(format!(
                    "cannot create the data directory {}: {error}",
                    dir.display()
                ))
            })?;
        }
        let mut conn = Connection::open(path).map_err(db_error)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(db_error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_error)?;
        // One writer at a time from the version check to the last
        // migration: the service and `lollipop passwd` opening a fresh
        // file together must not take each other's half-made tables for
        // a foreign database.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db_error)?;
        let applied: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(db_error)?;
        if applied == 0 {
            let tables: i64 = tx
                .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                .map_err(db_error)?;
            if tables > 0 {
                return Err(AdminError::Foreign(path.to_path_buf()));
            }
        }
        if applied > MIGRATIONS.len() as i64 {
            return Err(AdminError::Invalid(format!(
                "{} was written by a newer Lollipop (schema {applied}); upgrade Lollipop",
                path.display()
            )));
        }
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
            tx.execute_batch(migration).map_err(db_error)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(db_error)?;
        }
        tx.commit().map_err(db_error)?;
        Ok(AdminStore {
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the connection, naming the file in any error.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, AdminError> {
        // A panic while holding the lock leaves the connection usable.
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut conn).map_err(|source| AdminError::Database {
            path: self.path.clone(),
            source,
        })
    }
}

/// A random secret for links and tokens: 32 bytes as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The OS random source failing is not recoverable for a login system.
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    hex::encode(bytes)
}

/// How a high-entropy token is stored: its SHA-256 (no salt needed, the
/// token itself is random).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

// Now, in Unix milliseconds: the times the admin database records.
use crate::clock::now_unix_ms as now_ms;

#[cfg(test)]
mod tests;
