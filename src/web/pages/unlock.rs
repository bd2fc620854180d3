//! Staff override codes: a teacher unlocks a blocked site (or service) for
//! one device, one room or VLAN, or the whole network, until the end of the
//! lesson or the school day, with a reason. Works signed in, or from the
//! block page with the teacher's name and personal code. Locked categories
//! are refused; every grant, refusal and early end is in the audit trail.

pub mod cards;
pub mod choices;
pub mod expiry;
pub mod listing;

pub use listing::{end, list};

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use crate::admin::users::{Right, Role};
use crate::alerts::Notice;
use crate::config::Config;
use crate::name::{ReversedName, domain_from_input};
use crate::policy::release::Standing;
use crate::policy::rules::{OverrideScope, OverrideTarget};
use crate::web::WebState;
use crate::web::auth::Signed;
use crate::web::csrf::FormToken;
use crate::web::error::{WebError, urlencode};
use crate::web::view::{Layout, local_time, render};

use choices::{Choice, Lasting};

#[derive(Template)]
#[template(path = "unlock.html")]
struct UnlockPage {
    layout: Layout,
    /// Not signed in as a teacher or admin: the name and code are asked for.
    needs_code: bool,
    form: UnlockForm,
    choices: Vec<Choice>,
    lasting: Vec<Lasting>,
    services: Vec<(String, String)>,
    message: Option<String>,
    done: Option<String>,
    may_list: bool,
}

#[derive(Deserialize, Default)]
pub struct UnlockQuery {
    domain: Option<String>,
    client: Option<String>,
    service: Option<String>,
    done: Option<String>,
    /// A room chosen beforehand (`listener:<address>` or `network:<cidr>`),
    /// as the printed card for each room links.
    room: Option<String>,
}

/// The unlock form as sent (and as shown again when something is wrong).
#[derive(Deserialize, Default, Clone)]
pub struct UnlockForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    domain: String,
    #[serde(default)]
    service: String,
    /// `device`, `room` or `network`.
    #[serde(default)]
    scope: String,
    #[serde(default)]
    device: String,
    #[serde(default)]
    room: String,
    /// `lesson`, `hour` or `day`.
    #[serde(default)]
    duration: String,
    #[serde(default)]
    reason: String,
}

/// Whoever is asking may unlock without a code (signed in with the right).
fn trusted(signed: &Result<Signed, WebError>) -> Option<&Signed> {
    signed
        .as_ref()
        .ok()
        .filter(|signed| signed.may(Right::UseOverride))
}

fn layout(
    config: &Config,
    signed: &Result<Signed, WebError>,
    token: &FormToken,
    title: &str,
) -> Layout {
    match signed {
        Ok(signed) => Layout::new(config, title, "unlock", signed),
        Err(_) => Layout::public(config, title, token),
    }
}

fn unlock_page(
    config: &Config,
    signed: &Result<Signed, WebError>,
    token: &FormToken,
    form: UnlockForm,
    message: Option<String>,
    done: Option<String>,
    now: i64,
) -> UnlockPage {
    UnlockPage {
        layout: layout(config, signed, token, "Unlock a site for a lesson"),
        needs_code: trusted(signed).is_none(),
        choices: choices::scopes(config),
        lasting: choices::lasting(config, now),
        services: choices::services(config),
        form,
        message,
        done,
        may_list: signed
            .as_ref()
            .is_ok_and(|s| s.may(Right::UseOverride) || s.may(Right::ReadLog)),
    }
}

pub async fn page(
    State(state): State<Arc<WebState>>,
    signed: Result<Signed, WebError>,
    Extension(token): Extension<FormToken>,
    Query(query): Query<UnlockQuery>,
) -> Result<Response, WebError> {
    let config = state.config().await;
    let client = query.client.unwrap_or_default();
    // Only a room the config offers is taken from the link.
    let room = query
        .room
        .filter(|room| {
            choices::scopes(&config)
                .iter()
                .any(|choice| &choice.value == room)
        })
        .unwrap_or_default();
    let form = UnlockForm {
        domain: query.domain.unwrap_or_default(),
        service: query.service.unwrap_or_default(),
        scope: if client.is_empty() { "room" } else { "device" }.into(),
        device: client,
        room,
        duration: "lesson".into(),
        ..UnlockForm::default()
    };
    let now = state.pipeline.clock().now_unix_ms();
    let page = unlock_page(&config, &signed, &token, form, None, query.done, now);
    Ok(render(&page)?.into_response())
}

/// What a valid form asks for.
struct Wanted {
    target: OverrideTarget,
    scopes: Vec<OverrideScope>,
    expires_at: i64,
    reason: String,
}

