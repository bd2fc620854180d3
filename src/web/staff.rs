//! Keeps the staff pages on the staff network: sign-in, the dashboard,
//! the log, reports, users, settings and the API answer only to clients
//! on `[web] staff_networks` (and loopback); the child's block page and
//! the unlock form answer on every network. A reload sets the networks.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use crate::config::{Config, parse_network};

use super::WebState;
use super::error::WebError;

/// The staff networks in force: `None` when the config names none (then
/// every network may reach the pages, as before the key existed).
#[derive(Default)]
pub struct StaffNetworks {
    networks: ArcSwap<Option<Vec<IpNet>>>,
}

impl StaffNetworks {
    pub fn from_config(config: &Config) -> StaffNetworks {
        let networks = StaffNetworks::default();
        networks.set(config);
        networks
    }

    /// Puts `config`'s staff networks in force (start-up and reload).
    pub fn set(&self, config: &Config) {
        // Validation already refused a network that does not parse.
        let networks = config.web.staff_networks.as_ref().map(|list| {
            list.iter()
                .filter_map(|n| parse_network(n.get_ref()).ok())
                .collect()
        });
        self.networks.store(Arc::new(networks));
    }

    /// Whether the config names any staff network.
    pub fn named(&self) -> bool {
        self.networks.load().is_some()
    }

    pub fn admits(&self, client: IpAddr) -> bool {
        let client = client.to_canonical();
        if client.is_loopback() {
            // The appliance's own console, unless the config says which
            // loopback addresses are staff (tests stand in for VLANs so).
            if let Some(networks) = self.networks.load().as_ref()
                && networks.iter().any(|n| n.addr().is_loopback())
            {
                return networks.iter().any(|n| n.contains(&client));
            }
            return true;
        }
        match self.networks.load().as_ref() {
            None => true,
            Some(networks) => networks.iter().any(|n| n.contains(&client)),
        }
    }
}

/// Paths every filtered network may reach: the unlock form the block
/// page links to, and the stylesheet both use. The block page itself is
/// served before this guard (any request for a blocked name).
/// The HA pair's routes are open too: they are the secondary's, wherever
/// it sits, and answer only to the pair key.
fn open_to_all(path: &str) -> bool {
    path == "/unlock"
        || path.starts_with("/static/")
        || path == crate::cluster::follow::SNAPSHOT_PATH
        || path == crate::cluster::blocks::BLOCKS_PATH
}

pub async fn guard(State(state): State<Arc<WebState>>, request: Request, next: Next) -> Response {
    if open_to_all(request.uri().path()) {
        return next.run(request).await;
    }
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    match client {
        Some(client) if !state.staff_networks.admits(client) => {
            WebError::StaffNetworkOnly.into_response()
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn networks(list: Option<Vec<&str>>) -> StaffNetworks {
        let networks = StaffNetworks::default();
        networks.networks.store(Arc::new(
            list.map(|l| l.iter().map(|n| n.parse().expect("net")).collect()),
        ));
        networks
    }

    #[test]
    fn only_the_named_networks_and_the_console_are_staff() {
        let staff = networks(Some(vec!["10.0.10.0/24"]));
        assert!(staff.admits("10.0.10.7".parse().expect("ip")));
        assert!(!staff.admits("10.0.20.7".parse().expect("ip")));
        assert!(staff.admits("127.0.0.1".parse().expect("ip")));
        assert!(staff.admits("::ffff:10.0.10.7".parse().expect("ip")));
    }

    #[test]
    fn with_no_network_named_every_network_is_staff() {
        assert!(networks(None).admits("10.0.20.7".parse().expect("ip")));
    }

    #[test]
    fn a_named_loopback_network_narrows_loopback_too() {
        let staff = networks(Some(vec!["127.0.0.3/32"]));
        assert!(staff.admits("127.0.0.3".parse().expect("ip")));
        assert!(!staff.admits("127.0.0.2".parse().expect("ip")));
    }
}
