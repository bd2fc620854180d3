//! The configuration file: its TOML schema, defaults, and validation whose
//! errors name the file, the line and the key that is wrong.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use crate::lists::parse::ListFormat;
use crate::policy::safesearch::YouTubeMode;

/// The default configuration, embedded so `lollipop run` works with no file.
pub const EMBEDDED_DEFAULT: &str = include_str!("../config/lollipop.toml");
const EMBEDDED_NAME: &str = "<embedded default config/lollipop.toml>";

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
    #[serde(default)]
    pub circumvention: CircumventionConfig,
    #[serde(default)]
    pub upstream: Vec<UpstreamConfig>,
    #[serde(default)]
    pub resolver: ResolverConfig,
    #[serde(default)]
    pub lists: Vec<ListConfig>,
    pub profiles: BTreeMap<String, ProfileConfig>,

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
}

fn default_tcp_idle_timeout() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    pub address: Spanned<String>,
    pub profile: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRule {
    pub network: Spanned<String>,
    pub profile: Spanned<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BlockAnswer {
    #[default]
    Null,
    Nxdomain,
    Blockpage,
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

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolverConfig {
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_attempts")]
    pub attempts: usize,
    #[serde(default = "default_cache_entries")]
    pub cache_entries: u64,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            timeout_ms: default_timeout_ms(),
            attempts: default_attempts(),
            cache_entries: default_cache_entries(),
        }
    }
}

fn default_timeout_ms() -> u64 {
    2000
}
fn default_attempts() -> usize {
    2
}
fn default_cache_entries() -> u64 {
    8192
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListConfig {
    pub name: Spanned<String>,
    pub path: PathBuf,
    #[serde(default = "default_format")]
    pub format: ListFormat,
    pub category: Spanned<String>,
}

fn default_format() -> ListFormat {
    ListFormat::Domains
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
    #[serde(default = "yes")]
    pub safe_search: bool,
    #[serde(default = "default_youtube")]
    pub youtube: YouTubeMode,
}

fn default_youtube() -> YouTubeMode {
    YouTubeMode::Strict
}

/// A configuration problem, with where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line and column, when the problem has a place in the file.
    pub position: Option<(usize, usize)>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => write!(f, "{}:{line}:{column}", self.file)?,
            None => write!(f, "{}", self.file)?,
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Turns a byte span of `text` into a 1-based (line, column).
fn line_and_column(text: &str, span: &Range<usize>) -> Option<(usize, usize)> {
    if span.start == 0 && span.end == 0 || span.start > text.len() {
        return None;
    }
    let before = &text[..span.start];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    Some((line, column))
}

/// Collects validation problems so a technician sees all of them at once.
struct Problems<'a> {
    text: &'a str,
    file: &'a str,
    found: Vec<ConfigError>,
}

impl Problems<'_> {
    fn at(&mut self, span: &Range<usize>, key: String, message: String) {
        self.found.push(ConfigError {
            file: self.file.to_string(),
            position: line_and_column(self.text, span),
            key,
            message,
        });
    }
}