/// Checks everything but the code and the lists; the message says what to fix.
fn read_form(form: &UnlockForm, config: &Config, now: i64) -> Result<Wanted, String> {
    let domain = form.domain.trim();
    let service = form.service.trim();
    let target = match (domain.is_empty(), service.is_empty()) {
        (true, true) => {
            return Err(
                "Type the website to unlock (e.g. www.youtube.com), or choose a service.".into(),
            );
        }
        (false, false) => {
            return Err(
                "Unlock either a website or a service, not both: clear one of them.".into(),
            );
        }
        (false, true) => {
            let domain = domain_from_input(domain).map_err(|error| {
                format!("'{domain}' is not a website name ({error}). Type it as www.example.org.")
            })?;
            OverrideTarget::Domain(domain)
        }
        (true, false) => {
            if !choices::services(config)
                .iter()
                .any(|(name, _)| name == service)
            {
                return Err(format!(
                    "'{service}' is not a service blocked here. Choose one from the list."
                ));
            }
            OverrideTarget::Service(service.to_string())
        }
    };
    let scopes = choices::scope_of(form, config)?;
    let expires_at = choices::ends_at(&form.duration, config, now)?;
    let reason = crate::admin::rules::check_reason(&form.reason)
        .map_err(|error| format!("{error}."))?
        .to_string();
    Ok(Wanted {
        target,
        scopes,
        expires_at,
        reason,
    })
}

/// How the form's target stands; a service is always releasable.
fn standing(state: &WebState, target: &OverrideTarget) -> Standing {
    let OverrideTarget::Domain(domain) = target else {
        return Standing::Releasable;
    };
    match ReversedName::from_domain(domain) {
        Some(name) => state.pipeline.settings().policy.standing(&name),
        None => Standing::NotBlocked,
    }
}

pub async fn grant(
    State(state): State<Arc<WebState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    signed: Result<Signed, WebError>,
    Extension(token): Extension<FormToken>,
    Form(form): Form<UnlockForm>,
) -> Result<Response, WebError> {
    let config = state.config().await;
    let address = peer.ip();
    // The calendar's "now": the same clock the rules of time follow.
    let now = state.pipeline.clock().now_unix_ms();
    let retry = |status: StatusCode, message: String| -> Result<Response, WebError> {
        let mut shown = form.clone();
        shown.code.clear();
        let page = unlock_page(&config, &signed, &token, shown, Some(message), None, now);
        Ok((status, render(&page)?).into_response())
    };
    let wanted = match read_form(&form, &config, now) {
        Ok(wanted) => wanted,
        Err(message) => return retry(StatusCode::BAD_REQUEST, message),
    };

    let (actor, role) = match trusted(&signed) {
        Some(signed) => (signed.user.clone(), signed.role),
        None => match check_code(&state, address, &form).await? {
            Ok(user) => user,
            Err(message) => return retry(StatusCode::UNAUTHORIZED, message),
        },
    };

    if !state.pipeline.settings().policy.time.trusted {
        return retry(
            StatusCode::SERVICE_UNAVAILABLE,
            "The appliance's clock is not set yet, so nothing can be unlocked: try again in a few minutes, once it has the time from the internet.".into(),
        );
    }
    if let Some(why) = choices::out_of_term(&config, now)
        && role != crate::admin::Role::Admin
    {
        state.audit(
            &actor,
            "override refused",
            format!("{} asked for out of term ({why})", wanted.target),
            Some(wanted.reason.clone()),
        );
        return retry(
            StatusCode::FORBIDDEN,
            format!(
                "The school is out of term today ({why}): only an administrator can unlock a site now."
            ),
        );
    }

    let standing = standing(&state, &wanted.target);
    if let Err(message) = state
        .pipeline
        .settings()
        .policy
        .check_local_unlock(&choices::describe_target(&wanted.target), &standing)
    {
        state.audit(
            &actor,
            "override refused",
            format!("{}: {message}", wanted.target),
            Some(wanted.reason.clone()),
        );
        return retry(StatusCode::FORBIDDEN, message);
    }
    let mut alerting = Vec::new();
    match standing {
        Standing::Releasable => {}
        Standing::Alerting(categories) => {
            let settings = state.pipeline.settings();
            let listener_index = |address: &str| {
                config
                    .listen
                    .iter()
                    .position(|listen| listen.address.get_ref() == address)
            };
            let refused = wanted.scopes.iter().find_map(|scope| {
                settings
                    .policy
                    .check_alerting_release(
                        role.may(Right::ReleaseAlerting),
                        scope,
                        listener_index,
                        &wanted.reason,
                    )
                    .err()
            });
            if let Some(refusal) = refused {
                let refusal = match refusal {
                    crate::policy::release::Refusal::ReachesChildren { profile } => {
                        crate::policy::release::Refusal::ReachesChildren {
                            profile: config.profile_name(&profile),
                        }
                    }
                    other => other,
                };
                let message =
                    refusal.message(&choices::describe_target(&wanted.target), &categories);
                state.audit(
                    &actor,
                    "override refused",
                    format!(
                        "{} is in {} (alerts the safeguarding lead): {message}",
                        wanted.target,
                        categories.join(", ")
                    ),
                    Some(wanted.reason.clone()),
                );
                return retry(StatusCode::FORBIDDEN, message);
            }
            alerting = categories;
        }
        Standing::NotBlocked => {
            return retry(
                StatusCode::BAD_REQUEST,
                format!(
                    "{} is not blocked for anyone, so there is nothing to unlock. Check how the website is spelt.",
                    choices::describe_target(&wanted.target)
                ),
            );
        }
        Standing::Locked(category) => {
            state.audit(
                &actor,
                "override refused",
                format!("{} is in the locked category {category}", wanted.target),
                Some(wanted.reason.clone()),
            );
            return retry(
                StatusCode::FORBIDDEN,
                format!(
                    "{} is on a list nobody can unlock (category {category}), whatever the reason. If you think it is listed by mistake, tell the designated safeguarding lead.",
                    choices::describe_target(&wanted.target)
                ),
            );
        }
    }

    let admin = state.admin.clone();
    let (target, scopes, reason, by) = (
        wanted.target.clone(),
        wanted.scopes.clone(),
        wanted.reason.clone(),
        actor.clone(),
    );
    let granted = tokio::task::spawn_blocking(move || {
        scopes
            .iter()
            .map(|scope| admin.add_override(&target, scope, &reason, &by, wanted.expires_at))
            .collect::<Result<Vec<_>, _>>()
    })
    .await??;
    state
        .reloader
        .apply_overrides()
        .await
        .map_err(WebError::Internal)?;
    let tz = config.log.time_zone;
    let until = local_time(tz, wanted.expires_at);
    for row in &granted {
        let how = if trusted(&signed).is_some() {
            "signed in"
        } else {
            "with their override code"
        };
        let (action, listed) = if alerting.is_empty() {
            ("override granted", String::new())
        } else {
            (
                "safeguarding override granted",
                format!(", listed as {}", alerting.join(", ")),
            )
        };
        state.audit(
            &actor,
            action,
            format!(
                "{}{listed} for {} until {until} (override {}, {how}, from {address})",
                row.target,
                choices::describe_scope(&row.scope, &config),
                row.id
            ),
            Some(row.reason.clone()),
        );
        tracing::info!(
            "{actor} unlocked {} for {} until {until}",
            row.target,
            row.scope
        );
        if !alerting.is_empty() {
            let told = state.reloader.notify(Notice {
                headline: format!("{actor} unlocked a site listed as {}", alerting.join(", ")),
                text: format!(
                    "{actor} unlocked {} (listed as {}) for {} until {}. Reason given: \"{}\". It ends by itself then; it can be ended early on the Unlocks page.",
                    choices::describe_target(&row.target),
                    alerting.join(", "),
                    choices::describe_scope(&row.scope, &config),
                    crate::web::view::when(tz, row.expires_at),
                    row.reason
                ),
                at_unix_ms: now,
            });
            if !told {
                tracing::warn!(
                    "no alert email or webhook is configured, so the safeguarding lead was not told that {actor} unlocked {}",
                    row.target
                );
            }
        }
    }
    let scope = granted
        .first()
        .map(|row| choices::describe_scope(&row.scope, &config))
        .unwrap_or_default();
    let done = format!(
        "{} is unlocked for {scope} until {}. Devices may take up to a minute to notice.",
        choices::describe_target(&wanted.target),
        until.get(11..).unwrap_or(&until)
    );
    let back = if signed.is_ok() {
        "/overrides"
    } else {
        "/unlock"
    };
    Ok(Redirect::to(&format!("{back}?done={}", urlencode(&done))).into_response())
}

