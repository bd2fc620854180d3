//! The configuration file: its TOML schema, defaults, and validation whose
//! errors name the file, the line and the key that is wrong.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use toml::Spanned;

mod bank_holidays;
mod blockpage;
pub mod bundle;
pub mod calendar;
pub mod catalogue;
pub mod cluster;
mod limits;
mod list_entries;
mod name_rules;
mod names;
mod resolver;
pub mod restart;
mod schema;
mod ship;
pub mod trust;
mod zones;
pub use bank_holidays::{
    GOV_UK_BANK_HOLIDAYS, HolidaysInForce, HolidaysSource, RENEWED_BANK_HOLIDAYS, read_holidays,
};
pub use blockpage::{BlockPageConfig, HTTPS_PORT};
pub use limits::{LimitsConfig, QueryLimits, Rate};
pub use list_entries::{
    Archive, Download, ListEntry, ListFormat, ListOrigin, ListProblem, check_list_name,
};
pub use name_rules::{NAME_RULE_LANGUAGES, NameRulesConfig};
pub use names::{MAX_DISPLAY_NAME, default_profile_name};
pub use resolver::{DnssecMode, RebindingConfig, ResolverConfig, ResolverMode};
pub use schema::*;
pub use ship::{ShipConfig, ShipPostgresConfig, ShipSyslogConfig, redact_url, split_host_port};
pub use zones::{APPLIANCE_LABEL, ZoneConfig};

use catalogue::Catalogue;

/// The catalogue shipped in the binary, parsed once.
pub fn embedded_catalogue() -> Result<&'static Catalogue, &'static String> {
    static CATALOGUE: std::sync::OnceLock<Result<Catalogue, String>> = std::sync::OnceLock::new();
    CATALOGUE
        .get_or_init(|| catalogue::embedded().map_err(|e| e.to_string()))
        .as_ref()
}

/// A category (or a service's list) as people read it, from the shipped
/// catalogue: "Fortnite (game)", "gambling".
pub fn category_name(category: &str) -> String {
    catalogue::category_label(category, embedded_catalogue().ok())
}

impl Config {
    /// The categories whose blocks alert the safeguarding lead: `[alerts]
    /// categories` when the school lists them, otherwise the catalogue's
    /// alerting categories. Locked categories alert whatever this says.
    pub fn alerting_categories(&self) -> Vec<String> {
        match &self.alerts.categories {
            Some(names) => names.iter().map(|name| name.get_ref().clone()).collect(),
            None => embedded_catalogue()
                .map(|catalogue| catalogue.alert_categories().map(str::to_string).collect())
                .unwrap_or_default(),
        }
    }
}

