//! The filtering self-assessment page: the DfE standards and the UKSIC
//! checklist walked against the running settings (`crate::assessment`), on
//! screen and as a print view, and the copy kept with each annual review.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use crate::admin::users::Right;
use crate::assessment::{EDITIONS, Evidence, Section, assess, to_html};
use crate::clock::now_unix_ms;
use crate::config::Config;
use crate::lists::acquire::health::health;
use crate::lists::store::CompiledLists;
use crate::web::WebState;
use crate::web::auth::Signed;
use crate::web::error::WebError;
use crate::web::view::{Layout, local_time, render};

#[derive(Template)]
#[template(path = "assessment.html")]
struct AssessmentPage {
    layout: Layout,
    editions: &'static [&'static str],
    sections: Vec<Section>,
    today: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct PrintQuery {
    print: Option<String>,
}

/// The assessment as it stands now: today's date and the sections.
pub async fn current(
    state: &WebState,
    config: &Config,
) -> Result<(String, Vec<Section>), WebError> {
    let today = local_time(config.log.time_zone, now_unix_ms())[..10].to_string();
    let for_lists = config.clone();
    let admin = state.admin.clone();
    let (lists, reviews) = tokio::task::spawn_blocking(move || {
        let compiled = CompiledLists::open(&for_lists.compiled_lists_path()).ok();
        let lists = health(
            &for_lists,
            compiled.as_ref().map(CompiledLists::manifest),
            crate::clock::now_unix_secs(),
        );
        (lists, admin.reviews())
    })
    .await?;
    let last_review = reviews?.first().map(|review| review.held_on.clone());
    let sections = assess(
        config,
        &Evidence {
            lists: &lists,
            last_review,
            today: today.clone(),
        },
    );
    Ok((today, sections))
}

pub async fn page(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Query(query): Query<PrintQuery>,
) -> Result<Response, WebError> {
    signed.require(Right::ReadLog, "read the filtering self-assessment")?;
    let config = state.config().await;
    let (today, sections) = current(&state, &config).await?;
    if query.print.is_some() {
        return Ok(Html(to_html(&config.alerts.school_name, &today, &sections)).into_response());
    }
    Ok(render(&AssessmentPage {
        layout: Layout::new(&config, "Filtering self-assessment", "reports", &signed),
        editions: EDITIONS,
        sections,
        today,
    })?
    .into_response())
}

/// Where the copy kept with review `id` lives.
pub fn copy_path(config: &Config, id: i64) -> std::path::PathBuf {
    config
        .resolve_path(&config.server.data_dir)
        .join("reviews")
        .join(format!("review-{id}-assessment.html"))
}

/// Keeps the assessment as it stands with review `id`, so the record shows
/// what was reviewed even after the settings change.
pub async fn keep_copy(state: &WebState, config: &Config, id: i64) -> Result<(), WebError> {
    let (today, sections) = current(state, config).await?;
    let html = to_html(&config.alerts.school_name, &today, &sections);
    let path = copy_path(config, id);
    tokio::task::spawn_blocking(move || {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, html)
    })
    .await?
    .map_err(|error| {
        WebError::internal(format!(
            "cannot keep the self-assessment with the review: {error}"
        ))
    })
}

/// The copy kept with review `id`.
pub async fn kept(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    signed.require(Right::ReadLog, "read the filtering reviews")?;
    let config = state.config().await;
    let path = copy_path(&config, id);
    match tokio::task::spawn_blocking(move || std::fs::read_to_string(path)).await? {
        Ok(html) => Ok(Html(html).into_response()),
        Err(_) => Err(WebError::NotFound),
    }
}
