//! `/metrics` in the Prometheus text format: behind a sign-in or API token
//! on the status page, and open on `[web] metrics_listen` (a management
//! network a Prometheus server scrapes). The counters are in `crate::metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::metrics::CONTENT_TYPE;
use crate::web::WebState;
use crate::web::auth::Signed;

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
    let mut text = state.metrics.render(&lists, &state.journal.stats());
    text.push_str(&state.cluster.metrics_text(crate::clock::now_unix_ms()));
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}
