//! `[resolver]` and `[rebinding]`: forwarding or recursion, DNSSEC
//! validation, the root hints and trust anchor, how the upstreams are asked (time-out,
//! the answer deadline, serve-stale and failure caching, cache budget,
//! lookups in flight and each client's share of them) and
//! which upstream answers are kept from clients (private addresses for
//! public names), with their defaults and checks.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{Problems, parse_network};

/// The cache budget when the config names none. An answer costs about
/// 0.8 KiB here with one address and 1.6 KiB as a CDN alias with two
/// (decoded records, their wire copy, the key and the table's overhead), so
/// 32 MiB holds some 20,000–40,000 answers: more than the distinct names a
/// primary school looks up in a day, in a small part of the memory of even
/// a 1 GB Raspberry Pi.
pub const DEFAULT_CACHE_MB: u64 = 32;

/// Above this a typing slip (`cache_mb = 320000`) is more likely than a wish.
const MAX_CACHE_MB: u64 = 65_536;

/// How much cache an old `cache_entries` count stood for: 2 KiB an answer,
/// above the typical cost, so an upgraded school keeps room for at least
/// the answers it had.
const LEGACY_BYTES_PER_ENTRY: u64 = 2048;

/// Where answers come from: the `[[upstream]]` resolvers, or the
/// authoritative servers themselves, from the root down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ResolverMode {
    #[default]
    Forward,
    Recursive,
}

/// Whether answers are checked against DNSSEC signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DnssecMode {
    Validate,
    Off,
}

/// The root hints shipped with Lollipop, under `lists_dir`.
pub const DEFAULT_ROOT_HINTS: &str = "dns/root.hints";

/// The root trust anchor shipped with Lollipop, under `lists_dir`.
pub const DEFAULT_TRUST_ANCHOR: &str = "dns/root.key";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolverConfig {
    /// "forward" (the default) or "recursive".
    #[serde(default)]
    pub mode: ResolverMode,
    /// "validate" or "off"; unset: validate when recursive, off when
    /// forwarding (see [`Self::dnssec_mode`]).
    pub dnssec: Option<Spanned<DnssecMode>>,
    /// The root servers' addresses, for recursion (default
    /// `<lists_dir>/dns/root.hints`).
    pub root_hints: Option<PathBuf>,
    /// The root's DNSSEC keys, for validation (default
    /// `<lists_dir>/dns/root.key`).
    pub trust_anchor: Option<PathBuf>,
    /// Where the list updater checks the root's key digests (IANA's
    /// root-anchors.xml, RFC 7958) to renew the trust anchor when the root
    /// key changes; "" turns that off. Not used when `trust_anchor` names
    /// a file: that file is the technician's.
    #[serde(default = "default_trust_anchor_url")]
    pub trust_anchor_url: String,
    /// Networks whose name servers recursion may ask although they are
    /// private, loopback or otherwise not on the public internet (which it
    /// otherwise refuses, against rebinding and SSRF through delegations):
    /// a lab or test hierarchy. The school's own servers belong in
    /// `[[zones]]` instead.
    #[serde(default)]
    pub allow_servers: Vec<Spanned<String>>,
    /// The file whose presence says NTP has set the clock (default
    /// systemd-timesyncd's `/run/systemd/timesync/synchronized`): until
    /// then, or until the clock is past the saved time, DNSSEC does not
    /// judge signatures by it.
    pub clock_synced_file: Option<PathBuf>,
    /// Where the time is saved at shutdown and hourly (default
    /// `<data_dir>/clock-saved`).
    pub clock_state_file: Option<PathBuf>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_attempts")]
    pub attempts: usize,
    /// The response cache's budget in MiB (default [`DEFAULT_CACHE_MB`]).
    pub cache_mb: Option<u64>,
    /// The key `cache_mb` replaced; still read, so a config written for an
    /// older release keeps working after an upgrade (see [`Self::cache_bytes`]).
    pub cache_entries: Option<Spanned<u64>>,
    /// Upstream lookups allowed at once; beyond this a query gets SERVFAIL
    /// at once, so a flood cannot pile up waiting tasks.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// How many of those one client address may hold (default: see
    /// [`Self::per_client_share`]).
    pub max_in_flight_per_client: Option<Spanned<usize>>,
    /// Clients exempt from the per-client share: a domain controller or
    /// another resolver that forwards for many devices from one address.
    #[serde(default)]
    pub share_exempt_networks: Vec<Spanned<String>>,
    /// Every query is answered within this many milliseconds, whatever the
    /// upstreams do: a stub resolver gives up at 5 s.
    #[serde(default = "default_answer_within_ms")]
    pub answer_within_ms: u64,
    /// How long past its TTL an answer is kept, to be served stale when
    /// the upstreams do not answer (RFC 8767); 0 turns serve-stale off.
    #[serde(default = "default_serve_stale_secs")]
    pub serve_stale_secs: u64,
    /// With a stale answer held, how long the upstream's is waited for
    /// before the stale one is served (RFC 8767 suggests 1.8 s).
    #[serde(default = "default_stale_answer_after_ms")]
    pub stale_answer_after_ms: u64,
    /// How long a failed lookup is remembered (RFC 9520: 1 s to 5 min; 0: not).
    #[serde(default = "default_failure_cache_secs")]
    pub failure_cache_secs: u32,
    /// Refresh popular answers before they run out.
    #[serde(default = "yes")]
    pub prefetch: bool,
}

