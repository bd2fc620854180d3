//! Allow and deny entries an admin adds on the status page: one domain for
//! one profile, with the reason, who and when. Removing one keeps its row
//! (with who removed it and when), so the history stays answerable.

use rusqlite::params;

use super::{AdminError, AdminStore, now_ms};
use crate::name::normalise_domain;
use crate::policy::rules::{DomainRule, RuleAction};

/// A reason has to say something, and fit on a report line.
pub fn check_reason(reason: &str) -> Result<&str, AdminError> {
    let reason = reason.trim();
    if reason.chars().count() < 3 {
        return Err(AdminError::Invalid(
            "give a reason (it goes in the audit trail the governors see)".into(),
        ));
    }
    if reason.len() > 500 {
        return Err(AdminError::Invalid(
            "a reason is at most 500 characters".into(),
        ));
    }
    Ok(reason)
}

impl AdminStore {
    /// Adds `domain` (normalised) to `profile`'s allow or deny entries.
    pub fn add_rule(
        &self,
        profile: &str,
        domain: &str,
        action: RuleAction,
        reason: &str,
        by: &str,
    ) -> Result<DomainRule, AdminError> {
        let rule = self.insert_rule(profile, domain, action, reason, by)?;
        self.write_rules_copy();
        Ok(rule)
    }

    /// [`AdminStore::add_rule`] without rewriting the copy (a caller adding
    /// many writes it once at the end).
    pub(super) fn insert_rule(
        &self,
        profile: &str,
        domain: &str,
        action: RuleAction,
        reason: &str,
        by: &str,
    ) -> Result<DomainRule, AdminError> {
        let domain = normalise_domain(domain.trim()).map_err(|error| {
            AdminError::Invalid(format!("'{}' is not a domain: {error}", domain.trim()))
        })?;
        let reason = check_reason(reason)?;
        let now = now_ms();
        let id = self.with(|conn| {
            // One live entry per profile and domain: the newest wins.
            conn.execute(
                "UPDATE domain_rules SET removed_by = ?3, removed_at = ?4
                 WHERE profile = ?1 AND domain = ?2 AND removed_at IS NULL",
                params![profile, domain, by, now],
            )?;
            conn.execute(
                "INSERT INTO domain_rules (profile, domain, action, reason, added_by, added_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![profile, domain, action.as_str(), reason, by, now],
            )?;
            Ok(conn.last_insert_rowid())
        })?;
        Ok(DomainRule {
            id,
            profile: profile.to_string(),
            domain,
            action,
            reason: reason.to_string(),
            added_by: by.to_string(),
            added_at: now,
            removed_by: None,
            removed_at: None,
        })
    }

    /// Ends a live entry; returns it, or None if there was no such live entry.
    pub fn remove_rule(&self, id: i64, by: &str) -> Result<Option<DomainRule>, AdminError> {
        let changed = self.with(|conn| {
            conn.execute(
                "UPDATE domain_rules SET removed_by = ?2, removed_at = ?3
                 WHERE id = ?1 AND removed_at IS NULL",
                params![id, by, now_ms()],
            )
        })?;
        if changed == 0 {
            return Ok(None);
        }
        self.write_rules_copy();
        Ok(self.all_rules()?.into_iter().find(|rule| rule.id == id))
    }

    /// Entries in force, oldest first.
    pub fn live_rules(&self) -> Result<Vec<DomainRule>, AdminError> {
        Ok(self
            .all_rules()?
            .into_iter()
            .filter(|rule| rule.removed_at.is_none())
            .collect())
    }

    /// Every entry ever made, oldest first.
    pub fn all_rules(&self) -> Result<Vec<DomainRule>, AdminError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, profile, domain, action, reason, added_by, added_at, removed_by, removed_at
                 FROM domain_rules ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                let action: String = r.get(3)?;
                Ok(DomainRule {
                    id: r.get(0)?,
                    profile: r.get(1)?,
                    domain: r.get(2)?,
                    action: RuleAction::parse(&action).unwrap_or(RuleAction::Deny),
                    reason: r.get(4)?,
                    added_by: r.get(5)?,
                    added_at: r.get(6)?,
                    removed_by: r.get(7)?,
                    removed_at: r.get(8)?,
                })
            })?;
            rows.collect()
        })
    }
}
