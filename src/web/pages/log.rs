//! The blocked-lookup log: filters (dates, device, profile, category, name),
//! paging, CSV export of what the filters show, and one entry's why with the
//! device's recent history.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::admin::users::Right;
use crate::clock::{TimeZone, format_utc};
use crate::config::Config;
use crate::journal::{BlockedRow, JournalReader, LogFilter, write_csv};
use crate::web::WebState;
use crate::web::auth::Signed;
use crate::web::error::{WebError, urlencode};
use crate::web::view::{Layout, count, day_start, local_time, render, when};

const PAGE_ROWS: u32 = 50;
/// An export bigger than this is cut short, with a note in the page.
const EXPORT_ROWS: u32 = 200_000;
const DAY_MS: i64 = 86_400_000;

/// The filters as typed; every field may be empty.
#[derive(Debug, Default, Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    device: String,
    #[serde(default)]
    profile: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    page: String,
}

impl LogQuery {
    /// The journal filter, or what is wrong with the input.
    fn filter(&self, tz: TimeZone) -> Result<LogFilter, WebError> {
        let from = day_start(&self.from, tz, "from")?;
        let to = day_start(&self.to, tz, "to")?.map(|start| tz.day_end(start));
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            return Err(WebError::BadRequest(
                "The 'from' date is after the 'to' date. Swap them and try again.".into(),
            ));
        }
        let text = |value: &str| Some(value.trim().to_string()).filter(|v| !v.is_empty());
        Ok(LogFilter {
            from_unix_ms: from,
            to_unix_ms: to,
            device: text(&self.device),
            client_ip: None,
            profile: text(&self.profile),
            category: text(&self.category),
            name_contains: text(&self.name),
            limit: None,
            offset: 0,
            newest_first: true,
        })
    }

    fn page(&self) -> Result<u32, WebError> {
        match self.page.trim() {
            "" => Ok(1),
            text => text.parse::<u32>().ok().filter(|&p| p >= 1).ok_or_else(|| {
                WebError::BadRequest(format!("'{}' is not a page number.", clip(text)))
            }),
        }
    }

    /// The filters as a query string, for paging and export links.
    fn query_string(&self) -> String {
        [
            ("from", &self.from),
            ("to", &self.to),
            ("device", &self.device),
            ("profile", &self.profile),
            ("category", &self.category),
            ("name", &self.name),
        ]
        .iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(key, value)| format!("{key}={}", urlencode(value.trim())))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// At most 60 characters of what someone typed, for an error message.
fn clip(text: &str) -> String {
    text.chars().take(60).collect()
}

pub struct RowView {
    pub id: i64,
    pub at: String,
    pub device: String,
    /// The profile and where the device was, in words: "Key Stage 2, Oak
    /// class Wi-Fi".
    pub place: String,
    pub name: String,
    pub category: String,
    pub locked: bool,
    pub attempts: String,
}

impl RowView {
    fn new(row: &BlockedRow, config: &Config) -> RowView {
        let profile = config.profile_name(&row.profile);
        let place = match config.place_name(&row.client_ip, row.listener.as_deref()) {
            Some(place) if place != format!("{profile} network") => format!("{profile}, {place}"),
            _ => profile,
        };
        RowView {
            id: row.id,
            at: when(config.log.time_zone, row.at_unix_ms),
            device: row
                .device_name
                .clone()
                .unwrap_or_else(|| row.client_ip.clone()),
            place,
            name: row.name.clone(),
            category: category_text(row),
            locked: row.locked,
            attempts: count(row.count),
        }
    }
}

/// Why the site was blocked, in words: its category ("Fortnite (game)",
/// "self harm"), or what the school's own choice was.
fn category_text(row: &BlockedRow) -> String {
    match (&row.category, row.action.as_str()) {
        (Some(category), _) => crate::config::category_name(category),
        (None, "walled-garden") => "not on the approved list".into(),
        (None, _) => "blocked by the school".into(),
    }
}

/// A choice in a filter: the id the URL carries and the words shown.
pub struct Choice {
    pub value: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "log.html")]
struct LogPage {
    layout: Layout,
    query: LogQuery,
    profiles: Vec<Choice>,
    categories: Vec<Choice>,
    rows: Vec<RowView>,
    /// Blocked tries the filters match, bare, for tests and scripts.
    tries: u64,
    /// The same figures as the dashboard's "blocked today", worded alike.
    counted: String,
    page: u32,
    pages: u32,
    /// The filters as a query string (empty when none).
    filters: String,
}

