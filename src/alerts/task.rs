//! The alerter task: applies the per-(device, category) rate limit, folds
//! held-back events into a follow-up message when a window closes, and
//! delivers each message with retries.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use super::message::{Alert, category_of};
use super::notice::{Notice, Outgoing, SystemNotice};
use super::{AlertError, AlertOutcome, AlertRecord, Channel, Device, Shared, email, health};
use crate::clock::now_unix_ms;
use crate::journal::BlockEvent;

/// Events itemised in one folded message; the rest are only counted.
const MAX_LISTED: usize = 50;

#[derive(Debug)]
pub(crate) struct Offered {
    pub event: BlockEvent,
    pub device: Device,
}

/// Events released together as one message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Batch<T> {
    pub items: Vec<T>,
    pub unlisted: usize,
    pub folded: bool,
}

#[derive(Debug)]
struct Window<T> {
    ends: Instant,
    held: Vec<T>,
    unlisted: usize,
}

/// Rate windows per key. A key's first event goes out at once and opens a
/// window; events inside it are held, and released as one message when it
/// closes, which opens the next window. A window that closes empty is
/// forgotten, so memory follows recent activity only.
#[derive(Debug)]
pub(crate) struct Windows<K, T> {
    length: Duration,
    open: HashMap<K, Window<T>>,
}

impl<K: Eq + Hash + Clone, T> Windows<K, T> {
    pub fn new(length: Duration) -> Self {
        Windows {
            length,
            open: HashMap::new(),
        }
    }

    /// Returns what to send now, if anything.
    pub fn offer(&mut self, key: K, item: T, now: Instant) -> Option<Batch<T>> {
        let ends = now + self.length;
        match self.open.get_mut(&key) {
            Some(w) if now < w.ends => {
                if w.held.len() < MAX_LISTED {
                    w.held.push(item);
                } else {
                    w.unlisted += 1;
                }
                None
            }
            // Closed but its timer has not fired yet: the held events and this
            // one leave together rather than as two messages in a row.
            Some(w) => {
                let folded = !w.held.is_empty();
                let mut items = std::mem::take(&mut w.held);
                items.push(item);
                let unlisted = std::mem::take(&mut w.unlisted);
                w.ends = ends;
                Some(Batch {
                    items,
                    unlisted,
                    folded,
                })
            }
            None => {
                self.open.insert(
                    key,
                    Window {
                        ends,
                        held: Vec::new(),
                        unlisted: 0,
                    },
                );
                Some(Batch {
                    items: vec![item],
                    unlisted: 0,
                    folded: false,
                })
            }
        }
    }

    /// Releases the held events of every window closed by `now`.
    pub fn due(&mut self, now: Instant) -> Vec<Batch<T>> {
        let mut out = Vec::new();
        let next = now + self.length;
        self.open.retain(|_, w| {
            if w.ends > now {
                return true;
            }
            if w.held.is_empty() {
                return false;
            }
            out.push(Batch {
                items: std::mem::take(&mut w.held),
                unlisted: std::mem::take(&mut w.unlisted),
                folded: true,
            });
            w.ends = next;
            true
        });
        out
    }

    /// Everything still held, for shutdown: better early than never.
    pub fn drain(&mut self) -> Vec<Batch<T>> {
        self.open
            .drain()
            .filter(|(_, w)| !w.held.is_empty())
            .map(|(_, w)| Batch {
                items: w.held,
                unlisted: w.unlisted,
                folded: true,
            })
            .collect()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.open.values().map(|w| w.ends).min()
    }

    pub fn held(&self) -> usize {
        self.open.values().map(|w| w.held.len() + w.unlisted).sum()
    }
}

/// A device is known by its MAC when the caller has one (addresses move
/// under DHCP), else by its address.
fn key_of(event: &BlockEvent, device: &Device) -> (String, String) {
    let who = match device.mac.as_deref().map(str::trim) {
        Some(mac) if !mac.is_empty() => format!("mac:{}", mac.to_ascii_lowercase()),
        _ => format!("ip:{}", event.client),
    };
    (who, category_of(event))
}

pub(crate) async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<Offered>) {
    let mut windows = Windows::new(shared.settings.rate_window);
    let mut sends = JoinSet::new();
    loop {
        let deadline = windows.next_deadline();
        // Only polled when `deadline` is Some; the fallback is never reached.
        let wake = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        tokio::select! {
            offered = rx.recv() => {
                let Some(Offered { event, device }) = offered else { break };
                let key = key_of(&event, &device);
                match windows.offer(key, (event, device), Instant::now()) {
                    Some(batch) => dispatch(&shared, &mut sends, batch),
                    None => shared.update(|s| s.folded += 1),
                }
            }
            () = sleep_until(wake), if deadline.is_some() => {
                for batch in windows.due(Instant::now()) {
                    dispatch(&shared, &mut sends, batch);
                }
            }
            Some(joined) = sends.join_next(), if !sends.is_empty() => {
                if let Err(err) = joined {
                    tracing::error!(%err, "alert delivery task failed");
                }
            }
        }
        let held = windows.held() as u64;
        shared.update(|s| s.pending = held);
    }
    for batch in windows.drain() {
        dispatch(&shared, &mut sends, batch);
    }
    shared.update(|s| s.pending = 0);
    while let Some(joined) = sends.join_next().await {
        if let Err(err) = joined {
            tracing::error!(%err, "alert delivery task failed");
        }
    }
}

