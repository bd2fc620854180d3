//! The central shippers' figures for `/metrics` (src/ship): per destination,
//! rows taken, rows still waiting in the block log, rows retention deleted
//! before they were taken, and whether the destination is reachable. The
//! shippers set them; a scrape reads them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// One destination's figures ("postgres", "syslog").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShipFigures {
    /// Rows the destination acknowledged since start.
    pub shipped: u64,
    /// Rows in the block log it has not taken yet.
    pub backlog: u64,
    /// Rows retention deleted before it took them (kept in the block log,
    /// so the count survives restarts).
    pub dropped: u64,
    /// The last attempt reached it.
    pub up: bool,
    /// Why the last attempt failed, while failing.
    pub error: Option<String>,
    /// When it last acknowledged a batch (Unix ms).
    pub last_shipped_unix_ms: Option<i64>,
}

/// Every destination's figures.
#[derive(Debug, Default)]
pub struct Shipping(Mutex<BTreeMap<String, ShipFigures>>);

impl Shipping {
    pub fn update(&self, destination: &str, change: impl FnOnce(&mut ShipFigures)) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        change(map.entry(destination.to_string()).or_default());
    }

    /// The figures now, by destination.
    pub fn snapshot(&self) -> BTreeMap<String, ShipFigures> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A family's name, help, type and how its value is read.
type Family = (
    &'static str,
    &'static str,
    MetricType,
    fn(&ShipFigures) -> u64,
);

impl Collector for Shipping {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let figures = self.snapshot();
        if figures.is_empty() {
            return Ok(());
        }
        let families: [Family; 4] = [
            (
                "lollipop_ship_shipped",
                "Rows (blocked lookups, alerts, audit entries) the trust's central log acknowledged, by destination.",
                MetricType::Counter,
                |f| f.shipped,
            ),
            (
                "lollipop_ship_backlog_rows",
                "Rows in the block log not yet taken by the central log, by destination.",
                MetricType::Gauge,
                |f| f.backlog,
            ),
            (
                "lollipop_ship_dropped",
                "Rows retention deleted before the central log took them, by destination.",
                MetricType::Counter,
                |f| f.dropped,
            ),
            (
                "lollipop_ship_up",
                "1 when the last attempt to reach the central log succeeded, by destination.",
                MetricType::Gauge,
                |f| u64::from(f.up),
            ),
        ];
        for (name, help, kind, value) in families {
            let mut family = encoder.encode_descriptor(name, help, None, kind)?;
            for (destination, f) in &figures {
                let labels = [("destination", destination.as_str())];
                match kind {
                    MetricType::Counter => {
                        ConstCounter::new(value(f)).encode(family.encode_family(&labels)?)?
                    }
                    _ => ConstGauge::new(value(f) as i64).encode(family.encode_family(&labels)?)?,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;
    use std::sync::Arc;

    #[test]
    fn figures_are_written_per_destination() {
        let shipping = Arc::new(Shipping::default());
        shipping.update("postgres", |f| {
            f.shipped = 7;
            f.backlog = 3;
            f.dropped = 2;
            f.up = true;
        });
        let mut registry = Registry::default();
        registry.register_collector(Box::new(shipping.clone()));
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).unwrap();
        assert!(
            out.contains("lollipop_ship_shipped_total{destination=\"postgres\"} 7"),
            "{out}"
        );
        assert!(
            out.contains("lollipop_ship_backlog_rows{destination=\"postgres\"} 3"),
            "{out}"
        );
        assert!(
            out.contains("lollipop_ship_dropped_total{destination=\"postgres\"} 2"),
            "{out}"
        );
        assert!(
            out.contains("lollipop_ship_up{destination=\"postgres\"} 1"),
            "{out}"
        );
    }
}
