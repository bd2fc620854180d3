//! Ships the block log, the alerts sent and the audit trail to a trust's
//! central engines (issue 20): its PostgreSQL (exactly once, by idempotent
//! keys) and/or its rsyslog or syslog-ng (RFC 5424 over TCP, at least once,
//! each message carrying its key).
//!
//! The block log itself is the on-disk buffer: an event is kept once it is
//! in the block log, each destination has a cursor stored beside the rows,
//! and a destination that is away for a day catches up when it is back.
//! What retention deletes before it was shipped is counted. Nothing here
//! touches the DNS path: the resolver writes the block log as it always has.

mod identity;
pub mod postgres;
mod run;
pub mod syslog;
pub mod syslog_format;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;

use crate::config::{Config, split_host_port};
use crate::journal::{Outbox, ShipBatch};
use crate::metrics::{ShipFigures, Shipping};

pub use identity::box_id;

/// Somewhere the block log is shipped to.
#[async_trait]
pub trait Destination: Send {
    /// "postgres" or "syslog": the cursor's and the figures' name.
    fn name(&self) -> &'static str;
    /// Delivers `batch`; `Ok` only once the destination has it.
    async fn send(&mut self, batch: &ShipBatch) -> Result<(), String>;
    /// Tells the destination the box is alive, each minute.
    async fn heartbeat(&mut self, _health: &BoxHealth) -> Result<(), String> {
        Ok(())
    }
}

/// What the heartbeat says about the box.
#[derive(Clone, Debug, Default)]
pub struct BoxHealth {
    pub lists_stale: bool,
    pub alerts_configured: bool,
    pub version: String,
    pub health: serde_json::Value,
}

/// Builds the heartbeat's health from the shippers' own figures; the
/// service supplies it (it knows the lists, the alerts and the log).
pub type HealthFn = Arc<dyn Fn(&BTreeMap<String, ShipFigures>) -> BoxHealth + Send + Sync>;

/// The running shippers; they stop when this is dropped.
pub struct Shippers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub box_id: String,
}

impl Drop for Shippers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts a shipper for each destination in `[ship]`; `None` when there is
/// none. An error (no box id, a CA file that cannot be read) stops shipping
/// only: the caller logs it and DNS goes on.
pub fn start(
    config: &Config,
    figures: Arc<Shipping>,
    health: HealthFn,
) -> Result<Option<Shippers>> {
    let ship = &config.ship;
    if ship.postgres.is_none() && ship.syslog.is_none() {
        return Ok(None);
    }
    let data_dir = config.resolve_path(&config.server.data_dir);
    let box_id = box_id(&data_dir)?;
    let school = config.ship_school();
    let mut destinations: Vec<Box<dyn Destination>> = Vec::new();
    if let Some(pg) = &ship.postgres {
        let password =
            match &pg.password_file {
                Some(path) => {
                    let path = config.resolve_path(path);
                    Some(std::fs::read_to_string(&path).with_context(|| {
                        format!("[ship.postgres] password_file {}", path.display())
                    })?)
                }
                None => None,
            };
        let roots: Vec<_> = pg.ca_file.iter().map(|p| config.resolve_path(p)).collect();
        destinations.push(Box::new(postgres::Postgres::new(
            pg.url.get_ref(),
            password,
            &roots,
            &box_id,
            &school,
        )?));
    }
    if let Some(syslog) = &ship.syslog {
        let (host, port) = split_host_port(syslog.address.get_ref())
            .map_err(|e| anyhow::anyhow!("[ship.syslog] address: {e}"))?;
        let roots: Vec<_> = syslog
            .ca_file
            .iter()
            .map(|p| config.resolve_path(p))
            .collect();
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let origin = syslog_format::Origin::new(hostname.trim(), &box_id, &school);
        destinations.push(Box::new(syslog::Syslog::new(
            host,
            port,
            syslog.tls.then_some(roots.as_slice()),
            origin,
        )?));
    }
    let names: Vec<String> = destinations.iter().map(|d| d.name().to_string()).collect();
    let journal_path = config.journal_path();
    let tasks = destinations
        .into_iter()
        .map(|destination| {
            let shipper = run::Loop {
                outbox: Arc::new(Mutex::new(Outbox::new(journal_path.clone(), names.clone()))),
                figures: figures.clone(),
                health: health.clone(),
                settle: SETTLE,
            };
            tokio::spawn(shipper.run(destination))
        })
        .collect();
    tracing::info!(box_id, school, destinations = ?names, "shipping to the trust's central log");
    Ok(Some(Shippers { tasks, box_id }))
}

/// How long a blocked row waits before it is shipped: the block log's
/// collapse window (10 s, browser retries added to the row) and its
/// once-a-second write of those repeats, with a margin.
const SETTLE: Duration = Duration::from_secs(12);
