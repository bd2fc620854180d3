//! The trust dashboard's pages: sign-in and out, the dashboard (each
//! school's health, the week's blocked attempts by school and category,
//! alerts, and for the admin and the DSL who tried the sensitive
//! categories), and the weekly report for one school or the whole trust.

use std::collections::BTreeSet;

use askama::Template;
use axum::Form;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::admin::users::Right;
use crate::admin::{Role, SENSITIVE_CATEGORIES, random_token};
use crate::clock::{TimeZone, age};
use crate::web::auth::cookie;
use crate::web::csrf::constant_time_eq;

use super::store::{self, BoxHealth, CategoryCount, Event, Week};
use super::{FORM_COOKIE, Peer, SESSION_COOKIE, SET_COOKIE, Shared, cookie_header};

/// A box that has not reported for this long is shown in red.
const SILENT_AFTER_SECS: i64 = 15 * 60;

#[derive(Template)]
#[template(path = "trust_login.html")]
struct LoginPage {
    csrf: String,
    message: Option<String>,
}

#[derive(Template)]
#[template(path = "trust_dashboard.html")]
struct DashboardPage {
    user: String,
    role: &'static str,
    csrf: String,
    schools: Vec<SchoolLine>,
    blocked: Vec<CategoryCount>,
    alerts: Vec<EventLine>,
    sensitive: Vec<EventLine>,
    names_shown: bool,
}

#[derive(Template)]
#[template(path = "trust_report.html")]
struct ReportPage {
    user: String,
    role: &'static str,
    csrf: String,
    title: String,
    week: Week,
}

struct SchoolLine {
    school: String,
    seen: String,
    silent: bool,
    lists_stale: bool,
    alerts_configured: bool,
    version: String,
}

struct EventLine {
    school: String,
    at: String,
    category: String,
    who: String,
    name: String,
    /// How an alert went out, in words; empty for an attempt.
    delivery: String,
    delivered: bool,
}

fn page(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => trouble(format!("the page could not be drawn: {error}")),
    }
}

fn trouble(message: String) -> Response {
    tracing::error!("trust dashboard: {message}");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html(format!(
            "<!doctype html><title>Not available</title><p>The trust dashboard cannot show this just now: {}</p>",
            askama::filters::escape(&message, askama::filters::Html)
                .map(|escaped| escaped.to_string())
                .unwrap_or_default()
        )),
    )
        .into_response()
}

pub async fn login_form(headers: HeaderMap) -> Response {
    login_page(&headers, None, StatusCode::OK)
}

/// The sign-in form, with a form cookie whose value the form carries back.
fn login_page(headers: &HeaderMap, message: Option<String>, status: StatusCode) -> Response {
    let token = cookie(headers, FORM_COOKIE)
        .filter(|value| value.len() == 64)
        .map(str::to_string)
        .unwrap_or_else(random_token);
    let mut response = page(&LoginPage {
        csrf: token.clone(),
        message,
    });
    *response.status_mut() = status;
    response
        .headers_mut()
        .append(SET_COOKIE, cookie_header(FORM_COOKIE, &token));
    response
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LoginForm {
    csrf: String,
    name: String,
    password: String,
}

pub async fn login(
    state: Shared,
    peer: Peer,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, FORM_COOKIE).unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), form.csrf.as_bytes()) {
        return login_page(
            &headers,
            Some("The form had expired: please sign in again.".into()),
            StatusCode::FORBIDDEN,
        );
    }
    if let Err(wait) = state.limiter.attempt(peer.ip(), &form.name) {
        return login_page(
            &headers,
            Some(format!(
                "Too many attempts: wait {} seconds and try again.",
                wait.as_secs()
            )),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let users = state.users.clone();
    let (name, password) = (form.name.clone(), form.password.clone());
    let found = tokio::task::spawn_blocking(move || users.check_login(&name, &password)).await;
    let user = match found {
        Ok(Ok(Some(user))) => user,
        Ok(Ok(None)) => {
            return login_page(
                &headers,
                Some("That user name and password do not match.".into()),
                StatusCode::UNAUTHORIZED,
            );
        }
        Ok(Err(error)) => return trouble(error.to_string()),
        Err(error) => return trouble(error.to_string()),
    };
    if user.role == Role::Teacher {
        return login_page(
            &headers,
            Some("Teachers' accounts do not open the trust dashboard: it is for admins, safeguarding leads and viewers.".into()),
            StatusCode::FORBIDDEN,
        );
    }
    state.limiter.succeeded(peer.ip(), &form.name);
    let session = state.sessions.start(&user.name, user.role);
    let mut response = Redirect::to("/").into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, cookie_header(SESSION_COOKIE, &session));
    response
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LogoutForm {
    csrf: String,
}

pub async fn logout(state: Shared, headers: HeaderMap, Form(form): Form<LogoutForm>) -> Response {
    if let Some(session) = state.session(&headers)
        && constant_time_eq(session.csrf.as_bytes(), form.csrf.as_bytes())
        && let Some(value) = cookie(&headers, SESSION_COOKIE)
    {
        state.sessions.end(value);
    }
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, cookie_header(SESSION_COOKIE, ""));
    response
}