fn dispatch(shared: &Arc<Shared>, sends: &mut JoinSet<()>, batch: Batch<(BlockEvent, Device)>) {
    let settings = &shared.settings;
    let Some(mut alert) = Alert::compose(
        shared.next_id(),
        &settings.school,
        settings.zone,
        &batch.items,
        batch.unlisted,
        batch.folded,
    ) else {
        return;
    };
    if let Some(name) = settings.profile_names.get(&alert.profile) {
        alert.profile_name = name.clone();
    }
    let label = alert.device.label.clone();
    let category = alert.category.clone();
    let sent = spawn_deliveries(shared, sends, Outgoing::Block(Box::new(alert)));
    if !sent {
        tracing::warn!(%category, device = %label,
            "safeguarding alert composed but no channel is configured");
    }
}

/// Sends a notice about the appliance on every configured channel.
pub(crate) fn send_notice(shared: &Arc<Shared>, notice: Notice) {
    let settings = &shared.settings;
    let outgoing = Outgoing::Notice(SystemNotice {
        id: shared.next_id(),
        school: settings.school.clone(),
        zone: settings.zone,
        notice,
    });
    // Notices are rare and not rate-limited: each is its own task.
    let mut sends = JoinSet::new();
    if !spawn_deliveries(shared, &mut sends, outgoing) {
        tracing::warn!("a notice for the school was not sent: no email or webhook is configured");
    }
    sends.detach_all();
}

/// Sends `notice` on `channels` only (the ones still working).
fn send_notice_on(shared: &Arc<Shared>, notice: Notice, channels: Vec<Channel>) {
    let settings = &shared.settings;
    let outgoing = Outgoing::Notice(SystemNotice {
        id: shared.next_id(),
        school: settings.school.clone(),
        zone: settings.zone,
        notice,
    });
    let mut sends = JoinSet::new();
    spawn_on(shared, &mut sends, outgoing, channels);
    sends.detach_all();
}

/// Starts one delivery per configured channel; false when there are none.
fn spawn_deliveries(shared: &Arc<Shared>, sends: &mut JoinSet<()>, outgoing: Outgoing) -> bool {
    spawn_on(shared, sends, outgoing, shared.channels())
}

fn spawn_on(
    shared: &Arc<Shared>,
    sends: &mut JoinSet<()>,
    outgoing: Outgoing,
    channels: Vec<Channel>,
) -> bool {
    let alert = Arc::new(outgoing);
    shared.update(|s| {
        s.messages += 1;
        s.in_flight += channels.len() as u64;
    });
    let any = !channels.is_empty();
    for channel in channels {
        sends.spawn(deliver(Arc::clone(shared), Arc::clone(&alert), channel));
    }
    any
}

async fn attempt(shared: &Shared, alert: &Outgoing, channel: Channel) -> Result<(), AlertError> {
    let settings = &shared.settings;
    let limit = settings.retry.attempt_timeout;
    let work = async {
        match channel {
            Channel::Email => match &settings.email {
                Some(cfg) => email::send(cfg, alert, limit).await,
                None => Err(AlertError::Config("email is not configured".into())),
            },
            Channel::Webhook => match &settings.webhook {
                Some(sender) => sender.send(alert).await,
                None => Err(AlertError::Config("webhook is not configured".into())),
            },
        }
    };
    // The transports have their own timeouts; this one also bounds reading
    // secret files and anything the transports do not cover.
    match tokio::time::timeout(limit + Duration::from_secs(1), work).await {
        Ok(result) => result,
        Err(_) => Err(AlertError::Timeout(limit)),
    }
}

