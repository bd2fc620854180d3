//! The weekly report, the annual filtering review record the DfE standards
//! ask schools to keep, and the audit trail of every change and sign-in.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::admin::ReviewRow;
use crate::admin::users::Right;
use crate::clock::{TimeZone, now_unix_ms};
use crate::journal::{AuditRow, JournalReader};
use crate::report::Report;
use crate::web::WebState;
use crate::web::auth::Signed;
use crate::web::error::WebError;
use crate::web::view::{Layout, count, day_start, local_time, render, when};

#[derive(Debug, Default, Deserialize)]
pub struct WeekQuery {
    /// The first day of the week to show, `YYYY-MM-DD`.
    #[serde(default)]
    from: String,
    /// Any value: the printable page on its own, as emailed.
    #[serde(default)]
    print: Option<String>,
}

#[derive(Template)]
#[template(path = "reports.html")]
struct WeeklyPage {
    layout: Layout,
    period: String,
    figures: WeekFigures,
    this_week: String,
    earlier: String,
    later: Option<String>,
}

/// The report's tables as text, for the page.
struct WeekFigures {
    queries: String,
    blocked: String,
    by_category: Vec<(String, String)>,
    by_profile: Vec<(String, String, String)>,
    by_device: Vec<(String, String)>,
    top_names: Vec<(String, String)>,
    alerts: Vec<(String, String)>,
    /// The last weeks as an SVG, drawn on the server, and how many.
    trend: Option<String>,
    trend_weeks: usize,
    /// "12 blocked tries in 3 log entries".
    counted: String,
    lists: Vec<(String, String, String, String)>,
}

pub async fn weekly(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Query(query): Query<WeekQuery>,
) -> Result<Response, WebError> {
    signed.require(Right::ReadLog, "read the reports")?;
    let config = state.config().await;
    let tz = config.log.time_zone;
    let now = now_unix_ms();
    let Week {
        from,
        to,
        earlier,
        later,
    } = week(&query.from, tz, now)?;
    let for_report = config.clone();
    let report = tokio::task::spawn_blocking(move || crate::report::build(&for_report, from, to))
        .await?
        .map_err(|error| WebError::internal(format!("{error:#}")))?;
    if query.print.is_some() {
        return Ok(Html(report.to_html()).into_response());
    }
    let day = |ms: i64| local_day_text(tz, ms);
    Ok(render(&WeeklyPage {
        layout: Layout::new(&config, "Weekly report", "reports", &signed),
        period: report.period(),
        this_week: day(from),
        earlier: day(earlier),
        later: later.then(|| day(to)),
        figures: WeekFigures::new(&report, tz),
    })?
    .into_response())
}

