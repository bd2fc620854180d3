//! The writer's side of a damaged block log: recording what was found and
//! done, and queueing the audit entry that opens the fresh log.

use super::super::damage::DamageReport;
use super::super::store::Item;
use super::super::{AuditEntry, JournalError};
use super::JournalTask;
use std::time::Instant;

impl JournalTask {
    /// After a damaged file was found and (perhaps) moved aside: says so
    /// once per change, records it for the page and the alerts, and notes
    /// in the fresh log's audit trail what happened to the old one. While
    /// the file cannot be moved, the writer backs off and tries again.
    pub(super) fn on_damage(
        &mut self,
        error: &JournalError,
        kept: std::io::Result<std::path::PathBuf>,
    ) {
        let path = self.config.path.display().to_string();
        let now_ms = self.config.clock.now_unix_ms();
        match kept {
            Ok(kept) => {
                tracing::error!(
                    "the block log {path} is damaged ({error}): it was moved to {} and a fresh log started; DNS kept answering",
                    kept.display()
                );
                self.push_front(Item::Audit(AuditEntry {
                    at_unix_ms: now_ms,
                    actor: "Lollipop".into(),
                    action: "block log set aside".into(),
                    detail: format!(
                        "the block log could not be read ({error}); it was kept as {} and a fresh log started",
                        kept.display()
                    ),
                    reason: None,
                }));
                self.shared.set_damage(DamageReport {
                    at_unix_ms: now_ms,
                    error: error.to_string(),
                    kept_as: Some(kept),
                    set_aside_error: None,
                });
                self.failing = None;
                self.shared.set_error(None, None);
                self.attempt_size = self.config.batch_max.max(1);
            }
            Err(why) => {
                let already = self.shared.snapshot().damage.is_some_and(|d| d.degraded());
                if !already {
                    tracing::error!(
                        "the block log {path} is damaged ({error}) and could not be moved aside ({why}): blocks are held in memory and not saved until it can be; DNS keeps answering"
                    );
                    self.shared.set_damage(DamageReport {
                        at_unix_ms: now_ms,
                        error: error.to_string(),
                        kept_as: None,
                        set_aside_error: Some(why.to_string()),
                    });
                }
                self.note_failure(error);
            }
        }
    }

    /// Queues `item` ahead of everything waiting (within the memory bound).
    pub(super) fn push_front(&mut self, item: Item) {
        if self.pending.len() + self.in_flight >= self.config.pending_max.max(1) {
            self.shared.drop_item(&item);
            return;
        }
        self.batch_started.get_or_insert_with(Instant::now);
        self.pending.push_front(item);
    }
}
