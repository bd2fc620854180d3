//! Whether each alert channel is getting through: a channel whose attempts
//! keep failing is "failing" from its first failed attempt, in plain words
//! for the dashboard and the log, and the school is told by the other
//! channel (if that one works) with a count of the alerts not delivered.
//! The weekly report reads the same story back from the audit trail.

use std::collections::BTreeMap;

use serde::Serialize;

use super::time::TimeZone;
use super::{AlertError, Channel, EmailConfig};
use crate::journal::AuditRow;

/// Attempts in a row that make a channel failing: the first try and its
/// first retry (5 seconds apart by default), so one blip that the retry
/// fixes alarms nobody, and a relay that is down is reported within
/// seconds rather than after the last retry minutes later.
pub const FAILING_AFTER: u32 = 2;

/// While a channel stays failing, the notice is sent again at most this
/// often, when more alerts have gone undelivered.
const RENOTIFY_MS: i64 = 3_600_000;

/// One channel's delivery state since it last worked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelHealth {
    pub channel: Channel,
    /// Failed attempts since the last success (any message).
    pub failed_attempts: u32,
    /// The first failed attempt since the last success.
    pub failing_since_unix_ms: Option<i64>,
    /// Why the last attempt failed, in plain words.
    pub last_error: Option<String>,
    /// Alerts about a child (not notices) not delivered on this channel
    /// since it last worked, and the latest of them in words.
    pub undelivered: Vec<u64>,
    pub latest_undelivered: Option<String>,
    pub last_delivered_unix_ms: Option<i64>,
    /// When the school was last told, and how many alerts it was told of.
    #[serde(skip)]
    notified: Option<(i64, usize)>,
}

impl ChannelHealth {
    pub fn new(channel: Channel) -> ChannelHealth {
        ChannelHealth {
            channel,
            failed_attempts: 0,
            failing_since_unix_ms: None,
            last_error: None,
            undelivered: Vec::new(),
            latest_undelivered: None,
            last_delivered_unix_ms: None,
            notified: None,
        }
    }

    pub fn failing(&self) -> bool {
        self.failed_attempts >= FAILING_AFTER
    }

    /// "Alerts to the safeguarding lead by email are failing since Mon 7
    /// Dec, 08:40: could not connect to mail.school.uk:587."
    pub fn in_words(&self, zone: TimeZone) -> String {
        let since = self
            .failing_since_unix_ms
            .map(|at| format!(" since {}", brief(at, zone)))
            .unwrap_or_default();
        let why = self.last_error.as_deref().unwrap_or("no reason given");
        let mut text = format!(
            "Alerts to the safeguarding lead by {} are failing{since}: {why}.",
            self.channel
        );
        match (self.undelivered.len(), &self.latest_undelivered) {
            (0, _) => {}
            (n, Some(latest)) => text.push_str(&format!(
                " {} not delivered by {}; the latest: {latest}.",
                alerts(n),
                self.channel
            )),
            (n, None) => text.push_str(&format!(
                " {} not delivered by {}.",
                alerts(n),
                self.channel
            )),
        }
        text
    }

    /// A failed attempt of message `alert` (`about`: the alert in words,
    /// None for a notice). True when the school should be told now.
    pub(crate) fn attempt_failed(
        &mut self,
        now_ms: i64,
        reason: String,
        alert: Option<(u64, String)>,
    ) -> bool {
        self.failed_attempts = self.failed_attempts.saturating_add(1);
        self.failing_since_unix_ms.get_or_insert(now_ms);
        self.last_error = Some(reason);
        if let Some((id, about)) = alert
            && !self.undelivered.contains(&id)
        {
            self.undelivered.push(id);
            self.latest_undelivered = Some(about);
        }
        if !self.failing() {
            return false;
        }
        let due = match self.notified {
            None => true,
            // Told of none yet, or an hour on with more to tell.
            Some((at, told)) => {
                self.undelivered.len() > told && (told == 0 || now_ms - at >= RENOTIFY_MS)
            }
        };
        if due {
            self.notified = Some((now_ms, self.undelivered.len()));
        }
        due
    }