fn when(at: i64) -> String {
    crate::clock::people::when(TimeZone::EuropeLondon, at.saturating_mul(1000))
}

fn lines(events: Vec<Event>, names_shown: bool) -> Vec<EventLine> {
    events
        .into_iter()
        .map(|event| {
            let hidden = !names_shown && SENSITIVE_CATEGORIES.contains(&event.category.as_str());
            let who = if hidden {
                "shown to the safeguarding lead".to_string()
            } else if event.owner.is_empty() {
                event.device
            } else {
                format!("{} ({})", event.device, event.owner)
            };
            let delivery = match (event.channel.is_empty(), event.delivered) {
                (true, _) => String::new(),
                (false, true) => format!("sent by {}", event.channel),
                (false, false) => format!(
                    "not delivered by {}: check the school's alert settings",
                    event.channel
                ),
            };
            EventLine {
                delivery,
                delivered: event.delivered,
                school: event.school,
                at: when(event.at),
                category: crate::config::category_name(&event.category),
                who,
                name: event.name,
            }
        })
        .collect()
}

pub async fn dashboard(state: Shared, headers: HeaderMap) -> Response {
    let Some(session) = state.session(&headers) else {
        return Redirect::to("/login").into_response();
    };
    let names_shown = session.role.may(Right::SeeSensitiveNames);
    let client = match store::connect(&state.database).await {
        Ok(client) => client,
        Err(error) => return trouble(error),
    };
    let read = async {
        let boxes = store::boxes(&client).await?;
        let blocked = store::blocked_this_week(&client).await?;
        let alerts = store::alerts_this_week(&client).await?;
        let sensitive = if names_shown {
            store::sensitive_this_week(&client).await?
        } else {
            Vec::new()
        };
        Ok::<_, String>((boxes, blocked, alerts, sensitive))
    };
    let (boxes, blocked, alerts, sensitive) = match read.await {
        Ok(found) => found,
        Err(error) => return trouble(error),
    };
    let schools = boxes
        .into_iter()
        .map(|found: BoxHealth| SchoolLine {
            seen: age(u64::try_from(found.seen_ago).unwrap_or(0)),
            silent: found.seen_ago > SILENT_AFTER_SECS,
            school: found.school,
            lists_stale: found.lists_stale,
            alerts_configured: found.alerts_configured,
            version: found.version,
        })
        .collect();
    // Categories as the schools' own pages name them.
    let blocked = blocked
        .into_iter()
        .map(|row| CategoryCount {
            category: crate::config::category_name(&row.category),
            ..row
        })
        .collect();
    page(&DashboardPage {
        user: session.user,
        role: session.role.as_str(),
        csrf: session.csrf,
        schools,
        blocked,
        alerts: lines(alerts, names_shown),
        sensitive: lines(sensitive, names_shown),
        names_shown,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ReportQuery {
    school: Option<String>,
}

pub async fn report(
    state: Shared,
    headers: HeaderMap,
    Query(query): Query<ReportQuery>,
) -> Response {
    let Some(session) = state.session(&headers) else {
        return Redirect::to("/login").into_response();
    };
    let client = match store::connect(&state.database).await {
        Ok(client) => client,
        Err(error) => return trouble(error),
    };
    // By the school's name, as the boxes' heartbeats give it: a school
    // with two boxes (a pair) has one report.
    let schools: BTreeSet<String> = match store::boxes(&client).await {
        Ok(boxes) => boxes.into_iter().map(|b| b.school).collect(),
        Err(error) => return trouble(error),
    };
    let title = match &query.school {
        Some(school) if schools.contains(school) => format!("{school}: the last seven days"),
        Some(_) => return (StatusCode::NOT_FOUND, "no such school").into_response(),
        None => "The whole trust: the last seven days".to_string(),
    };
    match store::week(&client, query.school.as_deref()).await {
        Ok(mut week) => {
            // As the schools' own reports name them.
            for (category, _) in &mut week.by_category {
                *category = crate::config::category_name(category);
            }
            for (profile, _) in &mut week.by_profile {
                *profile = crate::config::default_profile_name(profile);
            }
            page(&ReportPage {
                user: session.user,
                role: session.role.as_str(),
                csrf: session.csrf,
                title,
                week,
            })
        }
        Err(error) => trouble(error),
    }
}
