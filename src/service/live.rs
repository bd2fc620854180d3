//! Puts a reloaded config in force in the parts that were started with the
//! old one: the DNS listeners' allowed networks, the alerter (recipients,
//! categories, rate window, email and webhook), the block log's retention
//! and device names, and the page's session time-out and staff networks.
//! What cannot change without a restart is decided in
//! [`crate::config::restart`] and never reaches here.

use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result};
use arc_swap::ArcSwapOption;

use crate::alerts::feed::AlertFeed;
use crate::alerts::{AlertConfig, Alerter, Notice};
use crate::config::Config;
use crate::dns::resolve::recorder::BlockOutput;
use crate::dns::transport::Access;
use crate::dns::transport::listeners::allowed_networks;
use crate::journal::{BlockEvent, Journal};
use crate::web::WebState;

use super::device_directory;

/// The alerter in force, or none when no email or webhook is configured.
/// A reload that changes `[alerts]`, `[devices]` or `[log]` starts a new
/// one and swaps it in; the old one sends what it still holds and stops.
#[derive(Default)]
pub struct LiveAlerts {
    feed: ArcSwapOption<AlertFeed>,
    /// The same alerter, for notices about the appliance and about staff
    /// releasing what alerts.
    alerter: ArcSwapOption<Alerter>,
}

impl LiveAlerts {
    /// Starts the alerter for `config` and puts it in force (inside the
    /// runtime). An unusable `[alerts]` is an error and changes nothing.
    pub fn start(&self, config: &Config, journal: &Journal) -> Result<()> {
        let (feed, alerter) = match alert_feed(config, journal)? {
            Some((feed, alerter)) => (Some(Arc::new(feed)), Some(Arc::new(alerter))),
            None => (None, None),
        };
        self.feed.store(feed);
        self.alerter.store(alerter);
        Ok(())
    }

    /// Sends `notice` to the alert recipients in force; false when no email
    /// or webhook is configured (the caller says so in the log).
    pub fn notify(&self, notice: Notice) -> bool {
        match &*self.alerter.load() {
            Some(alerter) => {
                alerter.notify(notice);
                true
            }
            None => false,
        }
    }

    /// Each alert channel's delivery state (none without an alerter).
    pub fn health(&self) -> Vec<crate::alerts::ChannelHealth> {
        self.alerter
            .load()
            .as_ref()
            .map(|alerter| alerter.health())
            .unwrap_or_default()
    }

    /// Whether an alerter is running.
    pub fn is_on(&self) -> bool {
        self.feed.load().is_some()
    }

    /// The recorder's output, following whichever alerter is in force.
    pub fn output(self: &Arc<Self>) -> AlertOutput {
        AlertOutput(self.clone())
    }
}

/// Hands blocks to the alerter in force; never waits.
pub struct AlertOutput(Arc<LiveAlerts>);

impl BlockOutput for AlertOutput {
    fn blocked(&self, event: &BlockEvent) {
        if let Some(feed) = &*self.0.feed.load() {
            feed.offer(event);
        }
    }

    /// Asked per lookup, so an alerter put in force by a reload has every
    /// block it alerts on from its next lookup.
    fn wants(&self, category: Option<&str>, locked: bool) -> bool {
        self.0
            .feed
            .load()
            .as_ref()
            .is_some_and(|feed| feed.alerts_on(category, locked))
    }
}

/// The alerter's settings from `config`, checked (None: nothing to send to).
fn alert_settings(config: &Config) -> Result<Option<(AlertConfig, Vec<String>)>> {
    let alerts = &config.alerts;
    if alerts.email.is_none() && alerts.webhook.is_none() {
        return Ok(None);
    }
    let categories = config.alerting_categories();
    let mut alert_config = AlertConfig::new(alerts.school_name.clone());
    alert_config.categories = categories.clone();
    alert_config.email = alerts.email.clone();
    alert_config.webhook = alerts.webhook.clone();
    alert_config.time_zone = config.log.time_zone.name().to_string();
    alert_config.rate_window = std::time::Duration::from_secs(alerts.rate_window_minutes * 60);
    alert_config.profile_names = config
        .profiles
        .keys()
        .map(|id| (id.clone(), config.profile_name(id)))
        .collect();
    alert_config
        .validate()
        .context("the [alerts] settings are not usable")?;
    Ok(Some((alert_config, categories)))
}

fn alert_feed(config: &Config, journal: &Journal) -> Result<Option<(AlertFeed, Alerter)>> {
    let Some((alert_config, categories)) = alert_settings(config)? else {
        return Ok(None);
    };
    let (alerter, task) = Alerter::start(alert_config);
    tokio::spawn(task);
    let (feed, task) = AlertFeed::start(
        alerter.clone(),
        device_directory(config),
        categories,
        journal.clone(),
    );
    tokio::spawn(task);
    Ok(Some((feed, alerter)))
}

/// The running parts a reload reaches.
pub struct LiveParts {
    pub access: Arc<Access>,
    pub journal: Journal,
    pub alerts: Arc<LiveAlerts>,
    /// Set once the page is running (it starts after the reloader).
    pub web: OnceLock<Arc<WebState>>,
}

impl LiveParts {
    /// Checks what can fail before anything is swapped, so a bad reload
    /// changes nothing.
    pub fn check(config: &Config) -> Result<()> {
        allowed_networks(config)?;
        alert_settings(config)?;
        Ok(())
    }

    /// Puts `config` in force; `changed` are the file's changed sections.
    /// Returns what could not be applied, in words (empty: everything).
    pub async fn apply(&self, config: &Config, changed: &[String]) -> Vec<String> {
        let mut failed = Vec::new();
        match allowed_networks(config) {
            Ok(networks) => self.access.set(networks),
            Err(error) => failed.push(format!("server.allowed_networks: {error:#}")),
        }
        let touches = |section: &str| changed.iter().any(|c| c == section);
        if touches("log") || touches("devices") {
            let log = &config.log;
            let sent = self
                .journal
                .retune(
                    log.blocked_retention_days,
                    log.full_retention_days,
                    log.full_query_log,
                    device_directory(config),
                )
                .await;
            if !sent {
                failed.push("log and devices: the block log's writer has stopped".into());
            }
        }
        if (touches("alerts") || touches("devices") || touches("log"))
            && let Err(error) = self.alerts.start(config, &self.journal)
        {
            failed.push(format!("alerts: {error:#}"));
        }
        if let Some(web) = self.web.get()
            && let Err(error) = web.apply(config)
        {
            failed.push(error);
        }
        failed
    }
}
