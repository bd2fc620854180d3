//! The trust's PostgreSQL as a destination: creates or brings up to date the
//! schema Lollipop owns (`postgres_schema.sql`), inserts each batch in one
//! transaction with `ON CONFLICT (box_id, event_id) DO NOTHING` (a batch
//! sent again after a crash or a lost answer adds nothing: exactly once),
//! and upserts the box's row in `boxes` each minute.

use std::sync::Arc;

use async_trait::async_trait;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::journal::ShipBatch;

use super::{BoxHealth, Destination};

/// The schema, in one place; each statement may run again.
pub const SCHEMA: &str = include_str!("postgres_schema.sql");

/// The version `postgres_schema.sql` brings the database to.
const SCHEMA_VERSION: i32 = 1;

/// Boxes sharing a database take turns creating the schema.
const SCHEMA_LOCK: i64 = 0x6c6f_6c6c_6970_6f70;

pub struct Postgres {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    client: Option<Client>,
    box_id: String,
    school: String,
}

const INSERT_BLOCKED: &str = "INSERT INTO blocked (box_id, event_id, at, client, device, owner, \
     profile, room, name, category, rule, query_type, list, action, locked, count, last_at) \
     SELECT $1, e, to_timestamp(a / 1000.0), c, d, o, p, r, n, cat, ru, qt, l, ac, lk, \
       cnt::integer, to_timestamp(la / 1000.0) \
     FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], \
       $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], \
       $15::bool[], $16::bigint[], $17::bigint[]) \
       AS t(e, a, c, d, o, p, r, n, cat, ru, qt, l, ac, lk, cnt, la) \
     ON CONFLICT (box_id, event_id) DO NOTHING";
const INSERT_ALERTS: &str = "INSERT INTO alerts (box_id, event_id, at, category, device, name, \
     channel, outcome, events) \
     SELECT $1, e, to_timestamp(a / 1000.0), cat, d, n, ch, oc, ev::integer \
     FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], \
       $8::text[], $9::bigint[]) AS t(e, a, cat, d, n, ch, oc, ev) \
     ON CONFLICT (box_id, event_id) DO NOTHING";
const INSERT_AUDIT: &str = "INSERT INTO audit (box_id, event_id, at, who, action, detail, reason) \
     SELECT $1, e, to_timestamp(a / 1000.0), w, ac, d, r \
     FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[]) \
       AS t(e, a, w, ac, d, r) \
     ON CONFLICT (box_id, event_id) DO NOTHING";
const UPSERT_BOX: &str = "INSERT INTO boxes (box_id, school, last_seen, lists_stale, \
     alerts_configured, version, health) VALUES ($1, $2, now(), $3, $4, $5, $6::text::jsonb) \
     ON CONFLICT (box_id) DO UPDATE SET school = excluded.school, last_seen = excluded.last_seen, \
     lists_stale = excluded.lists_stale, alerts_configured = excluded.alerts_configured, \
     version = excluded.version, health = excluded.health";

