//! What a question is answered with and who asked it: the settings in
//! force (replaced whole on a reload) and the client as the listener saw
//! it. Every stage reads these; they depend on no stage.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::config::{BlockingConfig, CircumventionConfig, QueryLimits};
use crate::journal::LookupTally;
use crate::metrics::ProfileCounters;
use crate::policy::Policy;

use super::rebinding::RebindingGuard;
use super::upstream::CachedUpstream;

/// Who asked, as far as the listener can tell.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub address: IpAddr,
    /// Which `[[listen]]` address the query arrived on.
    pub listener: Option<usize>,
}

/// Everything a query is answered with; replaced whole on a reload, so a
/// query in flight finishes on the settings it started with.
pub struct Settings {
    pub policy: Policy,
    pub upstream: Arc<CachedUpstream>,
    /// Clients that may use the whole pool of upstream lookups, not a
    /// share (a domain controller forwarding for the school).
    pub upstream_share_exempt: Vec<IpNet>,
    /// Which private addresses in upstream answers are dropped.
    pub rebinding: RebindingGuard,
    pub blocking: BlockingConfig,
    pub circumvention: CircumventionConfig,
    /// How fast each client may ask, and the minimal ANY answer.
    pub limits: QueryLimits,
    /// The `[[listen]]` addresses, for the log's VLAN column (shared with
    /// each block event, not copied).
    pub listeners: Vec<Arc<str>>,
    /// How long a DNS-over-TCP connection may wait without a query.
    pub tcp_idle_timeout: std::time::Duration,
    /// The opt-in full query log: allowed lookups are written, not only
    /// counted. In the settings so a reload turns it on or off at once.
    pub full_query_log: bool,
    /// The `/metrics` counters of these settings' profiles.
    pub counters: ProfileCounters,
    /// The hourly figures' counts of allowed lookups, by profile.
    pub lookups: LookupTally,
}

impl Settings {
    /// The `[[listen]]` address a device on the network would ask: the one
    /// whose address shares the device's /24 (IPv4) or /64 (IPv6), as a
    /// VLAN interface serving its rooms does; None when no single listener
    /// does (one address for the whole school, or a device elsewhere).
    pub fn listener_serving(&self, device: IpAddr) -> Option<usize> {
        let serving: Vec<usize> = self
            .listeners
            .iter()
            .enumerate()
            .filter_map(|(i, listener)| {
                let ip = listener.parse::<std::net::SocketAddr>().ok()?.ip();
                same_subnet(ip, device).then_some(i)
            })
            .collect();
        match serving.as_slice() {
            [only] => Some(*only),
            _ => None,
        }
    }
}

/// Whether `listener` (a specific address, not a wildcard) and `device`
/// are on one /24 or /64.
fn same_subnet(listener: IpAddr, device: IpAddr) -> bool {
    if listener.is_unspecified() {
        return false;
    }
    match (listener, device) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets()[..3] == b.octets()[..3],
        (IpAddr::V6(a), IpAddr::V6(b)) => a.octets()[..8] == b.octets()[..8],
        _ => false,
    }
}
