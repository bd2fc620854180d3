//! The configuration file's schema: every table and key, with its default.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::alerts::{EmailConfig, WebhookConfig};
use crate::clock::TimeZone;
use crate::journal::{DeviceEntry, LeaseFormat};

use super::limits::LimitsConfig;
use super::list_entries::{Archive, ListFormat};
use super::resolver::{RebindingConfig, ResolverConfig};
use super::zones::ZoneConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    #[serde(default)]
    pub listen: Vec<ListenConfig>,
    #[serde(default)]
    pub clients: Vec<ClientRule>,
    #[serde(default)]
    pub blocking: BlockingConfig,
    /// The block page over HTTPS (off unless asked for).
    #[serde(default)]
    pub blockpage: super::BlockPageConfig,
    #[serde(default)]
    pub circumvention: CircumventionConfig,
    #[serde(default)]
    pub upstream: Vec<UpstreamConfig>,
    #[serde(default)]
    pub resolver: ResolverConfig,
    #[serde(default)]
    pub rebinding: RebindingConfig,
    /// The school's own zones, sent to its own servers.
    #[serde(default)]
    pub zones: Vec<ZoneConfig>,
    #[serde(default)]
    pub lists: Vec<ListConfig>,
    #[serde(default)]
    pub name_rules: super::NameRulesConfig,
    #[serde(default)]
    pub updates: UpdatesConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub alerts: AlertsConfig,
    #[serde(default)]
    pub reports: ReportsConfig,
    /// The trust's central log (`config::ship`).
    #[serde(default)]
    pub ship: super::ShipConfig,
    #[serde(default)]
    pub web: WebConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Named devices: `ip` or `mac`, with `name`, and optionally `owner`, `room`.
    #[serde(default)]
    pub devices: Vec<DeviceEntry>,
    /// Required, except that a trust's bundle may bring them all.
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileConfig>,
    /// The trust whose signed policy bundle this school follows.
    #[serde(default)]
    pub trust: Option<super::trust::TrustConfig>,
    /// The trust's bundle merged in when the file was read.
    #[serde(skip)]
    pub bundle: Option<std::sync::Arc<super::trust::BundleInForce>>,
    /// The school day, terms and holidays (`config::calendar`); time rules
    /// need it.
    #[serde(default)]
    pub calendar: Option<super::calendar::CalendarConfig>,
    /// An HA pair (`config::cluster`): this box is the primary, or the
    /// secondary following a primary's policy.
    #[serde(default)]
    pub cluster: Option<super::cluster::ClusterConfig>,
    /// The calendar built from `[calendar]` when the file was read.
    #[serde(skip)]
    pub school_calendar: Option<std::sync::Arc<crate::calendar::Calendar>>,

    /// Where the file came from, for error messages and relative paths.
    #[serde(skip)]
    pub origin: ConfigOrigin,
}

#[derive(Debug, Clone, Default)]
pub struct ConfigOrigin {
    /// The file name shown in messages.
    pub display_name: String,
    /// Relative paths in the file are taken from here.
    pub base_dir: PathBuf,
    /// The file itself, to read again on a reload (None: embedded default).
    pub path: Option<PathBuf>,
    /// The text it was parsed from, to say what a reload changed.
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    #[serde(default = "default_tcp_idle_timeout")]
    pub tcp_idle_timeout_secs: u64,
    #[serde(default)]
    pub allowed_networks: Vec<Spanned<String>>,
    pub default_profile: Spanned<String>,
    /// Where the lists shipped with Lollipop live (services, walled garden).
    #[serde(default = "default_lists_dir")]
    pub lists_dir: PathBuf,
    /// The school's own domain: `lollipop.<school_domain>` is answered with
    /// the appliance's address.
    pub school_domain: Option<Spanned<String>>,
}

fn default_lists_dir() -> PathBuf {
    PathBuf::from("lists")
}

fn default_tcp_idle_timeout() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    pub address: Spanned<String>,
    pub profile: Option<Spanned<String>>,
    /// The room or VLAN as the school calls it ("Oak class Wi-Fi").
    #[serde(default)]
    pub display_name: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRule {
    pub network: Spanned<String>,
    pub profile: Spanned<String>,
    /// The network as the school calls it ("Staff laptops").
    #[serde(default)]
    pub display_name: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BlockAnswer {
    #[default]
    Null,
    Nxdomain,
    Blockpage,
}

impl BlockAnswer {
    /// The name the config and the block log give it.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockAnswer::Null => "null",
            BlockAnswer::Nxdomain => "nxdomain",
            BlockAnswer::Blockpage => "blockpage",
        }
    }
}

impl std::fmt::Display for BlockAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockingConfig {
    #[serde(default)]
    pub answer: BlockAnswer,
    pub block_page_ipv4: Option<std::net::Ipv4Addr>,
    pub block_page_ipv6: Option<std::net::Ipv6Addr>,
    #[serde(default = "default_block_ttl")]
    pub ttl_secs: u32,
    #[serde(default = "default_locked")]
    pub locked_categories: Vec<Spanned<String>>,
}

