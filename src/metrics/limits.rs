//! The abuse limits' counters: queries over a rate limit (dropped, answered
//! TC=1 or REFUSED) and connections closed at once because a cap was
//! reached. A flood is seen here, as numbers, never as a log line per
//! packet.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

type Labels = [(&'static str, &'static str); 1];

/// One counter per outcome, taken from its family once, so counting is an
/// atomic add with no map lookup.
#[derive(Debug, Clone, Default)]
pub struct LimitCounters {
    /// Over the query rate on UDP: nothing sent.
    pub dropped: Counter,
    /// Over the query rate on UDP: an empty answer with TC set.
    pub slipped: Counter,
    /// Over the query rate on TCP: REFUSED.
    pub refused: Counter,
    /// DNS-over-TCP connections closed at once (total or per-client cap).
    pub dns_tcp_closed: Counter,
    /// Status-page connections closed at once (connection cap).
    pub web_closed: Counter,
}

impl LimitCounters {
    pub(super) fn register(registry: &mut Registry) -> LimitCounters {
        let limited = Family::<Labels, Counter>::default();
        let closed = Family::<Labels, Counter>::default();
        // One at a time: the family's read guard must be gone before the
        // next label is created (which takes its write lock).
        let counter = |family: &Family<Labels, Counter>, label| -> Counter {
            family.get_or_create(&[label]).clone()
        };
        let counters = LimitCounters {
            dropped: counter(&limited, ("action", "dropped")),
            slipped: counter(&limited, ("action", "slipped")),
            refused: counter(&limited, ("action", "refused")),
            dns_tcp_closed: counter(&closed, ("server", "dns_tcp")),
            web_closed: counter(&closed, ("server", "web")),
        };
        registry.register(
            "lollipop_rate_limited",
            "Queries over a client's rate limit ([limits]): dropped, slipped (answered empty with TC=1) or refused (TCP).",
            limited,
        );
        registry.register(
            "lollipop_connections_refused",
            "Connections closed at once because a [limits] connection cap was reached, by server.",
            closed,
        );
        counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_is_registered_without_deadlock_and_counted_apart() {
        let mut registry = Registry::default();
        let counters = LimitCounters::register(&mut registry);
        counters.dropped.inc();
        counters.slipped.inc();
        counters.slipped.inc();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        assert!(
            text.contains("lollipop_rate_limited_total{action=\"dropped\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("lollipop_rate_limited_total{action=\"slipped\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("lollipop_connections_refused_total{server=\"web\"} 0"),
            "{text}"
        );
    }
}
