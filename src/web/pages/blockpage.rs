//! The block page: what a child sees when a blocked name was answered with
//! this appliance's address.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::web::WebState;
use crate::web::error::WebError;

pub async fn divert(State(_state): State<Arc<WebState>>, request: Request, next: Next) -> Response {
    next.run(request).await
}

pub async fn fallback() -> WebError {
    WebError::NotFound
}