async fn deliver(shared: Arc<Shared>, alert: Arc<Outgoing>, channel: Channel) {
    let policy = shared.settings.retry;
    let max_attempts = policy.max_attempts.max(1);
    let mut delay = policy.first_delay;
    for n in 1..=max_attempts {
        let result = attempt(&shared, &alert, channel).await;
        let record = |outcome| AlertRecord {
            alert_id: alert.id(),
            channel,
            at_unix_ms: now_unix_ms(),
            attempt: n,
            device: alert.label(),
            category: alert.category(),
            name: alert.first_name(),
            events: alert.events(),
            outcome,
        };
        match &result {
            Ok(()) => note_delivered(&shared, channel),
            Err(err) => note_failed(&shared, &alert, channel, err),
        }
        match result {
            Ok(()) => {
                shared.record(record(AlertOutcome::Delivered));
                shared.update(|s| {
                    s.sent += 1;
                    s.in_flight = s.in_flight.saturating_sub(1);
                });
                tracing::info!(id = alert.id(), %channel, attempt = n, "safeguarding alert sent");
                return;
            }
            Err(err) if n < max_attempts => {
                let error = err.to_string();
                tracing::warn!(id = alert.id(), %channel, attempt = n, %error, "alert not sent; will retry");
                shared.record(record(AlertOutcome::Retrying {
                    error,
                    retry_in_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                }));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(policy.max_delay);
            }
            Err(err) => {
                let error = err.to_string();
                tracing::error!(id = alert.id(), %channel, attempts = n, %error, "safeguarding alert could not be sent");
                shared.record(record(AlertOutcome::Failed {
                    error: error.clone(),
                }));
                shared.update(|s| {
                    s.failed += 1;
                    s.in_flight = s.in_flight.saturating_sub(1);
                    s.last_error = Some(format!("{channel}: {error}"));
                });
                return;
            }
        }
    }
}

/// A delivery on `channel` worked; if it had been failing, the log says
/// it recovered (the dashboard line goes with it).
fn note_delivered(shared: &Shared, channel: Channel) {
    if let Some(was) = shared.health(channel, |h| h.delivered(now_unix_ms())) {
        tracing::info!(
            %channel,
            undelivered = was.undelivered.len(),
            "safeguarding alerts by {channel} work again"
        );
    }
}

/// An attempt on `channel` failed: once the channel is failing, the log
/// says so in the dashboard's words, and the other channels that work
/// carry a notice about it.
fn note_failed(shared: &Arc<Shared>, alert: &Outgoing, channel: Channel, error: &AlertError) {
    let now = now_unix_ms();
    let zone = shared.settings.zone;
    let reason = health::plain_reason(channel, error, shared.settings.email.as_ref());
    let about = match alert {
        Outgoing::Block(block) => Some((
            block.id,
            format!(
                "{}, {}, {}",
                block.device.label,
                block.category,
                health::brief(now, zone)
            ),
        )),
        Outgoing::Notice(_) => None,
    };
    let (tell, state) = shared.health(channel, |h| {
        (h.attempt_failed(now, reason, about), h.clone())
    });
    if !tell {
        return;
    }
    let working = shared.working_besides(channel);
    if working.is_empty() {
        tracing::error!(
            "{} No other alert channel works, so nobody has been told: check the settings under [alerts].",
            state.in_words(zone)
        );
        return;
    }
    tracing::error!(
        "{} A notice about it goes by {}.",
        state.in_words(zone),
        working
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" and ")
    );
    let notice = health::failure_notice(&state, zone, &working, now);
    send_notice_on(shared, notice, working);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_goes_at_once_then_the_rest_fold_into_one() {
        let t0 = Instant::now();
        let mut w = Windows::new(Duration::from_secs(600));
        let first = w.offer("a", 1, t0);
        assert_eq!(
            first,
            Some(Batch {
                items: vec![1],
                unlisted: 0,
                folded: false
            })
        );
        for i in 2..=5 {
            assert_eq!(w.offer("a", i, t0 + Duration::from_secs(i)), None);
        }
        // Another key is not held back by the first.
        assert!(w.offer("b", 9, t0 + Duration::from_secs(1)).is_some());
        assert_eq!(w.held(), 4);
        assert!(w.due(t0 + Duration::from_secs(599)).is_empty());
        let due = w.due(t0 + Duration::from_secs(600));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].items, vec![2, 3, 4, 5]);
        assert!(due[0].folded);
        // "b" closes empty a second later and is forgotten; the folded
        // message opened a new window for "a".
        assert!(w.due(t0 + Duration::from_secs(601)).is_empty());
        assert_eq!(w.open.len(), 1);
        assert!(w.due(t0 + Duration::from_secs(1200)).is_empty());
        assert!(w.open.is_empty());
    }

    #[test]
    fn floods_are_counted_not_stored() {
        let t0 = Instant::now();
        let mut w = Windows::new(Duration::from_secs(60));
        w.offer("a", 0, t0);
        for i in 0..(MAX_LISTED + 10) {
            w.offer("a", i, t0);
        }
        let batch = w.drain().pop();
        assert_eq!(
            batch.map(|b| (b.items.len(), b.unlisted)),
            Some((MAX_LISTED, 10))
        );
    }

    #[test]
    fn late_timer_sends_one_message_not_two() {
        let t0 = Instant::now();
        let mut w = Windows::new(Duration::from_secs(10));
        w.offer("a", 1, t0);
        w.offer("a", 2, t0);
        let batch = w.offer("a", 3, t0 + Duration::from_secs(11));
        assert_eq!(batch.map(|b| (b.items, b.folded)), Some((vec![2, 3], true)));
    }
}
