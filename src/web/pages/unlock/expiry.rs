//! Ends overrides on time without anyone clicking: one sweep puts the
//! overrides still live in force and records each expiry in the audit
//! trail. The running service's sweeper (`service::schedules`) calls it
//! whenever the next override expires, and every 30 seconds at most.

use crate::journal::AuditEntry;
use crate::policy::rules::OverrideRow;
use crate::web::WebState;

use super::choices::describe_scope;

/// Audits the overrides that expired in `(since, now]`, puts the live ones
/// in force, and returns when the next live one expires.
pub async fn sweep_once(state: &WebState, since: i64, now: i64) -> Result<Option<i64>, String> {
    let admin = state.admin.clone();
    let rows = tokio::task::spawn_blocking(move || admin.overrides_since(since))
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| error.to_string())?;
    let expired: Vec<&OverrideRow> = rows
        .iter()
        .filter(|row| row.ended_at.is_none() && row.expires_at > since && row.expires_at <= now)
        .collect();
    state.reloader.apply_overrides().await?;
    if !expired.is_empty() {
        let config = state.config().await;
        for row in expired {
            tracing::info!("override {} ({}) expired", row.id, row.target);
            state.journal.record_audit(AuditEntry {
                at_unix_ms: row.expires_at,
                actor: "Lollipop".into(),
                action: "override expired".into(),
                detail: format!(
                    "{} for {} (override {}, granted by {})",
                    row.target,
                    describe_scope(&row.scope, &config),
                    row.id,
                    row.granted_by
                ),
                reason: Some(format!("granted because: {}", row.reason)),
            });
        }
    }
    Ok(rows
        .iter()
        .filter(|row| row.is_live(now))
        .map(|row| row.expires_at)
        .min())
}
