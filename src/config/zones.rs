//! `[[zones]]` and `[server] school_domain`: the school's own names. A zone
//! (the Active Directory domain, a reverse zone) is sent to the servers that
//! hold it (the domain controller, the router) instead of the upstreams;
//! `school_domain` names the appliance itself (`lollipop.<school_domain>`).
//! Their shapes, defaults and checks.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;
use toml::Spanned;

use super::{Config, Problems, parse_upstream_address};
use crate::name::normalise_domain;

/// One `[[zones]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// The domain; its subdomains go to the same servers.
    pub domain: Spanned<String>,
    /// Plain DNS servers (UDP, then TCP on truncation), "IP" or "IP:port",
    /// asked in turn.
    pub servers: Vec<Spanned<String>>,
    /// Whether the profiles' lists apply to names in the zone (default
    /// yes); false exempts them, locked categories excepted.
    #[serde(default = "yes")]
    pub filter: bool,
}

fn yes() -> bool {
    true
}

/// The first label of the appliance's own name under `school_domain`.
pub const APPLIANCE_LABEL: &str = "lollipop";

impl ZoneConfig {
    /// The zone's domain, normalised (lower case, no trailing dot).
    pub fn normalised_domain(&self) -> Option<String> {
        normalise_domain(self.domain.get_ref()).ok()
    }

    /// The servers as socket addresses (port 53 unless given).
    pub fn server_addresses(&self) -> Vec<SocketAddr> {
        self.servers
            .iter()
            .filter_map(|server| parse_upstream_address(server.get_ref(), 53).ok())
            .collect()
    }
}

impl Config {
    /// The appliance's own addresses, as a client on the school network
    /// reaches it: the status page's `public_url` host when it is an
    /// address, and every listener bound to one address.
    pub fn appliance_addresses(&self) -> Vec<IpAddr> {
        let from_url = self
            .web
            .public_url
            .as_deref()
            .and_then(|url| url.split("://").nth(1))
            .map(|rest| rest.split(['/', '?']).next().unwrap_or(rest))
            .and_then(|host| {
                host.parse::<SocketAddr>()
                    .map(|a| a.ip())
                    .ok()
                    .or_else(|| host.trim_matches(['[', ']']).parse::<IpAddr>().ok())
            });
        let from_listeners = self
            .listen
            .iter()
            .filter_map(|listen| listen.address.get_ref().parse::<SocketAddr>().ok())
            .map(|address| address.ip())
            .filter(|ip| !ip.is_unspecified() && !ip.is_loopback());
        let mut addresses: Vec<IpAddr> = from_url.into_iter().chain(from_listeners).collect();
        addresses.sort();
        addresses.dedup();
        addresses
    }

    pub(super) fn validate_zones(&self, problems: &mut Problems<'_>) {
        let mut seen = Vec::new();
        for (i, zone) in self.zones.iter().enumerate() {
            let key = format!("zones[{i}]");
            match normalise_domain(zone.domain.get_ref()) {
                Ok(domain) if seen.contains(&domain) => problems.at(
                    &zone.domain.span(),
                    format!("{key}.domain"),
                    format!("'{domain}' has two [[zones]] entries: keep one, with all its servers"),
                ),
                Ok(domain) => seen.push(domain),
                Err(error) => problems.at(
                    &zone.domain.span(),
                    format!("{key}.domain"),
                    format!(
                        "'{}' is not a domain: {error} (e.g. \"stmarys.internal\" or \"10.in-addr.arpa\")",
                        zone.domain.get_ref()
                    ),
                ),
            }
            if zone.servers.is_empty() {
                problems.at(
                    &zone.domain.span(),
                    format!("{key}.servers"),
                    "a zone needs at least one server, e.g. servers = [\"10.0.10.5\"] (the domain controller)".into(),
                );
            }
            for (j, server) in zone.servers.iter().enumerate() {
                if let Err(message) = parse_upstream_address(server.get_ref(), 53) {
                    problems.at(&server.span(), format!("{key}.servers[{j}]"), message);
                }
            }
        }
        if let Some(domain) = &self.server.school_domain {
            if let Err(error) = normalise_domain(domain.get_ref()) {
                problems.at(
                    &domain.span(),
                    "server.school_domain".into(),
                    format!("'{}' is not a domain: {error}", domain.get_ref()),
                );
            } else if self.appliance_addresses().is_empty() {
                problems.at(
                    &domain.span(),
                    "server.school_domain".into(),
                    format!(
                        "{APPLIANCE_LABEL}.{} needs the appliance's address: set [web] public_url (e.g. \"https://10.0.10.2\") or listen on that address",
                        domain.get_ref()
                    ),
                );
            }
        }
    }
}
