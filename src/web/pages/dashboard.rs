//! Today: is filtering working (resolver, upstream, lists, block log), what
//! was looked up and blocked per profile, charts of the last 24 hours and 7
//! days, the top blocked categories and devices, and recent alerts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};

use crate::admin::users::Right;
use crate::clock::{age, now_unix_ms};
use crate::config::Config;
use crate::journal::JournalReader;
use crate::lists::acquire::health::ListHealth;
use crate::web::WebState;
use crate::web::auth::Signed;
use crate::web::chart::{self, Bar};
use crate::web::error::WebError;
use crate::web::view::{Layout, count, local_time, render, when};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// One line of the status panel: what, how it is, and a word for its colour.
pub struct StatusLine {
    pub what: &'static str,
    pub state: String,
    /// "ok", "warn" or "bad".
    pub level: &'static str,
}

pub struct ProfileToday {
    /// The id, for the log link.
    pub profile: String,
    /// What people call it.
    pub name: String,
    pub queries: String,
    pub blocked: String,
}

pub struct AlertLine {
    pub at: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    status: Vec<StatusLine>,
    queries_today: String,
    blocked_today: String,
    /// "12 blocked tries in 3 log entries", as the log page words it.
    counted_today: String,
    /// Today as the log's filter writes it (`YYYY-MM-DD`).
    today: String,
    profiles: Vec<ProfileToday>,
    chart_day: String,
    chart_week: String,
    top_categories: Vec<(String, String, String)>,
    top_devices: Vec<(String, String)>,
    alerts: Vec<AlertLine>,
    safeguarding: super::safeguarding_week::Panel,
    school_time: Option<super::school_time::Panel>,
}

