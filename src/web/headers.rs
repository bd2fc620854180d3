//! The security headers every response of the page carries: a content
//! security policy that allows only the page's own scripts, styles and
//! images and no framing, no MIME sniffing, no referrer beyond the site,
//! and, over TLS, HSTS with a short max-age (a re-flashed appliance has a
//! new self-signed certificate, which a long HSTS would lock browsers out of).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use super::WebState;

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// An hour: long enough to matter, short enough for a re-flashed box.
const HSTS: &str = "max-age=3600";

pub async fn add(State(state): State<Arc<WebState>>, request: Request, next: Next) -> Response {
    // HSTS under a blocked site's name would outlive the block on that site.
    let intercepted = request
        .extensions()
        .get::<super::blockhttps::InterceptedName>()
        .is_some();
    let mut response = next.run(request).await;
    apply(response.headers_mut(), state.secure_cookies && !intercepted);
    response
}

/// Puts the headers on a response (also the trust dashboard's); HSTS only
/// over TLS.
pub fn apply(headers: &mut axum::http::HeaderMap, hsts: bool) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
}
