//! Damage to the block log's file: telling a damaged or foreign file from a
//! disk fault, and setting a damaged file aside (kept for inspection as
//! `NAME.damaged-TIME`, with its WAL and shared-memory files) so a fresh
//! log can take its place.

use super::JournalError;
use crate::clock::{Clock, TimeZone};
use serde::Serialize;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// What happened the last time the block log's file was found damaged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DamageReport {
    /// When it was found.
    pub at_unix_ms: i64,
    /// What SQLite (or the header check) said about the file.
    pub error: String,
    /// Where the damaged file was moved; `None` while it could not be.
    pub kept_as: Option<PathBuf>,
    /// Why it could not be moved (read-only or full disk, permissions):
    /// until it can, blocks wait in memory (bounded) and are not saved.
    pub set_aside_error: Option<String>,
}

impl DamageReport {
    /// The file could not be moved aside, so nothing is being saved.
    pub fn degraded(&self) -> bool {
        self.kept_as.is_none()
    }

    /// What happened, in words for a head teacher (no database terms),
    /// with the time as `HH:MM on YYYY-MM-DD` in `zone`.
    pub fn in_plain_words(&self, zone: TimeZone) -> String {
        let local = zone.format_local(self.at_unix_ms);
        let when = format!(
            "{} on {}",
            local.get(11..16).unwrap_or(&local),
            local.get(..10).unwrap_or(&local)
        );
        match &self.kept_as {
            Some(kept) => format!(
                "The block log was damaged at {when} and has been set aside as {}; a fresh log was started. Lookups were filtered throughout. Blocks from before then are in the set-aside file, which your IT support can inspect.",
                kept.file_name().map_or_else(
                    || kept.display().to_string(),
                    |name| name.to_string_lossy().into_owned()
                )
            ),
            None => format!(
                "The block log was damaged at {when} and could not be set aside, so blocked sites are not being saved (lookups are still filtered). Ask your IT support to check the appliance's storage; saving starts again by itself once it can."
            ),
        }
    }
}

/// Whether the file is damaged or not a block log at all (as opposed to a
/// disk or permission fault, which moving the file would not mend).
pub fn is_damaged(error: &JournalError) -> bool {
    match error {
        JournalError::NotAJournal(_) | JournalError::SchemaMismatch { .. } => true,
        JournalError::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => matches!(
            failure.code,
            rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
        ),
        JournalError::Sqlite(_) | JournalError::Io(_) => false,
    }
}

/// Checks that the file at `path` still starts as a SQLite database. In WAL
/// mode SQLite reads the pages it needs from the WAL, so junk written over
/// the main file goes unnoticed until a checkpoint copies the WAL over it,
/// leaving a file that is part junk; this catches it first. A missing or
/// empty file is fine (SQLite creates it).
pub fn check_header(path: &Path) -> Result<(), JournalError> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(JournalError::Io(error)),
    };
    let mut header = [0u8; 16];
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(JournalError::Io(error)),
        }
    }
    if read == 0 || header == *SQLITE_HEADER {
        return Ok(());
    }
    Err(JournalError::Sqlite(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOTADB),
        Some(format!(
            "{} no longer starts as a SQLite database",
            path.display()
        )),
    )))
}

/// Where `path` is kept when set aside at `clock`'s now.
pub fn kept_path(path: &Path, clock: &Clock) -> PathBuf {
    let mut kept = path.as_os_str().to_owned();
    kept.push(format!(".damaged-{}", clock.now_unix_secs()));
    let kept = PathBuf::from(kept);
    if !kept.exists() {
        return kept;
    }
    // Damaged twice in one second: the first copy is not overwritten.
    (1..)
        .map(|n| {
            let mut next = kept.as_os_str().to_owned();
            next.push(format!(".{n}"));
            PathBuf::from(next)
        })
        .find(|p| !p.exists())
        .unwrap_or(kept)
}

/// Renames the block log (and its WAL and shared-memory files) aside with
/// `rename`; returns the new path.
pub fn set_aside_with(
    path: &Path,
    clock: &Clock,
    rename: &dyn Fn(&Path, &Path) -> std::io::Result<()>,
) -> std::io::Result<PathBuf> {
    let kept = kept_path(path, clock);
    rename(path, &kept)?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = PathBuf::from(side);
        if side.exists() {
            let mut moved = kept.as_os_str().to_owned();
            moved.push(suffix);
            // A WAL left behind would be read into the fresh log; if it
            // cannot be moved it must at least not be used.
            if let Err(error) = rename(&side, &PathBuf::from(moved)) {
                std::fs::remove_file(&side).map_err(|_| error)?;
            }
        }
    }
    Ok(kept)
}

/// [`set_aside_with`] the file system's own rename.
pub fn set_aside(path: &Path, clock: &Clock) -> std::io::Result<PathBuf> {
    set_aside_with(path, clock, &|from, to| std::fs::rename(from, to))
}
