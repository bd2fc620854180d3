//! The page's policy records as one whole, for an HA pair: read from the
//! primary's store in one transaction, and put in place of the secondary's
//! in one transaction, so a secondary never holds half of a change. Users
//! (with their password and code hashes), API tokens, allow/deny entries,
//! unlocks and reviews; setup links are never copied, and a secondary
//! holds none.

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::{AdminError, AdminStore};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRows {
    pub users: Vec<UserRecord>,
    pub api_tokens: Vec<ApiTokenRecord>,
    pub domain_rules: Vec<DomainRuleRecord>,
    pub overrides: Vec<OverrideRecord>,
    pub reviews: Vec<ReviewRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub code_hash: Option<String>,
    pub created_at: i64,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenRecord {
    pub id: i64,
    pub label: String,
    pub token_hash: String,
    pub role: String,
    pub created_at: i64,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainRuleRecord {
    pub id: i64,
    pub profile: String,
    pub domain: String,
    pub action: String,
    pub reason: String,
    pub added_by: String,
    pub added_at: i64,
    pub removed_by: Option<String>,
    pub removed_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideRecord {
    pub id: i64,
    pub target_kind: String,
    pub target: String,
    /// `device`, `network` or `listener`; a listener is an address of the
    /// box the unlock was made on.
    pub scope_kind: String,
    pub scope: String,
    pub reason: String,
    pub granted_by: String,
    pub starts_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    pub ended_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewRecord {
    pub id: i64,
    pub held_on: String,
    pub participants: String,
    pub checked: String,
    pub decisions: String,
    pub recorded_by: String,
    pub recorded_at: i64,
}

impl AdminStore {
    /// Every policy record, as one consistent read.
    pub fn policy_rows(&self) -> Result<PolicyRows, AdminError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            let users = tx
                .prepare(
                    "SELECT name, role, password_hash, code_hash, created_at, created_by
                     FROM users ORDER BY name",
                )?
                .query_map([], |r| {
                    Ok(UserRecord {
                        name: r.get(0)?,
                        role: r.get(1)?,
                        password_hash: r.get(2)?,
                        code_hash: r.get(3)?,
                        created_at: r.get(4)?,
                        created_by: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let api_tokens = tx
                .prepare(
                    "SELECT id, label, token_hash, role, created_at, created_by
                     FROM api_tokens ORDER BY id",
                )?
                .query_map([], |r| {
                    Ok(ApiTokenRecord {
                        id: r.get(0)?,
                        label: r.get(1)?,
                        token_hash: r.get(2)?,
                        role: r.get(3)?,
                        created_at: r.get(4)?,
                        created_by: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let domain_rules = tx
                .prepare(
                    "SELECT id, profile, domain, action, reason, added_by, added_at, removed_by,
                            removed_at
                     FROM domain_rules ORDER BY id",
                )?
                .query_map([], |r| {
                    Ok(DomainRuleRecord {
                        id: r.get(0)?,
                        profile: r.get(1)?,
                        domain: r.get(2)?,
                        action: r.get(3)?,
                        reason: r.get(4)?,
                        added_by: r.get(5)?,
                        added_at: r.get(6)?,
                        removed_by: r.get(7)?,
                        removed_at: r.get(8)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let overrides = tx
                .prepare(
                    "SELECT id, target_kind, target, scope_kind, scope, reason, granted_by,
                            starts_at, expires_at, ended_at, ended_by
                     FROM overrides ORDER BY id",
                )?
                .query_map([], |r| {
                    Ok(OverrideRecord {
                        id: r.get(0)?,
                        target_kind: r.get(1)?,
                        target: r.get(2)?,
                        scope_kind: r.get(3)?,
                        scope: r.get(4)?,
                        reason: r.get(5)?,
                        granted_by: r.get(6)?,
                        starts_at: r.get(7)?,
                        expires_at: r.get(8)?,
                        ended_at: r.get(9)?,
                        ended_by: r.get(10)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let reviews = tx
                .prepare(
                    "SELECT id, held_on, participants, checked, decisions, recorded_by, recorded_at
                     FROM reviews ORDER BY id",
                )?
                .query_map([], |r| {
                    Ok(ReviewRecord {
                        id: r.get(0)?,
                        held_on: r.get(1)?,
                        participants: r.get(2)?,
                        checked: r.get(3)?,
                        decisions: r.get(4)?,
                        recorded_by: r.get(5)?,
                        recorded_at: r.get(6)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            tx.commit()?;
            Ok(PolicyRows {
                users,
                api_tokens,
                domain_rules,
                overrides,
                reviews,
            })
        })
    }

    /// Puts `rows` in place of every policy record, in one transaction
    /// (all or nothing), ends every setup link, and rewrites the copy of
    /// the allow/deny entries.
    pub fn replace_policy_rows(&self, rows: &PolicyRows) -> Result<(), AdminError> {
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute_batch(
                "DELETE FROM users; DELETE FROM setup_tokens; DELETE FROM api_tokens;
                 DELETE FROM domain_rules; DELETE FROM overrides; DELETE FROM reviews;",
            )?;
            for user in &rows.users {
                tx.execute(
                    "INSERT INTO users (name, role, password_hash, code_hash, created_at, created_by)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        user.name,
                        user.role,
                        user.password_hash,
                        user.code_hash,
                        user.created_at,
                        user.created_by
                    ],
                )?;
            }
            for token in &rows.api_tokens {
                tx.execute(
                    "INSERT INTO api_tokens (id, label, token_hash, role, created_at, created_by)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        token.id,
                        token.label,
                        token.token_hash,
                        token.role,
                        token.created_at,
                        token.created_by
                    ],
                )?;
            }
            for rule in &rows.domain_rules {
                tx.execute(
                    "INSERT INTO domain_rules (id, profile, domain, action, reason, added_by,
                                               added_at, removed_by, removed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        rule.id,
                        rule.profile,
                        rule.domain,
                        rule.action,
                        rule.reason,
                        rule.added_by,
                        rule.added_at,
                        rule.removed_by,
                        rule.removed_at
                    ],
                )?;
            }
            for unlock in &rows.overrides {
                tx.execute(
                    "INSERT INTO overrides (id, target_kind, target, scope_kind, scope, reason,
                                            granted_by, starts_at, expires_at, ended_at, ended_by)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![
                        unlock.id,
                        unlock.target_kind,
                        unlock.target,
                        unlock.scope_kind,
                        unlock.scope,
                        unlock.reason,
                        unlock.granted_by,
                        unlock.starts_at,
                        unlock.expires_at,
                        unlock.ended_at,
                        unlock.ended_by
                    ],
                )?;
            }
            for review in &rows.reviews {
                tx.execute(
                    "INSERT INTO reviews (id, held_on, participants, checked, decisions,
                                          recorded_by, recorded_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        review.id,
                        review.held_on,
                        review.participants,
                        review.checked,
                        review.decisions,
                        review.recorded_by,
                        review.recorded_at
                    ],
                )?;
            }
            tx.commit()
        })?;
        self.write_rules_copy();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::Role;
    use crate::policy::rules::RuleAction;

    #[test]
    fn the_records_are_copied_whole_and_a_failed_copy_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let primary = AdminStore::open(&dir.path().join("primary.db")).unwrap();
        primary
            .set_user("head", Role::Admin, "a long enough password", "test")
            .unwrap();
        primary
            .add_rule("ks2", "bbc.co.uk", RuleAction::Allow, "news lesson", "head")
            .unwrap();
        primary
            .new_api_token("script", Role::Viewer, "head")
            .unwrap();
        let rows = primary.policy_rows().unwrap();

        let secondary = AdminStore::open(&dir.path().join("secondary.db")).unwrap();
        secondary
            .set_user("stale", Role::Admin, "a long enough password", "test")
            .unwrap();
        secondary.replace_policy_rows(&rows).unwrap();
        assert_eq!(secondary.policy_rows().unwrap(), rows);
        // The followed user signs in with the password set on the primary.
        assert!(
            secondary
                .check_login("head", "a long enough password")
                .unwrap()
                .is_some()
        );
        assert!(secondary.user("stale").unwrap().is_none());

        // Two users of one name cannot both go in: nothing changes.
        let mut broken = rows.clone();
        broken.users.push(broken.users[0].clone());
        broken.domain_rules.clear();
        assert!(secondary.replace_policy_rows(&broken).is_err());
        assert_eq!(secondary.policy_rows().unwrap(), rows);
    }
}
