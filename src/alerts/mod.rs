//! Tells the designated safeguarding lead, at once, when a child's device is
//! blocked from something serious: the public handle, its settings, and the
//! record of what was sent.

pub mod email;
pub mod feed;
pub mod health;
mod json;

mod message;
mod notice;
mod task;
pub mod time;
mod webhook;

use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

pub use crate::journal::BlockEvent;
pub use health::ChannelHealth;
pub use notice::Notice;
pub use time::TimeZone;

/// The `list` a name-rule hit is logged under (src/policy/name_rules.rs);
/// its `rule` then names the term, and the alert repeats it.
pub const NAME_RULES_LIST: &str = "name rules";

/// Categories that alert unless the school says otherwise. The caller adds
/// every locked category to these.
pub const DEFAULT_CATEGORIES: &[&str] = &["self-harm", "extremism", "pornography"];

/// How many history entries are kept for the journal to persist.
pub const HISTORY_LEN: usize = 200;

/// Events waiting for the task. Big enough for a burst from a whole class;
/// beyond it events are counted as dropped rather than blocking DNS.
const QUEUE_LEN: usize = 1024;

/// The device behind a client address, resolved by the caller.
pub use crate::journal::DeviceInfo as Device;

#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// Categories that alert (compared without regard to case). Locked
    /// events alert whatever their category.
    pub categories: Vec<String>,
    pub email: Option<EmailConfig>,
    pub webhook: Option<WebhookConfig>,
    pub school_name: String,
    /// "Europe/London" or "UTC"; anything else is shown as UTC.
    pub time_zone: String,
    /// At most one message per (device, category) per window.
    pub rate_window: Duration,
    pub retry: RetryPolicy,
    /// (profile id, what people call it), for the words of a message.
    pub profile_names: Vec<(String, String)>,
}

/// `[alerts.email]` in the config.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// When true STARTTLS is required and the send fails without it. When
    /// false: implicit TLS on port 465, otherwise STARTTLS if the relay
    /// offers it (an internal relay with no TLS still works).
    #[serde(default = "yes")]
    pub starttls: bool,
    pub username: Option<String>,
    /// Read at every send, so a changed password needs no restart.
    pub password_file: Option<PathBuf>,
    pub from: String,
    pub to: Vec<String>,
    /// Extra CA certificates (PEM) trusted besides the public roots, for a
    /// school's own relay.
    pub ca_file: Option<PathBuf>,
}

fn default_smtp_port() -> u16 {
    587
}

fn yes() -> bool {
    true
}

/// `[alerts.webhook]` in the config.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// Holds a bearer token; read at every send.
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before the second attempt; doubles after each failure.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Attempts in all, including the first (0 is treated as 1).
    pub max_attempts: u32,
    /// Longest one attempt may take before it counts as failed.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(600),
            max_attempts: 5,
            attempt_timeout: Duration::from_secs(30),
        }
    }
}

impl AlertConfig {
    /// Defaults for everything but where to send: the default categories,
    /// UK time, a ten-minute window and the default retry policy.
    pub fn new(school_name: impl Into<String>) -> AlertConfig {
        AlertConfig {
            categories: DEFAULT_CATEGORIES.iter().map(|c| c.to_string()).collect(),
            email: None,
            webhook: None,
            school_name: school_name.into(),
            time_zone: "Europe/London".into(),
            rate_window: Duration::from_secs(600),
            retry: RetryPolicy::default(),
            profile_names: Vec::new(),
        }
    }

    /// Checks what can be checked without the network or the secret files,
    /// so a config loader can reject a broken config before it is live.
    pub fn validate(&self) -> Result<(), AlertError> {
        if self.time_zone.parse::<TimeZone>().is_err() {
            return Err(AlertError::Config(format!(
                "time zone {:?} is not \"Europe/London\" or \"UTC\"",
                self.time_zone
            )));
        }
        if let Some(email) = &self.email {
            email::validate(email)?;
        }
        if let Some(hook) = &self.webhook {
            webhook::validate(hook)?;
        }
        Ok(())
    }
}

