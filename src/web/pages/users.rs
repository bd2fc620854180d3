//! Users of the status page (admin only): their roles and passwords, their
//! personal override codes, removing them (never yourself, never the last
//! admin); and API tokens for scripts, shown once and revocable. Every
//! change is recorded in the audit trail.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::admin::users::{ApiToken, Right};
use crate::admin::{Role, User};
use crate::web::WebState;
use crate::web::auth::Signed;
use crate::web::error::{WebError, urlencode};
use crate::web::view::{Layout, render, when};

const MANAGE: &str = "manage users";

struct UserView {
    user: User,
    added: String,
    /// Teachers and admins may hold an override code.
    may_have_code: bool,
    is_me: bool,
}

struct TokenView {
    token: ApiToken,
    added: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<UserView>,
    tokens: Vec<TokenView>,
    roles: [&'static str; 4],
    done: Option<String>,
    /// A token just made: shown this once, never stored in the clear.
    new_token: Option<(String, String)>,
}

#[derive(Deserialize)]
pub struct UsersQuery {
    done: Option<String>,
}

async fn users_page(
    state: &WebState,
    signed: &Signed,
    done: Option<String>,
    new_token: Option<(String, String)>,
) -> Result<Response, WebError> {
    let config = state.config().await;
    let tz = config.log.time_zone;
    let admin = state.admin.clone();
    let (users, tokens) = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::admin::AdminError>((admin.users()?, admin.api_tokens()?))
    })
    .await??;
    let users = users
        .into_iter()
        .map(|user| UserView {
            added: format!("{} by {}", when(tz, user.created_at), user.created_by),
            may_have_code: user.role.may(Right::UseOverride),
            is_me: user.name == signed.user,
            user,
        })
        .collect();
    let tokens = tokens
        .into_iter()
        .map(|token| TokenView {
            added: format!("{} by {}", when(tz, token.created_at), token.created_by),
            token,
        })
        .collect();
    let mut response = render(&UsersPage {
        layout: Layout::new(&config, "Users and API tokens", "users", signed),
        users,
        tokens,
        roles: ["viewer", "teacher", "dsl", "admin"],
        done,
        new_token,
    })?
    .into_response();
    // The page may carry a new token: keep it out of every cache.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

pub async fn page(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Query(query): Query<UsersQuery>,
) -> Result<Response, WebError> {
    signed.require(Right::ManageUsers, MANAGE)?;
    users_page(&state, &signed, query.done, None).await
}

fn done(message: &str) -> Response {
    Redirect::to(&format!("/users?done={}", urlencode(message))).into_response()
}

/// Whether `name` is the only admin left.
async fn last_admin(state: &WebState, name: &str) -> Result<bool, WebError> {
    let admin = state.admin.clone();
    let users = tokio::task::spawn_blocking(move || admin.users()).await??;
    let admins: Vec<&User> = users.iter().filter(|u| u.role == Role::Admin).collect();
    Ok(admins.len() == 1 && admins[0].name == name)
}

/// Missing fields arrive empty and are checked like empty ones.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct UserForm {
    name: String,
    role: String,
    password: String,
    confirm: String,
}

/// Adds a user, or sets an existing user's role and password.
pub async fn save(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Form(form): Form<UserForm>,
) -> Result<Response, WebError> {
    signed.require(Right::ManageUsers, MANAGE)?;
    let name = form.name.trim().to_string();
    let role = Role::parse(&form.role)?;
    if form.password != form.confirm {
        return Err(WebError::BadRequest(
            "The two passwords are not the same. Go back and type them again.".into(),
        ));
    }
    let admin = state.admin.clone();
    let lookup = name.clone();
    let existing = tokio::task::spawn_blocking(move || admin.user(&lookup)).await??;
    if role != Role::Admin && last_admin(&state, &name).await? {
        return Err(WebError::BadRequest(format!(
            "{name} is the only admin. Make someone else an admin first, so somebody can still manage Lollipop."
        )));
    }
    // An existing user's role can change without a new password.
    let keep_password = existing.is_some() && form.password.is_empty();
    let admin = state.admin.clone();
    let (who, password, by) = (name.clone(), form.password, signed.user.clone());
    tokio::task::spawn_blocking(move || {
        if keep_password {
            admin.set_role(&who, role).map(|_| ())
        } else {
            admin.set_user(&who, role, &password, &by)
        }
    })
    .await??;
    let role_changed = existing.as_ref().is_none_or(|user| user.role != role);
    if name != signed.user || role_changed {
        // New rights (or fewer) take effect at their next sign-in.
        state.sessions.end_user(&name);
    }
    let (action, message) = match &existing {
        None => (
            "user added",
            format!("{name} can now sign in as a {}.", role.as_str()),
        ),
        Some(before) => (
            "user changed",
            format!(
                "{name} is now a {} (was {}){}.",
                role.as_str(),
                before.role.as_str(),
                if keep_password {
                    ", with the same password"
                } else {
                    ", with a new password"
                }
            ),
        ),
    };
    state.audit(
        &signed.user,
        action,
        format!("{name}, role {}", role.as_str()),
        None,
    );
    tracing::info!("{}: {action}: {name} ({})", signed.user, role.as_str());
    Ok(done(&message))
}

