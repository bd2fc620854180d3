//! What a page says when it cannot do what was asked: sign in first, not
//! allowed, bad input (with what to fix), too many attempts, or a fault.

use std::time::Duration;

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

#[derive(Debug)]
pub enum WebError {
    /// Not signed in (or the session ran out): go to the sign-in page.
    SignIn {
        next: String,
        expired: bool,
    },
    /// A script without a valid token.
    Unauthorised,
    Forbidden(&'static str),
    /// Not allowed for anyone here, with why (e.g. the trust's bundle).
    NotAllowed(String),
    BadRequest(String),
    NotFound,
    /// A staff page asked for from a network that is not the staff's.
    StaffNetworkOnly,
    TooMany(Duration),
    /// A form without its token, or with an old one.
    StaleForm,
    /// A change asked of the secondary of an HA pair: it is made on the
    /// primary (whose page is given).
    FollowsPrimary(String),
    Internal(String),
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

impl WebError {
    pub fn internal(error: impl std::fmt::Display) -> WebError {
        WebError::Internal(error.to_string())
    }

    fn status_and_text(&self) -> (StatusCode, &'static str, String) {
        match self {
            WebError::SignIn { .. } | WebError::Unauthorised => (
                StatusCode::UNAUTHORIZED,
                "Please sign in",
                "Sign in to see this page.".into(),
            ),
            WebError::Forbidden(what) => (
                StatusCode::FORBIDDEN,
                "Not allowed",
                format!("Your account cannot {what}. Ask the school's technician if you need to."),
            ),
            WebError::NotAllowed(message) => {
                (StatusCode::FORBIDDEN, "Not allowed", message.clone())
            }
            WebError::BadRequest(message) => (
                StatusCode::BAD_REQUEST,
                "Please check what you entered",
                message.clone(),
            ),
            WebError::NotFound => (
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is no such page. Use the menu to find what you need.".into(),
            ),
            WebError::StaffNetworkOnly => (
                StatusCode::FORBIDDEN,
                "Staff network only",
                "The staff pages are only available on the staff network. Use a school computer on the staff network, or ask the school's technician.".into(),
            ),
            WebError::TooMany(wait) => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                format!(
                    "Too many wrong attempts. Try again in {} minutes.",
                    wait.as_secs().div_ceil(60).max(1)
                ),
            ),
            WebError::StaleForm => (
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The form was out of date or did not come from this site. Go back, reload the page and try again.".into(),
            ),
            WebError::FollowsPrimary(primary) => (
                StatusCode::FORBIDDEN,
                "Changes are made on the primary",
                format!(
                    "This box is the secondary of a pair: it follows the allow and block entries, unlocks, users, codes and reviews made on the primary's page, and answers with them if the primary stops. Make this change on the primary: {primary}"
                ),
            ),
            WebError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Lollipop could not do that just now. The details are in its log (journalctl -u lollipop).".into(),
            ),
        }
    }
}

impl From<crate::admin::AdminError> for WebError {
    fn from(error: crate::admin::AdminError) -> WebError {
        match error {
            crate::admin::AdminError::Invalid(message) => WebError::BadRequest(message),
            other => WebError::internal(other),
        }
    }
}

impl From<crate::journal::JournalError> for WebError {
    fn from(error: crate::journal::JournalError) -> WebError {
        WebError::internal(error)
    }
}

impl From<askama::Error> for WebError {
    fn from(error: askama::Error) -> WebError {
        WebError::internal(error)
    }
}

impl From<tokio::task::JoinError> for WebError {
    fn from(error: tokio::task::JoinError) -> WebError {
        WebError::internal(error)
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let WebError::SignIn { next, expired } = &self {
            let mut to = format!("/login?next={}", urlencode(next));
            if *expired {
                to.push_str("&expired=1");
            }
            return Redirect::to(&to).into_response();
        }
        if let WebError::Internal(detail) = &self {
            tracing::error!("status page: {detail}");
        }
        let (status, title, message) = self.status_and_text();
        let page = ErrorPage {
            title,
            message: &message,
        }
        .render()
        .unwrap_or_else(|_| message.clone());
        let mut response = (status, Html(page)).into_response();
        if matches!(self, WebError::Unauthorised) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"lollipop\""),
            );
        }
        response
    }
}

/// Percent-encodes `text` for a query string.
pub fn urlencode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
