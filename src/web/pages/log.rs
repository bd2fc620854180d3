//! The blocked-lookup log: filters, paging, CSV export, and one entry's why.

use crate::web::error::WebError;

pub async fn page() -> WebError {
    WebError::NotFound
}

pub async fn csv() -> WebError {
    WebError::NotFound
}

pub async fn entry() -> WebError {
    WebError::NotFound
}
