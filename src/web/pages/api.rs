//! The JSON API for scripts, behind the same sign-in as the pages (an API
//! token as `Authorization: Bearer …`, or a session): the resolver's status,
//! recent blocked lookups with filters, the decision for a name and why, and
//! the overrides in force. Every answer is JSON, errors included.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::admin::users::Right;
use crate::clock::now_unix_ms;
use crate::dns::resolve::check::CheckFor;
use crate::journal::{JournalReader, LogFilter};
use crate::web::WebState;
use crate::web::auth::Signed;
use crate::web::error::WebError;
use crate::web::pages::check::EVERY_PROFILE;

/// The most rows one `/api/v1/blocked` call returns.
pub const MAX_ROWS: u32 = 1000;
const DEFAULT_ROWS: u32 = 100;

/// An error as JSON: `{"error": "what was wrong and what to do"}`.
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl From<WebError> for ApiError {
    fn from(error: WebError) -> ApiError {
        let (status, message) = match error {
            WebError::SignIn { .. } | WebError::Unauthorised => (
                StatusCode::UNAUTHORIZED,
                "not signed in: send an API token as 'Authorization: Bearer <token>' (an admin makes one under Users)".to_string(),
            ),
            WebError::Forbidden(what) => (
                StatusCode::FORBIDDEN,
                format!("this token's role cannot {what}"),
            ),
            WebError::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
            WebError::NotAllowed(message) => (StatusCode::FORBIDDEN, message),
            WebError::NotFound => (StatusCode::NOT_FOUND, "no such API call".into()),
            WebError::StaffNetworkOnly => (
                StatusCode::FORBIDDEN,
                "the API is only available on the staff network".into(),
            ),
            WebError::TooMany(wait) => (
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many attempts: wait {} s", wait.as_secs()),
            ),
            WebError::StaleForm => (StatusCode::FORBIDDEN, "the form token was wrong".into()),
            WebError::FollowsPrimary(primary) => (
                StatusCode::FORBIDDEN,
                format!("this box is the secondary of a pair: make changes on the primary, {primary}"),
            ),
            WebError::Internal(detail) => {
                tracing::error!("API: {detail}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Lollipop could not answer just now; the details are in its log".into(),
                )
            }
        };
        ApiError { status, message }
    }
}

fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::from(WebError::internal(error))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"lollipop\""),
            );
        }
        response
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

/// The query's parameters, refusing any not in `known` (a typo in a
/// script should fail loudly, not widen the search).
fn params(query: Option<String>, known: &[&str]) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if !known.contains(&key.as_ref()) {
            return Err(ApiError::bad(format!(
                "unknown parameter '{key}': use {}",
                known.join(", ")
            )));
        }
        let value = value.trim().to_string();
        if !value.is_empty() {
            out.insert(key.into_owned(), value);
        }
    }
    Ok(out)
}

fn allowed(
    signed: Result<Signed, WebError>,
    rights: &[Right],
    what: &'static str,
) -> Result<Signed, ApiError> {
    let signed = signed?;
    if rights.iter().any(|right| signed.may(*right)) {
        Ok(signed)
    } else {
        Err(WebError::Forbidden(what).into())
    }
}

