//! Carries alert-worthy blocks from the resolver to the alerter: the hot path
//! only checks the category and hands the event over; this task looks up the
//! device (leases, ARP, config) off the hot path, then offers it.

use std::future::Future;

use tokio::sync::mpsc;

use std::time::Duration;

use crate::journal::{AlertSent, AuditEntry, BlockEvent, DeviceDirectory, Journal};

use super::{AlertOutcome, AlertRecord, Alerter};

/// How often finished deliveries are copied into the block log.
const RECORD_EVERY: Duration = Duration::from_secs(2);

/// Events waiting for a device lookup; beyond this they are dropped (the
/// alerter's own queue and the block log still count them).
const FEED_LEN: usize = 1024;

#[derive(Clone)]
pub struct AlertFeed {
    sender: mpsc::Sender<BlockEvent>,
    categories: Vec<String>,
}

impl AlertFeed {
    /// The feed, and the task that resolves devices and offers the events.
    /// Each delivery's outcome goes into `journal`'s audit trail, so the
    /// weekly report and an inspector can see which alerts were sent.
    pub fn start(
        alerter: Alerter,
        mut devices: DeviceDirectory,
        categories: Vec<String>,
        journal: Journal,
    ) -> (AlertFeed, impl Future<Output = ()> + Send + 'static) {
        let (sender, mut receiver) = mpsc::channel::<BlockEvent>(FEED_LEN);
        let task = async move {
            let mut recorded: Seen = None;
            let mut tick = tokio::time::interval(RECORD_EVERY);
            loop {
                tokio::select! {
                    event = receiver.recv() => {
                        let Some(event) = event else { break };
                        let device = devices.lookup(event.client);
                        alerter.offer(&event, &device);
                    }
                    _ = tick.tick() => {
                        recorded = record_outcomes(&alerter, &journal, recorded.take());
                    }
                }
            }
        };
        (AlertFeed { sender, categories }, task)
    }

    /// Whether `event` should alert: a locked category or an alert category.
    pub fn wants(&self, event: &BlockEvent) -> bool {
        self.alerts_on(event.category.as_deref(), event.locked)
    }

    /// Whether a block of `category`, `locked` or not, should alert.
    pub fn alerts_on(&self, category: Option<&str>, locked: bool) -> bool {
        locked || category.is_some_and(|c| self.categories.iter().any(|a| a == c))
    }

    /// Hands `event` over if it should alert; never waits.
    pub fn offer(&self, event: &BlockEvent) {
        if self.wants(event) && self.sender.try_send(event.clone()).is_err() {
            tracing::warn!("alert queue full: an alert-worthy block was not alerted");
        }
    }
}

/// Which history entry was recorded last: (alert, attempt, channel).
type Seen = Option<(u64, u32, String)>;

/// Copies deliveries finished since the last call into the audit trail.
/// The history is bounded, so the last entry recorded is found by identity.
fn record_outcomes(alerter: &Alerter, journal: &Journal, seen: Seen) -> Seen {
    let history = alerter.history();
    let key = |r: &AlertRecord| (r.alert_id, r.attempt, r.channel.to_string());
    let start = match &seen {
        Some(last) => history
            .iter()
            .rposition(|r| key(r) == *last)
            .map_or(0, |i| i + 1),
        None => 0,
    };
    for record in &history[start..] {
        if let Some(entry) = audit_entry(record) {
            journal.record_audit(entry);
        }
        if let Some(sent) = alert_sent(record) {
            journal.record_alert(sent);
        }
    }
    history.last().map(key).or(seen)
}

/// The delivery as the block log keeps it for the central log (src/ship);
/// system notices are not alerts about a child and are left out.
fn alert_sent(record: &AlertRecord) -> Option<AlertSent> {
    let outcome = match &record.outcome {
        AlertOutcome::Delivered => "sent",
        AlertOutcome::Failed { .. } => "failed",
        AlertOutcome::Retrying { .. } => return None,
    };
    if record.events == 0 {
        return None;
    }
    Some(AlertSent {
        at_unix_ms: record.at_unix_ms,
        alert_id: record.alert_id,
        channel: record.channel.to_string(),
        outcome: outcome.into(),
        category: record.category.clone(),
        device: record.device.clone(),
        name: record.name.clone(),
        events: record.events as u64,
    })
}

fn audit_entry(record: &AlertRecord) -> Option<AuditEntry> {
    let (action, detail) = match &record.outcome {
        AlertOutcome::Delivered => ("alert sent", String::new()),
        AlertOutcome::Failed { error } => ("alert failed", format!(": {error}")),
        AlertOutcome::Retrying { .. } => return None,
    };
    Some(AuditEntry {
        at_unix_ms: record.at_unix_ms,
        actor: "alerter".into(),
        action: action.into(),
        detail: format!(
            "alert {} by {}: {} on {} ({} attempt(s) reported){detail}",
            record.alert_id, record.channel, record.category, record.device, record.events
        ),
        reason: None,
    })
}
