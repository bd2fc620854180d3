//! The weekly summary the head teacher and the safeguarding lead read and
//! governors see: blocked attempts by category, profile and device, the top
//! blocked names, the alerts sent, and the health of the lists — as a
//! printable HTML page and as plain text for email.

pub mod secondaries;
pub mod trend;

use std::collections::HashMap;
use std::fmt::Write;

use anyhow::{Context, Result};

use crate::clock::{TimeZone, age, now_unix_secs};
use crate::config::Config;
use crate::journal::{AuditRow, JournalReader, LogFilter};
use crate::lists::acquire::health::{Freshness, ListHealth, health};
use crate::lists::store::CompiledLists;

/// The printable page's look: inline for an email, and at
/// `/static/report.css` for the page, whose content policy refuses inline
/// styles.
pub const PRINT_CSS: &str = concat!(
    "body{font-family:system-ui,sans-serif;max-width:52rem;margin:1.5rem auto;padding:0 1rem;color:#111;line-height:1.4}",
    "h1{font-size:1.5rem}",
    "h2{font-size:1.15rem;margin-top:1.6rem;border-bottom:1px solid #999}",
    "table{border-collapse:collapse;width:100%}",
    "th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #ddd;overflow-wrap:anywhere}",
    "td.n,th.n{text-align:right}",
    ".warn{color:#8a1c00;font-weight:600}",
    "figure{margin:0}",
    "svg.trend{display:block;width:100%;max-width:30rem;height:auto}",
    "figcaption{color:#444;font-size:.9rem}",
    "@media print{body{margin:0;max-width:none;padding:0}",
    "h2{break-after:avoid}",
    "table{break-inside:auto}",
    "tr,figure{break-inside:avoid}",
    "svg.trend{max-width:16cm;print-color-adjust:exact;-webkit-print-color-adjust:exact}}",
);

/// How many rows the "top" tables show.
const TOP: usize = 10;

pub struct Report {
    pub school: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub tz: TimeZone,
    pub queries: i64,
    /// Blocked tries, as the log counts them (each entry's repeats).
    pub blocked: i64,
    /// Log entries holding those tries.
    pub entries: u64,
    /// (category id, blocked tries), most first.
    pub by_category: Vec<(String, i64)>,
    /// (profile id, lookups, blocked tries).
    pub by_profile: Vec<(String, i64, i64)>,
    /// What people call each profile, by id.
    pub profile_names: HashMap<String, String>,
    /// The last weeks, this one last; empty for a period under a week.
    pub trend: Vec<trend::WeekPoint>,
    pub by_device: Vec<(String, i64)>,
    pub top_names: Vec<(String, i64)>,
    pub alerts: Vec<AuditRow>,
    pub lists: Vec<ListHealth>,
    /// Safeguards that are off, most serious first.
    pub gaps: Vec<crate::lists::safeguards::Gap>,
    /// On the primary of an HA pair, each secondary's figures.
    pub secondaries: Vec<crate::cluster::blocks::Period>,
}

