//! Opening the appliance's stores so that a damaged file never stops DNS:
//! a damaged or foreign block log is set aside (kept for inspection) and a
//! fresh one started, at start or whenever the writer finds it, and the
//! school is told in plain words.

use anyhow::{Context, Result};

use std::sync::Arc;

use crate::alerts::Notice;
use crate::clock::{Clock, TimeZone};
use crate::config::Config;
use crate::journal::{DeviceDirectory, Journal, JournalConfig};

use super::live::LiveAlerts;

/// Opens the block log and starts its writer task (inside the runtime). A
/// damaged file is the writer's to set aside; only a directory that cannot
/// be created fails here.
pub fn open_journal(config: &Config, clock: &Clock, devices: DeviceDirectory) -> Result<Journal> {
    let path = config.journal_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the log's directory {}", dir.display()))?;
    }
    let mut journal_config = JournalConfig::new(&path);
    journal_config.full_log = config.log.full_query_log;
    journal_config.blocked_retention_days = config.log.blocked_retention_days;
    journal_config.full_retention_days = config.log.full_retention_days;
    journal_config.time_zone = config.log.time_zone;
    journal_config.clock = clock.clone();
    // A block log damaged by a power cut, or a file that is not ours, must
    // not stop DNS: it is kept for inspection and a fresh one started.
    journal_config.set_aside_damaged = true;
    let (journal, task) = Journal::open(journal_config, devices)
        .with_context(|| format!("cannot open the block log {}", path.display()))?;
    tokio::spawn(task.run());
    Ok(journal)
}

/// Sends a notice to the school's alert recipients each time the block log
/// is found damaged (set aside, or not even that), including at start.
pub fn tell_school_about_damage(journal: &Journal, alerts: Arc<LiveAlerts>, zone: TimeZone) {
    let mut damage = journal.watch_damage();
    tokio::spawn(async move {
        let mut report = damage.borrow_and_update().clone();
        loop {
            if let Some(report) = report.take() {
                let headline = if report.degraded() {
                    "the block log is damaged and blocks are not being saved"
                } else {
                    "the block log was damaged and a fresh one started"
                };
                let told = alerts.notify(Notice {
                    headline: headline.into(),
                    text: report.in_plain_words(zone),
                    at_unix_ms: report.at_unix_ms,
                });
                if !told {
                    tracing::warn!(
                        "no alert email or webhook is configured, so nobody was told that {headline}"
                    );
                }
            }
            if damage.changed().await.is_err() {
                return;
            }
            report = damage.borrow_and_update().clone();
        }
    });
}

/// What was done at start about a damaged `admin.db`.
pub struct AdminSetAside {
    pub kept: std::path::PathBuf,
    pub error: String,
    /// Deny entries restored from the copy into the fresh store.
    pub restored: usize,
    /// Why the copy gave nothing, if it could not be read.
    pub copy_error: Option<String>,
    pub at_unix_ms: i64,
}

impl AdminSetAside {
    /// In words for a head teacher.
    pub fn in_plain_words(&self, zone: TimeZone) -> String {
        crate::admin::copy::set_aside_words(&self.kept, self.at_unix_ms, zone)
    }
}

/// Opens `admin.db` once at start; a damaged or foreign one is set aside
/// (`admin.db.damaged-TIME`), a fresh one started, and the deny entries of
/// the last copy put into it. Allow entries and unlocks are not restored:
/// a damaged store must never let anything through.
pub fn open_admin(config: &Config, clock: &Clock) -> Option<AdminSetAside> {
    use crate::admin::{AdminStore, copy};
    let path = config.admin_db_path();
    if !path.exists() {
        return None;
    }
    let error = match AdminStore::open(&path) {
        Ok(store) => {
            // Installs from before the copy existed get one now.
            if !copy::copy_path(&path).exists() {
                store.write_rules_copy();
            }
            return None;
        }
        Err(error) if error.is_damaged() => error,
        Err(error) => {
            tracing::error!("the page's records cannot be opened: {error}");
            return None;
        }
    };
    let kept = match crate::journal::set_aside(&path, clock) {
        Ok(kept) => kept,
        Err(why) => {
            tracing::error!(
                "the page's records {} are damaged ({error}) and could not be moved aside ({why}); the deny entries of the last copy are applied",
                path.display()
            );
            return None;
        }
    };
    let (denies, copy_error) = match copy::read_denies(&copy::copy_path(&path)) {
        Ok(denies) => (denies, None),
        Err(why) => {
            tracing::error!("{why}");
            (Vec::new(), Some(why))
        }
    };
    let restored = match AdminStore::open(&path).and_then(|store| store.restore_denies(&denies)) {
        Ok(restored) => restored,
        Err(why) => {
            tracing::error!("a fresh admin.db could not be started: {why}");
            0
        }
    };
    tracing::error!(
        "the page's records {} were damaged ({error}): moved to {}, a fresh store started with the {restored} deny entries of the last copy (allow entries and unlocks are not restored); no setup link is made: use `lollipop passwd` on the console",
        path.display(),
        kept.display()
    );
    Some(AdminSetAside {
        kept,
        error: error.to_string(),
        restored,
        copy_error,
        at_unix_ms: clock.now_unix_ms(),
    })
}

/// Puts a set-aside `admin.db` in the audit trail and tells the school.
pub fn record_admin_set_aside(
    set_aside: &AdminSetAside,
    journal: &Journal,
    alerts: &LiveAlerts,
    zone: TimeZone,
) {
    let mut detail = format!(
        "the page's records could not be read ({}); they were kept as {} and a fresh store started with {} deny entries from the last copy; allow entries and unlocks were not restored",
        set_aside.error,
        set_aside.kept.display(),
        set_aside.restored
    );
    if let Some(why) = &set_aside.copy_error {
        detail.push_str(&format!("; the copy was not used: {why}"));
    }
    journal.record_audit(crate::journal::AuditEntry {
        at_unix_ms: set_aside.at_unix_ms,
        actor: "Lollipop".into(),
        action: "admin store set aside".into(),
        detail,
        reason: None,
    });
    alerts.notify(Notice {
        headline: "the page's records were damaged and set aside".into(),
        text: set_aside.in_plain_words(zone),
        at_unix_ms: set_aside.at_unix_ms,
    });
}
