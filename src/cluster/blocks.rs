//! The secondary's lookups for the primary's reports: block logs stay on
//! the box that saw the lookups, and the secondary sends the primary its
//! hourly counts (look-ups and blocked tries by profile and category, the
//! last eight days) over the pair's channel. The primary keeps the latest
//! from each secondary in `cluster-blocks/` in its data directory, and its
//! weekly report shows them beside its own.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::journal::JournalReader;

/// The route the secondary sends its counts to.
pub const BLOCKS_PATH: &str = "/cluster/blocks";
/// The most a summary may be: eight days of a large school's hours.
pub const MAX_SUMMARY_BYTES: usize = 8 * 1024 * 1024;
/// How far back the counts go: a weekly report's week and a day more.
const DAYS_SENT: i64 = 8;

/// One hour's counts for one profile and category, as the block log keeps
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourTally {
    pub hour_unix_ms: i64,
    pub profile: String,
    pub category: Option<String>,
    pub queries: i64,
    pub blocked: i64,
}

/// What a secondary sends: its name and its recent hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockSummary {
    pub name: String,
    pub sent_at_unix_ms: i64,
    pub hours: Vec<HourTally>,
}

/// A secondary's figures over a report's period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub name: String,
    pub sent_at_unix_ms: i64,
    pub queries: i64,
    pub blocked: i64,
    /// (category id, blocked tries), most first.
    pub by_category: Vec<(String, i64)>,
}

impl BlockSummary {
    /// The secondary's counts from its own block log, now.
    pub fn read(config: &Config, name: &str, now_ms: i64) -> Result<BlockSummary, String> {
        let path = config.journal_path();
        let reader = JournalReader::open(&path)
            .map_err(|error| format!("cannot read the block log {}: {error}", path.display()))?;
        let hours = reader
            .hourly(now_ms - DAYS_SENT * 86_400_000, now_ms + 3_600_000)
            .map_err(|error| format!("cannot read the block log's hours: {error}"))?
            .into_iter()
            .map(|row| HourTally {
                hour_unix_ms: row.hour_unix_ms,
                profile: row.profile,
                category: row.category,
                queries: row.queries,
                blocked: row.blocked,
            })
            .collect();
        Ok(BlockSummary {
            name: name.to_string(),
            sent_at_unix_ms: now_ms,
            hours,
        })
    }

    /// The figures of the hours in `[from_ms, to_ms)`.
    pub fn period(&self, from_ms: i64, to_ms: i64) -> Period {
        let mut queries = 0;
        let mut blocked = 0;
        let mut by_category = std::collections::HashMap::<String, i64>::new();
        for hour in self
            .hours
            .iter()
            .filter(|hour| (from_ms..to_ms).contains(&hour.hour_unix_ms))
        {
            queries += hour.queries;
            blocked += hour.blocked;
            if hour.blocked > 0 {
                let category = hour
                    .category
                    .clone()
                    .unwrap_or_else(|| "not approved".into());
                *by_category.entry(category).or_default() += hour.blocked;
            }
        }
        let mut by_category: Vec<(String, i64)> = by_category.into_iter().collect();
        by_category.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Period {
            name: self.name.clone(),
            sent_at_unix_ms: self.sent_at_unix_ms,
            queries,
            blocked,
            by_category,
        }
    }
}

/// Where the primary keeps each secondary's latest counts.
fn kept_dir(config: &Config) -> PathBuf {
    config
        .resolve_path(&config.server.data_dir)
        .join("cluster-blocks")
}

/// A secondary's name as a file name: letters, digits, `.`, `-`, `_`.
fn file_name(name: &str) -> Option<String> {
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(64)
        .collect();
    let clean = clean.trim_start_matches('.').to_string();
    (!clean.is_empty()).then(|| format!("{clean}.json"))
}

/// Keeps `summary` as its secondary's latest (whole or not at all).
pub fn keep(config: &Config, summary: &BlockSummary) -> Result<(), String> {
    let name = file_name(&summary.name)
        .ok_or_else(|| format!("'{}' cannot name a secondary", summary.name))?;
    let dir = kept_dir(config);
    std::fs::create_dir_all(&dir)
        .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    let path = dir.join(name);
    let temp = path.with_extension("json.tmp");
    let text = serde_json::to_vec(summary).map_err(|error| error.to_string())?;
    std::fs::write(&temp, text)
        .and_then(|()| std::fs::rename(&temp, &path))
        .map_err(|error| format!("cannot keep {}: {error}", path.display()))
}

/// Every secondary's latest counts kept here; an unreadable file is
/// reported in the log and left out.
pub fn kept(config: &Config) -> Vec<BlockSummary> {
    let Ok(entries) = std::fs::read_dir(kept_dir(config)) else {
        return Vec::new();
    };
    let mut found: Vec<BlockSummary> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .filter_map(|path| {
            let read = std::fs::read(&path)
                .map_err(|error| error.to_string())
                .and_then(|bytes| {
                    serde_json::from_slice::<BlockSummary>(&bytes).map_err(|e| e.to_string())
                });
            match read {
                Ok(summary) => Some(summary),
                Err(error) => {
                    tracing::warn!(
                        "a secondary's counts {} cannot be read ({error}): left out of the report",
                        path.display()
                    );
                    None
                }
            }
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_counts_only_its_own_hours() {
        let hour = |at: i64, category: Option<&str>, queries: i64, blocked: i64| HourTally {
            hour_unix_ms: at,
            profile: "ks2".into(),
            category: category.map(str::to_string),
            queries,
            blocked,
        };
        let summary = BlockSummary {
            name: "office".into(),
            sent_at_unix_ms: 0,
            hours: vec![
                hour(0, None, 100, 0),
                hour(0, Some("gambling"), 5, 5),
                hour(3_600_000, Some("games"), 2, 2),
                hour(3_600_000, Some("gambling"), 1, 1),
                hour(7_200_000, Some("gambling"), 9, 9),
            ],
        };
        let period = summary.period(0, 7_200_000);
        assert_eq!((period.queries, period.blocked), (108, 8));
        assert_eq!(
            period.by_category,
            [("gambling".to_string(), 6), ("games".to_string(), 2)]
        );
    }

    #[test]
    fn a_name_cannot_leave_the_directory() {
        assert_eq!(file_name("office-2"), Some("office-2.json".into()));
        assert_eq!(file_name("../../etc/passwd"), Some("etcpasswd.json".into()));
        assert_eq!(file_name("..."), None);
    }
}