/// The report for `[from_ms, to_ms)` from the block log.
pub fn build(config: &Config, from_ms: i64, to_ms: i64) -> Result<Report> {
    let path = config.journal_path();
    let reader = JournalReader::open(&path)
        .with_context(|| format!("cannot read the block log {}", path.display()))?;

    let mut queries = 0;
    let mut by_profile: HashMap<String, (i64, i64)> = HashMap::new();
    for row in reader.hourly(from_ms, to_ms)? {
        queries += row.queries;
        by_profile.entry(row.profile).or_default().0 += row.queries;
    }

    let rows = reader.query_blocked(&LogFilter {
        from_unix_ms: Some(from_ms),
        to_unix_ms: Some(to_ms),
        limit: None,
        ..LogFilter::default()
    })?;
    let mut by_category: HashMap<String, i64> = HashMap::new();
    let mut by_device: HashMap<String, i64> = HashMap::new();
    let mut by_name: HashMap<String, i64> = HashMap::new();
    // Blocked figures come from the log's entries, not the hourly sums, so
    // they are the numbers the log page shows for the same days.
    let mut blocked = 0;
    for row in &rows {
        blocked += row.count;
        by_profile.entry(row.profile.clone()).or_default().1 += row.count;
        let category = row
            .category
            .clone()
            .unwrap_or_else(|| "not approved".into());
        *by_category.entry(category).or_default() += row.count;
        let device = row
            .device_name
            .clone()
            .unwrap_or_else(|| row.client_ip.clone());
        *by_device.entry(device).or_default() += row.count;
        // A licensed list's names are never shown, only counted.
        if row.rule.is_some() || !row.locked {
            *by_name.entry(row.name.clone()).or_default() += row.count;
        }
    }

    let alerts: Vec<AuditRow> = reader
        .audit(from_ms, to_ms, 500)?
        .into_iter()
        .filter(|row| row.action.starts_with("alert"))
        .collect();

    let mut by_profile: Vec<(String, i64, i64)> = by_profile
        .into_iter()
        .map(|(profile, (q, b))| (profile, q, b))
        .collect();
    by_profile.sort();
    let profile_names = config
        .profiles
        .keys()
        .chain(by_profile.iter().map(|(id, _, _)| id))
        .map(|id| (id.clone(), config.profile_name(id)))
        .collect();
    let tz = config.log.time_zone;
    let trend = if to_ms - from_ms >= 6 * 86_400_000 {
        trend::weeks(&reader, tz, from_ms)?
    } else {
        Vec::new()
    };
    let lists = health(
        config,
        CompiledLists::open(&config.compiled_lists_path())
            .ok()
            .as_ref()
            .map(CompiledLists::manifest),
        now_unix_secs(),
    );
    let mut gaps = crate::lists::safeguards::gaps(config, &lists);
    // Alerts that did not get through are as serious as alerts not set up.
    gaps.extend(
        crate::alerts::health::failures_in(&alerts, config.log.time_zone)
            .into_iter()
            .map(|text| crate::lists::safeguards::Gap {
                severity: crate::lists::safeguards::Severity::Bad,
                text,
            }),
    );
    gaps.sort_by_key(|gap| gap.severity);
    Ok(Report {
        school: config.alerts.school_name.clone(),
        from_ms,
        to_ms,
        tz: config.log.time_zone,
        queries,
        blocked,
        entries: rows.len() as u64,
        by_category: most_first(by_category, usize::MAX),
        by_profile,
        profile_names,
        trend,
        by_device: most_first(by_device, TOP),
        top_names: most_first(by_name, TOP),
        alerts,
        gaps,
        lists,
        secondaries: if config.cluster_role() == Some(crate::config::cluster::ClusterRole::Primary)
        {
            crate::cluster::blocks::kept(config)
                .iter()
                .map(|secondary| secondary.period(from_ms, to_ms))
                .collect()
        } else {
            Vec::new()
        },
    })
}

fn most_first(counts: HashMap<String, i64>, keep: usize) -> Vec<(String, i64)> {
    let mut counts: Vec<(String, i64)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts.truncate(keep);
    counts
}

/// A list's state in the words of the report and the lists page:
/// "downloaded 3 h 12 min ago", "STALE: last downloaded 5 days ago".
pub fn list_state(list: &ListHealth) -> String {
    match &list.freshness {
        Freshness::File { .. } => "local file".to_string(),
        Freshness::Download {
            last_success_ago: None,
            ..
        } => "never downloaded".to_string(),
        Freshness::Download {
            last_success_ago: Some(ago),
            stale: true,
            ..
        } => format!("STALE: last downloaded {}", age(*ago)),
        Freshness::Download {
            last_success_ago: Some(ago),
            stale: false,
            ..
        } => format!("downloaded {}", age(*ago)),
    }
}

