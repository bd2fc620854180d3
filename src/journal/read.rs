//! Reads the journal for the UI and CLI through read-only connections, so a
//! long search or export never holds up the writer (WAL lets both run).

use super::JournalError;
use super::schema::open_reader;
use rusqlite::types::Value;
use rusqlite::{Connection, Row, params_from_iter};
use serde::Serialize;
use std::path::Path;

/// Which blocked attempts to show. Empty fields match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Inclusive.
    pub from_unix_ms: Option<i64>,
    /// Exclusive.
    pub to_unix_ms: Option<i64>,
    /// A substring of the device name, IP, MAC or person.
    pub device: Option<String>,
    /// Exactly this client address (one device's history).
    pub client_ip: Option<String>,
    pub profile: Option<String>,
    pub category: Option<String>,
    /// A substring of the blocked name.
    pub name_contains: Option<String>,
    pub limit: Option<u32>,
    pub offset: u32,
    /// The UI lists newest first; exports read oldest first.
    pub newest_first: bool,
}

/// One row of the block log (one attempt, or a burst of retries).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlockedRow {
    pub id: i64,
    pub at_unix_ms: i64,
    pub last_at_unix_ms: i64,
    /// Attempts this row stands for (browsers retry).
    pub count: i64,
    pub client_ip: String,
    pub device_name: Option<String>,
    pub mac: Option<String>,
    pub owner: Option<String>,
    pub room: Option<String>,
    pub profile: String,
    pub listener: Option<String>,
    pub name: String,
    pub query_type: String,
    pub category: Option<String>,
    pub list: Option<String>,
    pub rule: Option<String>,
    pub action: String,
    pub locked: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HourlyRow {
    pub hour_unix_ms: i64,
    pub profile: String,
    /// `None` for allowed lookups (and blocked ones without a category).
    pub category: Option<String>,
    pub queries: i64,
    pub blocked: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at_unix_ms: i64,
    pub actor: String,
    pub action: String,
    pub detail: String,
    pub reason: Option<String>,
}

/// A read-only view of a journal file.
pub struct JournalReader {
    conn: Connection,
}

pub(super) const BLOCKED_COLUMNS: &str = "id, at, COALESCE(last_at, at), count, client_ip, device_name, \
     mac, owner, room, profile, listener, name, query_type, category, list, rule, action, locked";

fn like_pattern(needle: &str) -> Value {
    let escaped = needle
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    Value::Text(format!("%{escaped}%"))
}

fn where_clause(filter: &LogFilter) -> (String, Vec<Value>) {
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    let arg = |v: Value, args: &mut Vec<Value>| {
        args.push(v);
        format!("?{}", args.len())
    };
    if let Some(from) = filter.from_unix_ms {
        conds.push(format!("at >= {}", arg(Value::Integer(from), &mut args)));
    }
    if let Some(to) = filter.to_unix_ms {
        conds.push(format!("at < {}", arg(Value::Integer(to), &mut args)));
    }
    if let Some(device) = filter.device.as_deref().filter(|d| !d.is_empty()) {
        let p = arg(like_pattern(device), &mut args);
        conds.push(format!(
            "(device_name LIKE {p} ESCAPE '\\' OR client_ip LIKE {p} ESCAPE '\\' \
             OR mac LIKE {p} ESCAPE '\\' OR owner LIKE {p} ESCAPE '\\')"
        ));
    }
    if let Some(ip) = &filter.client_ip {
        conds.push(format!(
            "client_ip = {}",
            arg(Value::Text(ip.clone()), &mut args)
        ));
    }
    if let Some(profile) = &filter.profile {
        conds.push(format!(
            "profile = {}",
            arg(Value::Text(profile.clone()), &mut args)
        ));
    }
    if let Some(category) = &filter.category {
        conds.push(format!(
            "category = {}",
            arg(Value::Text(category.clone()), &mut args)
        ));
    }
    if let Some(name) = filter.name_contains.as_deref().filter(|n| !n.is_empty()) {
        conds.push(format!(
            "name LIKE {} ESCAPE '\\'",
            arg(like_pattern(name), &mut args)
        ));
    }
    let sql = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    (sql, args)
}

/// The search [`JournalReader::query_blocked`] runs, and its arguments.
pub(super) fn select_blocked(filter: &LogFilter) -> (String, Vec<Value>) {
    let (cond, args) = where_clause(filter);
    // id order is time order: rows are written as events arrive.
    let order = if filter.newest_first { "DESC" } else { "ASC" };
    let limit = filter.limit.map_or(-1, i64::from);
    let sql = format!(
        "SELECT {BLOCKED_COLUMNS} FROM blocked{cond} ORDER BY id {order} LIMIT {limit} OFFSET {}",
        filter.offset
    );
    (sql, args)
}