impl Default for BlockingConfig {
    fn default() -> Self {
        BlockingConfig {
            answer: BlockAnswer::Null,
            block_page_ipv4: None,
            block_page_ipv6: None,
            ttl_secs: default_block_ttl(),
            locked_categories: default_locked(),
        }
    }
}

fn default_block_ttl() -> u32 {
    60
}

fn default_locked() -> Vec<Spanned<String>> {
    ["iwf", "ctiru"]
        .into_iter()
        .map(|name| Spanned::new(0..0, name.to_string()))
        .collect()
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircumventionConfig {
    #[serde(default = "yes")]
    pub doh_canary: bool,
    #[serde(default = "yes")]
    pub private_relay: bool,
    #[serde(default = "yes")]
    pub ddr: bool,
}

impl Default for CircumventionConfig {
    fn default() -> Self {
        CircumventionConfig {
            doh_canary: true,
            private_relay: true,
            ddr: true,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProtocol {
    Udp,
    Tcp,
    Tls,
    Https,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// An IP address, optionally with a port (`9.9.9.9`, `[2620:fe::fe]:853`).
    pub address: Spanned<String>,
    pub protocol: UpstreamProtocol,
    /// The name on the server's TLS certificate (tls and https).
    pub tls_name: Option<String>,
    /// The URL path for DNS-over-HTTPS (default `/dns-query`).
    pub https_path: Option<String>,
    /// Extra PEM certificate authorities to trust for this server (a local
    /// resolver with its own CA); the public web roots are always trusted.
    pub ca_file: Option<PathBuf>,
}

/// One `[[lists]]` entry: a local file, a download, a catalogue source, or
/// a licensed feed. `Config::list_entries` checks it against the catalogue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListConfig {
    pub name: Spanned<String>,
    /// A source from `lists/catalogue.toml`: its URLs, format, archive,
    /// category and cadence are the defaults for the keys below.
    pub catalogue: Option<Spanned<String>>,
    /// A local file (relative to the config file's directory).
    pub path: Option<PathBuf>,
    /// Where to download the list: the first URL, then mirrors in order.
    #[serde(default)]
    pub urls: Vec<String>,
    pub format: Option<ListFormat>,
    pub archive: Option<Archive>,
    pub category: Option<Spanned<String>>,
    /// A licensed feed (IWF, CTIRU): its entries are never shown, only
    /// counts and hits, and its category must be locked.
    #[serde(default)]
    pub licensed: bool,
    /// File holding `Bearer TOKEN` or `user:password` for a licensed feed.
    pub credential_file: Option<PathBuf>,
    pub cadence_hours: Option<u64>,
    /// Largest download accepted, in MiB (after decompression).
    pub max_mb: Option<u64>,
    pub timeout_secs: Option<u64>,
    /// Share of lines that must parse for a download to be accepted (0–1).
    pub min_parse_ratio: Option<f64>,
    /// Largest drop in entries accepted from one download to the next (0–1).
    pub max_shrink: Option<f64>,
}

/// `[updates]`: downloading lists on their schedule while running.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdatesConfig {
    /// Fetch due lists in the background while `run` is answering.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How often `run` looks for lists that are due.
    #[serde(default = "default_check_every")]
    pub check_every_secs: u64,
}

fn default_check_every() -> u64 {
    60
}

impl Default for UpdatesConfig {
    fn default() -> Self {
        UpdatesConfig {
            enabled: true,
            check_every_secs: default_check_every(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileMode {
    Blocklist,
    Allowlist,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// What the pages call the profile ("Key Stage 2"); without it, a
    /// default for the shipped ids (see `config::names`).
    #[serde(default)]
    pub display_name: Option<Spanned<String>>,
    #[serde(default)]
    pub description: String,
    pub mode: ProfileMode,
    #[serde(default)]
    pub block_categories: Vec<Spanned<String>>,
    #[serde(default)]
    pub allow_categories: Vec<Spanned<String>>,
    #[serde(default)]
    pub allow_domains: Vec<Spanned<String>>,
    #[serde(default)]
    pub deny_domains: Vec<Spanned<String>>,
    /// Services (lists/services.toml: youtube, tiktok, roblox...) blocked or
    /// allowed by name, whatever their category says.
    #[serde(default)]
    pub block_services: Vec<Spanned<String>>,
    #[serde(default)]
    pub allow_services: Vec<Spanned<String>>,
    #[serde(default = "yes")]
    pub safe_search: bool,
    #[serde(default = "default_youtube")]
    pub youtube: YouTubeMode,
    /// Who the profile is for. Anything not marked `staff` is treated as a
    /// children's profile, so a forgotten key can only make unlocks stricter.
    #[serde(default)]
    pub audience: Audience,
    /// Off: this profile ignores the name rules (`[name_rules]`).
    #[serde(default = "yes")]
    pub name_rules: bool,
    /// What changes in named periods or out of term (`config::calendar`).
    #[serde(default)]
    pub time_rules: Vec<super::calendar::TimeRuleConfig>,
}

/// Who uses a profile: decides whether categories that alert the
/// safeguarding lead may ever be unlocked for a whole room of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Audience {
    #[default]
    Children,
    Staff,
}

/// YouTube Restricted Mode level a profile asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum YouTubeMode {
    /// Strict Restricted Mode (`restrict.youtube.com`).
    Strict,
    /// Moderate Restricted Mode (`restrictmoderate.youtube.com`).
    Moderate,
    /// No rewrite for YouTube names.
    Off,
}

fn default_youtube() -> YouTubeMode {
    YouTubeMode::Strict
}

/// `[log]`: the block log the head teacher and the safeguarding lead read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// The SQLite file (default: `lollipop.db` in the data directory).
    pub database: Option<PathBuf>,
    /// Log every lookup, not only blocked ones. Off by default for privacy.
    #[serde(default)]
    pub full_query_log: bool,
    #[serde(default = "default_blocked_retention")]
    pub blocked_retention_days: u32,
    #[serde(default = "default_full_retention")]
    pub full_retention_days: u32,
    /// How times are shown: "Europe/London" or "UTC". Stored in UTC.
    #[serde(default = "default_time_zone")]
    pub time_zone: TimeZone,
    /// DHCP lease files that name devices.
    #[serde(default)]
    pub leases: Vec<LeasesConfig>,
    /// The router's DNS address (`ip` or `ip:port`): asked for the names of
    /// devices no config entry or lease file names.
    pub router: Option<Spanned<String>>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            database: None,
            full_query_log: false,
            blocked_retention_days: default_blocked_retention(),
            full_retention_days: default_full_retention(),
            time_zone: default_time_zone(),
            leases: Vec::new(),
            router: None,
        }
    }
}

fn default_blocked_retention() -> u32 {
    365
}
fn default_full_retention() -> u32 {
    7
}
fn default_time_zone() -> TimeZone {
    TimeZone::EuropeLondon
}

/// One DHCP server's lease file: `format` is "dnsmasq", "isc-dhcpd" or "kea-csv".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeasesConfig {
    pub format: LeaseFormat,
    pub path: PathBuf,
}

