//! Starts the trust's central log (`crate::ship`) with what only the running
//! service knows: the heartbeat's health (lists, alerts, block log). A
//! failure to start stops shipping only; DNS answers on.

use std::sync::Arc;

use crate::config::Config;
use crate::dns::resolve::pipeline::Pipeline;
use crate::journal::Journal;
use crate::metrics::Metrics;
use crate::ship::{BoxHealth, HealthFn, Shippers};

pub fn start_shipping(
    config: &Config,
    pipeline: &Arc<Pipeline>,
    journal: &Journal,
    metrics: &Arc<Metrics>,
) -> Option<Shippers> {
    let alerts_configured = config.alerts.email.is_some() || config.alerts.webhook.is_some();
    let health_config = config.clone();
    let pipeline = pipeline.clone();
    let journal = journal.clone();
    let health: HealthFn = Arc::new(move |figures| {
        let now = crate::clock::now_unix_secs();
        let settings = pipeline.settings();
        let lists = crate::lists::acquire::health::health(
            &health_config,
            Some(settings.policy.lists.manifest()),
            now,
        );
        let stale: Vec<&str> = lists
            .iter()
            .filter(|list| list.stale())
            .map(|list| list.name.as_str())
            .collect();
        let log = journal.stats();
        let shipping: serde_json::Map<String, serde_json::Value> = figures
            .iter()
            .map(|(name, f)| {
                (
                    name.clone(),
                    serde_json::json!({
                        "backlog": f.backlog,
                        "dropped": f.dropped,
                        "error": f.error,
                    }),
                )
            })
            .collect();
        BoxHealth {
            lists_stale: !stale.is_empty(),
            alerts_configured,
            version: env!("CARGO_PKG_VERSION").to_string(),
            health: serde_json::json!({
                "stale_lists": stale,
                "log_failing": log.failing_since_unix_ms.is_some(),
                "log_dropped": log.dropped,
                "log_bytes": log.db_bytes,
                "shipping": shipping,
            }),
        }
    });
    match crate::ship::start(config, metrics.shipping.clone(), health) {
        Ok(shippers) => shippers,
        Err(error) => {
            tracing::error!("the trust's central log is not being sent: {error:#}");
            None
        }
    }
}
