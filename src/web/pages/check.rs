//! Check a name: the decision for a device or profile, and why.

use crate::web::error::WebError;

pub async fn page() -> WebError {
    WebError::NotFound
}
