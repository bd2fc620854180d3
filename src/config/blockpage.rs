//! `[blockpage]`: the block page over HTTPS, for schools that install the
//! appliance's own certificate authority on their managed devices. Off by
//! default: without the CA installed, a device sees a certificate error
//! whatever we do, and a CA is only worth its risk where the school
//! manages the devices that trust it.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;
use toml::Spanned;

use super::{Config, Problems};

/// The port browsers use for `https://` links to a blocked site.
pub const HTTPS_PORT: u16 = 443;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockPageConfig {
    /// Serve the block page over HTTPS, with certificates signed by a CA
    /// made on this box (`block-ca.pem` in the data directory).
    #[serde(default)]
    pub https: bool,
    /// Where the HTTPS block page listens. Default: port 443 on
    /// `[blocking]`'s block page addresses, where blocked names point.
    #[serde(default)]
    pub https_listen: Vec<Spanned<String>>,
}

impl Config {
    /// Where the HTTPS block page listens; empty when it is off.
    pub fn block_page_https_addresses(&self) -> Vec<SocketAddr> {
        if !self.blockpage.https {
            return Vec::new();
        }
        if !self.blockpage.https_listen.is_empty() {
            return self
                .blockpage
                .https_listen
                .iter()
                .filter_map(|address| address.get_ref().parse().ok())
                .collect();
        }
        let v4 = self.blocking.block_page_ipv4.map(IpAddr::V4);
        let v6 = self.blocking.block_page_ipv6.map(IpAddr::V6);
        v4.into_iter()
            .chain(v6)
            .map(|ip| SocketAddr::new(ip, HTTPS_PORT))
            .collect()
    }
}

impl BlockPageConfig {
    pub(super) fn validate(&self, config: &Config, problems: &mut Problems<'_>) {
        for (i, address) in self.https_listen.iter().enumerate() {
            if address.get_ref().parse::<SocketAddr>().is_err() {
                problems.at(
                    &address.span(),
                    format!("blockpage.https_listen[{i}]"),
                    format!(
                        "'{}' is not an address with a port: write e.g. \"10.0.10.1:443\"",
                        address.get_ref()
                    ),
                );
            }
        }
        if self.https && config.block_page_https_addresses().is_empty() {
            problems.at(
                &(0..0),
                "blockpage.https".into(),
                "the HTTPS block page needs an address: set [blocking] block_page_ipv4 (it listens on port 443 there) or [blockpage] https_listen".into(),
            );
        }
    }
}
