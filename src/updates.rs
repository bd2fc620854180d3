//! Downloading lists: every download at once for `lollipop lists update`, or
//! those due while `run` answers (the service's schedule calls it and
//! reloads when a list changed). A failed or stale download keeps its last
//! good copy, loudly. The DNSSEC root trust anchor is renewed with them
//! (`trust_anchor`).

pub mod trust_anchor;

use crate::clock::now_unix_secs;
use crate::config::Config;
use crate::lists::acquire::sources::{self, ListSource, downloads_dir};
use crate::lists::acquire::update::{UpdateOutcome, is_due, is_stale, load_state, update_source};

/// Downloads every list that has URLs (all of them, or only those due),
/// and renews the root trust anchor when validating.
/// Blocking: run it off the async runtime.
pub fn update_lists(config: &Config, only_due: bool) -> Vec<(String, UpdateOutcome)> {
    let store = downloads_dir(config);
    let now = now_unix_secs();
    let mut outcomes = update_downloads(config, only_due, &store, now);
    if let Some((label, outcome)) = trust_anchor::update_trust_anchor(config, only_due, now) {
        log_outcome(&label, &outcome);
        outcomes.push((label, outcome));
    }
    outcomes
}

fn update_downloads(
    config: &Config,
    only_due: bool,
    store: &std::path::Path,
    now: u64,
) -> Vec<(String, UpdateOutcome)> {
    sources::configured(config)
        .into_iter()
        .filter_map(|source: ListSource| source.fetch)
        .filter(|fetch| !only_due || is_due(fetch, &load_state(store, &fetch.name), now))
        .map(|fetch| {
            let outcome = update_source(&fetch, store, now);
            log_outcome(&fetch.name, &outcome);
            if is_stale(&fetch, &load_state(store, &fetch.name), now) {
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