pub async fn page(
    State(state): State<Arc<WebState>>,
    signed: Signed,
) -> Result<Response, WebError> {
    if !signed.may(Right::ReadLog) && signed.may(Right::UseOverride) {
        // A teacher's start page is the unlock form.
        return Ok(Redirect::to("/unlock").into_response());
    }
    signed.require(Right::ReadLog, "read the block log")?;
    let config = state.config().await;
    let now = now_unix_ms();
    let tz = config.log.time_zone;
    let today = tz.day_start(now);
    let for_page = config.clone();
    let admin = state.admin.clone();
    let role = signed.role;
    let (report, hourly_day, hourly_week, alerts, safeguarding) =
        tokio::task::spawn_blocking(move || {
            let report = crate::report::build(&for_page, today, now + 1)
                .map_err(|error| WebError::internal(format!("{error:#}")))?;
            let reader = JournalReader::open(&for_page.journal_path())?;
            let hour_now = now - now.rem_euclid(HOUR_MS);
            let hourly_day = reader.hourly(hour_now - 23 * HOUR_MS, now + 1)?;
            let week_start = tz.start_of_local_day(tz.local_day(now) - 6);
            let hourly_week = reader.hourly(week_start, now + 1)?;
            let alerts: Vec<_> = reader
                .audit(now - 7 * DAY_MS, now + 1, 500)?
                .into_iter()
                .filter(|row| row.action.starts_with("alert"))
                .take(8)
                .collect();
            // Unlocks that cannot be read are shown as none, as DNS then has none.
            let live = admin.live_overrides().unwrap_or_default();
            let safeguarding =
                super::safeguarding_week::build(&for_page, &reader, &live, role, now)?;
            Ok::<_, WebError>((report, hourly_day, hourly_week, alerts, safeguarding))
        })
        .await??;

    // The last 24 hours, one bar per hour, oldest first.
    let hour_now = now - now.rem_euclid(HOUR_MS);
    let mut per_hour: BTreeMap<i64, (i64, i64)> = (0..24)
        .map(|i| (hour_now - (23 - i) * HOUR_MS, (0, 0)))
        .collect();
    for row in &hourly_day {
        if let Some(slot) = per_hour.get_mut(&row.hour_unix_ms) {
            slot.0 += row.queries;
            slot.1 += row.blocked;
        }
    }
    let day_bars: Vec<Bar> = per_hour
        .into_iter()
        .map(|(hour, (queries, blocked))| Bar {
            label: local_time(tz, hour)[11..13].to_string(),
            queries,
            blocked,
        })
        .collect();
    // The last 7 days, one bar per local day.
    let this_day = tz.local_day(now);
    let mut per_day: BTreeMap<i64, (i64, i64)> =
        (0..7).map(|i| (this_day - 6 + i, (0, 0))).collect();
    for row in &hourly_week {
        if let Some(slot) = per_day.get_mut(&tz.local_day(row.hour_unix_ms)) {
            slot.0 += row.queries;
            slot.1 += row.blocked;
        }
    }
    let week_bars: Vec<Bar> = per_day
        .into_iter()
        .map(|(day, (queries, blocked))| Bar {
            label: day_label(day),
            queries,
            blocked,
        })
        .collect();

    let mut profiles: Vec<ProfileToday> = config
        .profiles
        .keys()
        .map(|name| {
            let (queries, blocked) = report
                .by_profile
                .iter()
                .find(|(profile, _, _)| profile == name)
                .map(|(_, q, b)| (*q, *b))
                .unwrap_or_default();
            ProfileToday {
                profile: name.clone(),
                name: config.profile_name(name),
                queries: count(queries),
                blocked: count(blocked),
            }
        })
        .collect();
    // Profiles seen in the log but since removed from the config.
    for (profile, queries, blocked) in &report.by_profile {
        if !config.profiles.contains_key(profile) {
            profiles.push(ProfileToday {
                profile: profile.clone(),
                name: config.profile_name(profile),
                queries: count(*queries),
                blocked: count(*blocked),
            });
        }
    }
    let status = status_lines(&state, &config, &report.lists);
    let top = |rows: &[(String, i64)]| -> Vec<(String, String)> {
        rows.iter()
            .take(5)
            .map(|(what, n)| (what.clone(), count(*n)))
            .collect()
    };
    // (id for the log link, words shown, count)
    let top_categories = report
        .by_category
        .iter()
        .take(5)
        .map(|(id, n)| {
            let label = crate::config::category_name(id);
            (id.clone(), label, count(*n))
        })
        .collect();
    Ok(render(&DashboardPage {
        layout: Layout::new(&config, "Today", "dashboard", &signed),
        status,
        queries_today: count(report.queries),
        blocked_today: count(report.blocked),
        counted_today: super::log::counted_words(report.blocked as u64, report.entries),
        today: local_time(tz, now)[..10].to_string(),
        profiles,
        chart_day: chart::bars("Lookups and blocks in the last 24 hours", &day_bars, 3),
        chart_week: chart::bars("Lookups and blocks in the last 7 days", &week_bars, 1),
        top_categories,
        top_devices: top(&report.by_device),
        safeguarding,
        school_time: super::school_time::build(&config, &state.pipeline.settings().policy.time),
        alerts: alerts
            .into_iter()
            .map(|row| AlertLine {
                at: when(tz, row.at_unix_ms),
                detail: row.detail,
            })
            .collect(),
    })?
    .into_response())
}

/// "15 January 2020, 09:30" in the school's time zone.
fn plain_date(zone: crate::clock::TimeZone, unix_ms: i64) -> String {
    use crate::clock::people::MONTH_NAMES as MONTHS;
    let local = unix_ms.saturating_add(i64::from(zone.offset_seconds(unix_ms)) * 1000);
    let (year, month, day) = crate::clock::civil_from_days(local.div_euclid(86_400_000));
    let minutes = local.rem_euclid(86_400_000) / 60_000;
    let month = MONTHS
        .get((month as usize).saturating_sub(1))
        .copied()
        .unwrap_or("?");
    format!(
        "{day} {month} {year}, {:02}:{:02}",
        minutes / 60,
        minutes % 60
    )
}