/// The next Monday 07:00 in the school's time zone after `now_ms`: when the
/// weekly report goes out.
pub fn next_weekly_send(now_ms: i64, tz: TimeZone) -> i64 {
    const DAY: i64 = 86_400_000;
    const SEVEN_AM: i64 = 7 * 3_600_000;
    let local = now_ms + i64::from(tz.offset_seconds(now_ms)) * 1000;
    let today = local.div_euclid(DAY);
    // 1970-01-01 was a Thursday: Monday is 0.
    let weekday = (today + 3).rem_euclid(7);
    let mut day = today + (7 - weekday) % 7;
    if day * DAY + SEVEN_AM <= local {
        day += 7;
    }
    let target_local = day * DAY + SEVEN_AM;
    target_local - i64::from(tz.offset_seconds(target_local)) * 1000
}

/// Builds the report for `[from_ms, to_ms)` and emails it.
pub async fn email_report(config: &Config, from_ms: i64, to_ms: i64) -> Result<()> {
    let Some(email) = &config.alerts.email else {
        anyhow::bail!("no [alerts.email] settings: the report has nowhere to go");
    };
    let report = build(config, from_ms, to_ms)?;
    crate::alerts::email::send_report(
        email,
        &report.subject(),
        report.to_text(),
        report.to_html(),
        std::time::Duration::from_secs(60),
    )
    .await
    .context("sending the report")?;
    tracing::info!("weekly report sent to {}", email.to.join(", "));
    Ok(())
}