/// Every problem found in one file; printed one per line.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let display_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| {
            ConfigErrors(vec![ConfigError {
                file: display_name.clone(),
                position: None,
                key: String::new(),
                message: format!("cannot read the config file: {error}"),
            }])
        })?;
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Config::parse(
            &text,
            ConfigOrigin {
                display_name,
                base_dir,
                path: Some(path.to_path_buf()),
            },
        )
    }

    /// The embedded default, with paths relative to the current directory.
    pub fn embedded_default() -> Result<Config, ConfigErrors> {
        Config::parse(
            EMBEDDED_DEFAULT,
            ConfigOrigin {
                display_name: EMBEDDED_NAME.to_string(),
                base_dir: PathBuf::from("."),
                path: None,
            },
        )
    }

    /// Parses and validates config text.
    pub fn parse(text: &str, origin: ConfigOrigin) -> Result<Config, ConfigErrors> {
        let mut config: Config = toml::from_str(text).map_err(|error| {
            let position = error
                .span()
                .and_then(|span| line_and_column(text, &span))
                .or(Some((1, 1)));
            ConfigErrors(vec![ConfigError {
                file: origin.display_name.clone(),
                position,
                key: String::new(),
                message: error.message().trim().to_string(),
            }])
        })?;
        config.origin = origin;
        let mut problems = Problems {
            text,
            file: &config.origin.display_name,
            found: Vec::new(),
        };
        config.validate(&mut problems);
        if problems.found.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(problems.found))
        }
    }

    /// A path from the file, made absolute against the file's directory.
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.origin.base_dir.join(path)
        }
    }

    /// Where `lists compile` writes and `run` maps the compiled lists.
    pub fn compiled_lists_path(&self) -> PathBuf {
        self.resolve_path(&self.server.data_dir)
            .join("lists.lollipop")
    }

    /// Every category name the config knows: those of lists, profiles and locks.
    pub fn category_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .lists
            .iter()
            .map(|list| list.category.get_ref().clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn validate(&self, problems: &mut Problems<'_>) {
        let profile_names: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
        let known_profiles = profile_names.join(", ");
        let check_profile = |problems: &mut Problems<'_>, name: &Spanned<String>, key: String| {
            if !self.profiles.contains_key(name.get_ref()) {
                problems.at(
                    &name.span(),
                    key,
                    format!(
                        "no profile named '{}' (defined profiles: {known_profiles})",
                        name.get_ref()
                    ),
                );
            }
        };

        if self.profiles.is_empty() {
            problems.at(
                &(0..0),
                "profiles".into(),
                "no profiles defined: add at least one [profiles.NAME] table".into(),
            );
        }
        check_profile(
            problems,
            &self.server.default_profile,
            "server.default_profile".into(),
        );
        for (i, network) in self.server.allowed_networks.iter().enumerate() {
            if let Err(message) = parse_network(network.get_ref()) {
                problems.at(
                    &network.span(),
                    format!("server.allowed_networks[{i}]"),
                    message,
                );
            }
        }

        if self.listen.is_empty() {
            problems.at(
                &(0..0),
                "listen".into(),
                "no [[listen]] address: add one, e.g. address = \"10.0.10.1:53\"".into(),
            );
        }
        let mut seen_addresses = Vec::new();
        for (i, listen) in self.listen.iter().enumerate() {
            match listen.address.get_ref().parse::<SocketAddr>() {
                Ok(address) => {
                    if address.port() != 0 && seen_addresses.contains(&address) {
                        problems.at(
                            &listen.address.span(),
                            format!("listen[{i}].address"),
                            format!("{address} is listed twice"),
                        );
                    }
                    seen_addresses.push(address);
                }
                Err(_) => problems.at(
                    &listen.address.span(),
                    format!("listen[{i}].address"),
                    format!(
                        "'{}' is not an address with a port: write e.g. \"10.0.10.1:53\" or \"[fd00::1]:53\"",
                        listen.address.get_ref()
                    ),
                ),
            }
            if let Some(profile) = &listen.profile {
                check_profile(problems, profile, format!("listen[{i}].profile"));
            }
        }

        for (i, rule) in self.clients.iter().enumerate() {
            if let Err(message) = parse_network(rule.network.get_ref()) {
                problems.at(
                    &rule.network.span(),
                    format!("clients[{i}].network"),
                    message,
                );
            }
            check_profile(problems, &rule.profile, format!("clients[{i}].profile"));
        }

        if self.blocking.answer == BlockAnswer::Blockpage && self.blocking.block_page_ipv4.is_none()
        {
            problems.at(
                &(0..0),
                "blocking.block_page_ipv4".into(),
                "answer = \"blockpage\" needs block_page_ipv4 (the address that shows the block page)"
                    .into(),
            );
        }

        if self.upstream.is_empty() {
            problems.at(
                &(0..0),
                "upstream".into(),
                "no [[upstream]] server: add at least one".into(),
            );
        }
        for (i, upstream) in self.upstream.iter().enumerate() {
            if let Err(message) = parse_upstream_address(upstream.address.get_ref(), 53) {
                problems.at(
                    &upstream.address.span(),
                    format!("upstream[{i}].address"),
                    message,
                );
            }
            let needs_name = matches!(
                upstream.protocol,
                UpstreamProtocol::Tls | UpstreamProtocol::Https
            );
            if needs_name && upstream.tls_name.as_deref().unwrap_or("").is_empty() {
                problems.at(
                    &upstream.address.span(),
                    format!("upstream[{i}].tls_name"),
                    "tls and https upstreams need tls_name, the name on the server's certificate"
                        .into(),
                );
            }
        }
        if self.resolver.timeout_ms == 0 || self.resolver.attempts == 0 {
            problems.at(
                &(0..0),
                "resolver".into(),
                "timeout_ms and attempts must be at least 1".into(),
            );
        }

        let mut list_names: Vec<&str> = Vec::new();
        for (i, list) in self.lists.iter().enumerate() {
            if list_names.contains(&list.name.get_ref().as_str()) {
                problems.at(
                    &list.name.span(),
                    format!("lists[{i}].name"),
                    format!(
                        "two lists are named '{}': names must be unique",
                        list.name.get_ref()
                    ),
                );
            }
            list_names.push(list.name.get_ref());
            if !is_category_name(list.category.get_ref()) {
                problems.at(
                    &list.category.span(),
                    format!("lists[{i}].category"),
                    "a category name is lower-case letters, digits and '-'".into(),
                );
            }
        }

        let categories = self.category_names();
        let known = |name: &str| {
            categories.iter().any(|c| c == name)
                || self
                    .blocking
                    .locked_categories
                    .iter()
                    .any(|c| c.get_ref() == name)
        };
        for (name, profile) in &self.profiles {
            let category_lists = [
                ("block_categories", &profile.block_categories),
                ("allow_categories", &profile.allow_categories),
            ];
            for (field, list) in category_lists {
                for (i, category) in list.iter().enumerate() {
                    if !known(category.get_ref()) {
                        problems.at(
                            &category.span(),
                            format!("profiles.{name}.{field}[{i}]"),
                            format!(
                                "no list has category '{}' (categories with lists: {})",
                                category.get_ref(),
                                categories.join(", ")
                            ),
                        );
                    }
                }
            }
            let domain_lists = [
                ("allow_domains", &profile.allow_domains),
                ("deny_domains", &profile.deny_domains),
            ];
            for (field, list) in domain_lists {
                for (i, domain) in list.iter().enumerate() {
                    if let Err(error) = crate::lists::name::normalise_domain(domain.get_ref()) {
                        problems.at(
                            &domain.span(),
                            format!("profiles.{name}.{field}[{i}]"),
                            format!("'{}' is not a domain: {error}", domain.get_ref()),
                        );
                    }
                }
            }
        }
        for (i, locked) in self.blocking.locked_categories.iter().enumerate() {
            if !is_category_name(locked.get_ref()) {
                problems.at(
                    &locked.span(),
                    format!("blocking.locked_categories[{i}]"),
                    "a category name is lower-case letters, digits and '-'".into(),
                );
            }
        }
    }
}

