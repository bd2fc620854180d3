//! DNS-rebinding protection: an upstream answer that gives a public name a
//! private, loopback, link-local or unspecified address would let a page
//! from the internet reach the school's printers, routers and the appliance
//! itself through a pupil's browser. Such addresses are dropped from the
//! answer; the school's own zones, the appliance's names and the domains
//! the config allows keep them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use hickory_resolver::proto::rr::rdata::HTTPS;
use hickory_resolver::proto::rr::rdata::svcb::{SVCB, SvcParamValue};
use hickory_resolver::proto::rr::{RData, Record};

use crate::config::Config;
use crate::metrics::UpstreamStats;
use crate::name::{ReversedName, normalise_domain, reverse_domain};

/// Zones that are the school's own by definition (RFC 6762 `.local`,
/// RFC 8375 `home.arpa`, the reserved `.internal`, the common `.lan`), the
/// reverse zones (whose PTR answers carry no addresses anyway) and
/// `localhost`.
const LOCAL_ZONES: [&str; 7] = [
    "local",
    "lan",
    "home.arpa",
    "internal",
    "in-addr.arpa",
    "ip6.arpa",
    "localhost",
];

/// What the rebinding stage needs: whether it is on, and the zones exempt
/// from it as reversed keys (`arpa.home`).
pub struct RebindingGuard {
    enabled: bool,
    exempt: Vec<Vec<u8>>,
    stats: Arc<UpstreamStats>,
}

impl RebindingGuard {
    /// The guard for `config`: `[rebinding]`, the built-in local zones, and
    /// the host of `[web] public_url` (the appliance's own name).
    pub fn from_config(config: &Config, stats: Arc<UpstreamStats>) -> RebindingGuard {
        let allowed = config
            .rebinding
            .allow_domains
            .iter()
            .map(|domain| domain.get_ref().as_str());
        let own = config.web.public_url.as_deref().and_then(url_host);
        // The school's own zones answer with inside addresses by design.
        let zones = config
            .zones
            .iter()
            .map(|zone| zone.domain.get_ref().as_str());
        let school = config
            .server
            .school_domain
            .as_ref()
            .map(|d| d.get_ref().as_str());
        let exempt = LOCAL_ZONES
            .into_iter()
            .chain(allowed)
            .chain(own)
            .chain(zones)
            .chain(school)
            .filter_map(|domain| normalise_domain(domain).ok())
            .map(|domain| reverse_domain(&domain).into_bytes())
            .collect();
        RebindingGuard {
            enabled: config.rebinding.enabled,
            exempt,
            stats,
        }
    }

    /// `upstream` without the private addresses it gives the public `name`,
    /// or None when it is to be sent as it is. Cheap when nothing is
    /// private: one pass over the answer records, no allocation.
    pub fn filter(
        &self,
        name: &ReversedName,
        upstream: &super::answer::UpstreamAnswer,
    ) -> Option<super::answer::UpstreamAnswer> {
        if !self.enabled || !upstream.answers.iter().any(is_private_record) {
            return None;
        }
        if self.is_exempt(name) {
            return None;
        }
        self.stats.rebinding_dropped.fetch_add(1, Relaxed);
        tracing::debug!(name = %name.to_domain(), "private address for a public name dropped");
        let mut kept = upstream.clone();
        kept.answers.retain(|record| !is_private_record(record));
        // No longer the answer that was validated.
        kept.authentic = false;
        Some(kept)
    }

    /// Single-label names (a Windows host on the LAN) and names under an
    /// exempt zone.
    fn is_exempt(&self, name: &ReversedName) -> bool {
        let key = name.as_bytes();
        name.label_count() <= 1
            || self.exempt.iter().any(|zone| {
                key.starts_with(zone) && (key.len() == zone.len() || key[zone.len()] == b'.')
            })
    }
}

/// The host of a URL like `https://lollipop.school.lan:8443/`, if it is a
/// name rather than an address.
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.starts_with('[') {
        return None;
    }
    let host = host.split(':').next()?;
    (host.parse::<IpAddr>().is_err() && !host.is_empty()).then_some(host)
}

