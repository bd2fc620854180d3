//! Allow and block entries an admin adds for one profile, each with a
//! reason: applied at once (no restart), recorded in the audit trail, and
//! listed with who, when and why.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::admin::users::Right;
use crate::policy::rules::{DomainRule, RuleAction};
use crate::web::WebState;
use crate::web::auth::Signed;
use crate::web::error::{WebError, urlencode};
use crate::web::view::{Layout, render, when};

struct RuleView {
    rule: DomainRule,
    /// The rule's profile as people read it.
    profile: String,
    added: String,
    removed: Option<String>,
}

#[derive(Template)]
#[template(path = "rules.html")]
struct RulesPage {
    layout: Layout,
    /// (id, what people call it).
    profiles: Vec<(String, String)>,
    live: Vec<RuleView>,
    history: Vec<RuleView>,
    done: Option<String>,
}

#[derive(Deserialize)]
pub struct RulesQuery {
    done: Option<String>,
}

pub async fn page(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Query(query): Query<RulesQuery>,
) -> Result<Response, WebError> {
    signed.require(Right::ManageRules, "change what is allowed or blocked")?;
    let config = state.config().await;
    let tz = config.log.time_zone;
    let admin = state.admin.clone();
    let rules = tokio::task::spawn_blocking(move || admin.all_rules()).await??;
    let view = |rule: DomainRule| RuleView {
        profile: config.profile_name(&rule.profile),
        added: when(tz, rule.added_at),
        removed: rule.removed_at.map(|at| {
            format!(
                "{} by {}",
                when(tz, at),
                rule.removed_by.clone().unwrap_or_default()
            )
        }),
        rule,
    };
    let (live, history): (Vec<_>, Vec<_>) = rules
        .into_iter()
        .rev()
        .map(view)
        .partition(|v| v.rule.removed_at.is_none());
    Ok(render(&RulesPage {
        layout: Layout::new(&config, "Allow or block a site", "rules", &signed),
        profiles: config
            .profiles
            .keys()
            .map(|id| (id.clone(), config.profile_name(id)))
            .collect(),
        live,
        history,
        done: query.done,
    })?
    .into_response())
}

/// Missing fields arrive empty and are checked like empty ones.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AddForm {
    profile: String,
    domain: String,
    action: String,
    reason: String,
}

pub async fn add(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Form(form): Form<AddForm>,
) -> Result<Response, WebError> {
    signed.require(Right::ManageRules, "change what is allowed or blocked")?;
    let config = state.config().await;
    if !config.profiles.contains_key(&form.profile) {
        return Err(WebError::BadRequest(format!(
            "There is no profile called '{}'. Choose one from the list.",
            form.profile
        )));
    }
    let action = RuleAction::parse(&form.action).map_err(WebError::BadRequest)?;
    // The trust's bundle may forbid this entry: refused before it is kept.
    if let Some(name) = crate::name::normalise_domain(form.domain.trim())
        .ok()
        .and_then(|domain| crate::name::ReversedName::from_domain(&domain))
        && let Err(message) = state
            .pipeline
            .settings()
            .policy
            .check_local_entry(action, &name)
    {
        state.audit(
            &signed.user,
            format!("{} entry refused", action.as_str()),
            format!(
                "{} for profile {}: {message}",
                form.domain.trim(),
                form.profile
            ),
            Some(form.reason.clone()),
        );
        return Err(WebError::NotAllowed(message));
    }
    let admin = state.admin.clone();
    let by = signed.user.clone();
    let rule = tokio::task::spawn_blocking(move || {
        admin.add_rule(&form.profile, &form.domain, action, &form.reason, &by)
    })
    .await??;
    state
        .reloader
        .apply_local_rules()
        .await
        .map_err(WebError::Internal)?;
    let verb = match rule.action {
        RuleAction::Allow => "allowed",
        RuleAction::Deny => "blocked",
    };
    state.audit(
        &signed.user,
        format!("{} entry added", rule.action.as_str()),
        format!("{} {verb} for profile {}", rule.domain, rule.profile),
        Some(rule.reason.clone()),
    );
    tracing::info!(
        "{} {verb} {} for profile {}",
        signed.user,
        rule.domain,
        rule.profile
    );
    let done = format!("{} is now {verb} for {}.", rule.domain, rule.profile);
    Ok(Redirect::to(&format!("/rules?done={}", urlencode(&done))).into_response())
}

pub async fn remove(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    signed.require(Right::ManageRules, "change what is allowed or blocked")?;
    let admin = state.admin.clone();
    let by = signed.user.clone();
    let removed = tokio::task::spawn_blocking(move || admin.remove_rule(id, &by)).await??;
    let Some(rule) = removed else {
        return Err(WebError::BadRequest(
            "That entry was already removed, or never existed.".into(),
        ));
    };
    state
        .reloader
        .apply_local_rules()
        .await
        .map_err(WebError::Internal)?;
    state.audit(
        &signed.user,
        format!("{} entry removed", rule.action.as_str()),
        format!("{} for profile {}", rule.domain, rule.profile),
        Some(format!("added because: {}", rule.reason)),
    );
    let done = format!(
        "The entry for {} ({}) was removed.",
        rule.domain, rule.profile
    );
    Ok(Redirect::to(&format!("/rules?done={}", urlencode(&done))).into_response())
}

/// The allow/deny form read as a request would read it, then checked as
/// [`add`] and the store check it, for the fuzz targets.
#[cfg(any(test, feature = "testkit"))]
pub(super) fn read_posted(body: &[u8]) {
    if let Ok(form) = serde_urlencoded::from_bytes::<AddForm>(body) {
        let _ = RuleAction::parse(&form.action);
        let _ = crate::name::normalise_domain(form.domain.trim());
        let _ = crate::admin::rules::check_reason(&form.reason);
    }
    let _ = serde_urlencoded::from_bytes::<RulesQuery>(body);
}