pub async fn status(
    State(state): State<Arc<WebState>>,
    signed: Result<Signed, WebError>,
) -> ApiResult {
    allowed(signed, &[Right::ReadLog], "read the status")?;
    let config = state.config().await;
    let settings = state.pipeline.settings();
    let now = now_unix_ms();
    let manifest = settings.policy.lists.manifest();
    let now_secs = u64::try_from(now / 1000).unwrap_or(0);
    let stats = state.journal.stats();
    let since = config.log.time_zone.day_start(now);
    let path = config.journal_path();
    let hourly = tokio::task::spawn_blocking(move || {
        JournalReader::open(&path).and_then(|reader| reader.hourly(since, now + 3_600_000))
    })
    .await
    .map_err(internal)?;
    let today = match hourly {
        Ok(rows) => {
            let mut by_profile: BTreeMap<String, (i64, i64)> = BTreeMap::new();
            for row in &rows {
                let entry = by_profile.entry(row.profile.clone()).or_default();
                entry.0 += row.queries;
                entry.1 += row.blocked;
            }
            json!({
                "since_unix_ms": since,
                "queries": by_profile.values().map(|v| v.0).sum::<i64>(),
                "blocked": by_profile.values().map(|v| v.1).sum::<i64>(),
                "by_profile": by_profile.iter().map(|(profile, (queries, blocked))| {
                    (profile.clone(), json!({ "queries": queries, "blocked": blocked }))
                }).collect::<serde_json::Map<_, _>>(),
            })
        }
        Err(error) => json!({ "error": format!("the block log cannot be read: {error}") }),
    };
    let admin = state.admin.clone();
    let live = tokio::task::spawn_blocking(move || admin.live_overrides())
        .await
        .map_err(internal)?
        .map_err(internal)?;
    Ok(Json(json!({
        "resolver": {
            "up": true,
            "uptime_seconds": state.started.elapsed().as_secs(),
            "listeners": settings.listeners,
        },
        "lists": {
            "compiled_at_unix": manifest.compiled_at,
            "age_seconds": now_secs.saturating_sub(manifest.compiled_at),
            "domains": manifest.domain_count,
            "lists": manifest.sources.len(),
        },
        "log": {
            "healthy": stats.failing_since_unix_ms.is_none(),
            "stats": stats,
        },
        "today": today,
        "overrides_in_force": live.len(),
        "cluster": cluster_status(&state, now),
    })))
}

/// `YYYY-MM-DD` (the school's local day) or Unix milliseconds; a day as
/// `to` means up to the end of that day.
fn instant(key: &str, text: &str, tz: crate::clock::TimeZone, end: bool) -> Result<i64, ApiError> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| ApiError::bad(format!("{key}: '{text}' is too large for a time")));
    }
    let start = crate::clock::start_of_day(text, tz)
        .map_err(|error| ApiError::bad(format!("{key}: {error}, or Unix milliseconds")))?;
    Ok(if end { tz.day_end(start) } else { start })
}

