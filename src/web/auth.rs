//! Who is asking: the session cookie or an API token, checked on every
//! request. The pages that sign people in and out are `pages::signin`.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::admin::Role;
use crate::admin::users::Right;

use super::WebState;
use super::error::WebError;
use super::session::Lookup;

pub const SESSION_COOKIE: &str = "lollipop_session";

/// A signed-in user (or a script with a token).
#[derive(Debug, Clone)]
pub struct Signed {
    pub user: String,
    pub role: Role,
    /// The form token of the session (empty for API tokens).
    pub csrf: String,
}

impl Signed {
    /// Refuses unless the role has `right`; `what` completes "Your account cannot …".
    pub fn require(&self, right: Right, what: &'static str) -> Result<(), WebError> {
        if self.role.may(right) {
            Ok(())
        } else {
            Err(WebError::Forbidden(what))
        }
    }

    pub fn may(&self, right: Right) -> bool {
        self.role.may(right)
    }
}

/// The value of cookie `name` in the request's headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

impl FromRequestParts<Arc<WebState>> for Signed {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<WebState>,
    ) -> Result<Self, Self::Rejection> {
        let is_script = parts.uri.path().starts_with("/api/") || parts.uri.path() == "/metrics";
        if let Some(token) = bearer(&parts.headers) {
            let token = token.to_string();
            let admin = state.admin.clone();
            let found =
                tokio::task::spawn_blocking(move || admin.check_api_token(&token)).await??;
            return match found {
                Some((label, role)) => Ok(Signed {
                    user: format!("token '{label}'"),
                    role,
                    csrf: String::new(),
                }),
                None => Err(WebError::Unauthorised),
            };
        }
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let expired = match cookie(&parts.headers, SESSION_COOKIE) {
            Some(value) => match state.sessions.touch(value) {
                Lookup::Active(session) => {
                    return Ok(Signed {
                        user: session.user,
                        role: session.role,
                        csrf: session.csrf,
                    });
                }
                Lookup::Expired => true,
                Lookup::Unknown => false,
            },
            None => false,
        };
        if is_script {
            Err(WebError::Unauthorised)
        } else {
            Err(WebError::SignIn { next, expired })
        }
    }
}

/// The `Set-Cookie` value for a session cookie (empty value: remove it).
pub fn session_cookie(state: &WebState, value: &str) -> String {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let max_age = if value.is_empty() {
        "; Max-Age=0".to_string()
    } else {
        String::new()
    };
    format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{max_age}")
}
