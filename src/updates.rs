//! Downloading lists: every download at once for `lollipop lists update`, or
//! those due while `run` answers (the service's schedule calls it and
//! reloads when a list changed). A failed or stale download keeps its last
//! good copy, loudly. The DNSSEC root trust anchor (`trust_anchor`), the
//! bank holidays (`bank_holidays`) and a trust's policy bundle
//! (`trust_bundle`) are renewed with them.

pub mod bank_holidays;
pub mod trust_anchor;
pub mod trust_bundle;

use std::io::Write;
use std::path::Path;

use crate::clock::now_unix_secs;
use crate::config::Config;
use crate::lists::acquire::sources::{self, ListSource, downloads_dir};
use crate::lists::acquire::update::{
    FetchSpec, UpdateOutcome, is_due, is_stale, load_state, save_state, update_source,
};

/// Downloads every list that has URLs (all of them, or only those due),
/// and renews the root trust anchor when validating.
/// Blocking: run it off the async runtime.
pub fn update_lists(config: &Config, only_due: bool) -> Vec<(String, UpdateOutcome)> {
    let store = downloads_dir(config);
    let now = now_unix_secs();
    // The trust's bundle first: a new one may bring lists to download now.
    let bundle = trust_bundle::update_trust_bundle(config, only_due, now);
    let reread;
    let config = match &bundle {
        Some((_, UpdateOutcome::Updated { .. })) => match config.reread() {
            Ok(fresh) => {
                reread = fresh;
                &reread
            }
            Err(errors) => {
                tracing::warn!("the config with the new trust bundle does not read: {errors}");
                config
            }
        },
        _ => config,
    };
    let mut outcomes = update_downloads(config, only_due, &store, now);
    let renewed = [
        bundle,
        trust_anchor::update_trust_anchor(config, only_due, now),
        bank_holidays::update_bank_holidays(config, only_due, now),
    ];
    for (label, outcome) in renewed.into_iter().flatten() {
        log_outcome(&label, &outcome);
        outcomes.push((label, outcome));
    }
    outcomes
}

/// One file renewed beside the lists (not compiled into them): skipped
/// unless due (with `only_due`); `renew` gets the URL and says how many
/// entries are in force and whether the file changed; the attempt and its
/// result are kept in the state under `spec.name`, as for a list.
fn renew_file(
    config: &Config,
    spec: &FetchSpec,
    label: &str,
    only_due: bool,
    now: u64,
    renew: impl FnOnce(&str) -> Result<(u64, bool), String>,
) -> Option<(String, UpdateOutcome)> {
    let store = downloads_dir(config);
    let mut state = load_state(&store, &spec.name);
    if only_due && !is_due(spec, &state, now) {
        return None;
    }
    let url = spec.urls.first().cloned().unwrap_or_default();
    state.last_attempt = Some(now);
    let outcome = match renew(&url) {
        Ok((entries, changed)) => {
            state.last_success = Some(now);
            state.last_error = None;
            state.consecutive_failures = 0;
            state.entries = entries;
            state.url = Some(url.clone());
            if changed {
                UpdateOutcome::Updated { entries, url }
            } else {
                UpdateOutcome::NotModified
            }
        }
        Err(reason) => {
            state.last_error = Some(reason.clone());
            state.consecutive_failures = state.consecutive_failures.saturating_add(1);
            UpdateOutcome::Failed {
                reason,
                kept_last_good: true,
            }
        }
    };
    let saved = std::fs::create_dir_all(&store)
        .map_err(|error| format!("cannot create {}: {error}", store.display()))
        .and_then(|()| save_state(&store, &spec.name, &state));
    if let Err(error) = saved {
        tracing::warn!("{label}: cannot save its update state: {error}");
    }
    Some((label.to_string(), outcome))
}

/// Writes `text` to a hidden file beside `path` and renames it over, so a
/// reader sees the old file or the new one, never half of one.
fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let part = dir.join(format!(".{name}.part"));
    let written = std::fs::File::create(&part).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    written
        .and_then(|()| std::fs::rename(&part, path))
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
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

/// A file renewed beside the lists (the DNSSEC root key, the bank
/// holidays) that has not been renewed lately: its label, and why, in the
/// words the dashboard shows. The copy in force stays in use meanwhile.
pub fn renewals_failing(config: &Config, now: u64) -> Vec<(&'static str, String)> {
    let store = downloads_dir(config);
    [
        (
            trust_anchor::LABEL,
            trust_anchor::STATE_NAME,
            trust_anchor::spec(config),
        ),
        (
            bank_holidays::LABEL,
            bank_holidays::STATE_NAME,
            bank_holidays::spec(config),
        ),
    ]
    .into_iter()
    .filter_map(|(label, name, spec)| {
        let spec = spec?;
        let state = load_state(&store, name);
        if !is_stale(&spec, &state, now) {
            return None;
        }
        let why = state
            .last_error
            .unwrap_or_else(|| "no successful check yet".into());
        Some((label, why))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigOrigin;
    use crate::lists::acquire::update::SourceState;

    #[test]
    fn a_renewal_that_keeps_failing_is_reported_and_one_that_works_is_not() {
        let dir = tempfile::tempdir().expect("dir");
        let text = format!(
            "[server]\ndata_dir = \"{}\"\ndefault_profile = \"ks2\"\n[[listen]]\naddress = \"127.0.0.1:0\"\n\
             [resolver]\nmode = \"recursive\"\n[profiles.ks2]\nmode = \"blocklist\"\n",
            dir.path().display()
        );
        let config = Config::parse(&text, ConfigOrigin::default()).expect("config");
        let store = downloads_dir(&config);
        std::fs::create_dir_all(&store).expect("store");
        let now = 1_800_000_000;
        // Nothing tried yet: nothing to say.
        assert!(renewals_failing(&config, now).is_empty());
        // Tried, never a success: the reason is shown.
        let failed = SourceState {
            last_attempt: Some(now - 60),
            last_error: Some("HTTP 503 Service Unavailable".into()),
            consecutive_failures: 1,
            ..SourceState::default()
        };
        save_state(&store, trust_anchor::STATE_NAME, &failed).expect("save");
        assert_eq!(
            renewals_failing(&config, now),
            [(
                trust_anchor::LABEL,
                "HTTP 503 Service Unavailable".to_string()
            )]
        );
        // A success a day ago: fine again.
        let renewed = SourceState {
            last_attempt: Some(now - 86_400),
            last_success: Some(now - 86_400),
            ..SourceState::default()
        };
        save_state(&store, trust_anchor::STATE_NAME, &renewed).expect("save");
        assert!(renewals_failing(&config, now).is_empty());
    }
}
