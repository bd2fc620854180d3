//! The trust's central PostgreSQL as the dashboard reads it: the tables the
//! school boxes ship to (boxes, blocked, alerts, audit), queried for the
//! week's figures, and the retention purge that deletes rows older than the
//! schools keep theirs. Nothing else here writes.

use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

/// One school box and how it is doing.
#[derive(Debug, Clone)]
pub struct BoxHealth {
    pub box_id: String,
    pub school: String,
    /// Seconds since it last reported.
    pub seen_ago: i64,
    pub lists_stale: bool,
    pub alerts_configured: bool,
    pub version: String,
}

/// Blocked attempts of one school in one category.
#[derive(Debug, Clone)]
pub struct CategoryCount {
    pub school: String,
    pub category: String,
    pub count: i64,
}

/// One alert sent (or one blocked attempt in a sensitive category).
#[derive(Debug, Clone)]
pub struct Event {
    pub school: String,
    /// Unix seconds.
    pub at: i64,
    pub category: String,
    pub device: String,
    pub owner: String,
    pub name: String,
    /// How an alert went out (`email`, `webhook`); empty for an attempt.
    pub channel: String,
    /// Whether the alert reached its channel (the box ships failed
    /// deliveries too, with outcome `failed`).
    pub delivered: bool,
}

/// A week of one school (or of the whole trust): what the weekly report
/// shows.
#[derive(Debug, Clone, Default)]
pub struct Week {
    pub blocked: i64,
    pub alerts: i64,
    pub by_category: Vec<(String, i64)>,
    pub by_profile: Vec<(String, i64)>,
    pub top_names: Vec<(String, i64)>,
}

/// How to reach the database: its connection string, and TLS with the
/// public web roots plus the trust's own CA (used as the string's
/// `sslmode` says: `require` for a database across a network).
#[derive(Clone)]
pub struct Database {
    pub url: String,
    pub tls: MakeRustlsConnect,
}

impl Database {
    pub fn new(url: &str, ca_file: Option<&std::path::Path>) -> anyhow::Result<Database> {
        let roots: Vec<std::path::PathBuf> = ca_file
            .map(std::path::Path::to_path_buf)
            .into_iter()
            .collect();
        Ok(Database {
            url: url.to_string(),
            tls: MakeRustlsConnect::new(crate::dns::resolve::forward::tls_client_config(&roots)?),
        })
    }
}

/// A connection to the trust's database.
pub struct Connection {
    pub client: Client,
}

/// Blocked tries: a row's `count` holds the browser retries the box folded
/// into it (`src/ship/postgres_schema.sql`), so the figures match the
/// school's own report.
const TRIES: &str = "coalesce(sum(k.count), 0)::bigint";

/// A blocked row's category, or for a row without one why it was blocked,
/// in the school's log's words: outside an under-5 walled garden, or by a
/// rule of the school's own.
const CATEGORY: &str = "coalesce(k.category, CASE k.action WHEN 'walled-garden' \
     THEN 'not on the approved list' ELSE 'blocked by the school' END)";

/// Connects for one request: a small dashboard, so no pool to go stale.
pub async fn connect(database: &Database) -> Result<Connection, String> {
    Ok(Connection {
        client: open(database).await?,
    })
}

async fn open(database: &Database) -> Result<Client, String> {
    let (client, connection) = tokio_postgres::connect(&database.url, database.tls.clone())
        .await
        .map_err(|error| format!("cannot reach the trust's database: {error}"))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!("the trust's database connection ended: {error}");
        }
    });
    Ok(client)
}

fn failed(what: &str) -> impl Fn(tokio_postgres::Error) -> String + '_ {
    move |error| format!("cannot read {what} from the trust's database: {error}")
}

pub async fn boxes(db: &Connection) -> Result<Vec<BoxHealth>, String> {
    let rows = db
        .client
        .query(
            "SELECT box_id, school,
                    greatest(0, extract(epoch from now() - last_seen))::bigint,
                    lists_stale, alerts_configured, version
             FROM boxes ORDER BY school, box_id",
            &[],
        )
        .await
        .map_err(failed("the schools"))?;
    rows.iter()
        .map(|row| {
            Ok(BoxHealth {
                box_id: row.try_get(0)?,
                school: row.try_get(1)?,
                seen_ago: row.try_get(2)?,
                lists_stale: row.try_get(3)?,
                alerts_configured: row.try_get(4)?,
                version: row.try_get(5)?,
            })
        })
        .collect::<Result<_, _>>()
        .map_err(failed("the schools"))
}

/// Blocked attempts in the last seven days, by school and category.
pub async fn blocked_this_week(db: &Connection) -> Result<Vec<CategoryCount>, String> {
    let rows = db
        .client
        .query(
            &format!(
                "SELECT b.school, {CATEGORY}, {TRIES}
                 FROM blocked k JOIN boxes b USING (box_id)
                 WHERE k.at >= now() - interval '7 days'
                 GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2"
            ),
            &[],
        )
        .await
        .map_err(failed("the blocked attempts"))?;
    rows.iter()
        .map(|row| {
            Ok(CategoryCount {
                school: row.try_get(0)?,
                category: row.try_get(1)?,
                count: row.try_get(2)?,
            })
        })
        .collect::<Result<_, _>>()
        .map_err(failed("the blocked attempts"))
}

