//! Ends overrides on time without anyone clicking: a task started with the
//! status page wakes when the next override expires (and every 30 seconds
//! at most, so a change made to the admin database elsewhere is seen too),
//! puts the overrides still live in force, and records each expiry in the
//! audit trail.

use std::sync::Arc;
use std::time::Duration;

use crate::admin::now_ms;
use crate::journal::AuditEntry;
use crate::policy::rules::OverrideRow;
use crate::web::WebState;

use super::choices::describe_scope;

/// The longest the sweeper sleeps between two looks at the overrides.
pub const SWEEP_PERIOD: Duration = Duration::from_secs(30);

/// The running sweeper; dropping it stops the task.
pub struct Sweeper(tokio::task::JoinHandle<()>);

impl Sweeper {
    /// Starts sweeping (inside a Tokio runtime).
    pub fn start(state: Arc<WebState>) -> Sweeper {
        Sweeper(tokio::spawn(sweep(state)))
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs until the task is aborted (when the status page stops).
async fn sweep(state: Arc<WebState>) {
    let mut swept_until = now_ms();
    loop {
        let now = now_ms();
        let next = match sweep_once(&state, swept_until, now).await {
            Ok(next) => {
                swept_until = now;
                next
            }
            Err(error) => {
                tracing::error!("could not bring the staff overrides up to date: {error}");
                None
            }
        };
        let wait = next
            .map(|at| Duration::from_millis(u64::try_from(at - now).unwrap_or(0)))
            .map_or(SWEEP_PERIOD, |until_next| until_next.min(SWEEP_PERIOD));
        // A few milliseconds past the expiry, so it is over when we look.
        tokio::time::sleep(wait + Duration::from_millis(5)).await;
    }
}

/// Audits the overrides that expired in `(since, now]`, puts the live ones
/// in force, and returns when the next live one expires.
async fn sweep_once(state: &WebState, since: i64, now: i64) -> Result<Option<i64>, String> {
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
            state.pipeline.journal().record_audit(AuditEntry {
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