pub async fn remove(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Path(name): Path<String>,
) -> Result<Response, WebError> {
    signed.require(Right::ManageUsers, MANAGE)?;
    if name == signed.user {
        return Err(WebError::BadRequest(
            "You cannot remove yourself. Ask another admin to do it.".into(),
        ));
    }
    if last_admin(&state, &name).await? {
        return Err(WebError::BadRequest(format!(
            "{name} is the only admin and cannot be removed."
        )));
    }
    let admin = state.admin.clone();
    let who = name.clone();
    let removed = tokio::task::spawn_blocking(move || admin.remove_user(&who)).await??;
    if !removed {
        return Err(WebError::BadRequest(format!(
            "There is no user called '{name}'."
        )));
    }
    state.sessions.end_user(&name);
    state.audit(&signed.user, "user removed", name.clone(), None);
    Ok(done(&format!("{name} was removed and signed out.")))
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    /// Set by the "remove the code" button.
    #[serde(default)]
    clear: Option<String>,
}

pub async fn set_code(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Path(name): Path<String>,
    Form(form): Form<CodeForm>,
) -> Result<Response, WebError> {
    signed.require(Right::ManageUsers, MANAGE)?;
    let admin = state.admin.clone();
    let who = name.clone();
    let user = tokio::task::spawn_blocking(move || admin.user(&who)).await??;
    let Some(user) = user else {
        return Err(WebError::BadRequest(format!(
            "There is no user called '{name}'."
        )));
    };
    let clear = form.clear.is_some();
    if !clear && !user.role.may(Right::UseOverride) {
        return Err(WebError::BadRequest(format!(
            "{name} is a {} and cannot use override codes. Make them a teacher first.",
            user.role.as_str()
        )));
    }
    let admin = state.admin.clone();
    let code = (!clear).then_some(form.code);
    let who = name.clone();
    tokio::task::spawn_blocking(move || admin.set_code(&who, code.as_deref())).await??;
    let (action, message) = if clear {
        (
            "override code removed",
            format!("{name} no longer has an override code."),
        )
    } else {
        (
            "override code set",
            format!("{name} has a new override code. Tell them in person."),
        )
    };
    state.audit(&signed.user, action, name, None);
    Ok(done(&message))
}

/// Missing fields arrive empty and are checked like empty ones.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TokenForm {
    label: String,
    role: String,
}

pub async fn new_token(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Form(form): Form<TokenForm>,
) -> Result<Response, WebError> {
    signed.require(Right::ManageUsers, MANAGE)?;
    let role = Role::parse(&form.role)?;
    let admin = state.admin.clone();
    let (label, by) = (form.label.trim().to_string(), signed.user.clone());
    let for_store = label.clone();
    let token =
        tokio::task::spawn_blocking(move || admin.new_api_token(&for_store, role, &by)).await??;
    state.audit(
        &signed.user,
        "API token created",
        format!("'{label}', role {}", role.as_str()),
        None,
    );
    // Shown in the page itself, never in a redirect's address.
    users_page(
        &state,
        &signed,
        Some(format!(
            "The token '{label}' was created. Copy it now: it is not shown again."
        )),
        Some((label, token)),
    )
    .await
}

pub async fn revoke_token(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    signed.require(Right::ManageUsers, MANAGE)?;
    let admin = state.admin.clone();
    let (tokens, revoked) = tokio::task::spawn_blocking(move || {
        let tokens = admin.api_tokens()?;
        let revoked = admin.revoke_api_token(id)?;
        Ok::<_, crate::admin::AdminError>((tokens, revoked))
    })
    .await??;
    let Some(token) = tokens.into_iter().find(|t| t.id == id).filter(|_| revoked) else {
        return Err(WebError::BadRequest(
            "That token was already revoked, or never existed.".into(),
        ));
    };
    state.audit(
        &signed.user,
        "API token revoked",
        format!("'{}', role {}", token.label, token.role.as_str()),
        None,
    );
    Ok(done(&format!(
        "The token '{}' no longer works.",
        token.label
    )))
}

/// The user, code and token forms read as a request would read them, then
/// checked as far as is possible without the store, for the fuzz targets.
#[cfg(any(test, feature = "testkit"))]
pub(super) fn read_posted(body: &[u8]) {
    if let Ok(form) = serde_urlencoded::from_bytes::<UserForm>(body) {
        let _ = Role::parse(&form.role);
        let _ = crate::admin::users::check_user_name(form.name.trim());
    }
    let _ = serde_urlencoded::from_bytes::<CodeForm>(body);
    if let Ok(form) = serde_urlencoded::from_bytes::<TokenForm>(body) {
        let _ = Role::parse(&form.role);
    }
}