/// Why a delivery attempt failed. The text ends up in stats and history, so
/// it never carries a password, a token or a webhook URL.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("reading {}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("composing the email: {0}")]
    Message(String),
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("webhook request: {0}")]
    Http(String),
    #[error("webhook answered HTTP {0}")]
    Status(u16),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("send task failed: {0}")]
    Task(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Webhook,
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        })
    }
}

/// The result of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AlertOutcome {
    Delivered,
    /// Failed; another attempt follows after the delay.
    Retrying {
        error: String,
        retry_in_ms: u64,
    },
    /// Failed on the last attempt; the message was not delivered.
    Failed {
        error: String,
    },
}

/// One attempt to deliver one message over one channel. Holds no site names,
/// so it is safe to persist and display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertRecord {
    pub alert_id: u64,
    pub channel: Channel,
    pub at_unix_ms: i64,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub device: String,
    pub category: String,
    /// The first site the message named; `None` when withheld (a locked
    /// list) or for a notice.
    pub name: Option<String>,
    /// Block events the message reported.
    pub events: usize,
    pub outcome: AlertOutcome,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AlertStats {
    /// Events that matched an alert category and reached the task's queue.
    pub offered: u64,
    /// Messages composed (each goes to every configured channel).
    pub messages: u64,
    /// Deliveries that succeeded, counted per channel.
    pub sent: u64,
    /// Events held back by the rate limit and reported in a later message.
    pub folded: u64,
    /// Deliveries that failed on their last attempt, counted per channel.
    pub failed: u64,
    /// Events lost because the queue was full or the task had stopped.
    pub dropped: u64,
    /// Events held for a folded message that has not been sent yet.
    pub pending: u64,
    /// Deliveries still trying (including those waiting to retry).
    pub in_flight: u64,
    pub last_error: Option<String>,
}

/// Reads a one-line secret. Trailing newlines are what editors leave, not
/// part of the secret.
async fn read_secret(path: &Path) -> Result<String, AlertError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|source| AlertError::File {
            path: path.to_path_buf(),
            source,
        })?;
    let secret = text.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        return Err(AlertError::Config(format!("{} is empty", path.display())));
    }
    Ok(secret.to_string())
}

/// Settings after parsing, shared by the task and its deliveries.
#[derive(Debug)]
pub(crate) struct Settings {
    categories: Vec<String>,
    email: Option<EmailConfig>,
    webhook: Option<webhook::Sender>,
    school: String,
    zone: TimeZone,
    rate_window: Duration,
    retry: RetryPolicy,
    profile_names: std::collections::HashMap<String, String>,
}

#[derive(Debug, Default)]
struct Ledger {
    stats: AlertStats,
    history: VecDeque<AlertRecord>,
    /// Each configured channel's delivery state.
    health: Vec<ChannelHealth>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    settings: Settings,
    ledger: Mutex<Ledger>,
    next_id: AtomicU64,
}

impl Shared {
    /// A panic elsewhere while holding the lock must not silence alerts, so a
    /// poisoned ledger is used as it stands.
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut AlertStats)) {
        f(&mut self.ledger().stats);
    }

    fn record(&self, record: AlertRecord) {
        let mut ledger = self.ledger();
        if ledger.history.len() >= HISTORY_LEN {
            ledger.history.pop_front();
        }
        ledger.history.push_back(record);
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The configured channels.
    fn channels(&self) -> Vec<Channel> {
        let mut channels = Vec::with_capacity(2);
        if self.settings.email.is_some() {
            channels.push(Channel::Email);
        }
        if self.settings.webhook.is_some() {
            channels.push(Channel::Webhook);
        }
        channels
    }

    /// Applies `change` to `channel`'s health.
    fn health<T>(&self, channel: Channel, change: impl FnOnce(&mut ChannelHealth) -> T) -> T {
        let mut ledger = self.ledger();
        let index = match ledger.health.iter().position(|h| h.channel == channel) {
            Some(index) => index,
            None => {
                ledger.health.push(ChannelHealth::new(channel));
                ledger.health.len() - 1
            }
        };
        change(&mut ledger.health[index])
    }

    /// The configured channels that are not failing, but `channel`.
    fn working_besides(&self, channel: Channel) -> Vec<Channel> {
        let ledger = self.ledger();
        self.channels()
            .into_iter()
            .filter(|other| *other != channel)
            .filter(|other| {
                !ledger
                    .health
                    .iter()
                    .any(|h| h.channel == *other && h.failing())
            })
            .collect()
    }
}