/// `[alerts]`: telling the safeguarding lead at once when a child tries
/// something serious. Nothing is sent unless `email` or `webhook` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    #[serde(default)]
    pub school_name: String,
    /// Categories that alert. Default: those the catalogue marks (self-harm,
    /// extremism, pornography); locked categories always alert.
    pub categories: Option<Vec<Spanned<String>>>,
    /// At most one message per device and category in this many minutes;
    /// the rest are folded into the next message.
    #[serde(default = "default_rate_window")]
    pub rate_window_minutes: u64,
    pub email: Option<EmailConfig>,
    pub webhook: Option<WebhookConfig>,
}

fn default_rate_window() -> u64 {
    10
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            school_name: String::new(),
            categories: None,
            rate_window_minutes: default_rate_window(),
            email: None,
            webhook: None,
        }
    }
}

/// `[reports]`: the weekly summary.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsConfig {
    /// Email last week's report every Monday at 07:00 to `[alerts.email]`'s
    /// recipients.
    #[serde(default)]
    pub weekly_email: bool,
}

/// `[web]`: the status page, its JSON API, `/metrics` and the block page.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Addresses the status page listens on. Default: port 80 on each
    /// `[[listen]]` address's IP, so the page is on the LAN side only (and
    /// the block page is where blocked names are pointed).
    #[serde(default)]
    pub listen: Vec<Spanned<String>>,
    /// Serve HTTPS. Without `certificate` and `key`, a self-signed
    /// certificate is made in the data directory on first start.
    #[serde(default)]
    pub tls: bool,
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Signed out after this many minutes without a click.
    #[serde(default = "default_session_idle")]
    pub session_idle_minutes: u64,
    /// Also serve `/metrics`, without a login, on this address (e.g. a
    /// management network the Prometheus server sits on).
    pub metrics_listen: Option<Spanned<String>>,
    /// How people reach the page, for setup links (default: from `listen`).
    pub public_url: Option<String>,
    /// Networks the staff pages (sign-in, dashboard, log, reports, users,
    /// settings, the API) answer; elsewhere they say "only on the staff
    /// network". The block page and the unlock form answer everywhere.
    /// Absent: every network, as before this key existed. Lollipop cannot
    /// tell the staff network on its own (profiles carry no "staff" mark,
    /// and a flat nursery network has no separate one), and a wrong guess
    /// would lock the head out of the log the safeguarding lead needs; so
    /// the dashboard asks the technician to name it instead. Loopback is
    /// always staff (the appliance's own console).
    #[serde(default)]
    pub staff_networks: Option<Vec<Spanned<String>>>,
}

fn default_true() -> bool {
    true
}

fn default_session_idle() -> u64 {
    15
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            enabled: true,
            listen: Vec::new(),
            tls: false,
            certificate: None,
            key: None,
            session_idle_minutes: default_session_idle(),
            metrics_listen: None,
            public_url: None,
            staff_networks: None,
        }
    }
}