impl Postgres {
    /// `url` as in `[ship.postgres]`; `password` read from its file.
    pub fn new(
        url: &str,
        password: Option<String>,
        extra_roots: &[std::path::PathBuf],
        box_id: &str,
        school: &str,
    ) -> anyhow::Result<Postgres> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| anyhow::anyhow!("[ship.postgres] url: {e}"))?;
        if let Some(password) = password {
            config.password(password.trim_end_matches(['\r', '\n']));
        }
        config.application_name("lollipop");
        config.connect_timeout(std::time::Duration::from_secs(10));
        Ok(Postgres {
            config,
            tls: MakeRustlsConnect::new(tls_config(extra_roots)?),
            client: None,
            box_id: box_id.into(),
            school: school.into(),
        })
    }

    async fn client(&mut self) -> Result<&mut Client, String> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            let (mut client, connection) = self
                .config
                .connect(self.tls.clone())
                .await
                .map_err(|e| format!("cannot connect: {}", describe(&e)))?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "central PostgreSQL connection ended");
                }
            });
            if schema_version(&client).await? < SCHEMA_VERSION {
                create_schema(&mut client).await?;
            }
            self.client = Some(client);
        }
        self.client
            .as_mut()
            .ok_or_else(|| "not connected".to_string())
    }

    async fn insert(&mut self, batch: &ShipBatch) -> Result<(), String> {
        let box_id = self.box_id.clone();
        let client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| describe(&e))?;
        if !batch.blocked.is_empty() {
            let rows = &batch.blocked;
            let col =
                |f: fn(&crate::journal::BlockedRow) -> Option<String>| -> Vec<Option<String>> {
                    rows.iter().map(f).collect()
                };
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let at: Vec<i64> = rows.iter().map(|r| r.at_unix_ms).collect();
            let client_ip = col(|r| Some(r.client_ip.clone()));
            let device = col(|r| r.device_name.clone());
            let owner = col(|r| r.owner.clone());
            let profile = col(|r| Some(r.profile.clone()));
            let room = col(|r| r.room.clone());
            let name = col(|r| Some(r.name.clone()));
            let category = col(|r| r.category.clone());
            let rule = col(|r| r.rule.clone());
            let query_type = col(|r| Some(r.query_type.clone()));
            let list = col(|r| r.list.clone());
            let action = col(|r| Some(r.action.clone()));
            let locked: Vec<bool> = rows.iter().map(|r| r.locked).collect();
            let count: Vec<i64> = rows
                .iter()
                .map(|r| r.count.min(i64::from(i32::MAX)))
                .collect();
            let last_at: Vec<i64> = rows.iter().map(|r| r.last_at_unix_ms).collect();
            tx.execute(
                INSERT_BLOCKED,
                &[
                    &box_id,
                    &ids,
                    &at,
                    &client_ip,
                    &device,
                    &owner,
                    &profile,
                    &room,
                    &name,
                    &category,
                    &rule,
                    &query_type,
                    &list,
                    &action,
                    &locked,
                    &count,
                    &last_at,
                ],
            )
            .await
            .map_err(|e| format!("blocked rows not taken: {}", describe(&e)))?;
        }
        if !batch.alerts.is_empty() {
            let rows = &batch.alerts;
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let at: Vec<i64> = rows.iter().map(|r| r.at_unix_ms).collect();
            let category: Vec<&str> = rows.iter().map(|r| r.category.as_str()).collect();
            let device: Vec<&str> = rows.iter().map(|r| r.device.as_str()).collect();
            let name: Vec<Option<&str>> = rows.iter().map(|r| r.name.as_deref()).collect();
            let channel: Vec<&str> = rows.iter().map(|r| r.channel.as_str()).collect();
            let outcome: Vec<&str> = rows.iter().map(|r| r.outcome.as_str()).collect();
            let events: Vec<i64> = rows
                .iter()
                .map(|r| r.events.min(i64::from(i32::MAX)))
                .collect();
            tx.execute(
                INSERT_ALERTS,
                &[
                    &box_id, &ids, &at, &category, &device, &name, &channel, &outcome, &events,
                ],
            )
            .await
            .map_err(|e| format!("alerts not taken: {}", describe(&e)))?;
        }
        if !batch.audit.is_empty() {
            let rows = &batch.audit;
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let at: Vec<i64> = rows.iter().map(|r| r.at_unix_ms).collect();
            let who: Vec<&str> = rows.iter().map(|r| r.who.as_str()).collect();
            let action: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
            let detail: Vec<&str> = rows.iter().map(|r| r.detail.as_str()).collect();
            let reason: Vec<Option<&str>> = rows.iter().map(|r| r.reason.as_deref()).collect();
            tx.execute(
                INSERT_AUDIT,
                &[&box_id, &ids, &at, &who, &action, &detail, &reason],
            )
            .await
            .map_err(|e| format!("audit entries not taken: {}", describe(&e)))?;
        }
        tx.commit().await.map_err(|e| describe(&e))
    }
}

#[async_trait]
impl Destination for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn send(&mut self, batch: &ShipBatch) -> Result<(), String> {
        let result = self.insert(batch).await;
        if result.is_err() {
            // A half-broken connection is not trusted with the next try.
            self.client = None;
        }
        result
    }

    async fn heartbeat(&mut self, health: &BoxHealth) -> Result<(), String> {
        let (box_id, school) = (self.box_id.clone(), self.school.clone());
        let client = self.client().await?;
        let health_json = health.health.to_string();
        let result = client
            .execute(
                UPSERT_BOX,
                &[
                    &box_id,
                    &school,
                    &health.lists_stale,
                    &health.alerts_configured,
                    &health.version,
                    &health_json,
                ],
            )
            .await;
        if let Err(error) = result {
            self.client = None;
            return Err(format!("heartbeat not taken: {}", describe(&error)));
        }
        Ok(())
    }
}

/// The schema version the database holds (0: none yet).
async fn schema_version(client: &Client) -> Result<i32, String> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| describe(&e))?;
    if !exists {
        return Ok(0);
    }
    client
        .query_one("SELECT COALESCE(max(version), 0) FROM schema_version", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| describe(&e))
}

/// Creates or brings up to date the tables, one box at a time. Only run
/// when the database is behind, so a trust may create the tables itself
/// and give the boxes' role no right to create anything.
async fn create_schema(client: &mut Client) -> Result<(), String> {
    let tx = client.transaction().await.map_err(|e| describe(&e))?;
    // "already exists, skipping" for a box that lost the race is not news.
    tx.batch_execute("SET LOCAL client_min_messages = warning")
        .await
        .map_err(|e| describe(&e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await
        .map_err(|e| describe(&e))?;
    tx.batch_execute(SCHEMA)
        .await
        .map_err(|e| format!("cannot create the central tables: {}", describe(&e)))?;
    tx.commit().await.map_err(|e| describe(&e))
}

/// The server's own words where it gave them ("password authentication
/// failed for user ..."), not only "db error".
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => error.to_string(),
    }
}

/// The public web roots plus the CA certificates in `extra_roots`.
pub(super) fn tls_config(
    extra_roots: &[std::path::PathBuf],
) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for path in extra_roots {
        let certificates = CertificateDer::pem_file_iter(path)
            .map_err(|e| anyhow::anyhow!("cannot read ca_file {}: {e}", path.display()))?;
        let mut added = 0;
        for certificate in certificates {
            let certificate = certificate
                .map_err(|e| anyhow::anyhow!("ca_file {} is not valid PEM: {e}", path.display()))?;
            roots
                .add(certificate)
                .map_err(|e| anyhow::anyhow!("ca_file {}: bad certificate: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            anyhow::bail!("ca_file {} holds no PEM certificate", path.display());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS set-up failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
