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
    /// The `[[listen]]` addresses, for the log's VLAN column.
    pub listeners: Vec<String>,
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