/// The alerts of the last seven days, delivered or not, newest first.
pub async fn alerts_this_week(db: &Connection) -> Result<Vec<Event>, String> {
    let rows = db
        .client
        .query(
            "SELECT b.school, extract(epoch from a.at)::bigint, a.category, a.device, '',
                    coalesce(a.name, ''), a.channel, a.outcome = 'sent'
             FROM alerts a JOIN boxes b USING (box_id)
             WHERE a.at >= now() - interval '7 days'
             ORDER BY a.at DESC LIMIT 200",
            &[],
        )
        .await
        .map_err(failed("the alerts"))?;
    events(&rows).map_err(failed("the alerts"))
}

/// Blocked attempts in the sensitive categories this week, newest first,
/// with their devices and owners (shown to the admin and the DSL only).
pub async fn sensitive_this_week(db: &Connection) -> Result<Vec<Event>, String> {
    let sensitive: Vec<String> = crate::admin::SENSITIVE_CATEGORIES
        .iter()
        .map(|c| c.to_string())
        .collect();
    let rows = db
        .client
        .query(
            "SELECT b.school, extract(epoch from k.at)::bigint, k.category,
                    coalesce(k.device, k.client), coalesce(k.owner, ''), k.name, '', true
             FROM blocked k JOIN boxes b USING (box_id)
             WHERE k.at >= now() - interval '7 days' AND k.category = ANY($1)
             ORDER BY k.at DESC LIMIT 200",
            &[&sensitive],
        )
        .await
        .map_err(failed("the safeguarding attempts"))?;
    events(&rows).map_err(failed("the safeguarding attempts"))
}

/// Events from rows of (school, at, category, device, owner, name,
/// channel, delivered).
fn events(rows: &[tokio_postgres::Row]) -> Result<Vec<Event>, tokio_postgres::Error> {
    rows.iter()
        .map(|row| {
            Ok(Event {
                school: row.try_get(0)?,
                at: row.try_get(1)?,
                category: row.try_get(2)?,
                device: row.try_get(3)?,
                owner: row.try_get(4)?,
                name: row.try_get(5)?,
                channel: row.try_get(6)?,
                delivered: row.try_get(7)?,
            })
        })
        .collect()
}

/// The last seven days of one school (every box whose heartbeat gives that
/// school's name: a pair's two boxes are one school), or of every box with
/// `None`.
pub async fn week(db: &Connection, school: Option<&str>) -> Result<Week, String> {
    let client = &db.client;
    let counted = |sql: String| async move {
        client
            .query(&sql, &[&school])
            .await
            .and_then(|rows| {
                rows.iter()
                    .map(|row| Ok((row.try_get::<_, String>(0)?, row.try_get::<_, i64>(1)?)))
                    .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            })
            .map_err(failed("the weekly report"))
    };
    let total = |sql: String| async move {
        client
            .query_one(&sql, &[&school])
            .await
            .and_then(|row| row.try_get::<_, i64>(0))
            .map_err(failed("the weekly report"))
    };
    let this_week = "k.at >= now() - interval '7 days' AND ($1::text IS NULL OR k.box_id IN \
         (SELECT box_id FROM boxes WHERE school = $1))";
    Ok(Week {
        blocked: total(format!("SELECT {TRIES} FROM blocked k WHERE {this_week}")).await?,
        // Alerts that reached the safeguarding lead, as the school's own
        // report counts them; a failed delivery is shown on the dashboard.
        alerts: total(format!(
            "SELECT count(*) FROM alerts k WHERE {this_week} AND k.outcome = 'sent'"
        ))
        .await?,
        by_category: counted(format!(
            "SELECT {CATEGORY}, {TRIES} FROM blocked k
             WHERE {this_week} GROUP BY 1 ORDER BY 2 DESC, 1"
        ))
        .await?,
        by_profile: counted(format!(
            "SELECT k.profile, {TRIES} FROM blocked k
             WHERE {this_week} GROUP BY 1 ORDER BY 2 DESC, 1"
        ))
        .await?,
        // A licensed list's names (locked, its entry withheld) are counted
        // above but never listed, as in the school's own report.
        top_names: counted(format!(
            "SELECT k.name, {TRIES} FROM blocked k
             WHERE {this_week} AND (k.rule IS NOT NULL OR NOT k.locked)
             GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10"
        ))
        .await?,
    })
}

/// Deletes blocked attempts, alerts and audit rows older than
/// `retention_days`: the trust keeps nothing longer than the schools do.
/// The number of rows deleted.
pub async fn purge(db: &Connection, retention_days: u32) -> Result<u64, String> {
    let days = i32::try_from(retention_days).unwrap_or(i32::MAX);
    let mut deleted = 0;
    for table in ["blocked", "alerts", "audit"] {
        deleted += db
            .client
            .execute(
                &format!("DELETE FROM {table} WHERE at < now() - make_interval(days => $1)"),
                &[&days],
            )
            .await
            .map_err(|error| format!("cannot purge old rows from {table}: {error}"))?;
    }
    Ok(deleted)
}
