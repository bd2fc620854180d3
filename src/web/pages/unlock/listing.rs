//! The overrides granted lately: those in force (with a button to end one
//! early) and those that ended or expired in the last week, with who, what,
//! for whom, until when and why.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::admin::users::Right;
use crate::clock::now_unix_ms;
use crate::policy::rules::OverrideRow;
use crate::web::WebState;
use crate::web::auth::Signed;
use crate::web::error::{WebError, urlencode};
use crate::web::view::{Layout, render, when};

use super::choices;

/// Each override shown on /overrides, with its state in words.
struct OverrideView {
    row: OverrideRow,
    what: String,
    scope: String,
    from: String,
    until: String,
    state: String,
    live: bool,
}

#[derive(Template)]
#[template(path = "overrides.html")]
struct OverridesPage {
    layout: Layout,
    live: Vec<OverrideView>,
    recent: Vec<OverrideView>,
    may_end: bool,
    done: Option<String>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    done: Option<String>,
}

/// How far back /overrides shows ended and expired overrides.
const RECENT_MS: i64 = 7 * 24 * 3600 * 1000;

pub async fn list(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    if !signed.may(Right::UseOverride) && !signed.may(Right::ReadLog) {
        return Err(WebError::Forbidden("see the overrides"));
    }
    let config = state.config().await;
    let tz = config.log.time_zone;
    let now = now_unix_ms();
    let admin = state.admin.clone();
    let rows =
        tokio::task::spawn_blocking(move || admin.overrides_since(now - RECENT_MS)).await??;
    let view = |row: OverrideRow| {
        let live = row.is_live(now);
        let state = match (&row.ended_at, &row.ended_by) {
            _ if live => "in force".to_string(),
            (Some(at), by) => format!(
                "ended early {} by {}",
                when(tz, *at),
                by.as_deref().unwrap_or("someone")
            ),
            (None, _) => "expired".to_string(),
        };
        OverrideView {
            what: choices::describe_target(&row.target),
            scope: choices::describe_scope(&row.scope, &config),
            from: when(tz, row.starts_at),
            until: when(tz, row.expires_at),
            state,
            live,
            row,
        }
    };
    let (live, recent): (Vec<_>, Vec<_>) = rows.into_iter().map(view).partition(|v| v.live);
    Ok(render(&OverridesPage {
        layout: Layout::new(&config, "Unlocked sites", "unlock", &signed),
        live,
        recent,
        may_end: signed.may(Right::UseOverride),
        done: query.done,
    })?
    .into_response())
}

pub async fn end(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    signed.require(Right::UseOverride, "end an override")?;
    let admin = state.admin.clone();
    let by = signed.user.clone();
    let ended = tokio::task::spawn_blocking(move || admin.end_override(id, &by)).await??;
    let Some(row) = ended else {
        return Err(WebError::BadRequest(
            "That override has already ended, or never existed.".into(),
        ));
    };
    state
        .reloader
        .apply_overrides()
        .await
        .map_err(WebError::Internal)?;
    let config = state.config().await;
    let scope = choices::describe_scope(&row.scope, &config);
    state.audit(
        &signed.user,
        "override ended early",
        format!("{} for {scope} (override {})", row.target, row.id),
        Some(format!("granted because: {}", row.reason)),
    );
    let done = format!(
        "{} is blocked again for {scope}.",
        choices::describe_target(&row.target)
    );
    Ok(Redirect::to(&format!("/overrides?done={}", urlencode(&done))).into_response())
}