/// The user (name and role) whose code the form carries, or what to tell
/// the person typing.
async fn check_code(
    state: &WebState,
    address: IpAddr,
    form: &UnlockForm,
) -> Result<Result<(String, Role), String>, WebError> {
    let name = form.name.trim().to_string();
    if name.is_empty() || form.code.trim().is_empty() {
        return Ok(Err(
            "Type your user name and your personal override code (or sign in first).".into(),
        ));
    }
    // Codes and passwords share one limiter: guesses of either count.
    let key = format!("override code of {name}");
    if let Err(wait) = state.login_limiter.attempt(address, &key) {
        tracing::warn!("override code refused for '{name}' from {address}: too many attempts");
        return Err(WebError::TooMany(wait));
    }
    let admin = state.admin.clone();
    let (who, code) = (name.clone(), form.code.clone());
    let hashing = state.hashing.acquire().await.ok();
    let user = tokio::task::spawn_blocking(move || admin.check_code(&who, &code)).await??;
    drop(hashing);
    match user {
        Some(user) => {
            state.login_limiter.succeeded(address, &key);
            Ok(Ok((user.name, user.role)))
        }
        None => {
            tracing::warn!("wrong override code for '{name}' from {address}");
            state.audit(
                &address.to_string(),
                "override code refused",
                format!("user name '{name}'"),
                None,
            );
            Ok(Err(
                "That name and override code do not match. Check them and try again.".into(),
            ))
        }
    }
}

/// The unlock form and the page's query read as a request would read them,
/// then checked as [`grant`] checks them, for the fuzz targets.
#[cfg(any(test, feature = "testkit"))]
pub(super) fn read_posted(body: &[u8], config: &Config, now: i64) {
    if let Ok(form) = serde_urlencoded::from_bytes::<UnlockForm>(body) {
        let _ = read_form(&form, config, now);
    }
    let _ = serde_urlencoded::from_bytes::<UnlockQuery>(body);
    let _ = serde_urlencoded::from_bytes::<listing::ListQuery>(body);
}
