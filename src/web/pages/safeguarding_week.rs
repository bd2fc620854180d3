//! The dashboard's safeguarding panel, which leads the page: this week's
//! attempts at the categories that alert the safeguarding lead (with the
//! device, its room and owner where known), the staff unlocks in force with
//! who granted them and why, and the share of lookups blocked against last
//! week. Device and owner names beside self-harm and extremism attempts are
//! shown to the admin and the DSL only; other viewers see counts.

use crate::admin::users::Right;
use crate::admin::{Role, SENSITIVE_CATEGORIES};
use crate::config::Config;
use crate::journal::{JournalReader, LogFilter};
use crate::policy::rules::OverrideRow;
use crate::web::view::when;

/// Attempts shown per category.
const SHOWN: u32 = 5;
const DAY_MS: i64 = 86_400_000;

pub struct Attempt {
    pub at: String,
    pub category: String,
    /// The device, with room and owner where known; None when hidden.
    pub who: Option<String>,
    pub site: Option<String>,
}

pub struct UnlockLine {
    pub what: String,
    pub scope: String,
    pub until: String,
    pub by: String,
    pub reason: String,
}

pub struct Panel {
    pub attempts: Vec<Attempt>,
    /// Attempts hidden from this viewer, by category: (category, count).
    pub hidden: Vec<(String, u64)>,
    pub unlocks: Vec<UnlockLine>,
    /// "3.1% of lookups blocked this week, 2.4% last week".
    pub trend: String,
}

fn label(category: &str) -> String {
    crate::config::category_name(category)
}

/// The panel for a viewer with `role`, over this week (from Monday) and the
/// week before, at `now`.
pub fn build(
    config: &Config,
    reader: &JournalReader,
    live: &[OverrideRow],
    role: Role,
    now: i64,
) -> Result<Panel, crate::journal::JournalError> {
    let tz = config.log.time_zone;
    let today = tz.local_day(now);
    let monday = today - (today + 3).rem_euclid(7);
    let week_start = tz.start_of_local_day(monday);
    let last_week_start = week_start - 7 * DAY_MS;
    let sees_names = role.may(Right::SeeSensitiveNames);

    let mut attempts = Vec::new();
    let mut hidden = Vec::new();
    for category in config.alerting_categories() {
        let filter = LogFilter {
            from_unix_ms: Some(week_start),
            to_unix_ms: Some(now + 1),
            category: Some(category.clone()),
            newest_first: true,
            ..LogFilter::default()
        };
        if SENSITIVE_CATEGORIES.contains(&category.as_str()) && !sees_names {
            let count = reader.count_blocked(&filter)?;
            if count > 0 {
                hidden.push((label(&category), count));
            }
            continue;
        }
        let rows = reader.query_blocked(&LogFilter {
            limit: Some(SHOWN),
            ..filter
        })?;
        for row in rows {
            let device = row
                .device_name
                .clone()
                .unwrap_or_else(|| row.client_ip.clone());
            let mut who = device;
            // The device list's room says more than the network it was on.
            let room = row
                .room
                .clone()
                .or_else(|| config.place_name(&row.client_ip, row.listener.as_deref()));
            if let Some(room) = room {
                who.push_str(&format!(", {room}"));
            }
            if let Some(owner) = &row.owner {
                who.push_str(&format!(" ({owner})"));
            }
            attempts.push(Attempt {
                at: when(tz, row.at_unix_ms),
                category: label(&category),
                who: Some(who),
                site: Some(row.name.clone()),
            });
        }
    }

    let unlocks = live
        .iter()
        .map(|row| UnlockLine {
            what: super::unlock::choices::describe_target(&row.target),
            scope: super::unlock::choices::describe_scope(&row.scope, config),
            until: when(tz, row.expires_at),
            by: row.granted_by.clone(),
            reason: row.reason.clone(),
        })
        .collect();

    let share = |from: i64, to: i64| -> Result<Option<f64>, crate::journal::JournalError> {
        let rows = reader.hourly(from, to)?;
        let (queries, blocked) = rows.iter().fold((0i64, 0i64), |(q, b), row| {
            (q + row.queries, b + row.blocked)
        });
        Ok((queries > 0).then(|| 100.0 * blocked as f64 / queries as f64))
    };
    let trend = match (
        share(week_start, now + 1)?,
        share(last_week_start, week_start)?,
    ) {
        (Some(this), Some(last)) => format!(
            "{this:.1}% of lookups blocked this week, {last:.1}% last week ({})",
            if this > last + 0.05 {
                "more"
            } else if this + 0.05 < last {
                "fewer"
            } else {
                "about the same"
            }
        ),
        (Some(this), None) => {
            format!("{this:.1}% of lookups blocked this week; no figures for last week")
        }
        (None, _) => "No lookups yet this week.".into(),
    };
    Ok(Panel {
        attempts,
        hidden,
        unlocks,
        trend,
    })
}
