//! `/metrics` in the Prometheus text format.

use crate::web::error::WebError;

#[derive(Default)]
pub struct Metrics {}

pub async fn authorised() -> WebError {
    WebError::NotFound
}

pub async fn open() -> WebError {
    WebError::NotFound
}
