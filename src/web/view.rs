//! What every page shares: the layout (school name, menu for the user's
//! role, the form token), rendering, the embedded stylesheet and script,
//! and the formatting of times and counts in the school's time zone.

use askama::Template;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::admin::users::Right;
use crate::clock::TimeZone;
use crate::config::Config;

use super::auth::Signed;
use super::csrf::FormToken;
use super::error::WebError;

/// The frame of every page.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    pub school: String,
    pub user: Option<String>,
    pub role: String,
    pub csrf: String,
    pub can_read_log: bool,
    pub can_override: bool,
    pub can_manage: bool,
    /// Which menu entry is current.
    pub section: &'static str,
    /// On the secondary of an HA pair: the primary's page, where changes
    /// are made.
    pub follows: Option<String>,
}

impl Layout {
    pub fn new(config: &Config, title: &str, section: &'static str, signed: &Signed) -> Layout {
        Layout {
            title: title.to_string(),
            school: school_name(config),
            user: Some(signed.user.clone()),
            role: signed.role.as_str().to_string(),
            csrf: signed.csrf.clone(),
            can_read_log: signed.may(Right::ReadLog),
            can_override: signed.may(Right::UseOverride),
            can_manage: signed.may(Right::ManageRules),
            section,
            follows: follows(config),
        }
    }

    /// A page seen without signing in (sign-in, setup, unlock, block page).
    pub fn public(config: &Config, title: &str, token: &FormToken) -> Layout {
        Layout {
            title: title.to_string(),
            school: school_name(config),
            user: None,
            role: String::new(),
            csrf: token.0.clone(),
            can_read_log: false,
            can_override: false,
            can_manage: false,
            section: "",
            follows: follows(config),
        }
    }
}

/// The primary's page, when this box is its secondary.
fn follows(config: &Config) -> Option<String> {
    config
        .secondary_of()
        .and_then(|cluster| cluster.primary.as_ref())
        .map(|url| url.get_ref().trim_end_matches('/').to_string())
}

fn school_name(config: &Config) -> String {
    if config.alerts.school_name.trim().is_empty() {
        "Lollipop".into()
    } else {
        config.alerts.school_name.clone()
    }
}

pub fn render(page: &impl Template) -> Result<Html<String>, WebError> {
    Ok(Html(page.render()?))
}

const STYLE: &str = include_str!("../../web/static/style.css");
const SCRIPT: &str = include_str!("../../web/static/app.js");

/// `/static/{file}`: the stylesheet and the small script, from the binary.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "report.css" => (crate::report::PRINT_CSS, "text/css; charset=utf-8"),
        "assessment.css" => (crate::assessment::PRINT_CSS, "text/css; charset=utf-8"),
        _ => return WebError::NotFound.into_response(),
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// "Mon 7 Dec, 08:40" in the school's time zone: every time a person reads
/// on a page (ISO times only in CSV, the API and the "why" detail).
pub fn when(tz: TimeZone, unix_ms: i64) -> String {
    crate::clock::people::when(tz, unix_ms)
}

/// `YYYY-MM-DD HH:MM` in the school's time zone: for form values and file
/// names, which need a sortable date.
pub fn local_time(tz: TimeZone, unix_ms: i64) -> String {
    let local = unix_ms.div_euclid(1000) + i64::from(tz.offset_seconds(unix_ms));
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, m, d) = crate::clock::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// The local midnight starting `text` (`YYYY-MM-DD`), None when empty; a
/// bad date says which field was wrong and how to write it.
pub fn day_start(text: &str, tz: TimeZone, field: &str) -> Result<Option<i64>, WebError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    crate::clock::start_of_day(text, tz)
        .map(Some)
        .map_err(|_| {
            WebError::BadRequest(format!(
                "The '{field}' date '{}' is not a date. Write it as YYYY-MM-DD, for example 2026-11-30.",
                text.chars().take(60).collect::<String>()
            ))
        })
}

/// A count with thousands separators (12,345).
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}