impl WeekFigures {
    fn new(report: &Report, tz: crate::clock::TimeZone) -> WeekFigures {
        let pairs = |rows: &[(String, i64)]| -> Vec<(String, String)> {
            rows.iter().map(|(a, n)| (a.clone(), count(*n))).collect()
        };
        WeekFigures {
            queries: count(report.queries),
            blocked: count(report.blocked),
            by_category: report
                .by_category
                .iter()
                .map(|(id, n)| (report.category_name(id), count(*n)))
                .collect(),
            by_profile: report
                .by_profile
                .iter()
                .map(|(p, q, b)| (report.profile_name(p), count(*q), count(*b)))
                .collect(),
            trend: report.trend_svg(),
            trend_weeks: report.trend.len(),
            counted: super::log::counted_words(report.blocked as u64, report.entries),
            by_device: pairs(&report.by_device),
            top_names: pairs(&report.top_names),
            alerts: report
                .alerts
                .iter()
                .map(|a| (when(tz, a.at_unix_ms), a.detail.clone()))
                .collect(),
            lists: report
                .lists
                .iter()
                .map(|l| {
                    (
                        report.category_name(&l.name),
                        report.category_name(&l.category),
                        count(l.entries() as i64),
                        crate::report::list_state(l),
                    )
                })
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "review.html")]
struct ReviewPage {
    layout: Layout,
    /// Each review with when it was recorded, in words.
    reviews: Vec<(ReviewRow, String)>,
    done: Option<String>,
    today: String,
    last_review_warning: Option<String>,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

pub async fn reviews(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Query(query): Query<DoneQuery>,
) -> Result<Response, WebError> {
    signed.require(Right::ReadLog, "read the filtering reviews")?;
    let config = state.config().await;
    let tz = config.log.time_zone;
    let admin = state.admin.clone();
    let reviews = tokio::task::spawn_blocking(move || admin.reviews()).await??;
    let today = local_time(tz, now_unix_ms())[..10].to_string();
    let last_review_warning = match reviews.first() {
        None => Some("No filtering review is recorded yet. The DfE standards ask for one at least once a year.".to_string()),
        Some(latest) if year_ago(&today) > latest.held_on => Some(format!(
            "The last review was on {}, more than a year ago. The DfE standards ask for one at least once a year.",
            latest.held_on
        )),
        Some(_) => None,
    };
    Ok(render(&ReviewPage {
        layout: Layout::new(&config, "Annual filtering review", "reports", &signed),
        reviews: reviews
            .into_iter()
            .map(|r| {
                let at = when(tz, r.recorded_at);
                (r, at)
            })
            .collect(),
        done: query.done,
        today,
        last_review_warning,
    })?
    .into_response())
}

/// The same date a year earlier, as text that sorts with `YYYY-MM-DD`.
fn year_ago(today: &str) -> String {
    match today.split_once('-') {
        Some((year, rest)) => match year.parse::<i32>() {
            Ok(year) => format!("{:04}-{rest}", year - 1),
            Err(_) => today.to_string(),
        },
        None => today.to_string(),
    }
}

/// The week a report shows, and its neighbours for the page's links.
struct Week {
    from: i64,
    to: i64,
    /// The start of the week before (Monday to Monday).
    earlier: i64,
    /// Whether a later week has begun yet.
    later: bool,
}

/// Seven local days from the date typed, or the last full week (Monday to
/// Sunday) when none was: on a Monday morning the head reads the week just
/// ended, not the one that has barely begun.
fn week(from: &str, tz: TimeZone, now: i64) -> Result<Week, WebError> {
    // Weeks start on Monday; 1970-01-01 was a Thursday.
    let monday = |day: i64| day - (day + 3).rem_euclid(7);
    let today = tz.local_day(now);
    let first_day = match day_start(from, tz, "from")? {
        Some(start) => tz.local_day(start),
        None => monday(today) - 7,
    };
    Ok(Week {
        from: tz.start_of_local_day(first_day),
        to: tz.start_of_local_day(first_day + 7),
        earlier: tz.start_of_local_day(monday(first_day) - 7),
        later: first_day + 7 <= today,
    })
}

/// `YYYY-MM-DD` of the local day holding `ms`.
fn local_day_text(tz: TimeZone, ms: i64) -> String {
    local_time(tz, ms)[..10].to_string()
}

#[derive(Deserialize)]
pub struct ReviewForm {
    #[serde(default)]
    held_on: String,
    #[serde(default)]
    participants: String,
    #[serde(default)]
    checked: String,
    #[serde(default)]
    decisions: String,
}

pub async fn add_review(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Form(form): Form<ReviewForm>,
) -> Result<Response, WebError> {
    signed.require(Right::ReadLog, "record a filtering review")?;
    let admin = state.admin.clone();
    let by = signed.user.clone();
    let review = tokio::task::spawn_blocking(move || {
        admin.add_review(
            &form.held_on,
            &form.participants,
            &form.checked,
            &form.decisions,
            &by,
        )
    })
    .await??;
    // The record keeps the self-assessment as it stood when it was made.
    // The review is recorded either way: a copy that cannot be written is
    // said on the page, not turned into an error.
    let config = state.config().await;
    let kept = super::assessment::keep_copy(&state, &config, review.id).await;
    if let Err(error) = &kept {
        tracing::error!("review {}: {error:?}", review.id);
    }
    state.audit(
        &signed.user,
        "review recorded",
        format!(
            "filtering review held on {} with {}",
            review.held_on, review.participants
        ),
        Some(review.decisions.clone()),
    );
    Ok(Redirect::to(if kept.is_ok() {
        "/review?done=The+review+is+recorded."
    } else {
        "/review?done=The+review+is+recorded%2C+but+the+self-assessment+copy+could+not+be+saved+(see+the+appliance%27s+log)."
    })
    .into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    from: String,
    to: String,
    rows: Vec<(String, AuditRow)>,
    limit: usize,
}

const AUDIT_ROWS: u32 = 500;

pub async fn audit(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Query(query): Query<AuditQuery>,
) -> Result<Response, WebError> {
    signed.require(Right::ReadLog, "read the audit trail")?;
    let config = state.config().await;
    let tz = config.log.time_zone;
    let from = day_start(&query.from, tz, "from")?.unwrap_or(0);
    let to = day_start(&query.to, tz, "to")?.map_or(i64::MAX, |start| tz.day_end(start));
    let path = config.journal_path();
    let rows = tokio::task::spawn_blocking(move || {
        JournalReader::open(&path)?.audit(from, to, AUDIT_ROWS)
    })
    .await??;
    Ok(render(&AuditPage {
        layout: Layout::new(&config, "Audit trail", "reports", &signed),
        from: query.from,
        to: query.to,
        limit: AUDIT_ROWS as usize,
        rows: rows
            .into_iter()
            .map(|row| (when(tz, row.at_unix_ms), row))
            .collect(),
    })?
    .into_response())
}

/// The report queries and the review form read as a request would read
/// them, then checked as the handlers and the store check them, for the
/// fuzz targets.
#[cfg(any(test, feature = "testkit"))]
pub(super) fn read_posted(body: &[u8], tz: TimeZone, now: i64) {
    if let Ok(query) = serde_urlencoded::from_bytes::<WeekQuery>(body)
        && let Ok(week) = week(&query.from, tz, now)
    {
        for at in [week.from, week.to - 1, week.earlier, week.to] {
            let _ = local_day_text(tz, at);
        }
    }
    if let Ok(form) = serde_urlencoded::from_bytes::<ReviewForm>(body) {
        let _ = crate::admin::reviews::check_date(&form.held_on);
        for text in [&form.participants, &form.checked, &form.decisions] {
            let _ = crate::admin::reviews::check_text("a field", text);
        }
    }
    if let Ok(query) = serde_urlencoded::from_bytes::<AuditQuery>(body) {
        let _ = day_start(&query.from, tz, "from");
        if let Ok(Some(start)) = day_start(&query.to, tz, "to") {
            let _ = tz.day_end(start);
        }
    }
}

#[cfg(test)]
mod week_tests {
    use super::*;

    /// Local midnight of a civil date, in UTC.
    fn day_ms(year: i64, month: u32, day: u32) -> i64 {
        crate::clock::days_from_civil(year, month, day) * 86_400_000
    }

    #[test]
    fn the_report_opens_on_the_last_full_week_even_on_a_monday() {
        let tz = TimeZone::Utc;
        // Monday 7 December 2026, 08:40: the week of 30 Nov to 6 Dec.
        let monday_morning = day_ms(2026, 12, 7) + 8 * 3_600_000 + 40 * 60_000;
        let shown = week("", tz, monday_morning).expect("week");
        assert_eq!(shown.from, day_ms(2026, 11, 30));
        assert_eq!(shown.to, day_ms(2026, 12, 7));
        assert!(shown.later, "this week can be opened from it");
        // Sunday evening: still the week before the one ending tonight.
        let sunday = day_ms(2026, 12, 13) + 20 * 3_600_000;
        assert_eq!(
            week("", tz, sunday).expect("week").from,
            day_ms(2026, 11, 30)
        );
        // A date typed still wins.
        let chosen = week("2026-12-07", tz, monday_morning).expect("week");
        assert_eq!(chosen.from, day_ms(2026, 12, 7));
        assert!(!chosen.later);
    }
}
