//! Opening the appliance's stores so that a damaged file never stops DNS:
//! a damaged or foreign block log is set aside (kept for inspection) and a
//! fresh one started, at start or whenever the writer finds it, and the
//! school is told in plain words.

use anyhow::{Context, Result};

use crate::alerts::{Alerter, Notice};
use crate::clock::{Clock, TimeZone};
use crate::config::Config;
use crate::journal::{DeviceDirectory, Journal, JournalConfig};

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
pub fn tell_school_about_damage(journal: &Journal, alerter: Option<Alerter>, zone: TimeZone) {
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
                match &alerter {
                    Some(alerter) => alerter.notify(Notice {
                        headline: headline.into(),
                        text: report.in_plain_words(zone),
                        at_unix_ms: report.at_unix_ms,
                    }),
                    None => tracing::warn!(
                        "no alert email or webhook is configured, so nobody was told that {headline}"
                    ),
                }
            }
            if damage.changed().await.is_err() {
                return;
            }
            report = damage.borrow_and_update().clone();
        }
    });
}
