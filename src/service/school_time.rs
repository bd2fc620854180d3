//! Keeps the rules of time in force: while running, wakes when a period starts or ends
//! (or at midnight) to put a policy built for the new state in force, as a
//! reload does. Also the clock's trust: until it can be believed, every
//! profile has its strictest rules, staff unlocks do not apply, their
//! expiry is not recorded, and the block log's retention waits.
//!
//! The sleep is capped, so a clock set by NTP (or moved by a test) is
//! noticed within [`LONGEST_SLEEP`] (a set test clock: [`TEST_SLEEP`]);
//! tokio's timers run on the monotonic clock and would not see a jump.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::dns::resolve::trusted_clock::TrustedClock;
use crate::journal::Journal;
use crate::policy::time_rules::TimeState;

use super::reload::Reloader;

/// The longest the timer sleeps without looking at the clock.
pub const LONGEST_SLEEP: Duration = Duration::from_secs(30);
/// The same for a clock a test sets (`LOLLIPOP_TEST_CLOCK_FILE`).
pub const TEST_SLEEP: Duration = Duration::from_millis(100);

/// The running timer; dropping it stops the task.
pub struct Timer(tokio::task::JoinHandle<()>);

impl Timer {
    /// Starts keeping the rules of time in force (inside a Tokio runtime).
    pub fn start(reloader: Arc<Reloader>, journal: Journal, clock: Clock) -> Timer {
        Timer(tokio::spawn(keep_in_force(reloader, journal, clock)))
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// While running: recomputes the rules of time at every boundary and when
/// the clock's trust changes, and swaps a new policy in when they differ.
pub async fn keep_in_force(reloader: Arc<Reloader>, journal: Journal, clock: Clock) {
    // One for the life of the process: its idea of the last known time is
    // what a jump far ahead is measured against.
    let trusted = TrustedClock::from_config(&reloader.config().await, clock.clone());
    loop {
        let config = reloader.config().await;
        journal.hold_pruning(!trusted.may_prune());
        let state = TimeState::compute(&config, clock.now_unix_ms(), trusted.is_trusted());
        let running = reloader.pipeline().settings().policy.time.clone();
        if state.key() != running.key() {
            describe_change(&running, &state);
            if let Err(error) = reloader.apply_local_rules().await {
                tracing::error!(
                    "the rules of time could not be put in force (the previous rules stay): {error}"
                );
            }
        }
        let cap = if clock.is_system() {
            LONGEST_SLEEP
        } else {
            TEST_SLEEP
        };
        let now = clock.now_unix_ms();
        let wait = state
            .next_change
            .map(|at| Duration::from_millis(u64::try_from(at - now).unwrap_or(0)))
            .map_or(cap, |until| until.min(cap));
        // A few milliseconds past the boundary, so it has passed when we look.
        tokio::time::sleep(wait + Duration::from_millis(5)).await;
    }
}

fn describe_change(before: &TimeState, after: &TimeState) {
    if before.trusted != after.trusted {
        if after.trusted {
            tracing::info!("the clock is trusted: the calendar's rules of time apply");
        } else {
            tracing::warn!(
                "the clock is not trusted yet: every profile has its strictest rules and staff unlocks wait"
            );
        }
    }
    for profile in &after.profiles {
        let labels: Vec<&str> = profile.rules.iter().map(|r| r.label.as_str()).collect();
        tracing::info!(
            "rules of time for profile {}: {}",
            profile.name,
            if labels.is_empty() {
                "none".to_string()
            } else {
                labels.join(", ")
            }
        );
    }
}