fn is_category_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Parses a network in CIDR form, or a single address as a host network.
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    Err(format!(
        "'{text}' is not a network: write e.g. \"10.0.20.0/24\" or \"fd00:20::/64\""
    ))
}

/// Parses `ip` or `ip:port` / `[ip]:port`, using `default_port` when none is given.
pub fn parse_upstream_address(text: &str, default_port: u16) -> Result<SocketAddr, String> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    Err(format!(
        "'{text}' is not an IP address (optionally with a port): write e.g. \"9.9.9.9\" or \"[2620:fe::fe]:853\""
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::parse(
            text,
            ConfigOrigin {
                display_name: "test.toml".into(),
                base_dir: PathBuf::from("."),
                path: None,
            },
        )
    }

    #[test]
    fn embedded_default_is_valid() {
        let config = Config::embedded_default().expect("embedded default must parse");
        for profile in ["under5", "ks1", "ks2", "staff"] {
            assert!(config.profiles.contains_key(profile), "missing {profile}");
        }
        assert_eq!(
            config.profiles["under5"].mode,
            ProfileMode::Allowlist,
            "under-5s get the walled garden"
        );
    }

    #[test]
    fn a_typo_in_a_key_names_the_line() {
        let text = EMBEDDED_DEFAULT.replace("tcp_idle_timeout_secs", "tcp_idle_timout_secs");
        let errors = parse(&text).expect_err("unknown key must fail");
        let message = errors.to_string();
        let line = text
            .lines()
            .position(|l| l.starts_with("tcp_idle_timout_secs"))
            .expect("line")
            + 1;
        assert!(
            message.starts_with(&format!("test.toml:{line}:")),
            "{message}"
        );
        assert!(message.contains("tcp_idle_timout_secs"), "{message}");
    }

    #[test]
    fn an_unknown_profile_is_reported_with_its_key_and_line() {
        let text = EMBEDDED_DEFAULT.replace(
            "address = \"127.0.0.1:5353\"",
            "address = \"127.0.0.1:5353\"\nprofile = \"ks3\"",
        );
        let errors = parse(&text).expect_err("unknown profile must fail");
        let message = errors.to_string();
        assert!(message.contains("listen[0].profile"), "{message}");
        assert!(message.contains("no profile named 'ks3'"), "{message}");
        let line = text
            .lines()
            .position(|l| l.contains("\"ks3\""))
            .expect("line")
            + 1;
        assert!(message.contains(&format!("test.toml:{line}:")), "{message}");
    }

    #[test]
    fn several_problems_are_all_reported() {
        let text = EMBEDDED_DEFAULT
            .replace("default_profile = \"ks2\"", "default_profile = \"nope\"")
            .replace(
                "\"lists/bypass.txt\"\ncategory = \"bypass\"",
                "\"x\"\ncategory = \"Bad Name\"",
            )
            .replace(
                "allowed_networks = []",
                "allowed_networks = [\"10.0.0.0/33\"]",
            );
        let errors = parse(&text).expect_err("must fail");
        let message = errors.to_string();
        assert!(message.contains("server.default_profile"), "{message}");
        assert!(message.contains("server.allowed_networks[0]"), "{message}");
        assert!(message.contains("lists[0].category"), "{message}");
    }

    #[test]
    fn networks_and_upstream_addresses_parse() {
        assert_eq!(
            parse_network("10.0.20.7/24").expect("net").to_string(),
            "10.0.20.0/24"
        );
        assert_eq!(
            parse_network("fd00::1").expect("host").to_string(),
            "fd00::1/128"
        );
        assert!(parse_network("10.0.0/24").is_err());
        assert_eq!(
            parse_upstream_address("9.9.9.9", 853).expect("ip"),
            "9.9.9.9:853".parse().expect("addr")
        );
        assert_eq!(
            parse_upstream_address("[::1]:5300", 53).expect("ip port"),
            "[::1]:5300".parse().expect("addr")
        );
        assert!(parse_upstream_address("dns.quad9.net", 853).is_err());
    }
}
