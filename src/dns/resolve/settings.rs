//! What a question is answered with and who asked it: the settings in
//! force (replaced whole on a reload) and the client as the listener saw
//! it. Every stage reads these; they depend on no stage.

use std::net::IpAddr;
use std::sync::Arc;

use crate::config::{BlockingConfig, CircumventionConfig, QueryLimits};
use crate::journal::LookupTally;
use crate::metrics::ProfileCounters;
use crate::policy::Policy;

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
    pub blocking: BlockingConfig,
    pub circumvention: CircumventionConfig,
    /// How fast each client may ask, and the minimal ANY answer.
    pub limits: QueryLimits,
    /// The `[[listen]]` addresses, for the log's VLAN column.
    pub listeners: Vec<String>,
    /// The `/metrics` counters of these settings' profiles.
    pub counters: ProfileCounters,
    /// The hourly figures' counts of allowed lookups, by profile.
    pub lookups: LookupTally,
}