fn default_answer_within_ms() -> u64 {
    4000
}

fn default_serve_stale_secs() -> u64 {
    86_400
}

fn default_stale_answer_after_ms() -> u64 {
    1800
}

fn default_failure_cache_secs() -> u32 {
    5
}

/// A week: RFC 8767 suggests 1 to 3 days; more is almost surely a slip.
const MAX_SERVE_STALE_SECS: u64 = 7 * 86_400;

fn default_timeout_ms() -> u64 {
    2000
}

fn default_attempts() -> usize {
    2
}

/// IANA's published root key digests (RFC 7958).
pub const IANA_ROOT_ANCHORS: &str = "https://data.iana.org/root-anchors/root-anchors.xml";

fn default_trust_anchor_url() -> String {
    IANA_ROOT_ANCHORS.into()
}

fn default_max_in_flight() -> usize {
    4096
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            mode: ResolverMode::Forward,
            dnssec: None,
            root_hints: None,
            trust_anchor: None,
            trust_anchor_url: default_trust_anchor_url(),
            allow_servers: Vec::new(),
            clock_synced_file: None,
            clock_state_file: None,
            timeout_ms: default_timeout_ms(),
            attempts: default_attempts(),
            cache_mb: None,
            cache_entries: None,
            max_in_flight: default_max_in_flight(),
            max_in_flight_per_client: None,
            share_exempt_networks: Vec::new(),
            answer_within_ms: default_answer_within_ms(),
            serve_stale_secs: default_serve_stale_secs(),
            stale_answer_after_ms: default_stale_answer_after_ms(),
            failure_cache_secs: default_failure_cache_secs(),
            prefetch: true,
        }
    }
}

impl ResolverConfig {
    /// Validation is on by default when recursing (nothing else checks the
    /// answers) and off when forwarding, since an LA's filtering resolver
    /// rewrites answers and would fail validation by design.
    pub fn dnssec_mode(&self) -> DnssecMode {
        match (&self.dnssec, self.mode) {
            (Some(mode), _) => *mode.get_ref(),
            (None, ResolverMode::Recursive) => DnssecMode::Validate,
            (None, ResolverMode::Forward) => DnssecMode::Off,
        }
    }

    /// The root hints file, relative paths taken from `lists_dir` when
    /// unset (`lists_dir` itself already resolved by the caller).
    pub fn root_hints_in(&self, lists_dir: &Path) -> PathBuf {
        self.root_hints
            .clone()
            .unwrap_or_else(|| lists_dir.join(DEFAULT_ROOT_HINTS))
    }

    /// The trust anchor file, as [`Self::root_hints_in`].
    pub fn trust_anchor_in(&self, lists_dir: &Path) -> PathBuf {
        self.trust_anchor
            .clone()
            .unwrap_or_else(|| lists_dir.join(DEFAULT_TRUST_ANCHOR))
    }

    /// The response cache's budget in bytes: `cache_mb`, or for a config
    /// that still says `cache_entries`, 2 KiB an entry (at least 1 MiB).
    pub fn cache_bytes(&self) -> usize {
        let mb = match (self.cache_mb, &self.cache_entries) {
            (Some(mb), _) => mb,
            (None, Some(entries)) => {
                (entries.get_ref().saturating_mul(LEGACY_BYTES_PER_ENTRY) >> 20).max(1)
            }
            (None, None) => DEFAULT_CACHE_MB,
        };
        usize::try_from(mb.min(MAX_CACHE_MB) << 20).unwrap_or(usize::MAX)
    }

    /// How many upstream lookups one client may have in flight: the
    /// config's figure, or a sixteenth of `max_in_flight` but at least 16
    /// (256 of the default 4,096). A healthy upstream answers in tens of
    /// milliseconds, so 256 at once is thousands of uncached names a second,
    /// far beyond a classroom behind one NAT address; a device flooding a
    /// domain whose servers never answer holds at most that many, and the
    /// rest stay free for everyone else.
    pub fn per_client_share(&self) -> usize {
        let share = match &self.max_in_flight_per_client {
            Some(share) => *share.get_ref(),
            None => (self.max_in_flight / 16).max(16),
        };
        share.clamp(1, self.max_in_flight.max(1))
    }

