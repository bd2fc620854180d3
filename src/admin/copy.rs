//! A copy of the allow/deny entries in force, `admin-rules.json` beside
//! `admin.db`, rewritten on every change (temp file, fsync, rename), so that
//! a damaged `admin.db` never loosens filtering: the deny entries can be
//! restored from it. Allow entries are copied for inspection only; they are
//! never restored (a damaged store must not let anything through).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{AdminError, AdminStore};
use crate::policy::rules::{DomainRule, RuleAction};

/// The copy's format; a copy of another version is reported and ignored.
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Copy {
    version: u32,
    written_at: i64,
    rules: Vec<CopiedRule>,
}

/// One entry in force, as copied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopiedRule {
    pub profile: String,
    pub domain: String,
    /// "allow" or "deny".
    pub action: String,
    pub reason: String,
    pub added_by: String,
    pub added_at: i64,
}

/// Where the copy of `admin_db`'s entries is kept.
pub fn copy_path(admin_db: &Path) -> PathBuf {
    admin_db.with_file_name("admin-rules.json")
}

/// Writes `rules` to `path` so that a reader (or a power cut) sees either
/// the old copy or the new one whole, never half of one.
pub fn write_copy(path: &Path, rules: &[DomainRule], now_ms: i64) -> std::io::Result<()> {
    let copy = Copy {
        version: VERSION,
        written_at: now_ms,
        rules: rules
            .iter()
            .map(|rule| CopiedRule {
                profile: rule.profile.clone(),
                domain: rule.domain.clone(),
                action: rule.action.as_str().to_string(),
                reason: rule.reason.clone(),
                added_by: rule.added_by.clone(),
                added_at: rule.added_at,
            })
            .collect(),
    };
    let text = serde_json::to_vec_pretty(&copy).map_err(std::io::Error::other)?;
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(&text)?;
        file.sync_all()?;
    }
    std::fs::rename(&temp, path)?;
    // The rename itself reaches the disk only with the directory.
    if let Some(dir) = path.parent()
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// The deny entries in the copy at `path`. A missing copy is none; an
/// unreadable or damaged one is an error saying what is wrong with it.
pub fn read_denies(path: &Path) -> Result<Vec<CopiedRule>, String> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    let copy: Copy = serde_json::from_slice(&text).map_err(|error| {
        format!(
            "{} is damaged ({error}); its entries were not used",
            path.display()
        )
    })?;
    if copy.version != VERSION {
        return Err(format!(
            "{} is version {} (this build reads {VERSION}); its entries were not used",
            path.display(),
            copy.version
        ));
    }
    Ok(copy
        .rules
        .into_iter()
        .filter(|rule| RuleAction::parse(&rule.action) == Ok(RuleAction::Deny))
        .collect())
}

/// The copy's deny entries as the policy takes them (not in any store).
pub fn denies_as_rules(denies: &[CopiedRule]) -> Vec<DomainRule> {
    denies
        .iter()
        .enumerate()
        .map(|(i, rule)| DomainRule {
            id: -(i as i64) - 1,
            profile: rule.profile.clone(),
            domain: rule.domain.clone(),
            action: RuleAction::Deny,
            reason: rule.reason.clone(),
            added_by: rule.added_by.clone(),
            added_at: rule.added_at,
            removed_by: None,
            removed_at: None,
        })
        .collect()
}

impl AdminStore {
    /// Rewrites the copy from the entries in force. A failure is logged:
    /// the change itself stands, and the next change tries again.
    pub fn write_rules_copy(&self) {
        let path = copy_path(self.path());
        let written = self
            .live_rules()
            .map_err(|error| error.to_string())
            .and_then(|rules| {
                write_copy(&path, &rules, super::now_ms()).map_err(|error| error.to_string())
            });
        if let Err(error) = written {
            tracing::error!(
                "could not write the copy of the allow/deny entries {}: {error}; a damaged admin.db would lose deny entries made since",
                path.display()
            );
        }
    }

