//! `[limits]`: how much one client may ask of the appliance — queries per
//! second per address and per network, minimal ANY answers, TCP connections,
//! and the status page's connections and header-read time — with defaults
//! that never throttle a classroom behind one NAT address.

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::{Problems, parse_network};

/// `[limits]`. Every limit is on unless set to 0 (where 0 is allowed).
///
/// The query rates are token buckets: `*_qps` tokens a second, at most
/// `*_burst` saved up. Why these defaults: a busy pupil device asks a few
/// queries a second and a heavy web page a hundred or so at once (A, AAAA
/// and HTTPS for each of its hosts); a class of 30 behind one NAT address
/// opening the same page together asks a few thousand in a couple of
/// seconds and then little. `per_address_burst = 4000` takes that burst
/// whole, and 500 a second sustained is ten times a whole school's steady
/// rate, yet a hundred times below the 55,000 a second one flooding laptop
/// was answered at. A /24 (or an IPv6 /56, one site's allocation) holds up
/// to 254 devices, so its limit is four times larger. A domain controller
/// that forwards for the whole school is listed in `trusted_forwarders`
/// and never limited.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Queries a second one source address may keep up (0: no limit).
    #[serde(default = "default_address_qps")]
    pub per_address_qps: u32,
    /// Queries one source address may send at once after a quiet spell.
    #[serde(default = "default_address_burst")]
    pub per_address_burst: u32,
    /// Queries a second one IPv4 /24 or IPv6 /56 may keep up (0: no limit).
    #[serde(default = "default_network_qps")]
    pub per_network_qps: u32,
    #[serde(default = "default_network_burst")]
    pub per_network_burst: u32,
    /// Over the limit on UDP, every `slip`th query gets an empty answer
    /// with TC set (so a real client asks again over TCP, which cannot be
    /// spoofed); the rest are dropped. 0: drop them all. BIND's RRL uses 2.
    #[serde(default = "default_slip")]
    pub slip: u32,
    /// Addresses or networks never rate-limited: a domain controller or
    /// another resolver that forwards for the whole school.
    #[serde(default)]
    pub trusted_forwarders: Vec<Spanned<String>>,
    /// Sources whose buckets are remembered; the least recently seen are
    /// forgotten first, so a flood of spoofed addresses cannot grow memory
    /// (about 100 bytes each).
    #[serde(default = "default_tracked_sources")]
    pub tracked_sources: usize,
    /// A question of type ANY gets one small HINFO "RFC8482" record (RFC
    /// 8482) instead of everything the upstream holds: no amplification.
    #[serde(default = "yes")]
    pub minimal_any: bool,
    /// DNS-over-TCP connections open at once; a new one beyond this is
    /// closed at once.
    #[serde(default = "default_tcp_max_connections")]
    pub tcp_max_connections: usize,
    /// DNS-over-TCP connections one source address may hold open at once.
    #[serde(default = "default_tcp_max_per_client")]
    pub tcp_max_per_client: usize,
    /// Status-page connections open at once (HTTP and HTTPS listeners
    /// together; the open `/metrics` listener has as many of its own).
    /// Read at start: a change needs a restart.
    #[serde(default = "default_web_max_connections")]
    pub web_max_connections: usize,
    /// A status-page client must send a request's headers within this
    /// time (a "slowloris" holding connections with partial requests is
    /// cut off). Read at start: a change needs a restart.
    #[serde(default = "default_web_header_read_timeout")]
    pub web_header_read_timeout_secs: u64,
}

fn default_address_qps() -> u32 {
    500
}
fn default_address_burst() -> u32 {
    4000
}
fn default_network_qps() -> u32 {
    2000
}
fn default_network_burst() -> u32 {
    16_000
}
fn default_slip() -> u32 {
    2
}
fn default_tracked_sources() -> usize {
    16_384
}
fn yes() -> bool {
    true
}
fn default_tcp_max_connections() -> usize {
    256
}
fn default_tcp_max_per_client() -> usize {
    16
}
fn default_web_max_connections() -> usize {
    64
}
fn default_web_header_read_timeout() -> u64 {
    10
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            per_address_qps: default_address_qps(),
            per_address_burst: default_address_burst(),
            per_network_qps: default_network_qps(),
            per_network_burst: default_network_burst(),
            slip: default_slip(),
            trusted_forwarders: Vec::new(),
            tracked_sources: default_tracked_sources(),
            minimal_any: true,
            tcp_max_connections: default_tcp_max_connections(),
            tcp_max_per_client: default_tcp_max_per_client(),
            web_max_connections: default_web_max_connections(),
            web_header_read_timeout_secs: default_web_header_read_timeout(),
        }
    }
}

/// One token bucket's shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

impl Rate {
    fn new(per_second: u32, burst: u32) -> Option<Rate> {
        (per_second > 0).then(|| Rate {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
        })
    }
}

/// The DNS transport's limits in the form it checks them, built once when
/// settings are put in force (so a reload changes them at once).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryLimits {
    /// None: no limit at that level.
    pub per_address: Option<Rate>,
    pub per_network: Option<Rate>,
    pub slip: u32,
    pub trusted: Vec<IpNet>,
    pub tracked_sources: usize,
    pub minimal_any: bool,
    pub tcp_max_connections: usize,
    pub tcp_max_per_client: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        LimitsConfig::default().query_limits()
    }
}