/// Text safe to place in HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl Report {
    /// "Mon 30 Nov to Sun 6 Dec 2026".
    pub fn period(&self) -> String {
        let first = crate::clock::people::date(self.tz, self.from_ms);
        let last = crate::clock::people::date(self.tz, self.to_ms - 1);
        match (first.rsplit_once(' '), last.rsplit_once(' ')) {
            (Some((first_day, year)), Some((_, last_year))) if year == last_year => {
                format!("{first_day} to {last}")
            }
            _ => format!("{first} to {last}"),
        }
    }

    /// What people call profile `id`.
    pub fn profile_name(&self, id: &str) -> String {
        self.profile_names
            .get(id)
            .cloned()
            .unwrap_or_else(|| crate::config::default_profile_name(id))
    }

    /// A category as people read it ("Fortnite (game)", "self-harm").
    pub fn category_name(&self, id: &str) -> String {
        crate::config::category_name(id)
    }

    /// The trend chart, or None when the period is too short for one.
    pub fn trend_svg(&self) -> Option<String> {
        (!self.trend.is_empty()).then(|| trend::svg(&self.trend, self.tz))
    }

    pub fn subject(&self) -> String {
        let school = if self.school.is_empty() {
            "Lollipop"
        } else {
            &self.school
        };
        format!("{school}: filtering report, {}", self.period())
    }

    /// The week in a few plain sentences, for governors.
    pub fn summary(&self) -> String {
        let share = if self.queries > 0 {
            format!(
                " ({:.1}%)",
                100.0 * self.blocked as f64 / self.queries as f64
            )
        } else {
            String::new()
        };
        let top = match self.by_category.first() {
            Some((category, attempts)) => format!(
                " Most blocked tries were at {} sites ({attempts}).",
                self.category_name(category)
            ),
            None => String::new(),
        };
        let alerts = match self.alerts.len() {
            0 => "No alert was sent to the safeguarding lead.".to_string(),
            1 => "One alert was sent to the safeguarding lead.".to_string(),
            n => format!("{n} alerts were sent to the safeguarding lead."),
        };
        let gaps = match self.gaps.len() {
            0 => "Every safeguard the appliance checks is on.".to_string(),
            n => format!("{n} safeguards are off: see below."),
        };
        format!(
            "In summary: the school's devices made {} look-ups, and {} of them were blocked{share}.{top} {alerts} {gaps}",
            self.queries, self.blocked
        )
    }

    /// The printable page.
    pub fn to_html(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "<!doctype html><html lang=\"en-GB\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title><style>{PRINT_CSS}</style>\
             <link rel=\"stylesheet\" href=\"/static/report.css\">\
             </head><body><h1>{title}</h1>\
             <p>{queries} look-ups, {blocked} blocked tries (in {entries} log entries). Times are {tz}.</p>",
            title = escape(&self.subject()),
            queries = self.queries,
            blocked = self.blocked,
            entries = self.entries,
            tz = self.tz.name(),
        );
        let _ = write!(out, "<p class=\"summary\">{}</p>", escape(&self.summary()));
        if let Some(svg) = self.trend_svg() {
            let _ = write!(
                out,
                "<h2>The last {} weeks</h2><figure>{svg}<figcaption>Blocked tries each week, this report's week in the darker colour; under each week, the share of all look-ups that were blocked.</figcaption></figure>",
                self.trend.len()
            );
        }
        if !self.gaps.is_empty() {
            out.push_str("<h2>Safeguards that are off</h2><ul>");
            for gap in &self.gaps {
                let class = match gap.severity {
                    crate::lists::safeguards::Severity::Bad => " class=\"warn\"",
                    crate::lists::safeguards::Severity::Warn => "",
                };
                let _ = write!(out, "<li{class}>{}</li>", escape(&gap.text));
            }
            out.push_str("</ul>");
        }
        let table = |out: &mut String, caption: &str, head: &[&str], rows: Vec<Vec<String>>| {
            let _ = write!(out, "<h2>{}</h2>", escape(caption));
            if rows.is_empty() {
                out.push_str("<p>None this week.</p>");
                return;
            }
            out.push_str("<table><thead><tr>");
            for (column, h) in head.iter().enumerate() {
                // Counts are right-aligned, and so are their headings.
                let numeric = rows[0]
                    .get(column)
                    .is_some_and(|c| c.parse::<i64>().is_ok());
                let class = if numeric { " class=\"n\"" } else { "" };
                let _ = write!(out, "<th scope=\"col\"{class}>{}</th>", escape(h));
            }
            out.push_str("</tr></thead><tbody>");
            for row in rows {
                out.push_str("<tr>");
                for cell in row {
                    let class = if cell.parse::<i64>().is_ok() {
                        " class=\"n\""
                    } else {
                        ""
                    };
                    let _ = write!(out, "<td{class}>{}</td>", escape(&cell));
                }
                out.push_str("</tr>");
            }
            out.push_str("</tbody></table>");
        };
        let pairs = |rows: &[(String, i64)]| {
            rows.iter()
                .map(|(a, b)| vec![a.clone(), b.to_string()])
                .collect()
        };
        let categories: Vec<(String, i64)> = self
            .by_category
            .iter()
            .map(|(id, n)| (self.category_name(id), *n))
            .collect();
        table(
            &mut out,
            "Blocked tries by category",
            &["Category", "Tries"],
            pairs(&categories),
        );
        table(
            &mut out,
            "By profile",
            &["Profile", "Look-ups", "Blocked tries"],
            self.by_profile
                .iter()
                .map(|(p, q, b)| vec![self.profile_name(p), q.to_string(), b.to_string()])
                .collect(),
        );
        table(
            &mut out,
            "Devices with the most blocked tries",
            &["Device", "Tries"],
            pairs(&self.by_device),
        );
        table(
            &mut out,
            "Most blocked sites",
            &["Site", "Tries"],
            pairs(&self.top_names),
        );
        out.push_str(&secondaries::html(self));
        table(
            &mut out,
            "Alerts sent to the safeguarding lead",
            &["When", "What"],
            self.alerts
                .iter()
                .map(|a| {
                    vec![
                        crate::clock::people::when(self.tz, a.at_unix_ms),
                        format!("{}: {}", a.action, a.detail),
                    ]
                })
                .collect(),
        );
        table(
            &mut out,
            "Lists",
            &["List", "Category", "Entries", "State"],
            self.lists
                .iter()
                .map(|l| {
                    vec![
                        // A service's list bears its category's name.
                        self.category_name(&l.name),
                        self.category_name(&l.category),
                        l.entries().to_string(),
                        list_state(l),
                    ]
                })
                .collect(),
        );
        out.push_str("</body></html>\n");
        out
    }

    /// The same, as plain text (the email's text part).
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}\n\n{} look-ups, {} blocked tries (in {} log entries).\n",
            self.subject(),
            self.queries,
            self.blocked,
            self.entries
        );
        if !self.trend.is_empty() {
            let _ = writeln!(out, "\nBlocked tries per week");
            for point in &self.trend {
                let share = point
                    .percent()
                    .map_or_else(|| "no look-ups".to_string(), |p| format!("{p:.1}%"));
                let _ = writeln!(
                    out,
                    "  {:>7}  week of {} ({share} of look-ups)",
                    point.blocked,
                    crate::clock::people::date(self.tz, point.from_ms)
                );
            }
        }
        let categories: Vec<(String, i64)> = self
            .by_category
            .iter()
            .map(|(id, n)| (self.category_name(id), *n))
            .collect();
        let mut section = |title: &str, rows: &[(String, i64)]| {
            let _ = writeln!(out, "\n{title}");
            if rows.is_empty() {
                let _ = writeln!(out, "  none");
            }
            for (name, count) in rows {
                let _ = writeln!(out, "  {count:>7}  {name}");
            }
        };
        section("Blocked tries by category", &categories);
        section("Devices with the most blocked tries", &self.by_device);
        section("Most blocked sites", &self.top_names);
        out.push_str(&secondaries::text(self));
        let _ = writeln!(
            out,
            "\nAlerts sent: {}",
            self.alerts
                .iter()
                .filter(|a| a.action == "alert sent")
                .count()
        );
        if !self.gaps.is_empty() {
            let _ = writeln!(out, "\nSafeguards that are off");
            for gap in &self.gaps {
                let _ = writeln!(out, "  - {}", gap.text);
            }
        }
        let stale: Vec<&ListHealth> = self.lists.iter().filter(|l| l.stale()).collect();
        let _ = writeln!(
            out,
            "Lists: {} in use, {} stale",
            self.lists.len(),
            stale.len()
        );
        for list in stale {
            let _ = writeln!(out, "  {}: {}", list.name, list_state(list));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekly_reports_go_out_on_monday_at_seven_local_time() {
        use crate::clock::days_from_civil;
        let at = |y, m, d, h: i64| days_from_civil(y, m, d) * 86_400_000 + h * 3_600_000;
        // Wednesday 2026-11-25 12:00 UTC (GMT) -> Monday 2026-11-30 07:00 UTC.
        assert_eq!(
            next_weekly_send(at(2026, 11, 25, 12), TimeZone::EuropeLondon),
            at(2026, 11, 30, 7)
        );
        // Monday 06:00 -> the same Monday 07:00; Monday 07:00 -> next week.
        assert_eq!(
            next_weekly_send(at(2026, 11, 30, 6), TimeZone::EuropeLondon),
            at(2026, 11, 30, 7)
        );
        assert_eq!(
            next_weekly_send(at(2026, 11, 30, 7), TimeZone::EuropeLondon),
            at(2026, 12, 7, 7)
        );
        // In summer 07:00 BST is 06:00 UTC.
        assert_eq!(
            next_weekly_send(at(2026, 7, 1, 12), TimeZone::EuropeLondon),
            at(2026, 7, 6, 6)
        );
        assert_eq!(
            next_weekly_send(at(2026, 7, 1, 12), TimeZone::Utc),
            at(2026, 7, 6, 7)
        );
    }

    #[test]
    fn escape_covers_markup() {
        assert_eq!(
            escape("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }
}
