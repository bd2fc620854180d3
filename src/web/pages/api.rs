//! The JSON API for scripts (API token or session).

use crate::web::error::WebError;

pub async fn status() -> WebError {
    WebError::NotFound
}

pub async fn blocked() -> WebError {
    WebError::NotFound
}

pub async fn check() -> WebError {
    WebError::NotFound
}

pub async fn overrides() -> WebError {
    WebError::NotFound
}