pub async fn page(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Query(query): Query<LogQuery>,
) -> Result<Response, WebError> {
    signed.require(Right::ReadLog, "read the block log")?;
    let config = state.config().await;
    let tz = config.log.time_zone;
    let mut filter = query.filter(tz)?;
    let page = query.page()?;
    filter.limit = Some(PAGE_ROWS);
    filter.offset = (page - 1).saturating_mul(PAGE_ROWS);
    let path = config.journal_path();
    let (rows, (total, tries)) = tokio::task::spawn_blocking(move || {
        let reader = JournalReader::open(&path)?;
        Ok::<_, WebError>((
            reader.query_blocked(&filter)?,
            reader.tally_blocked(&filter)?,
        ))
    })
    .await??;
    let categories = state
        .pipeline
        .settings()
        .policy
        .lists
        .categories()
        .iter()
        .map(|category| Choice {
            value: category.clone(),
            label: crate::config::category_name(category),
        })
        .collect();
    let filters = query.query_string();
    Ok(render(&LogPage {
        layout: Layout::new(&config, "Blocked look-ups", "log", &signed),
        profiles: config
            .profiles
            .keys()
            .map(|id| Choice {
                value: id.clone(),
                label: config.profile_name(id),
            })
            .collect(),
        categories,
        rows: rows.iter().map(|row| RowView::new(row, &config)).collect(),
        tries,
        counted: counted_words(tries, total),
        page,
        pages: (total.div_ceil(u64::from(PAGE_ROWS)).max(1)) as u32,
        filters,
        query,
    })?
    .into_response())
}

/// "12 blocked tries in 3 log entries": what the log page and the
/// dashboard both say they count.
pub fn counted_words(tries: u64, entries: u64) -> String {
    let plural = |n: u64, one: &str, many: &str| {
        format!("{} {}", count(n as i64), if n == 1 { one } else { many })
    };
    format!(
        "{} in {}",
        plural(tries, "blocked try", "blocked tries"),
        plural(entries, "log entry", "log entries")
    )
}

/// `/log.csv`: the rows the same filters show, oldest first, for a
/// spreadsheet.
pub async fn csv(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Query(query): Query<LogQuery>,
) -> Result<Response, WebError> {
    signed.require(Right::ReadLog, "read the block log")?;
    let config = state.config().await;
    let tz = config.log.time_zone;
    let mut filter = query.filter(tz)?;
    filter.newest_first = false;
    filter.limit = Some(EXPORT_ROWS);
    let path = config.journal_path();
    let body = tokio::task::spawn_blocking(move || {
        let rows = JournalReader::open(&path)?.query_blocked(&filter)?;
        let mut body = Vec::new();
        write_csv(&rows, tz, &mut body).map_err(WebError::internal)?;
        Ok::<_, WebError>(body)
    })
    .await??;
    let today = local_time(tz, crate::clock::now_unix_ms());
    let file = format!("blocked-lookups-{}.csv", &today[..10]);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response())
}

pub struct Detail {
    pub label: &'static str,
    pub value: String,
}

#[derive(Template)]
#[template(path = "log_entry.html")]
struct EntryPage {
    layout: Layout,
    id: i64,
    name: String,
    client_ip: String,
    why: String,
    details: Vec<Detail>,
    history: Vec<RowView>,
    can_manage: bool,
}

/// `/log/{id}`: why one look-up was blocked, and what that device tried lately.
pub async fn entry(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    signed.require(Right::ReadLog, "read the block log")?;
    let id: i64 = id.parse().map_err(|_| WebError::NotFound)?;
    let config = state.config().await;
    let path = config.journal_path();
    let (row, history) = tokio::task::spawn_blocking(move || {
        let reader = JournalReader::open(&path)?;
        let Some(row) = reader.blocked_by_id(id)? else {
            return Ok::<_, WebError>((None, Vec::new()));
        };
        let history = reader.query_blocked(&LogFilter {
            client_ip: Some(row.client_ip.clone()),
            from_unix_ms: Some(row.at_unix_ms - 7 * DAY_MS),
            limit: Some(20),
            newest_first: true,
            ..LogFilter::default()
        })?;
        Ok((Some(row), history))
    })
    .await??;
    let row = row.ok_or(WebError::NotFound)?;
    Ok(render(&EntryPage {
        layout: Layout::new(
            &config,
            &format!("Why {} was blocked", row.name),
            "log",
            &signed,
        ),
        id: row.id,
        name: row.name.clone(),
        client_ip: row.client_ip.clone(),
        why: why(&row, &config),
        details: details(&row, &config),
        history: history.iter().map(|r| RowView::new(r, &config)).collect(),
        can_manage: signed.may(Right::ManageRules),
    })?
    .into_response())
}

