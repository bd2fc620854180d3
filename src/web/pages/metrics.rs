//! `/metrics` in the Prometheus text format: behind a sign-in or API token
//! on the status page, and open on `[web] metrics_listen` (a management
//! network a Prometheus server scrapes). The counters are in `crate::metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::web::WebState;
use crate::web::auth::Signed;

/// The exposition format's content type.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `/metrics` on the status page: any signed-in user or API token.
pub async fn authorised(_signed: Signed, State(state): State<Arc<WebState>>) -> Response {
    render(&state)
}

/// `/metrics` on `metrics_listen`, without a login.
pub async fn open(State(state): State<Arc<WebState>>) -> Response {
    render(&state)
}

fn render(state: &WebState) -> Response {
    let lists = state.pipeline.settings().policy.lists.clone();
    let text = state.metrics.render(&lists, &state.journal.stats());
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], text).into_response()
}
