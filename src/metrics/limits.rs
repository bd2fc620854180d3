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
        let counters = LimitCounters {
            dropped: limited.get_or_create(&[("action", "dropped")]).clone(),
            slipped: limited.get_or_create(&[("action", "slipped")]).clone(),
            refused: limited.get_or_create(&[("action", "refused")]).clone(),
            dns_tcp_closed: closed.get_or_create(&[("server", "dns_tcp")]).clone(),
            web_closed: closed.get_or_create(&[("server", "web")]).clone(),
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