    /// A delivery on this channel worked: it is not failing any more.
    /// Returns what it was, when it was failing, for the log.
    pub(crate) fn delivered(&mut self, now_ms: i64) -> Option<ChannelHealth> {
        let was = self.failing().then(|| self.clone());
        *self = ChannelHealth {
            last_delivered_unix_ms: Some(now_ms),
            ..ChannelHealth::new(self.channel)
        };
        was
    }
}

fn alerts(n: usize) -> String {
    match n {
        1 => "1 alert was".into(),
        n => format!("{n} alerts were"),
    }
}

/// "Mon 7 Dec, 08:40", as every page writes times.
pub fn brief(unix_ms: i64, zone: TimeZone) -> String {
    crate::clock::people::when(zone, unix_ms)
}

/// Why an attempt failed, as a head teacher would say it.
pub(crate) fn plain_reason(
    channel: Channel,
    error: &AlertError,
    email: Option<&EmailConfig>,
) -> String {
    let server = email.map_or_else(
        || "the mail server".to_string(),
        |e| format!("{}:{}", e.host, e.port),
    );
    match (channel, error) {
        (_, AlertError::Timeout(limit)) => {
            format!("no answer within {} seconds", limit.as_secs())
        }
        (_, AlertError::File { path, .. }) => format!("cannot read {}", path.display()),
        (_, AlertError::Config(text)) => format!("the settings are wrong: {text}"),
        (Channel::Email, AlertError::Smtp(smtp)) if smtp.is_timeout() => {
            format!("no answer from {server}")
        }
        (Channel::Email, AlertError::Smtp(smtp)) if smtp.is_tls() => {
            format!("could not make a secure connection to {server}")
        }
        (Channel::Email, AlertError::Smtp(smtp)) if smtp.is_permanent() => {
            format!("{server} refused the message ({smtp})")
        }
        (Channel::Email, AlertError::Smtp(smtp)) if smtp.is_transient() => {
            format!("{server} asked to try again later ({smtp})")
        }
        (Channel::Email, AlertError::Smtp(smtp)) if smtp.is_response() || smtp.is_client() => {
            format!("{server} did not take the message ({smtp})")
        }
        (Channel::Email, AlertError::Smtp(_)) => format!("could not connect to {server}"),
        (_, AlertError::Tls(text)) => format!("could not set up a secure connection: {text}"),
        (_, AlertError::Status(code)) => format!("the webhook answered HTTP {code}"),
        (_, AlertError::Http(text)) => format!("could not reach the webhook ({text})"),
        (_, other) => other.to_string(),
    }
}

/// The notice sent by the other channel(s) when `health`'s channel fails.
pub(crate) fn failure_notice(
    health: &ChannelHealth,
    zone: TimeZone,
    working: &[Channel],
    now_ms: i64,
) -> super::Notice {
    let others = working
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" and ");
    super::Notice {
        headline: format!("Safeguarding alerts by {} are failing", health.channel),
        text: format!(
            "{}\nAlerts still arrive by {others}, like this notice. Ask whoever looks after the school's {} to check it; the dashboard shows when it works again.",
            health.in_words(zone),
            match health.channel {
                Channel::Email => "email",
                Channel::Webhook => "webhook (chat or ticket system)",
            }
        ),
        at_unix_ms: now_ms,
    }
}

