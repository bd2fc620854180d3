//! Cross-site request forgery protection for every form: each page carries
//! a token (the session's, or before sign-in a random cookie's) and every
//! POST must send it back. Scripts using an API token are exempt: they send
//! no cookies, so another site cannot act through them.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::{SESSION_COOKIE, cookie};
use super::error::WebError;
use super::{MAX_BODY_BYTES, WebState};
use crate::admin::random_token;

/// The token the current page's forms must carry.
#[derive(Debug, Clone)]
pub struct FormToken(pub String);

const FORM_COOKIE: &str = "lollipop_form";

/// The most of an oversized form that is read (and dropped) before refusing it.
const READ_AT_MOST: usize = 1024 * 1024;

pub async fn guard(State(state): State<Arc<WebState>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let session_cookie = cookie(headers, SESSION_COOKIE).map(str::to_string);
    let session = session_cookie
        .as_deref()
        .and_then(|value| state.sessions.peek(value));
    let form_cookie = cookie(headers, FORM_COOKIE).map(str::to_string);
    let uses_token = headers.contains_key(header::AUTHORIZATION);
    let (expected, new_form_cookie) = match (&session, &form_cookie) {
        (Some(session), _) => (session.csrf.clone(), None),
        (None, Some(value)) if value.len() == 64 => (value.clone(), None),
        (None, _) => {
            let value = random_token();
            (value.clone(), Some(value))
        }
    };

    let mut request = request;
    if request.method() == Method::POST && !uses_token {
        if session.is_none() && session_cookie.is_some() && !is_public_form(request.uri().path()) {
            // The session ran out while the form was open.
            return WebError::SignIn {
                next: "/".into(),
                expired: true,
            }
            .into_response();
        }
        let (parts, body) = request.into_parts();
        // Up to a bounded amount is read even past the limit, so the
        // browser finishes sending and can show the message below instead
        // of a broken connection.
        let bytes = to_bytes(body, READ_AT_MOST).await;
        let Some(bytes) = bytes.ok().filter(|b| b.len() <= MAX_BODY_BYTES) else {
            return WebError::BadRequest(format!(
                "The form was larger than {} KB. Shorten what you typed and try again.",
                MAX_BODY_BYTES / 1024
            ))
            .into_response();
        };
        let sent = form_urlencoded::parse(&bytes)
            .find(|(key, _)| key == "csrf")
            .map(|(_, value)| value.into_owned());
        if !sent.is_some_and(|sent| constant_time_eq(sent.as_bytes(), expected.as_bytes())) {
            tracing::warn!("refused a form without a valid token: {}", parts.uri.path());
            return WebError::StaleForm.into_response();
        }
        request = Request::from_parts(parts, Body::from(bytes));
    }
    request.extensions_mut().insert(FormToken(expected));
    let mut response = next.run(request).await;
    if let Some(value) = new_form_cookie {
        let secure = if state.secure_cookies { "; Secure" } else { "" };
        if let Ok(header_value) = HeaderValue::from_str(&format!(
            "{FORM_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict{secure}"
        )) {
            response
                .headers_mut()
                .append(header::SET_COOKIE, header_value);
        }
    }
    response
}

/// Forms used without a session (their token is the form cookie's).
fn is_public_form(path: &str) -> bool {
    matches!(path, "/login" | "/setup" | "/unlock" | "/logout")
}

/// Compares two tokens without telling by its time how much matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
