//! Which server answers a name. The school's own zones (its Active
//! Directory domain, its reverse zones) go to the servers the config names
//! for them; names that must never leave the site are answered here: the
//! private and special reverse zones (RFC 6303, RFC 7793) and the special-use
//! names `localhost`, `invalid`, `local`, `home.arpa`, `onion` and
//! `internal` (RFC 6761, 6762, 8375, 7686, ICANN's private-use TLD), unless a
//! zone forwards them; the appliance's own name under `school_domain` gets
//! its address; everything else goes to the upstreams (forwarded or
//! recursed). Sits behind the
//! cache, so filtering and the block log see every answer alike.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::rdata::{A, AAAA, SOA};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};

use crate::config::{APPLIANCE_LABEL, Config};

use super::answer::UpstreamAnswer;
use super::forward::Forwarder;
use super::upstream::{Asked, Upstream};

/// RFC 6303's values for a locally served empty zone's SOA; its minimum
/// (10800 s) is how long a client keeps the NXDOMAIN.
const LOCAL_SOA_TTL: u32 = 10_800;

/// The answers for `localhost` names keep this long.
const LOCALHOST_TTL: u32 = 86_400;

/// The appliance's own name keeps this long (it changes only with the config).
const APPLIANCE_TTL: u32 = 300;

/// Zones whose names never leave the site unless a `[[zones]]` entry
/// forwards them (then the more specific or equal zone wins).
fn locally_served() -> Vec<String> {
    let mut zones: Vec<String> = [
        // RFC 6303 (IPv4): this network, loopback, link-local, the
        // documentation ranges, broadcast, and RFC 1918's private ranges.
        "0.in-addr.arpa",
        "127.in-addr.arpa",
        "254.169.in-addr.arpa",
        "2.0.192.in-addr.arpa",
        "100.51.198.in-addr.arpa",
        "113.0.203.in-addr.arpa",
        "255.255.255.255.in-addr.arpa",
        "10.in-addr.arpa",
        "168.192.in-addr.arpa",
        // RFC 6303 (IPv6): unique local, link-local, deprecated site-local,
        // documentation.
        "d.f.ip6.arpa",
        "8.e.f.ip6.arpa",
        "9.e.f.ip6.arpa",
        "a.e.f.ip6.arpa",
        "b.e.f.ip6.arpa",
        "c.e.f.ip6.arpa",
        "d.e.f.ip6.arpa",
        "e.e.f.ip6.arpa",
        "f.e.f.ip6.arpa",
        "8.b.d.0.1.0.0.2.ip6.arpa",
        // Special-use names.
        "invalid",
        "local",
        "home.arpa",
        "onion",
        "internal",
    ]
    .map(String::from)
    .to_vec();
    zones.extend((16..=31).map(|b| format!("{b}.172.in-addr.arpa")));
    // RFC 7793: the shared address space 100.64.0.0/10.
    zones.extend((64..=127).map(|b| format!("{b}.100.in-addr.arpa")));
    // The unspecified and loopback IPv6 addresses (RFC 6303).
    let zeros = "0.".repeat(31);
    zones.push(format!("0.{zeros}ip6.arpa"));
    zones.push(format!("1.{zeros}ip6.arpa"));
    zones
}

pub struct ZoneRouter {
    /// The config's zones, most specific first.
    zones: Vec<(Name, Forwarder)>,
    local: Vec<Name>,
    localhost: Name,
    /// `lollipop.<school_domain>` and the appliance's addresses.
    appliance: Option<(Name, Vec<IpAddr>)>,
    /// Everything else: the forwarder or the recursor.
    upstreams: Box<dyn Upstream>,
}

