//! Staff override codes: unlock a site for a room, VLAN or device for a lesson.

use crate::web::error::WebError;

pub async fn page() -> WebError {
    WebError::NotFound
}

pub async fn grant() -> WebError {
    WebError::NotFound
}

pub async fn list() -> WebError {
    WebError::NotFound
}

pub async fn end() -> WebError {
    WebError::NotFound
}
