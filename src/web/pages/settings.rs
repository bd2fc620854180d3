//! Lists and their health, the profiles, and the effective config (read-only).

use crate::web::error::WebError;

pub async fn lists() -> WebError {
    WebError::NotFound
}

pub async fn settings() -> WebError {
    WebError::NotFound
}