/// What the audit trail says about deliveries in a period, per channel,
/// for the weekly report: empty when every alert got through.
pub fn failures_in(rows: &[AuditRow], zone: TimeZone) -> Vec<String> {
    // Per channel: (failed alerts, the first failure since the last success,
    // the last error, failing at the end).
    let mut channels: BTreeMap<&str, (usize, Option<i64>, String, bool)> = BTreeMap::new();
    let mut sorted: Vec<&AuditRow> = rows.iter().filter(|row| row.actor == "alerter").collect();
    sorted.sort_by_key(|row| row.at_unix_ms);
    for row in sorted {
        let Some(channel) = ["email", "webhook"]
            .into_iter()
            .find(|c| row.detail.contains(&format!(" by {c}: ")))
        else {
            continue;
        };
        let entry = channels.entry(channel).or_default();
        match row.action.as_str() {
            "alert failed" => {
                entry.0 += 1;
                entry.1.get_or_insert(row.at_unix_ms);
                entry.2 = row
                    .detail
                    .rsplit_once("): ")
                    .map_or_else(String::new, |(_, why)| why.to_string());
                entry.3 = true;
            }
            "alert sent" => {
                entry.1 = None;
                entry.3 = false;
            }
            _ => {}
        }
    }
    channels
        .into_iter()
        .filter(|(_, (failed, ..))| *failed > 0)
        .map(|(channel, (failed, since, why, failing))| {
            let messages = match failed {
                1 => "1 message".to_string(),
                n => format!("{n} messages"),
            };
            match (failing, since) {
                (true, Some(since)) => format!(
                    "Alerts to the safeguarding lead by {channel} were failing at the end of the week, since {}: {why}. {messages} could not be sent by {channel}.",
                    brief(since, zone)
                ),
                _ => format!(
                    "{messages} to the safeguarding lead could not be sent by {channel} this week; it worked again afterwards."
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_failed_try_is_not_failing_the_retry_that_fails_is() {
        let mut email = ChannelHealth::new(Channel::Email);
        assert!(!email.attempt_failed(
            1_000,
            "could not connect".into(),
            Some((1, "Y5-iPad, self-harm".into()))
        ));
        assert!(!email.failing());
        assert!(email.attempt_failed(
            6_000,
            "could not connect".into(),
            Some((1, "Y5-iPad, self-harm".into()))
        ));
        assert!(email.failing());
        assert_eq!(email.failing_since_unix_ms, Some(1_000));
        assert_eq!(email.undelivered, vec![1]);
        // Told once: the next failure of the same alert says nothing new.
        assert!(!email.attempt_failed(16_000, "could not connect".into(), Some((1, "x".into()))));
        // A new alert lost within the hour waits for the hour.
        assert!(!email.attempt_failed(
            20_000,
            "could not connect".into(),
            Some((2, "Y6, porn".into()))
        ));
        assert!(email.attempt_failed(
            20_000 + RENOTIFY_MS,
            "could not connect".into(),
            Some((3, "Y6, porn".into()))
        ));
        let words = email.in_words(TimeZone::Utc);
        assert!(words.starts_with("Alerts to the safeguarding lead by email are failing since Thu 1 Jan, 00:00: could not connect."), "{words}");
        assert!(
            words.contains("3 alerts were not delivered by email; the latest: Y6, porn."),
            "{words}"
        );

        let was = email.delivered(30_000_000).expect("it was failing");
        assert_eq!(was.undelivered.len(), 3);
        assert!(!email.failing());
        assert!(email.undelivered.is_empty());
        assert_eq!(email.last_delivered_unix_ms, Some(30_000_000));
    }

    #[test]
    fn notices_failing_first_then_an_alert_lost_is_told_at_once() {
        let mut email = ChannelHealth::new(Channel::Email);
        email.attempt_failed(0, "down".into(), None);
        assert!(email.attempt_failed(5_000, "down".into(), None));
        // The start-up notice failed; the first alert lost is news.
        assert!(email.attempt_failed(9_000, "down".into(), Some((4, "Y5, self-harm".into()))));
    }

    #[test]
    fn the_report_reads_failures_back_from_the_audit_trail() {
        let row = |at: i64, action: &str, detail: &str| AuditRow {
            id: 0,
            at_unix_ms: at,
            actor: "alerter".into(),
            action: action.into(),
            detail: detail.into(),
            reason: None,
        };
        let rows = vec![
            row(
                1_000,
                "alert failed",
                "alert 1 by email: self-harm on Y5 (1 attempt(s) reported): could not connect to mail:587",
            ),
            row(
                1_500,
                "alert sent",
                "alert 1 by webhook: self-harm on Y5 (1 attempt(s) reported)",
            ),
            row(
                2_000,
                "alert failed",
                "alert 2 by email: pornography on Y6 (1 attempt(s) reported): could not connect to mail:587",
            ),
        ];
        let lines = failures_in(&rows, TimeZone::Utc);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("by email were failing at the end of the week, since Thu 1 Jan, 00:00: could not connect to mail:587. 2 messages"), "{lines:?}");
        let mut recovered = rows.clone();
        recovered.push(row(
            3_000,
            "alert sent",
            "alert 3 by email: x on y (1 attempt(s) reported)",
        ));
        let lines = failures_in(&recovered, TimeZone::Utc);
        assert!(lines[0].contains("worked again"), "{lines:?}");
        assert!(failures_in(&rows[1..2], TimeZone::Utc).is_empty());
    }
}