/// The default configuration, embedded so `lollipop run` works with no file.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config/lollipop.toml");
const EMBEDDED_NAME: &str = "<embedded default config/lollipop.toml>";

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
                text: String::new(),
            },
        )
    }

    /// The same file read again (its text again, for the embedded
    /// default): after a new trust bundle, for instance.
    pub fn reread(&self) -> Result<Config, ConfigErrors> {
        match &self.origin.path {
            Some(path) => Config::load(path),
            None => Config::parse(&self.origin.text, self.origin.clone()),
        }
    }

    /// The embedded default, with paths relative to the current directory.
    pub fn embedded_default() -> Result<Config, ConfigErrors> {
        Config::parse(
            EMBEDDED_DEFAULT,
            ConfigOrigin {
                display_name: EMBEDDED_NAME.to_string(),
                base_dir: PathBuf::from("."),
                path: None,
                text: String::new(),
            },
        )
    }

    /// Parses and validates config text, with the trust's bundle in force
    /// (when the file has `[trust]`) merged in.
    pub fn parse(text: &str, origin: ConfigOrigin) -> Result<Config, ConfigErrors> {
        Config::parse_with_bundle(text, origin, None)
    }

    /// This config's own file again, with `candidate` as the trust's
    /// bundle instead of the one in force: whether a downloaded bundle
    /// would work for this school.
    pub fn with_candidate_bundle(
        &self,
        candidate: &bundle::Bundle,
    ) -> Result<Config, ConfigErrors> {
        Config::parse_with_bundle(&self.origin.text, self.origin.clone(), Some(candidate))
    }

    fn parse_with_bundle(
        text: &str,
        origin: ConfigOrigin,
        candidate: Option<&bundle::Bundle>,
    ) -> Result<Config, ConfigErrors> {
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
        config.origin = ConfigOrigin {
            text: text.to_string(),
            ..origin
        };
        let bundle = match candidate {
            Some(candidate) => Ok(Some(candidate.clone())),
            None => config.read_trust_bundle(),
        };
        let (conflicts, from_bundle) = match &bundle {
            Ok(Some(bundle)) => {
                let school = text.parse::<toml::Table>().unwrap_or_default();
                config.merge_bundle(bundle, &school)
            }
            Ok(None) => (Vec::new(), Vec::new()),
            Err(message) => (
                vec![ConfigError {
                    file: config.origin.display_name.clone(),
                    position: None,
                    key: "trust".into(),
                    message: message.clone(),
                }],
                Vec::new(),
            ),
        };
        let display_name = config.origin.display_name.clone();
        let mut problems = Problems {
            text,
            file: &display_name,
            found: Vec::new(),
        };
        config.validate(&mut problems);
        config.validate_trust(&mut problems);
        let calendar = config.build_calendar(&mut problems);
        let mut found = problems.found;
        if let Ok(Some(bundle)) = &bundle {
            for error in &mut found {
                trust::blame_bundle(error, &from_bundle, bundle);
            }
        }
        found.extend(conflicts);
        config.school_calendar = calendar;
        if found.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(found))
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

    /// Where downloaded lists, files renewed with them, and their update
    /// state are kept.
    pub fn downloads_dir(&self) -> PathBuf {
        self.resolve_path(&self.server.data_dir).join("sources")
    }

    /// Where `lists compile` writes and `run` maps the compiled lists.
    pub fn compiled_lists_path(&self) -> PathBuf {
        self.resolve_path(&self.server.data_dir)
            .join("lists.lollipop")
    }

    /// The top-level tables and keys whose values differ between two
    /// versions of the file (`profiles.ks2`, `lists`, `blocking`...).
    pub fn changed_sections(&self, newer: &Config) -> Vec<String> {
        let parse = |text: &str| text.parse::<toml::Table>().unwrap_or_default();
        let (old, new) = (parse(&self.origin.text), parse(&newer.origin.text));
        let mut changed = Vec::new();
        let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        for key in keys {
            match (old.get(key), new.get(key)) {
                (Some(toml::Value::Table(a)), Some(toml::Value::Table(b))) if key == "profiles" => {
                    let names: std::collections::BTreeSet<&String> =
                        a.keys().chain(b.keys()).collect();
                    for name in names {
                        if a.get(name) != b.get(name) {
                            changed.push(format!("profiles.{name}"));
                        }
                    }
                }
                (a, b) if a != b => changed.push(key.clone()),
                _ => {}
            }
        }
        // A new bundle from the trust changes what the file says without
        // a change to the file.
        if self.bundle != newer.bundle {
            for key in ["alerts", "trust bundle"] {
                if !changed.iter().any(|k| k == key) {
                    changed.push(key.into());
                }
            }
        }
        changed
    }

    /// The block log's SQLite file.
    pub fn journal_path(&self) -> PathBuf {
        match &self.log.database {
            Some(path) => self.resolve_path(path),
            None => self.resolve_path(&self.server.data_dir).join("lollipop.db"),
        }
    }

    /// Every category a profile may name: the catalogue's and those of the
    /// config's own lists.
    pub fn category_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .lists
            .iter()
            .filter_map(|list| list.category.as_ref().map(|c| c.get_ref().clone()))
            .collect();
        if let Ok(catalogue) = embedded_catalogue() {
            names.extend(catalogue.categories.iter().map(|c| c.name.clone()));
        }
        names.sort();
        names.dedup();
        names
    }

    /// The status page's own SQLite file: users, allow/deny entries made on
    /// the page, override codes and the annual reviews.
    pub fn admin_db_path(&self) -> PathBuf {
        self.resolve_path(&self.server.data_dir).join("admin.db")
    }

    /// Where the status page listens: `[web] listen`, or port 80 on each
    /// `[[listen]]` address's IP.
    pub fn web_addresses(&self) -> Vec<SocketAddr> {
        if !self.web.listen.is_empty() {
            return self
                .web
                .listen
                .iter()
                .filter_map(|a| a.get_ref().parse().ok())
                .collect();
        }
        let mut addresses: Vec<SocketAddr> = self
            .listen
            .iter()
            .filter_map(|l| l.address.get_ref().parse::<SocketAddr>().ok())
            .map(|dns| SocketAddr::new(dns.ip(), 80))
            .collect();
        addresses.dedup();
        addresses
    }

    fn validate_web(&self, problems: &mut Problems<'_>) {
        let web = &self.web;
        let addresses = web
            .listen
            .iter()
            .enumerate()
            .map(|(i, a)| (format!("web.listen[{i}]"), a));
        for (key, address) in addresses.chain(
            web.metrics_listen
                .iter()
                .map(|a| ("web.metrics_listen".to_string(), a)),
        ) {
            if address.get_ref().parse::<SocketAddr>().is_err() {
                problems.at(
                    &address.span(),
                    key,
                    format!(
                        "'{}' is not an address with a port: write e.g. \"10.0.10.1:80\"",
                        address.get_ref()
                    ),
                );
            }
        }
        if !(1..=24 * 60).contains(&web.session_idle_minutes) {
            problems.at(
                &(0..0),
                "web.session_idle_minutes".into(),
                "must be between 1 and 1440 minutes".into(),
            );
        }
        for (i, network) in web.staff_networks.iter().flatten().enumerate() {
            if let Err(message) = parse_network(network.get_ref()) {
                problems.at(&network.span(), format!("web.staff_networks[{i}]"), message);
            }
        }
        if web.certificate.is_some() != web.key.is_some() {
            problems.at(&(0..0), "web".into(), "certificate and key go together: set both, or neither for a self-signed certificate".into());
        }
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

        for (i, language) in self.name_rules.unknown_languages() {
            let known: Vec<&str> = NAME_RULE_LANGUAGES.iter().map(|(code, _)| *code).collect();
            problems.at(
                &language.span(),
                format!("name_rules.languages[{i}]"),
                format!(
                    "'{}' is not a language the name rules hold terms in: use some of {}",
                    language.get_ref(),
                    known.join(", ")
                ),
            );
        }

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

        if let Some(router) = &self.log.router
            && let Err(message) = parse_upstream_address(router.get_ref(), 53)
        {
            problems.at(&router.span(), "log.router".into(), message);
        }
        // Recursion needs no upstream: it asks the root servers.
        if self.upstream.is_empty() && self.resolver.mode == ResolverMode::Forward {
            problems.at(
                &(0..0),
                "upstream".into(),
                "no [[upstream]] server: add at least one, or set [resolver] mode = \"recursive\""
                    .into(),
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
        self.validate_web(problems);
        self.validate_ship(problems);
        self.blockpage.validate(self, problems);
        self.validate_names(problems);
        self.resolver.validate(problems);
        self.rebinding.validate(problems);
        self.validate_zones(problems);
        self.limits.validate(problems);
        self.validate_cluster(problems);

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
            if let Some(category) = &list.category
                && !is_category_name(category.get_ref())
            {
                problems.at(
                    &category.span(),
                    format!("lists[{i}].category"),
                    "a category name is lower-case letters, digits and '-'".into(),
                );
            }
        }
        match embedded_catalogue() {
            Ok(catalogue) => {
                if let Err(found) = self.list_entries(catalogue) {
                    for problem in found {
                        let list = &self.lists[problem.index];
                        let span = match problem.key {
                            "category" => list.category.as_ref().map(Spanned::span),
                            "catalogue" => list.catalogue.as_ref().map(Spanned::span),
                            _ => None,
                        }
                        .unwrap_or_else(|| list.name.span());
                        problems.at(
                            &span,
                            format!("lists[{}].{}", problem.index, problem.key),
                            problem.message,
                        );
                    }
                }
            }
            Err(message) => problems.at(&(0..0), "lists".into(), message.clone()),
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
            let service_lists = [
                ("block_services", &profile.block_services),
                ("allow_services", &profile.allow_services),
            ];
            for (field, list) in service_lists {
                for (i, service) in list.iter().enumerate() {
                    let known = embedded_catalogue()
                        .map(|c| c.service(service.get_ref()).is_some())
                        .unwrap_or(false);
                    if !known {
                        let names: Vec<String> = embedded_catalogue()
                            .map(|c| c.services.iter().map(|s| s.name.clone()).collect())
                            .unwrap_or_default();
                        problems.at(
                            &service.span(),
                            format!("profiles.{name}.{field}[{i}]"),
                            format!(
                                "no service named '{}' (services: {})",
                                service.get_ref(),
                                names.join(", ")
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
                    if let Err(error) = crate::name::normalise_domain(domain.get_ref()) {
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
mod tests;