    pub(super) fn validate(&self, problems: &mut Problems<'_>) {
        if self.timeout_ms == 0 || self.attempts == 0 {
            problems.at(
                &(0..0),
                "resolver".into(),
                "timeout_ms and attempts must be at least 1".into(),
            );
        }
        if self.max_in_flight == 0 {
            problems.at(
                &(0..0),
                "resolver.max_in_flight".into(),
                "max_in_flight must be at least 1 (4096 is the default)".into(),
            );
        }
        match self.cache_mb {
            Some(mb) if mb == 0 || mb > MAX_CACHE_MB => problems.at(
                &(0..0),
                "resolver.cache_mb".into(),
                format!(
                    "cache_mb must be between 1 and {MAX_CACHE_MB} (MiB of memory for cached answers; {DEFAULT_CACHE_MB} is the default)"
                ),
            ),
            _ => {}
        }
        if let (Some(_), Some(entries)) = (self.cache_mb, &self.cache_entries) {
            problems.at(
                &entries.span(),
                "resolver.cache_entries".into(),
                "cache_entries is replaced by cache_mb: remove cache_entries".into(),
            );
        }
        if let Some(share) = &self.max_in_flight_per_client
            && (*share.get_ref() == 0 || *share.get_ref() > self.max_in_flight)
        {
            problems.at(
                &share.span(),
                "resolver.max_in_flight_per_client".into(),
                format!(
                    "max_in_flight_per_client must be between 1 and max_in_flight ({}); leave it out for the default",
                    self.max_in_flight
                ),
            );
        }
        if !(500..=30_000).contains(&self.answer_within_ms) {
            problems.at(
                &(0..0),
                "resolver.answer_within_ms".into(),
                "answer_within_ms must be between 500 and 30000 (4000 is the default: stub resolvers give up at 5 s)".into(),
            );
        }
        if self.stale_answer_after_ms == 0 || self.stale_answer_after_ms >= self.answer_within_ms {
            problems.at(
                &(0..0),
                "resolver.stale_answer_after_ms".into(),
                format!(
                    "stale_answer_after_ms must be at least 1 and less than answer_within_ms ({}); 1800 is the default",
                    self.answer_within_ms
                ),
            );
        }
        if self.serve_stale_secs > MAX_SERVE_STALE_SECS {
            problems.at(
                &(0..0),
                "resolver.serve_stale_secs".into(),
                format!("serve_stale_secs must be at most {MAX_SERVE_STALE_SECS} (a week); 86400 is the default, 0 turns it off"),
            );
        }
        if self.failure_cache_secs > 300 {
            problems.at(
                &(0..0),
                "resolver.failure_cache_secs".into(),
                "failure_cache_secs must be at most 300 (RFC 9520); 5 is the default, 0 turns it off".into(),
            );
        }
        for (i, network) in self.allow_servers.iter().enumerate() {
            if let Err(message) = parse_network(network.get_ref()) {
                problems.at(
                    &network.span(),
                    format!("resolver.allow_servers[{i}]"),
                    message,
                );
            }
        }
        for (i, network) in self.share_exempt_networks.iter().enumerate() {
            if let Err(message) = parse_network(network.get_ref()) {
                problems.at(
                    &network.span(),
                    format!("resolver.share_exempt_networks[{i}]"),
                    message,
                );
            }
        }
    }
}

/// `[rebinding]`: DNS-rebinding protection. An upstream answer that gives
/// a public name a private, loopback or link-local address would let a web
/// page reach devices inside the school; such addresses are dropped.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebindingConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Domains (and their subdomains) whose public names may point inside,
    /// e.g. the school's own domain served by its domain controller.
    #[serde(default)]
    pub allow_domains: Vec<Spanned<String>>,
}

fn yes() -> bool {
    true
}

impl Default for RebindingConfig {
    fn default() -> Self {
        RebindingConfig {
            enabled: true,
            allow_domains: Vec::new(),
        }
    }
}

impl RebindingConfig {
    pub(super) fn validate(&self, problems: &mut Problems<'_>) {
        for (i, domain) in self.allow_domains.iter().enumerate() {
            if let Err(error) = crate::name::normalise_domain(domain.get_ref()) {
                problems.at(
                    &domain.span(),
                    format!("rebinding.allow_domains[{i}]"),
                    format!("'{}' is not a domain: {error}", domain.get_ref()),
                );
            }
        }
    }
}