/// One sentence a head teacher can read out.
fn why(row: &BlockedRow, config: &Config) -> String {
    let list = row
        .list
        .as_deref()
        // A service's list bears its category's name: "Fortnite (game)".
        .map_or_else(
            || "the school's own entries".to_string(),
            crate::config::category_name,
        );
    let profile = config.profile_name(&row.profile);
    let mut text = match (&row.category, row.action.as_str()) {
        (Some(_), _) => format!(
            "It is in the {} category (list: {list}), which is blocked for {profile}.",
            category_text(row)
        ),
        (None, "walled-garden") => format!(
            "{profile} only allows approved sites, and this one is not on the approved list."
        ),
        (None, _) => format!("The school blocked it for {profile} ({list})."),
    };
    if row.locked {
        text.push_str(
            " This category is locked: nobody can unlock it, by law or by school policy.",
        );
    }
    if !config.profiles.contains_key(&row.profile) {
        text.push_str(" (That profile has since been removed from the settings.)");
    }
    text
}

/// Everything the log knows about one entry, the technical parts
/// included (look-up type, addresses, ISO times, ids): the main table
/// leaves them out.
fn details(row: &BlockedRow, config: &Config) -> Vec<Detail> {
    let tz = config.log.time_zone;
    let mut out = Vec::new();
    let mut add = |label: &'static str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            out.push(Detail { label, value });
        }
    };
    add("Reference", Some(row.id.to_string()));
    add(
        "When",
        Some(format!(
            "{} ({}, {} UTC)",
            when(tz, row.at_unix_ms),
            tz.format_local(row.at_unix_ms),
            format_utc(row.at_unix_ms)
        )),
    );
    if row.count > 1 {
        add(
            "Attempts",
            Some(format!(
                "{} (last at {})",
                row.count,
                when(tz, row.last_at_unix_ms)
            )),
        );
    }
    add("Site", Some(row.name.clone()));
    add(
        "Look-up type",
        Some(format!(
            "{} ({})",
            row.query_type,
            query_type_words(&row.query_type)
        )),
    );
    add("Device", row.device_name.clone());
    add("IP address", Some(row.client_ip.clone()));
    add("MAC address", row.mac.clone());
    add("Person", row.owner.clone());
    add("Room", row.room.clone());
    add(
        "Network",
        row.listener.as_ref().map(|address| {
            let room = config
                .listener_name(address)
                .unwrap_or_else(|| "no longer in the settings".into());
            format!("{room} (asked at {address})")
        }),
    );
    add("Profile", Some(config.profile_name(&row.profile)));
    add("Category", Some(category_text(row)));
    add(
        "List",
        row.list.as_deref().map(crate::config::category_name),
    );
    add(
        "Matching entry",
        Some(
            row.rule
                .clone()
                .unwrap_or_else(|| "not shown (licensed list)".into()),
        ),
    );
    add(
        "Answer given",
        Some(match row.action.as_str() {
            "nxdomain" => "site does not exist (NXDOMAIN)".into(),
            "blockpage" => "the block page".into(),
            "null" => "no address (0.0.0.0)".into(),
            "walled-garden" => "not on the approved list".into(),
            other => other.to_string(),
        }),
    );
    add("Locked", Some(if row.locked { "yes" } else { "no" }.into()));
    out
}

/// What a look-up type asks for, for the "why" detail.
fn query_type_words(query_type: &str) -> &'static str {
    match query_type {
        "A" => "an IPv4 address",
        "AAAA" => "an IPv6 address",
        "HTTPS" | "SVCB" => "how to connect securely",
        "CNAME" => "another name for the site",
        "MX" => "where its email goes",
        "TXT" => "text records",
        _ => "another kind of record",
    }
}

/// The log's filters read as a request would read them, then checked as
/// the page checks them, for the fuzz targets.
#[cfg(any(test, feature = "testkit"))]
pub(super) fn read_posted(body: &[u8], tz: TimeZone) {
    if let Ok(query) = serde_urlencoded::from_bytes::<LogQuery>(body) {
        let _ = query.filter(tz);
        let _ = query
            .page()
            .map(|page| (page - 1).saturating_mul(PAGE_ROWS));
        let _ = query.query_string();
    }
}