    /// Adds `denies` (from the copy) as deny entries of this (fresh) store,
    /// so they stay in force and show on the page.
    pub fn restore_denies(&self, denies: &[CopiedRule]) -> Result<usize, AdminError> {
        let mut restored = 0;
        for rule in denies {
            let reason = format!(
                "restored from the copy after admin.db was damaged: {}",
                rule.reason
            );
            let reason: String = reason.chars().take(500).collect();
            match self.insert_rule(
                &rule.profile,
                &rule.domain,
                RuleAction::Deny,
                &reason,
                &rule.added_by,
            ) {
                Ok(_) => restored += 1,
                Err(error) => tracing::error!(
                    "the deny entry {} for {} could not be restored: {error}",
                    rule.domain,
                    rule.profile
                ),
            }
        }
        self.write_rules_copy();
        Ok(restored)
    }

    /// The damaged stores set aside beside this one (`admin.db.damaged-*`).
    /// While any is there, no setup link is made at start: whoever has the
    /// console makes an admin with `lollipop passwd`.
    pub fn damaged_copies(&self) -> Vec<PathBuf> {
        damaged_copies(self.path())
    }
}

/// `admin.db.damaged-*` files beside `admin_db` (not their WAL or SHM).
pub fn damaged_copies(admin_db: &Path) -> Vec<PathBuf> {
    let Some(name) = admin_db
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return Vec::new();
    };
    let prefix = format!("{name}.damaged-");
    let Some(dir) = admin_db.parent() else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| {
                    path.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .is_some_and(|n| {
                            n.starts_with(&prefix) && !n.ends_with("-wal") && !n.ends_with("-shm")
                        })
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The dashboard's and the notice's words about a set-aside `admin.db`.
pub fn set_aside_words(kept: &Path, at_unix_ms: i64, zone: crate::clock::TimeZone) -> String {
    let local = zone.format_local(at_unix_ms);
    let name = kept.file_name().map_or_else(
        || kept.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    format!(
        "The page's records (sign-ins, allow and block entries, unlocks) were damaged and set aside at {} on {} as {name}. Sites blocked on this page are still blocked; sites allowed on it and unlocks are not, until someone adds them again. To sign in again, an administrator is made with `lollipop passwd` on the appliance's console.",
        local.get(11..16).unwrap_or(&local),
        local.get(..10).unwrap_or(&local)
    )
}

/// When `kept` was set aside, from the time in its name (Unix seconds).
pub fn set_aside_at_ms(kept: &Path) -> Option<i64> {
    let name = kept.file_name()?.to_string_lossy().into_owned();
    let (_, stamp) = name.rsplit_once(".damaged-")?;
    let secs: i64 = stamp.split('.').next()?.parse().ok()?;
    secs.checked_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(domain: &str, action: RuleAction) -> DomainRule {
        DomainRule {
            id: 1,
            profile: "ks2".into(),
            domain: domain.into(),
            action,
            reason: "a reason".into(),
            added_by: "head".into(),
            added_at: 1,
            removed_by: None,
            removed_at: None,
        }
    }

    #[test]
    fn the_copy_is_replaced_whole_and_only_its_deny_entries_are_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-rules.json");
        write_copy(&path, &[rule("old.example", RuleAction::Deny)], 1).unwrap();
        let rules = [
            rule("denied.example", RuleAction::Deny),
            rule("allowed.example", RuleAction::Allow),
        ];
        write_copy(&path, &rules, 2).unwrap();
        let denies = read_denies(&path).unwrap();
        let names: Vec<&str> = denies.iter().map(|r| r.domain.as_str()).collect();
        assert_eq!(names, ["denied.example"]);
        // Nothing is left half-written beside it.
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1);
    }

    #[test]
    fn a_damaged_copy_is_reported_and_gives_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-rules.json");
        std::fs::write(&path, b"\x00\x01{\"version\": 1, \"rules\": [").unwrap();
        let error = read_denies(&path).unwrap_err();
        assert!(error.contains("is damaged"), "{error}");
        std::fs::write(&path, br#"{"version": 9, "written_at": 0, "rules": []}"#).unwrap();
        assert!(read_denies(&path).unwrap_err().contains("version 9"));
        assert_eq!(
            read_denies(&dir.path().join("missing.json")),
            Ok(Vec::new())
        );
    }
}
