//! The block log's one transaction per batch: the SQL that inserts new
//! rows and adds repeats to rows, and writes the full log, the hourly
//! figures, audit entries and alerts sent; and the ids of a fresh file.

use super::super::devices::DeviceInfo;
use super::super::{AlertSent, AuditEntry, BlockEvent, JournalError, QueryEvent};
use super::{Op, Store, address_text};
use foldhash::HashMap;
use rusqlite::{Connection, TransactionBehavior, params};

const INSERT_BLOCKED: &str = "INSERT INTO blocked (at, last_at, count, client_ip, device_name, \
     mac, owner, room, profile, listener, name, query_type, category, list, rule, action, locked) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";
const BUMP_BLOCKED: &str = "UPDATE blocked SET count = count + ?1, \
     last_at = max(COALESCE(last_at, at), ?2) WHERE id = ?3";
const INSERT_QUERY: &str = "INSERT INTO queries (at, client_ip, profile, name, query_type, \
     blocked, category) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const UPSERT_HOURLY: &str = "INSERT INTO hourly (hour, profile, category, queries, blocked) \
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (hour, profile, category) DO UPDATE SET \
     queries = queries + excluded.queries, blocked = blocked + excluded.blocked";
const INSERT_AUDIT: &str =
    "INSERT INTO audit (at, actor, action, detail, reason) VALUES (?1, ?2, ?3, ?4, ?5)";
const INSERT_ALERT: &str = "INSERT INTO alerts_sent (at, alert_id, channel, outcome, category, \
     device, name, events) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

impl Store {
    /// The batch's one transaction: new rows and repeats of rows whose
    /// window is `due` to end (`ops`), the repeats of earlier rows, the
    /// full log, the hourly figures, audit entries and alerts sent.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn commit(
        &mut self,
        ops: &mut [Op<'_>],
        earlier_repeats: &[(i64, i64, i64)],
        queries: &[&QueryEvent],
        blocked_queries: &[&BlockEvent],
        hourly: &HashMap<(i64, &str, &str), (i64, i64)>,
        audits: &[&AuditEntry],
        alerts: &[&AlertSent],
        due: &dyn Fn(i64) -> bool,
    ) -> Result<(), JournalError> {
        super::super::damage::check_header(&self.path)?;
        self.ensure_open()?;
        // The connection and the device names are borrowed apart: a device
        // is looked up only for a row being inserted, never for a repeat.
        let (Some(conn), devices) = (self.conn.as_mut(), &mut self.devices) else {
            // ensure_open has just set it; never reached.
            return Err(JournalError::Io(std::io::Error::other(
                "the block log's connection was closed as a batch began",
            )));
        };
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(INSERT_BLOCKED)?;
            let mut bump = tx.prepare_cached(BUMP_BLOCKED)?;
            let mut refreshed = false;
            for op in ops.iter_mut() {
                let ev = op.event;
                if let Some(id) = op.existing {
                    op.id = id;
                    if !due(op.first_at) {
                        // Counted in memory until its window has ended.
                        continue;
                    }
                    // Zero rows: retention removed it (a clock far in the
                    // past); the attempts then get a row of their own.
                    if bump.execute(params![op.count, op.last_at, id])? == 1 {
                        op.bumped = true;
                        continue;
                    }
                    op.existing = None;
                    op.first_at = ev.at_unix_ms;
                }
                // Device names are read again (changed lease and ARP files)
                // once per batch, and only for a batch that makes a row.
                if !refreshed {
                    devices.refresh();
                    refreshed = true;
                }
                let dev: DeviceInfo = devices.lookup(ev.client);
                insert.execute(params![
                    op.first_at,
                    op.last_at,
                    op.count,
                    address_text(ev.client),
                    dev.name,
                    dev.mac,
                    dev.owner,
                    dev.room,
                    ev.profile,
                    ev.listener,
                    ev.name,
                    ev.query_type,
                    ev.category,
                    ev.list,
                    ev.rule,
                    ev.action,
                    ev.locked,
                ])?;
                op.id = tx.last_insert_rowid();
            }
            for (id, count, last_at) in earlier_repeats {
                // Zero rows: the row is gone to retention; nothing to add to.
                bump.execute(params![count, last_at, id])?;
            }
            if !queries.is_empty() || !blocked_queries.is_empty() {
                let mut stmt = tx.prepare_cached(INSERT_QUERY)?;
                for q in queries {
                    stmt.execute(params![
                        q.at_unix_ms,
                        address_text(q.client),
                        q.profile,
                        q.name,
                        q.query_type,
                        q.blocked,
                        q.category,
                    ])?;
                }
                for b in blocked_queries {
                    stmt.execute(params![
                        b.at_unix_ms,
                        address_text(b.client),
                        b.profile,
                        b.name,
                        b.query_type,
                        true,
                        b.category,
                    ])?;
                }
            }
            if !hourly.is_empty() {
                let mut stmt = tx.prepare_cached(UPSERT_HOURLY)?;
                for ((hour, profile, category), (n, blocked)) in hourly {
                    stmt.execute(params![hour, profile, category, n, blocked])?;
                }
            }
            if !audits.is_empty() {
                let mut stmt = tx.prepare_cached(INSERT_AUDIT)?;
                for a in audits {
                    stmt.execute(params![a.at_unix_ms, a.actor, a.action, a.detail, a.reason])?;
                }
            }
            if !alerts.is_empty() {
                let mut stmt = tx.prepare_cached(INSERT_ALERT)?;
                for a in alerts {
                    stmt.execute(params![
                        a.at_unix_ms,
                        i64::try_from(a.alert_id).unwrap_or(i64::MAX),
                        a.channel,
                        a.outcome,
                        a.category,
                        a.device,
                        a.name,
                        i64::try_from(a.events).unwrap_or(i64::MAX),
                    ])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// Makes the next id of every table with kept ids at least `floor`.
pub(super) fn reseed_ids(conn: &Connection, floor: i64) -> rusqlite::Result<()> {
    for table in ["blocked", "audit", "alerts_sent"] {
        let highest: i64 = conn.query_row(
            &format!("SELECT COALESCE(max(id), 0) FROM {table}"),
            [],
            |r| r.get(0),
        )?;
        conn.execute("DELETE FROM sqlite_sequence WHERE name = ?1", [table])?;
        conn.execute(
            "INSERT INTO sqlite_sequence (name, seq) VALUES (?1, ?2)",
            params![table, floor.max(highest)],
        )?;
    }
    Ok(())
}