/// The count [`JournalReader::tally_blocked`] runs, and its arguments.
pub(super) fn tally_blocked_sql(filter: &LogFilter) -> (String, Vec<Value>) {
    let (cond, args) = where_clause(filter);
    let sql = format!("SELECT count(*), coalesce(sum(count), 0) FROM blocked{cond}");
    (sql, args)
}

pub(super) fn blocked_row(r: &Row<'_>) -> rusqlite::Result<BlockedRow> {
    Ok(BlockedRow {
        id: r.get(0)?,
        at_unix_ms: r.get(1)?,
        last_at_unix_ms: r.get(2)?,
        count: r.get(3)?,
        client_ip: r.get(4)?,
        device_name: r.get(5)?,
        mac: r.get(6)?,
        owner: r.get(7)?,
        room: r.get(8)?,
        profile: r.get(9)?,
        listener: r.get(10)?,
        name: r.get(11)?,
        query_type: r.get(12)?,
        category: r.get(13)?,
        list: r.get(14)?,
        rule: r.get(15)?,
        action: r.get(16)?,
        locked: r.get(17)?,
    })
}

impl JournalReader {
    /// Opens `path` read-only; fails if the writer has not yet brought it
    /// to this build's schema.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        Ok(JournalReader {
            conn: open_reader(path)?,
        })
    }

    pub fn query_blocked(&self, filter: &LogFilter) -> Result<Vec<BlockedRow>, JournalError> {
        let (sql, args) = select_blocked(filter);
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), blocked_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One row by its reference number.
    pub fn blocked_by_id(&self, id: i64) -> Result<Option<BlockedRow>, JournalError> {
        let sql = format!("SELECT {BLOCKED_COLUMNS} FROM blocked WHERE id = ?1");
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query_map([id], blocked_row)?;
        Ok(rows.next().transpose()?)
    }

    /// How many rows match, ignoring limit and offset (for paging).
    pub fn count_blocked(&self, filter: &LogFilter) -> Result<u64, JournalError> {
        let (cond, args) = where_clause(filter);
        let sql = format!("SELECT count(*) FROM blocked{cond}");
        let n: i64 = self
            .conn
            .query_row(&sql, params_from_iter(args), |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// The entries `filter` matches and the tries they stand for (an entry
    /// folds one device's repeats of one name): what the log page and the
    /// dashboard both count, so their figures agree.
    pub fn tally_blocked(&self, filter: &LogFilter) -> Result<(u64, u64), JournalError> {
        let (sql, args) = tally_blocked_sql(filter);
        let (entries, tries): (i64, i64) =
            self.conn
                .query_row(&sql, params_from_iter(args), |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok((entries.max(0) as u64, tries.max(0) as u64))
    }

    /// Aggregates for hours starting in `[from, to)`.
    pub fn hourly(
        &self,
        from_unix_ms: i64,
        to_unix_ms: i64,
    ) -> Result<Vec<HourlyRow>, JournalError> {
        let mut stmt = self.conn.prepare(
            "SELECT hour, profile, category, queries, blocked FROM hourly \
             WHERE hour >= ?1 AND hour < ?2 ORDER BY hour, profile, category",
        )?;
        let rows = stmt.query_map([from_unix_ms, to_unix_ms], |r| {
            let category: String = r.get(2)?;
            Ok(HourlyRow {
                hour_unix_ms: r.get(0)?,
                profile: r.get(1)?,
                category: (!category.is_empty()).then_some(category),
                queries: r.get(3)?,
                blocked: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Audit entries in `[from, to)`, newest first.
    pub fn audit(
        &self,
        from_unix_ms: i64,
        to_unix_ms: i64,
        limit: u32,
    ) -> Result<Vec<AuditRow>, JournalError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, at, actor, action, detail, reason FROM audit \
             WHERE at >= ?1 AND at < ?2 ORDER BY id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            rusqlite::params![from_unix_ms, to_unix_ms, i64::from(limit)],
            |r| {
                Ok(AuditRow {
                    id: r.get(0)?,
                    at_unix_ms: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    detail: r.get(4)?,
                    reason: r.get(5)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Opens `path` read-only and runs one search.
pub fn query_blocked(path: &Path, filter: &LogFilter) -> Result<Vec<BlockedRow>, JournalError> {
    JournalReader::open(path)?.query_blocked(filter)
}
