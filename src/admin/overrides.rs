//! Staff overrides as granted: what was unlocked (a domain or a service), for
//! which room, VLAN or device, until when, why and by whom. The resolver
//! reads the live ones through `policy::overrides`; rows are never deleted.

use rusqlite::params;

use super::{AdminError, AdminStore, now_ms};
use crate::policy::rules::{OverrideRow, OverrideScope, OverrideTarget};

/// The scope as the two columns it is stored in.
fn scope_columns(scope: &OverrideScope) -> (&'static str, String) {
    match scope {
        OverrideScope::Device(ip) => ("device", ip.to_string()),
        OverrideScope::Network(net) => ("network", net.to_string()),
        OverrideScope::Listener(address) => ("listener", address.clone()),
    }
}

/// The scope stored in `kind` and `value`, if it is one.
fn scope_from_columns(kind: &str, value: &str) -> Option<OverrideScope> {
    match kind {
        "device" => value.parse().ok().map(OverrideScope::Device),
        "network" => value.parse().ok().map(OverrideScope::Network),
        "listener" => Some(OverrideScope::Listener(value.to_string())),
        _ => None,
    }
}

impl AdminStore {
    pub fn add_override(
        &self,
        target: &OverrideTarget,
        scope: &OverrideScope,
        reason: &str,
        granted_by: &str,
        expires_at: i64,
    ) -> Result<OverrideRow, AdminError> {
        let reason = super::rules::check_reason(reason)?;
        let now = now_ms();
        if expires_at <= now {
            return Err(AdminError::Invalid(
                "the override would end before it starts".into(),
            ));
        }
        let (target_kind, target_value) = match target {
            OverrideTarget::Domain(d) => ("domain", d.as_str()),
            OverrideTarget::Service(s) => ("service", s.as_str()),
        };
        let (scope_kind, scope_value) = scope_columns(scope);
        let id = self.with(|conn| {
            conn.execute(
                "INSERT INTO overrides (target_kind, target, scope_kind, scope, reason, granted_by, starts_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![target_kind, target_value, scope_kind, scope_value, reason, granted_by, now, expires_at],
            )?;
            Ok(conn.last_insert_rowid())
        })?;
        Ok(OverrideRow {
            id,
            target: target.clone(),
            scope: scope.clone(),
            reason: reason.to_string(),
            granted_by: granted_by.to_string(),
            starts_at: now,
            expires_at,
            ended_at: None,
            ended_by: None,
        })
    }

    /// Ends a live override early; None if it was not live.
    pub fn end_override(&self, id: i64, by: &str) -> Result<Option<OverrideRow>, AdminError> {
        let now = now_ms();
        let changed = self.with(|conn| {
            conn.execute(
                "UPDATE overrides SET ended_at = ?2, ended_by = ?3
                 WHERE id = ?1 AND ended_at IS NULL AND expires_at > ?2",
                params![id, now, by],
            )
        })?;
        if changed == 0 {
            return Ok(None);
        }
        Ok(self.overrides_since(0)?.into_iter().find(|o| o.id == id))
    }

    /// Overrides that were live at any time from `since_ms` on, newest first.
    pub fn overrides_since(&self, since_ms: i64) -> Result<Vec<OverrideRow>, AdminError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, target_kind, target, scope_kind, scope, reason, granted_by,
                        starts_at, expires_at, ended_at, ended_by
                 FROM overrides WHERE expires_at >= ?1 ORDER BY id DESC",
            )?;
            let rows = stmt.query_map([since_ms], |r| {
                let target_kind: String = r.get(1)?;
                let target: String = r.get(2)?;
                let scope_kind: String = r.get(3)?;
                let scope: String = r.get(4)?;
                Ok((
                    target_kind,
                    target,
                    scope_kind,
                    scope,
                    OverrideRow {
                        id: r.get(0)?,
                        target: OverrideTarget::Domain(String::new()),
                        scope: OverrideScope::Listener(String::new()),
                        reason: r.get(5)?,
                        granted_by: r.get(6)?,
                        starts_at: r.get(7)?,
                        expires_at: r.get(8)?,
                        ended_at: r.get(9)?,
                        ended_by: r.get(10)?,
                    },
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (target_kind, target, scope_kind, scope, mut row) = row?;
                let Some(scope) = scope_from_columns(&scope_kind, &scope) else {
                    continue;
                };
                row.scope = scope;
                row.target = match target_kind.as_str() {
                    "service" => OverrideTarget::Service(target),
                    _ => OverrideTarget::Domain(target),
                };
                out.push(row);
            }
            Ok(out)
        })
    }

    /// The overrides in force now.
    pub fn live_overrides(&self) -> Result<Vec<OverrideRow>, AdminError> {
        let now = now_ms();
        Ok(self
            .overrides_since(now)?
            .into_iter()
            .filter(|o| o.is_live(now))
            .collect())
    }
}
