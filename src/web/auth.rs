//! Who is asking: the session cookie or an API token, checked on every
//! request, and the sign-in, sign-out and first-admin setup pages.

use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use crate::admin::Role;
use crate::admin::users::Right;

use super::WebState;
use super::csrf::FormToken;
use super::error::WebError;
use super::session::Lookup;
use super::view::{Layout, render};

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

/// Only same-site paths are followed after signing in.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_string()
        }
        _ => "/".into(),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    next: String,
    message: Option<String>,
    name: String,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
}

pub async fn login_page(
    State(state): State<Arc<WebState>>,
    Extension(token): Extension<FormToken>,
    Query(query): Query<LoginQuery>,
) -> Result<Response, WebError> {
    let config = state.config().await;
    let message = query.expired.map(|_| {
        format!(
            "You were signed out after {} minutes without activity. Please sign in again.",
            state.sessions.idle().as_secs() / 60
        )
    });
    Ok(render(&LoginPage {
        layout: Layout::public(&config, "Sign in", &token),
        next: safe_next(query.next.as_deref()),
        message,
        name: String::new(),
    })?
    .into_response())
}

/// Missing fields arrive empty and are checked like empty ones.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LoginForm {
    name: String,
    password: String,
    next: Option<String>,
}

pub async fn login(
    State(state): State<Arc<WebState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(token): Extension<FormToken>,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let address = peer.ip();
    let name = form.name.trim().to_string();
    if let Some(wait) = state.login_limiter.wait(address, &name) {
        tracing::warn!("sign-in refused for '{name}' from {address}: too many failed attempts");
        return Err(WebError::TooMany(wait));
    }
    let admin = state.admin.clone();
    let (check_name, password) = (name.clone(), form.password);
    let user =
        tokio::task::spawn_blocking(move || admin.check_login(&check_name, &password)).await??;
    let Some(user) = user else {
        state.login_limiter.failed(address, &name);
        tracing::warn!("failed sign-in for '{name}' from {address}");
        state.audit(
            &address.to_string(),
            "sign-in failed",
            format!("user name '{name}'"),
            None,
        );
        let config = state.config().await;
        let page = render(&LoginPage {
            layout: Layout::public(&config, "Sign in", &token),
            next: safe_next(form.next.as_deref()),
            message: Some("That name and password do not match. Please try again.".into()),
            name,
        })?;
        return Ok((axum::http::StatusCode::UNAUTHORIZED, page).into_response());
    };
    state.login_limiter.succeeded(address, &name);
    tracing::info!("'{}' signed in from {address}", user.name);
    state.audit(&user.name, "signed in", format!("from {address}"), None);
    let cookie = state.sessions.start(&user.name, user.role);
    let home = match (form.next.as_deref(), user.role) {
        (None | Some("/"), Role::Teacher) => "/unlock".to_string(),
        (next, _) => safe_next(next),
    };
    Ok((
        [(header::SET_COOKIE, session_cookie(&state, &cookie))],
        Redirect::to(&home),
    )
        .into_response())
}

pub async fn logout(State(state): State<Arc<WebState>>, headers: HeaderMap) -> Response {
    if let Some(value) = cookie(&headers, SESSION_COOKIE) {
        state.sessions.end(value);
    }
    (
        [(header::SET_COOKIE, session_cookie(&state, ""))],
        Redirect::to("/login"),
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    layout: Layout,
    token: String,
    valid: bool,
    message: Option<String>,
}

#[derive(Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
}

pub async fn setup_page(
    State(state): State<Arc<WebState>>,
    Extension(form_token): Extension<FormToken>,
    Query(query): Query<SetupQuery>,
) -> Result<Response, WebError> {
    let token = query.token.unwrap_or_default();
    let admin = state.admin.clone();
    let check = token.clone();
    let valid = tokio::task::spawn_blocking(move || admin.setup_token_valid(&check)).await??;
    let config = state.config().await;
    Ok(render(&SetupPage {
        layout: Layout::public(&config, "Set up Lollipop", &form_token),
        token,
        valid,
        message: None,
    })?
    .into_response())
}

/// Missing fields arrive empty and are checked like empty ones.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SetupForm {
    token: String,
    name: String,
    password: String,
    confirm: String,
}

pub async fn setup(
    State(state): State<Arc<WebState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(form_token): Extension<FormToken>,
    Form(form): Form<SetupForm>,
) -> Result<Response, WebError> {
    let address = peer.ip();
    if let Some(wait) = state.login_limiter.wait(address, "setup link") {
        return Err(WebError::TooMany(wait));
    }
    let config = state.config().await;
    let retry = |message: String| {
        render(&SetupPage {
            layout: Layout::public(&config, "Set up Lollipop", &form_token),
            token: form.token.clone(),
            valid: true,
            message: Some(message),
        })
        .map(|page| (axum::http::StatusCode::BAD_REQUEST, page).into_response())
    };
    if form.password != form.confirm {
        return retry("The two passwords are not the same.".into());
    }
    let admin = state.admin.clone();
    let (token, name, password) = (
        form.token.clone(),
        form.name.trim().to_string(),
        form.password.clone(),
    );
    let created_name = name.clone();
    let outcome =
        tokio::task::spawn_blocking(move || admin.redeem_setup_token(&token, &name, &password))
            .await?;
    if let Err(error) = outcome {
        state.login_limiter.failed(address, "setup link");
        return match error {
            crate::admin::AdminError::Invalid(message) => retry(message),
            other => Err(other.into()),
        };
    }
    state.audit(
        &created_name,
        "first admin created",
        format!("with a setup link, from {address}"),
        None,
    );
    let cookie = state.sessions.start(&created_name, Role::Admin);
    Ok((
        [(header::SET_COOKIE, session_cookie(&state, &cookie))],
        Redirect::to("/"),
    )
        .into_response())
}