/// Whether each part of filtering is working, in words.
pub fn status_lines(state: &WebState, config: &Config, lists: &[ListHealth]) -> Vec<StatusLine> {
    let now = now_unix_ms();
    let ago = |ms: i64| age(u64::try_from((now - ms).max(0) / 1000).unwrap_or(0));
    let settings = state.pipeline.settings();
    let mut lines = vec![StatusLine {
        what: "Filtering",
        state: match age(state.started.elapsed().as_secs()).as_str() {
            "just now" => "answering; started just now".to_string(),
            running => format!(
                "answering; running for {}",
                running.trim_end_matches(" ago")
            ),
        },
        level: "ok",
    }];

    let health = settings.upstream.health();
    lines.push(match (health.last_answer_unix_ms, health.failures_in_a_row) {
        (_, 0) if health.last_answer_unix_ms.is_some() => StatusLine {
            what: "Internet look-ups",
            state: format!(
                "working; last answer {}",
                ago(health.last_answer_unix_ms.unwrap_or(now))
            ),
            level: "ok",
        },
        (None, 0) => StatusLine {
            what: "Internet look-ups",
            state: "no look-ups yet".into(),
            level: "ok",
        },
        (Some(last), failures) => StatusLine {
            what: "Internet look-ups",
            state: format!(
                "{failures} failed in a row; last answer {}. Check the internet connection and the upstream servers in the settings.",
                ago(last)
            ),
            level: if failures >= 5 { "bad" } else { "warn" },
        },
        (None, failures) => StatusLine {
            what: "Internet look-ups",
            state: format!(
                "not answering ({failures} failed). Check the internet connection and the upstream servers in the settings."
            ),
            level: "bad",
        },
    });

    let upstream_stats = &state.metrics.upstream;
    if upstream_stats.clock_untrusted.load(Relaxed) {
        let as_of = i64::try_from(upstream_stats.validating_as_of.load(Relaxed))
            .unwrap_or(0)
            .saturating_mul(1000);
        lines.push(StatusLine {
            what: "Clock",
            state: format!(
                "not set yet: the appliance has not reached a time server since it started, and its clock reads {}. \
                 Until it does, the security signatures on web addresses are checked as of {}, the last time it knew. \
                 If this stays, check that the appliance can reach the internet.",
                plain_date(config.log.time_zone, state.pipeline.clock().now_unix_ms()),
                plain_date(config.log.time_zone, as_of),
            ),
            level: "warn",
        });
    }

    if let Some(words) = state.cluster.in_words(now, config.log.time_zone) {
        let following_fails = state.cluster.follow_status().problem.is_some();
        lines.push(StatusLine {
            what: "HA pair",
            state: words.join(" "),
            level: if following_fails { "warn" } else { "ok" },
        });
    }

    let waiting = state.reloader.waiting_for_restart();
    if !waiting.is_empty() {
        let mut names: Vec<String> = waiting
            .iter()
            .map(|w| format!("{} ({})", crate::config::restart::plain_name(&w.key), w.key))
            .collect();
        names.dedup();
        lines.push(StatusLine {
            what: "Settings",
            state: format!(
                "Some changes need a restart to take effect: {}. Until then the old values are in force.",
                names.join(", ")
            ),
            level: "warn",
        });
    }
    if !state.staff_networks.named() {
        lines.push(StatusLine {
            what: "Staff pages",
            state: "reachable from every network: the technician can keep them to the staff network with [web] staff_networks".into(),
            level: "warn",
        });
    }

    let manifest = settings.policy.lists.manifest();
    let compiled_age = now.div_euclid(1000) - manifest.compiled_at as i64;
    let stale: Vec<&str> = lists
        .iter()
        .filter(|list| !list.current())
        .map(|list| list.name.as_str())
        .collect();
    lines.push(StatusLine {
        what: "Block lists",
        state: if stale.is_empty() {
            format!(
                "{} sites in {} lists; built {}",
                count(settings.policy.lists.domain_count() as i64),
                manifest.sources.len(),
                age(compiled_age.max(0) as u64)
            )
        } else {
            format!("out of date: {} (see Lists & settings)", stale.join(", "))
        },
        level: if stale.is_empty() { "ok" } else { "warn" },
    });

    // The root key and bank holidays: the copy in force stays, but a
    // renewal failing for weeks is the technician's to mend.
    let now_secs = u64::try_from(now.div_euclid(1000)).unwrap_or(0);
    for (label, why) in crate::updates::renewals_failing(config, now_secs) {
        lines.push(StatusLine {
            what: label,
            state: format!("could not be renewed: {why}; the copy in use stays"),
            level: "warn",
        });
    }

    // A trust's bundle refused (a bad signature, an older serial) keeps the
    // last good one: the technician and the trust need to hear of it.
    if let Some((words, needs_action)) = crate::updates::trust_bundle::status(config, now_secs) {
        lines.push(StatusLine {
            what: crate::updates::trust_bundle::LABEL,
            state: words,
            level: if needs_action { "bad" } else { "ok" },
        });
    }

    for gap in crate::lists::safeguards::gaps(config, lists) {
        lines.push(StatusLine {
            what: "Safeguards",
            state: gap.text,
            level: match gap.severity {
                crate::lists::safeguards::Severity::Bad => "bad",
                crate::lists::safeguards::Severity::Warn => "warn",
            },
        });
    }

    // A channel that keeps failing, in red, in the words the log and the
    // notice by the other channel use.
    for channel in state.reloader.alert_health() {
        if channel.failing() {
            lines.push(StatusLine {
                what: "Safeguarding alerts",
                state: channel.in_words(config.log.time_zone),
                level: "bad",
            });
        }
    }

    if let Some(problem) = &state.block_ca_problem {
        lines.push(StatusLine {
            what: "Block page over HTTPS",
            state: problem.clone(),
            level: "warn",
        });
    }

    let journal = state.journal.stats();
    lines.push(
        match (
            &journal.damage,
            &journal.last_error,
            journal.failing_since_unix_ms,
        ) {
            (Some(damage), _, _) => StatusLine {
                what: "Block log",
                state: damage.in_plain_words(config.log.time_zone),
                level: if damage.degraded() { "bad" } else { "warn" },
            },
            (None, error, since) => journal_line(&journal, config, error, since),
        },
    );
    lines.extend(super::central_log::line(
        config,
        &state.metrics.shipping.snapshot(),
    ));
    if let Some(kept) = state.admin.damaged_copies().last() {
        let at = crate::admin::copy::set_aside_at_ms(kept).unwrap_or(now);
        lines.push(StatusLine {
            what: "Page's records",
            state: crate::admin::copy::set_aside_words(kept, at, config.log.time_zone),
            level: "warn",
        });
    }
    lines
}

/// The block log's line while its file is sound: saving, or why not.
fn journal_line(
    journal: &crate::journal::JournalStats,
    config: &crate::config::Config,
    last_error: &Option<String>,
    failing_since: Option<i64>,
) -> StatusLine {
    match (last_error, failing_since) {
        (Some(error), Some(since)) => StatusLine {
            what: "Block log",
            state: format!(
                "NOT SAVING since {}: {error}",
                when(config.log.time_zone, since)
            ),
            level: "bad",
        },
        _ if journal.blocked_dropped > 0 => StatusLine {
            what: "Block log",
            state: format!(
                "saving; {} blocked look-ups could not be saved since the start",
                count(journal.blocked_dropped as i64)
            ),
            level: "warn",
        },
        _ => StatusLine {
            what: "Block log",
            state: format!(
                "saving; {} MB on disk",
                (journal.db_bytes / 1_000_000).max(1)
            ),
            level: "ok",
        },
    }
}

/// "Mon 24" for a local day (days since 1970-01-01).
fn day_label(days: i64) -> String {
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let (_, _, day) = crate::clock::civil_from_days(days);
    format!("{weekday} {day}")
}