impl LimitsConfig {
    /// The limits the DNS transport checks; networks that do not parse
    /// were already reported by validation and are left out.
    pub fn query_limits(&self) -> QueryLimits {
        QueryLimits {
            per_address: Rate::new(self.per_address_qps, self.per_address_burst),
            per_network: Rate::new(self.per_network_qps, self.per_network_burst),
            slip: self.slip,
            trusted: self
                .trusted_forwarders
                .iter()
                .filter_map(|network| parse_network(network.get_ref()).ok())
                .collect(),
            tracked_sources: self.tracked_sources,
            minimal_any: self.minimal_any,
            tcp_max_connections: self.tcp_max_connections,
            tcp_max_per_client: self.tcp_max_per_client,
        }
    }

    pub(super) fn validate(&self, problems: &mut Problems<'_>) {
        for (i, network) in self.trusted_forwarders.iter().enumerate() {
            if let Err(message) = parse_network(network.get_ref()) {
                problems.at(
                    &network.span(),
                    format!("limits.trusted_forwarders[{i}]"),
                    message,
                );
            }
        }
        let mut problem = |key: &str, message: &str| {
            problems.at(&(0..0), format!("limits.{key}"), message.to_string());
        };
        let rates = [
            ("per_address", self.per_address_qps, self.per_address_burst),
            ("per_network", self.per_network_qps, self.per_network_burst),
        ];
        for (name, qps, burst) in rates {
            if qps > 0 && burst < qps {
                problem(
                    &format!("{name}_burst"),
                    &format!(
                        "must be at least {name}_qps ({qps}): a burst smaller than one second's queries would throttle a client that never exceeds the rate"
                    ),
                );
            }
        }
        if self.tracked_sources < 64 {
            problem(
                "tracked_sources",
                "must be at least 64 (each source costs about 100 bytes; the default is 16384)",
            );
        }
        if self.tcp_max_connections == 0 || self.tcp_max_per_client == 0 {
            problem(
                "tcp_max_connections",
                "tcp_max_connections and tcp_max_per_client must be at least 1 (TCP is how clients get answers too big for UDP)",
            );
        } else if self.tcp_max_per_client > self.tcp_max_connections {
            problem(
                "tcp_max_per_client",
                "cannot be more than tcp_max_connections",
            );
        }
        if self.web_max_connections < 4 {
            problem(
                "web_max_connections",
                "must be at least 4 (a browser opens several connections to one page)",
            );
        }
        if !(1..=300).contains(&self.web_header_read_timeout_secs) {
            problem(
                "web_header_read_timeout_secs",
                "must be between 1 and 300 seconds",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigOrigin};

    const BASE: &str = r#"
[server]
data_dir = "data"
default_profile = "p"
[[listen]]
address = "127.0.0.1:53"
[[upstream]]
address = "9.9.9.9"
protocol = "udp"
[profiles.p]
mode = "blocklist"
"#;

    fn parse(limits: &str) -> Result<Config, String> {
        Config::parse(
            &format!("{BASE}\n[limits]\n{limits}"),
            ConfigOrigin::default(),
        )
        .map_err(|errors| errors.to_string())
    }

    #[test]
    fn limits_are_on_by_default() {
        let config = parse("").expect("valid");
        let limits = config.limits.query_limits();
        assert_eq!(limits.per_address.map(|r| r.per_second), Some(500.0));
        assert_eq!(limits.per_network.map(|r| r.burst), Some(16_000.0));
        assert_eq!(limits.slip, 2);
        assert!(limits.minimal_any);
        assert_eq!(config.limits.web_max_connections, 64);
    }

    #[test]
    fn zero_rates_switch_the_limit_off() {
        let config = parse("per_address_qps = 0\nper_network_qps = 0").expect("valid");
        let limits = config.limits.query_limits();
        assert_eq!(limits.per_address, None);
        assert_eq!(limits.per_network, None);
    }

    #[test]
    fn trusted_forwarders_take_addresses_and_networks() {
        let config =
            parse("trusted_forwarders = [\"10.0.0.5\", \"192.168.1.0/28\"]").expect("valid");
        let trusted = config.limits.query_limits().trusted;
        assert_eq!(
            trusted,
            vec![
                "10.0.0.5/32".parse::<IpNet>().unwrap(),
                "192.168.1.0/28".parse().unwrap()
            ]
        );
    }

    #[test]
    fn bad_limits_are_named_with_what_to_do() {
        let error = parse("trusted_forwarders = [\"dc1\"]").unwrap_err();
        assert!(error.contains("limits.trusted_forwarders[0]"), "{error}");
        assert!(error.contains("is not a network"), "{error}");
        let error = parse("per_address_qps = 100\nper_address_burst = 10").unwrap_err();
        assert!(error.contains("limits.per_address_burst"), "{error}");
        let error = parse("tcp_max_per_client = 500").unwrap_err();
        assert!(
            error.contains("cannot be more than tcp_max_connections"),
            "{error}"
        );
        let error = parse("web_header_read_timeout_secs = 0").unwrap_err();
        assert!(error.contains("between 1 and 300"), "{error}");
    }
}
