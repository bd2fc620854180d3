//! How each configured list is doing: its kind, what the compiled set holds
//! of it, and how fresh its copy is. The one account of list health that the
//! CLI's `lists status`, the weekly report and the status page all render.

use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use crate::config::Config;
use crate::lists::{Manifest, SourceInfo};

use super::sources::{self, downloads_dir};
use super::update::{is_stale, load_state};

/// Where a list comes from, in the words the views show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    LocalFile,
    Download,
    LicensedFeed,
}

impl ListKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ListKind::LocalFile => "local file",
            ListKind::Download => "download",
            ListKind::LicensedFeed => "licensed feed",
        }
    }
}

/// How fresh a list's copy is. Ages are in seconds before `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// A local file: how long since it changed, or `None` when it is missing.
    File {
        path: PathBuf,
        changed_ago: Option<u64>,
    },
    /// A download: since its last good copy (`None`: never), the last
    /// attempt's error, and whether it has gone stale.
    Download {
        last_success_ago: Option<u64>,
        last_error: Option<String>,
        stale: bool,
    },
}

/// One configured list's health.
#[derive(Debug, Clone, PartialEq)]
pub struct ListHealth {
    pub name: String,
    pub category: String,
    pub kind: ListKind,
    /// This list in the compiled set; `None` when it is not in it yet.
    pub compiled: Option<SourceInfo>,
    pub licence: Option<String>,
    pub freshness: Freshness,
}

impl ListHealth {
    /// Entries in use (none when not compiled yet).
    pub fn entries(&self) -> u64 {
        self.compiled.as_ref().map_or(0, |info| info.entries)
    }

    /// False for a download that is stale or never succeeded.
    pub fn current(&self) -> bool {
        match &self.freshness {
            Freshness::File { .. } => true,
            Freshness::Download {
                last_success_ago,
                stale,
                ..
            } => last_success_ago.is_some() && !stale,
        }
    }

    /// A download that once succeeded but has not for too long.
    pub fn stale(&self) -> bool {
        matches!(
            self.freshness,
            Freshness::Download {
                last_success_ago: Some(_),
                stale: true,
                ..
            }
        )
    }
}

/// Every configured list's health at `now` (unix seconds), against the
/// compiled set's manifest (`None`: nothing compiled yet).
pub fn health(config: &Config, compiled: Option<&Manifest>, now: u64) -> Vec<ListHealth> {
    let store = downloads_dir(config);
    sources::configured(config)
        .into_iter()
        .map(|source| {
            let spec = source.spec;
            let compiled = compiled
                .and_then(|manifest| manifest.sources.iter().find(|s| s.name == spec.name))
                .cloned();
            let kind = match (&source.fetch, spec.hidden) {
                (_, true) => ListKind::LicensedFeed,
                (Some(_), false) => ListKind::Download,
                (None, false) => ListKind::LocalFile,
            };
            let freshness = match &source.fetch {
                Some(fetch) => {
                    let state = load_state(&store, &fetch.name);
                    Freshness::Download {
                        last_success_ago: state.last_success.map(|t| now.saturating_sub(t)),
                        stale: is_stale(fetch, &state, now),
                        last_error: state.last_error,
                    }
                }
                None => Freshness::File {
                    changed_ago: std::fs::metadata(&spec.path)
                        .and_then(|m| m.modified())
                        .ok()
                        .map(|modified| {
                            let at = modified
                                .duration_since(UNIX_EPOCH)
                                .map(|d| d.as_secs())
                                .unwrap_or_default();
                            now.saturating_sub(at)
                        }),
                    path: spec.path,
                },
            };
            ListHealth {
                name: spec.name,
                category: spec.category,
                kind,
                compiled,
                licence: source.licence,
                freshness,
            }
        })
        .collect()
}