/// An address record with a private address, or an HTTPS/SVCB record
/// whose address hints include one (a client may connect to a hint).
fn is_private_record(record: &Record) -> bool {
    match &record.data {
        RData::A(a) => is_private(IpAddr::V4(a.0)),
        RData::AAAA(aaaa) => is_private(IpAddr::V6(aaaa.0)),
        RData::HTTPS(HTTPS(svcb)) | RData::SVCB(svcb) => has_private_hint(svcb),
        _ => false,
    }
}

fn has_private_hint(svcb: &SVCB) -> bool {
    svcb.svc_params.iter().any(|(_, value)| match value {
        SvcParamValue::Ipv4Hint(hint) => hint.0.iter().any(|a| is_private(IpAddr::V4(a.0))),
        SvcParamValue::Ipv6Hint(hint) => hint.0.iter().any(|a| is_private(IpAddr::V6(a.0))),
        _ => false,
    })
}

/// Whether `ip` is one a public name must not point to: inside a private
/// network, this machine, a link, a carrier's NAT, or no address at all
/// (0.0.0.0 reaches the local machine on many systems).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => is_private_v6(v6),
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    a == 0 // 0.0.0.0/8, "this network"
        || a == 10 // RFC 1918
        || a == 127 // loopback
        || (a == 169 && b == 254) // link-local
        || (a == 172 && (16..32).contains(&b)) // RFC 1918
        || (a == 192 && b == 168) // RFC 1918
        || (a == 100 && (64..128).contains(&b)) // RFC 6598 carrier-grade NAT
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_private_v4(v4);
    }
    let segments = ip.segments();
    // NAT64's well-known prefix carries an IPv4 address in its last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., high, low] = segments;
        return is_private_v4(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low)));
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || (segments[0] & 0xfe00) == 0xfc00 // fc00::/7 unique local
        || (segments[0] & 0xffc0) == 0xfe80 // fe80::/10 link-local
        || (segments[0] & 0xffc0) == 0xfec0 // fec0::/10 old site-local
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private(text: &str) -> bool {
        is_private(text.parse().expect("address"))
    }

    #[test]
    fn private_loopback_link_local_and_unspecified_addresses_are_private() {
        for address in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.10",
            "127.0.0.1",
            "127.255.0.9",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "::ffff:192.168.1.10",
            "::ffff:127.0.0.1",
            "64:ff9b::10.0.0.1",
        ] {
            assert!(private(address), "{address} is private");
        }
    }

    #[test]
    fn public_addresses_are_not_private() {
        for address in [
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.1",
            "192.0.2.10",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.1.1",
            "11.0.0.1",
            "2001:db8::10",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "fe00::1",
        ] {
            assert!(!private(address), "{address} is public");
        }
    }

    #[test]
    fn an_https_record_hinting_a_private_address_counts_as_private() {
        use hickory_resolver::proto::rr::Name;
        use hickory_resolver::proto::rr::rdata::A;
        use hickory_resolver::proto::rr::rdata::svcb::{IpHint, SvcParamKey};
        let https = |hint: [u8; 4]| {
            let svcb = SVCB::new(
                1,
                Name::root(),
                vec![(
                    SvcParamKey::Ipv4Hint,
                    SvcParamValue::Ipv4Hint(IpHint(vec![A::from(Ipv4Addr::from(hint))])),
                )],
            );
            Record::from_rdata(Name::root(), 60, RData::HTTPS(HTTPS(svcb)))
        };
        assert!(is_private_record(&https([192, 168, 0, 1])));
        assert!(!is_private_record(&https([192, 0, 2, 1])));
    }

    #[test]
    fn the_appliance_host_is_read_from_its_url() {
        assert_eq!(
            url_host("https://lollipop.school.lan:8443/x"),
            Some("lollipop.school.lan")
        );
        assert_eq!(
            url_host("http://filter.example.org"),
            Some("filter.example.org")
        );
        assert_eq!(url_host("http://10.0.0.1/"), None);
        assert_eq!(url_host("http://[fd00::1]:80/"), None);
    }
}
