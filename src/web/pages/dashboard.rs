//! Today: is filtering working, what was blocked, and recent alerts.

use crate::web::error::WebError;

pub async fn page() -> WebError {
    WebError::NotFound
}
