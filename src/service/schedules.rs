//! The background schedules the running service starts beside the
//! resolver: list downloads as they fall due, the weekly report email, the
//! hourly saving of the time (for a Pi without a battery clock), and the
//! sweeper that ends staff overrides on time. Each is only the loop;
//! the work it calls belongs to its owner (`updates`, `report`, the unlock
//! pages). Those that wait for a time of day take a [`Clock`], so a test can
//! set the time instead of waiting for it.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::dns::resolve::trusted_clock::TrustedClock;
use crate::lists::acquire::update::UpdateOutcome;
use crate::report::{email_report, next_weekly_send};
use crate::updates::update_lists;
use crate::web::WebState;
use crate::web::pages::unlock::expiry::sweep_once;

use super::reload::Reloader;

/// How often the time is saved while running, besides at shutdown: a power
/// cut loses at most this much of what the next start knows.
const SAVE_TIME_EVERY: Duration = Duration::from_secs(3600);

/// Saves the time (if the clock is trusted) as known to have passed, for
/// the next start's DNSSEC with a clock not yet set.
pub fn save_the_time(config: &crate::config::Config, clock: &Clock) {
    let trusted = TrustedClock::from_config(config, clock.clone());
    if let Err(error) = trusted.save() {
        tracing::warn!("{error:#}");
    }
}

/// While running: saves the time every hour. Runs until dropped.
pub async fn save_the_time_hourly(reloader: Arc<Reloader>, clock: Clock) {
    loop {
        save_the_time(&reloader.config().await, &clock);
        tokio::time::sleep(SAVE_TIME_EVERY).await;
    }
}

/// While running: fetches lists as they fall due and reloads when any
/// changed. Runs until the task is dropped.
pub async fn run_list_updates(reloader: Arc<Reloader>) {
    loop {
        let config = reloader.config().await;
        let pause = Duration::from_secs(config.updates.check_every_secs.max(1));
        if !config.updates.enabled {
            tokio::time::sleep(pause).await;
            continue;
        }
        let outcomes = match tokio::task::spawn_blocking(move || update_lists(&config, true)).await
        {
            Ok(outcomes) => outcomes,
            Err(error) => {
                tracing::warn!("the list update task failed: {error}");
                Vec::new()
            }
        };
        if outcomes
            .iter()
            .any(|(_, outcome)| matches!(outcome, UpdateOutcome::Updated { .. }))
        {
            reloader.reload("lists downloaded").await;
        }
        tokio::time::sleep(pause).await;
    }
}

/// While running: emails last week's report every Monday at 07:00 to the
/// `[alerts.email]` recipients, when `[reports] weekly_email` is on. The
/// secondary of an HA pair follows that setting but never sends: the
/// primary's report counts its lookups too, and the school gets one.
pub async fn run_weekly_report(reloader: Arc<Reloader>, clock: Clock) {
    loop {
        let config = reloader.config().await;
        let now_ms = clock.now_unix_ms();
        let at = next_weekly_send(now_ms, config.log.time_zone);
        tokio::time::sleep(std::time::Duration::from_millis((at - now_ms).max(0) as u64)).await;
        let config = reloader.config().await;
        if !config.reports.weekly_email {
            continue;
        }
        if config.secondary_of().is_some() {
            tracing::info!(
                "the weekly report is sent by the primary, with this box's figures in it"
            );
            continue;
        }
        if let Err(error) = email_report(&config, at - 7 * 86_400_000, at).await {
            tracing::warn!("the weekly report could not be sent: {error:#}");
        }
    }
}

/// The longest the override sweeper sleeps between two looks at the
/// overrides.
pub const SWEEP_PERIOD: Duration = Duration::from_secs(30);

/// The running override sweeper; dropping it stops the task.
pub struct Sweeper(tokio::task::JoinHandle<()>);

impl Sweeper {
    /// Starts sweeping (inside a Tokio runtime).
    pub fn start(state: Arc<WebState>, clock: Clock) -> Sweeper {
        Sweeper(tokio::spawn(sweep(state, clock)))
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Ends overrides on time without anyone clicking: wakes when the next
/// override expires (and every [`SWEEP_PERIOD`] at most, so a change made
/// to the admin database elsewhere is seen too). Runs until the task is
/// aborted (when the status page stops).
async fn sweep(state: Arc<WebState>, clock: Clock) {
    let mut swept_until = clock.now_unix_ms();
    loop {
        // Expiry waits for a clock that can be believed: swept from 1970,
        // every unlock would be recorded as expiring twice once it is set.
        if !state.pipeline.settings().policy.time.trusted {
            tokio::time::sleep(SWEEP_PERIOD.min(Duration::from_secs(1))).await;
            swept_until = clock.now_unix_ms().max(swept_until);
            continue;
        }
        let now = clock.now_unix_ms();
        let next = match sweep_once(&state, swept_until, now).await {
            Ok(next) => {
                swept_until = now;
                next
            }
            Err(error) => {
                tracing::error!("could not bring the staff overrides up to date: {error}");
                None
            }
        };
        let wait = next
            .map(|at| Duration::from_millis(u64::try_from(at - now).unwrap_or(0)))
            .map_or(SWEEP_PERIOD, |until_next| until_next.min(SWEEP_PERIOD));
        // A few milliseconds past the expiry, so it is over when we look.
        tokio::time::sleep(wait + Duration::from_millis(5)).await;
    }
}
