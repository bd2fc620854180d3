//! Downloading lists: every download at once for `lollipop lists update`, or
//! each on its own cadence while `run` answers; a list that changed triggers
//! a reload. A failed or stale download keeps its last good copy, loudly.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::lists::acquire::sources::{self, ListSource, downloads_dir};
use crate::lists::acquire::update::{UpdateOutcome, is_due, is_stale, load_state, update_source};
use crate::reload::Reloader;

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Downloads every list that has URLs (all of them, or only those due).
/// Blocking: run it off the async runtime.
pub fn update_lists(config: &Config, only_due: bool) -> Vec<(String, UpdateOutcome)> {
    let store = downloads_dir(config);
    let now = now_unix();
    sources::configured(config)
        .into_iter()
        .filter_map(|source: ListSource| source.fetch)
        .filter(|fetch| !only_due || is_due(fetch, &load_state(&store, &fetch.name), now))
        .map(|fetch| {
            let outcome = update_source(&fetch, &store, now);
            log_outcome(&fetch.name, &outcome);
            if is_stale(&fetch, &load_state(&store, &fetch.name), now) {
                tracing::warn!(
                    "list '{}' is stale: no successful download for over three update periods",
                    fetch.name
                );
            }
            (fetch.name, outcome)
        })
        .collect()
}

fn log_outcome(name: &str, outcome: &UpdateOutcome) {
    match outcome {
        UpdateOutcome::Updated { entries, url } => {
            tracing::info!("list '{name}' updated from {url}: {entries} entries")
        }
        UpdateOutcome::NotModified => tracing::debug!("list '{name}' not modified"),
        UpdateOutcome::Failed {
            reason,
            kept_last_good,
        } => {
            let kept = if *kept_last_good {
                "keeping the last good copy"
            } else {
                "no copy yet, so the list is not in use"
            };
            tracing::warn!("list '{name}' update failed ({kept}): {reason}")
        }
    }
}

/// While running: fetches lists as they fall due and reloads when any
/// changed. Runs until the task is dropped.
pub async fn run_schedule(reloader: Arc<Reloader>) {
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