/// Cheap to clone; every clone feeds the same task. The task ends once every
/// clone is dropped, after sending what it still holds.
#[derive(Debug, Clone)]
pub struct Alerter {
    tx: mpsc::Sender<task::Offered>,
    shared: Arc<Shared>,
}

impl Alerter {
    /// Returns the handle and the task; the caller spawns the task on a tokio
    /// runtime. Config problems do not stop the task: they surface as failed
    /// deliveries in `stats`, so call `AlertConfig::validate` first.
    pub fn start(config: AlertConfig) -> (Alerter, impl Future<Output = ()> + Send + 'static) {
        let zone = config.time_zone.parse::<TimeZone>().unwrap_or_else(|_| {
            tracing::warn!(zone = %config.time_zone, "unknown time zone for alerts; using UTC");
            TimeZone::Utc
        });
        if config.email.is_none() && config.webhook.is_none() {
            tracing::warn!("alerts have no email or webhook configured; nobody will be told");
        }
        let settings = Settings {
            categories: config
                .categories
                .iter()
                .map(|c| c.trim().to_lowercase())
                .collect(),
            email: config.email,
            webhook: config
                .webhook
                .map(|w| webhook::Sender::new(w, config.retry.attempt_timeout)),
            school: config.school_name,
            zone,
            rate_window: config.rate_window,
            retry: config.retry,
            profile_names: config.profile_names.into_iter().collect(),
        };
        let shared = Arc::new(Shared {
            settings,
            ledger: Mutex::new(Ledger::default()),
            next_id: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel(QUEUE_LEN);
        let alerter = Alerter {
            tx,
            shared: Arc::clone(&shared),
        };
        (alerter, task::run(shared, rx))
    }

    /// Hands an event to the task if it should alert. Never waits: called
    /// on the DNS path.
    pub fn offer(&self, event: &BlockEvent, device: &Device) {
        if !self.alerts_on(event) {
            return;
        }
        let offered = task::Offered {
            event: event.clone(),
            device: device.clone(),
        };
        match self.tx.try_send(offered) {
            Ok(()) => self.shared.update(|s| s.offered += 1),
            Err(err) => {
                let why = match err {
                    mpsc::error::TrySendError::Full(_) => "queue full",
                    mpsc::error::TrySendError::Closed(_) => "alerter stopped",
                };
                // Deliberately no site name: it may be from a locked list.
                tracing::warn!(why, client = %event.client, "safeguarding alert dropped");
                self.shared.update(|s| s.dropped += 1);
            }
        }
    }

    /// Sends a notice about the appliance itself to every configured
    /// channel, with the same retries as an alert. Never waits; must be
    /// called inside the runtime.
    pub fn notify(&self, notice: Notice) {
        task::send_notice(&self.shared, notice);
    }

    fn alerts_on(&self, event: &BlockEvent) -> bool {
        event.locked
            || event.category.as_deref().is_some_and(|c| {
                let c = c.trim();
                self.shared
                    .settings
                    .categories
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(c))
            })
    }

    /// Each configured channel's delivery state (email first).
    pub fn health(&self) -> Vec<ChannelHealth> {
        let ledger = self.shared.ledger();
        self.shared
            .channels()
            .into_iter()
            .map(|channel| {
                ledger
                    .health
                    .iter()
                    .find(|h| h.channel == channel)
                    .cloned()
                    .unwrap_or_else(|| ChannelHealth::new(channel))
            })
            .collect()
    }

    pub fn stats(&self) -> AlertStats {
        self.shared.ledger().stats.clone()
    }

    /// Oldest first; at most `HISTORY_LEN` attempts.
    pub fn history(&self) -> Vec<AlertRecord> {
        self.shared.ledger().history.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests;
