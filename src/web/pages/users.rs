//! Users, their roles and override codes, and API tokens for scripts.

use crate::web::error::WebError;

pub async fn page() -> WebError {
    WebError::NotFound
}

pub async fn save() -> WebError {
    WebError::NotFound
}

pub async fn remove() -> WebError {
    WebError::NotFound
}

pub async fn set_code() -> WebError {
    WebError::NotFound
}

pub async fn new_token() -> WebError {
    WebError::NotFound
}

pub async fn revoke_token() -> WebError {
    WebError::NotFound
}