pub async fn blocked(
    State(state): State<Arc<WebState>>,
    signed: Result<Signed, WebError>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    allowed(signed, &[Right::ReadLog], "read the blocked-lookup log")?;
    let known = [
        "from", "to", "device", "profile", "category", "name", "limit",
    ];
    let params = params(query, &known)?;
    let config = state.config().await;
    let tz = config.log.time_zone;
    let from = params
        .get("from")
        .map(|t| instant("from", t, tz, false))
        .transpose()?;
    let to = params
        .get("to")
        .map(|t| instant("to", t, tz, true))
        .transpose()?;
    if let (Some(from), Some(to)) = (from, to)
        && to <= from
    {
        return Err(ApiError::bad("to must be after from"));
    }
    if let Some(profile) = params.get("profile")
        && !config.profiles.contains_key(profile)
    {
        return Err(ApiError::bad(format!(
            "profile: there is no profile '{profile}' (the profiles are {})",
            config
                .profiles
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let limit = match params.get("limit") {
        None => DEFAULT_ROWS,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_ROWS).contains(n))
            .ok_or_else(|| {
                ApiError::bad(format!(
                    "limit: '{text}' is not a number from 1 to {MAX_ROWS}"
                ))
            })?,
    };
    let filter = LogFilter {
        from_unix_ms: from,
        to_unix_ms: to,
        device: params.get("device").cloned(),
        profile: params.get("profile").cloned(),
        client_ip: None,
        category: params.get("category").cloned(),
        name_contains: params.get("name").cloned(),
        limit: Some(limit),
        offset: 0,
        newest_first: true,
    };
    let path = config.journal_path();
    let (total, rows) = tokio::task::spawn_blocking(move || {
        let reader = JournalReader::open(&path)?;
        Ok::<_, crate::journal::JournalError>((
            reader.count_blocked(&filter)?,
            reader.query_blocked(&filter)?,
        ))
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    Ok(Json(json!({ "total": total, "rows": rows })))
}

pub async fn check(
    State(state): State<Arc<WebState>>,
    signed: Result<Signed, WebError>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    allowed(signed, &[Right::CheckName], "check names")?;
    let params = params(query, &["name", "profile", "client", "listener"])?;
    let Some(typed) = params.get("name") else {
        return Err(ApiError::bad(
            "name: give the name to check, e.g. name=www.example.org",
        ));
    };
    let who = match (params.get("profile"), params.get("client")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad("give profile= or client=, not both"));
        }
        (Some(name), None) => CheckFor::Profile(name.clone()),
        (None, Some(text)) => CheckFor::Device {
            address: text
                .parse::<IpAddr>()
                .map_err(|_| ApiError::bad(format!("client: '{text}' is not an IP address")))?,
            listener: match params.get("listener") {
                Some(listener) => Some(
                    state
                        .pipeline
                        .listener_index(listener)
                        .map_err(|message| ApiError::bad(format!("listener: {message}")))?,
                ),
                None => None,
            },
        },
        (None, None) => {
            return Err(ApiError::bad(
                "give profile=<name> or client=<ip address> to say whose decision to check",
            ));
        }
    };
    // The same stages a lookup goes through, on the overrides in force.
    if matches!(&who, CheckFor::Profile(profile) if profile == EVERY_PROFILE) {
        let checks = state
            .pipeline
            .check_every_profile(typed)
            .map_err(ApiError::bad)?;
        let rows: Vec<Value> = checks.iter().map(check_json).collect();
        return Ok(Json(json!({ "name": typed.trim(), "profiles": rows })));
    }
    let check = state.pipeline.check(typed, &who).map_err(ApiError::bad)?;
    let mut body = check_json(&check);
    body["client"] = json!(params.get("client"));
    Ok(Json(body))
}

/// One check as the API gives it.
fn check_json(check: &crate::dns::resolve::check::NameCheck) -> Value {
    let locked = check.explanation.as_ref().is_some_and(|e| e.locked);
    let decision = match (check.special.is_some(), check.blocked, locked) {
        (true, _, _) => "answered by Lollipop",
        (false, true, true) => "blocked (locked)",
        (false, true, false) => "blocked",
        (false, false, _) if check.override_id.is_some() => "unlocked by a staff override",
        (false, false, _) => "allowed",
    };
    json!({
        "name": check.domain,
        "profile": check.profile,
        "listener": check.listener,
        "decision": decision,
        "special": check.special,
        "why": check.explanation,
        "released_by_override": check.override_id,
        "safe_search": check.rewrite,
    })
}

pub async fn overrides(
    State(state): State<Arc<WebState>>,
    signed: Result<Signed, WebError>,
) -> ApiResult {
    allowed(
        signed,
        &[Right::ReadLog, Right::UseOverride],
        "see the overrides",
    )?;
    let config = state.config().await;
    let admin = state.admin.clone();
    let live = tokio::task::spawn_blocking(move || admin.live_overrides())
        .await
        .map_err(internal)?
        .map_err(internal)?;
    let rows: Vec<Value> = live
        .iter()
        .map(|row| {
            json!({
                "id": row.id,
                "target": row.target,
                "scope": row.scope,
                "for": super::unlock::choices::describe_scope(&row.scope, &config),
                "reason": row.reason,
                "granted_by": row.granted_by,
                "starts_at_unix_ms": row.starts_at,
                "expires_at_unix_ms": row.expires_at,
            })
        })
        .collect();
    Ok(Json(json!({ "overrides": rows })))
}

/// The HA pair as the status API shows it (null when the box is alone).
fn cluster_status(state: &WebState, now: i64) -> serde_json::Value {
    let cluster = &state.cluster;
    match cluster.role {
        None => serde_json::Value::Null,
        Some(crate::config::cluster::ClusterRole::Primary) => json!({
            "role": "primary",
            "secondaries": cluster.pulls(),
        }),
        Some(crate::config::cluster::ClusterRole::Secondary) => json!({
            "role": "secondary",
            "primary": cluster.primary_url,
            "seconds_behind": cluster.seconds_behind(now),
            "follow": cluster.follow_status(),
        }),
    }
}
