//! The weekly report, the annual filtering review record, and the audit trail.

use crate::web::error::WebError;

pub async fn weekly() -> WebError {
    WebError::NotFound
}

pub async fn reviews() -> WebError {
    WebError::NotFound
}

pub async fn add_review() -> WebError {
    WebError::NotFound
}

pub async fn audit() -> WebError {
    WebError::NotFound
}
