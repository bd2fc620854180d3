//! The sign-in, sign-out and first-admin setup pages.

use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use crate::admin::Role;

use crate::web::WebState;
use crate::web::auth::{SESSION_COOKIE, cookie, session_cookie};
use crate::web::csrf::FormToken;
use crate::web::error::WebError;
use crate::web::view::{Layout, render};

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
    if let Err(wait) = state.login_limiter.attempt(address, &name) {
        tracing::warn!("sign-in refused for '{name}' from {address}: too many failed attempts");
        return Err(WebError::TooMany(wait));
    }
    let admin = state.admin.clone();
    let (check_name, password) = (name.clone(), form.password);
    let hashing = state.hashing.acquire().await.ok();
    let user =
        tokio::task::spawn_blocking(move || admin.check_login(&check_name, &password)).await??;
    drop(hashing);
    let Some(user) = user else {
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
    // Counted before the link is checked and the password hashed.
    if let Err(wait) = state.login_limiter.attempt(address, "setup link") {
        return Err(WebError::TooMany(wait));
    }
    let admin = state.admin.clone();
    let (token, name, password) = (
        form.token.clone(),
        form.name.trim().to_string(),
        form.password.clone(),
    );
    let created_name = name.clone();
    let hashing = state.hashing.acquire().await.ok();
    let outcome =
        tokio::task::spawn_blocking(move || admin.redeem_setup_token(&token, &name, &password))
            .await?;
    drop(hashing);
    if let Err(error) = outcome {
        return match error {
            crate::admin::AdminError::Invalid(message) => retry(message),
            other => Err(other.into()),
        };
    }
    state.login_limiter.succeeded(address, "setup link");
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

/// The sign-in and setup forms read as a request would read them, then
/// checked as far as is possible without the store, for the fuzz targets.
#[cfg(any(test, feature = "testkit"))]
pub(super) fn read_posted(body: &[u8]) {
    if let Ok(form) = serde_urlencoded::from_bytes::<LoginForm>(body) {
        let _ = safe_next(form.next.as_deref());
        let _ = crate::admin::users::check_user_name(form.name.trim());
    }
    if let Ok(form) = serde_urlencoded::from_bytes::<SetupForm>(body) {
        let _ = crate::admin::users::check_user_name(form.name.trim());
    }
}