/// Where a name is answered.
enum Route<'a> {
    Zone(&'a Forwarder),
    Localhost,
    /// An empty zone served here: its apex.
    Local(&'a Name),
    Appliance(&'a [IpAddr]),
    Upstreams,
}

impl ZoneRouter {
    pub fn new(config: &Config, upstreams: Box<dyn Upstream>) -> ZoneRouter {
        let mut zones: Vec<(Name, Forwarder)> = config
            .zones
            .iter()
            .filter_map(|zone| {
                let name = fqdn(&zone.normalised_domain()?)?;
                Some((name, Forwarder::plain(&zone.server_addresses(), config)))
            })
            .collect();
        zones.sort_by_key(|(name, _)| std::cmp::Reverse(name.num_labels()));
        let mut local: Vec<Name> = locally_served().iter().filter_map(|z| fqdn(z)).collect();
        local.sort_by_key(|name| std::cmp::Reverse(name.num_labels()));
        let appliance = config
            .server
            .school_domain
            .as_ref()
            .and_then(|domain| crate::name::normalise_domain(domain.get_ref()).ok())
            .and_then(|domain| fqdn(&format!("{APPLIANCE_LABEL}.{domain}")))
            .map(|name| (name, config.appliance_addresses()));
        ZoneRouter {
            zones,
            local,
            localhost: Name::from_ascii("localhost.").unwrap_or_default(),
            appliance,
            upstreams,
        }
    }

    fn route(&self, name: &Name) -> Route<'_> {
        if let Some((own, addresses)) = &self.appliance
            && own == name
        {
            return Route::Appliance(addresses);
        }
        let zone = self.zones.iter().find(|(zone, _)| zone.zone_of(name));
        let local = self.local.iter().find(|zone| zone.zone_of(name));
        match (zone, local) {
            // A zone of the config as specific as the local one (or more)
            // forwards it: the school's own reverse zone, say.
            (Some((zone, forwarder)), Some(local)) if zone.num_labels() >= local.num_labels() => {
                Route::Zone(forwarder)
            }
            (_, Some(local)) => Route::Local(local),
            (Some((_, forwarder)), None) => Route::Zone(forwarder),
            (None, None) if self.localhost.zone_of(name) => Route::Localhost,
            (None, None) => Route::Upstreams,
        }
    }
}

impl Upstream for ZoneRouter {
    fn ask<'a>(&'a self, name: &'a Name, record_type: RecordType) -> Asked<'a> {
        let mut fqdn = name.clone();
        fqdn.set_fqdn(true);
        match self.route(&fqdn) {
            Route::Zone(forwarder) => forwarder.ask(name, record_type),
            Route::Upstreams => self.upstreams.ask(name, record_type),
            Route::Local(zone) => {
                let answer = empty_zone(zone, &fqdn, record_type);
                Box::pin(async move { answer })
            }
            Route::Localhost => {
                let answer = addresses(
                    &fqdn,
                    record_type,
                    &[Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()],
                    LOCALHOST_TTL,
                );
                Box::pin(async move { answer })
            }
            Route::Appliance(own) => {
                let answer = addresses(&fqdn, record_type, own, APPLIANCE_TTL);
                Box::pin(async move { answer })
            }
        }
    }
}

fn fqdn(domain: &str) -> Option<Name> {
    let mut name = Name::from_ascii(domain).ok()?;
    name.set_fqdn(true);
    Some(name)
}

/// The answer of an empty zone served here: its SOA at the apex, NODATA
/// for the apex's other types, NXDOMAIN below it.
fn empty_zone(zone: &Name, name: &Name, record_type: RecordType) -> UpstreamAnswer {
    let soa = Record::from_rdata(
        zone.clone(),
        LOCAL_SOA_TTL,
        RData::SOA(SOA::new(
            zone.clone(),
            Name::from_ascii("nobody.invalid.").unwrap_or_default(),
            1,
            3600,
            1200,
            604_800,
            LOCAL_SOA_TTL,
        )),
    );
    if zone == name {
        if record_type == RecordType::SOA {
            return UpstreamAnswer::new(ResponseCode::NoError, vec![soa], Vec::new());
        }
        return UpstreamAnswer::new(ResponseCode::NoError, Vec::new(), vec![soa]);
    }
    UpstreamAnswer::new(ResponseCode::NXDomain, Vec::new(), vec![soa])
}

/// `name`'s A or AAAA records from `ips` (NODATA for other types).
fn addresses(name: &Name, record_type: RecordType, ips: &[IpAddr], ttl: u32) -> UpstreamAnswer {
    let records = ips
        .iter()
        .filter_map(|ip| match (ip, record_type) {
            (IpAddr::V4(v4), RecordType::A) => Some(RData::A(A(*v4))),
            (IpAddr::V6(v6), RecordType::AAAA) => Some(RData::AAAA(AAAA(*v6))),
            _ => None,
        })
        .map(|data| Record::from_rdata(name.clone(), ttl, data))
        .collect();
    UpstreamAnswer::new(ResponseCode::NoError, records, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(zones: &str) -> ZoneRouter {
        let text = format!(
            "[server]\ndata_dir = \"/tmp/none\"\ndefault_profile = \"ks2\"\nschool_domain = \"stmarys.internal\"\n\
             [web]\npublic_url = \"https://10.0.10.2\"\n[[listen]]\naddress = \"0.0.0.0:53\"\n[[upstream]]\naddress = \"9.9.9.9\"\nprotocol = \"udp\"\n{zones}\n[profiles.ks2]\nmode = \"blocklist\"\n"
        );
        let config = Config::parse(&text, crate::config::ConfigOrigin::default())
            .unwrap_or_else(|errors| panic!("{errors}"));
        ZoneRouter::new(&config, Box::new(Forwarder::plain(&[], &config)))
    }

    fn route_of(router: &ZoneRouter, name: &str) -> String {
        let name = Name::from_ascii(name).expect("name");
        match router.route(&name) {
            Route::Zone(_) => "zone".into(),
            Route::Local(zone) => format!("local {zone}"),
            Route::Localhost => "localhost".into(),
            Route::Appliance(ips) => format!("appliance {ips:?}"),
            Route::Upstreams => "upstreams".into(),
        }
    }

    #[test]
    fn private_names_stay_here_unless_a_zone_forwards_them() {
        let router = router(
            "[[zones]]\ndomain = \"stmarys.internal\"\nservers = [\"10.0.10.5\"]\n\
             [[zones]]\ndomain = \"10.in-addr.arpa\"\nservers = [\"10.0.10.5\"]\n",
        );
        for (name, route) in [
            ("dc01.stmarys.internal.", "zone"),
            ("STMARYS.internal.", "zone"),
            ("5.10.0.10.in-addr.arpa.", "zone"),
            ("1.1.168.192.in-addr.arpa.", "local 168.192.in-addr.arpa."),
            ("1.0.20.172.in-addr.arpa.", "local 20.172.in-addr.arpa."),
            ("1.0.32.172.in-addr.arpa.", "upstreams"),
            ("1.0.64.100.in-addr.arpa.", "local 64.100.in-addr.arpa."),
            ("printer.local.", "local local."),
            ("nas.home.arpa.", "local home.arpa."),
            ("other.internal.", "local internal."),
            ("x.invalid.", "local invalid."),
            ("localhost.", "localhost"),
            ("www.localhost.", "localhost"),
            ("lollipop.stmarys.internal.", "appliance [10.0.10.2]"),
            ("www.bbc.co.uk.", "upstreams"),
            ("8.8.8.8.in-addr.arpa.", "upstreams"),
        ] {
            assert_eq!(route_of(&router, name), route, "{name}");
        }
    }

    #[test]
    fn an_empty_zone_answers_nxdomain_below_its_apex_with_its_soa() {
        let zone = Name::from_ascii("168.192.in-addr.arpa.").expect("zone");
        let below = Name::from_ascii("1.1.168.192.in-addr.arpa.").expect("name");
        let answer = empty_zone(&zone, &below, RecordType::PTR);
        assert_eq!(answer.code, ResponseCode::NXDomain);
        assert!(matches!(answer.authorities[0].data, RData::SOA(_)));
        let apex = empty_zone(&zone, &zone, RecordType::SOA);
        assert_eq!(apex.code, ResponseCode::NoError);
        assert_eq!(apex.answers.len(), 1);
    }
}
