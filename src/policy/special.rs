//! Special names that keep devices on the school's DNS: the browsers'
//! DNS-over-HTTPS canary, iCloud Private Relay, and encrypted-resolver
//! discovery (DDR). They are answered here, before any list is consulted.

use crate::config::CircumventionConfig;
use crate::name::ReversedName;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialAnswer {
    /// Answer NXDOMAIN: the name must look as if it does not exist.
    NxDomain(&'static str),
    /// Answer NOERROR with no records.
    NoData(&'static str),
}

/// Reversed names, so a single comparison also covers subdomains where wanted.
const DOH_CANARY: &[u8] = b"net.use-application-dns";
const PRIVATE_RELAY: [&[u8]; 2] = [b"com.icloud.mask", b"com.icloud.mask-h2"];
const DDR: &[u8] = b"arpa.resolver._dns";

/// What to answer for `name`, if it is one of the special names switched on.
pub fn special_answer(name: &ReversedName, config: &CircumventionConfig) -> Option<SpecialAnswer> {
    let key = name.as_bytes();
    if config.doh_canary && key == DOH_CANARY {
        return Some(SpecialAnswer::NxDomain(
            "DNS-over-HTTPS canary: browsers keep using the school's DNS",
        ));
    }
    if config.private_relay && PRIVATE_RELAY.contains(&key) {
        return Some(SpecialAnswer::NxDomain(
            "iCloud Private Relay is not available on the school network",
        ));
    }
    if config.ddr && key == DDR {
        return Some(SpecialAnswer::NoData(
            "no encrypted resolver is offered for discovery",
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(name: &str, config: CircumventionConfig) -> Option<SpecialAnswer> {
        special_answer(&ReversedName::from_domain(name).expect("name"), &config)
    }

    #[test]
    fn each_control_answers_only_when_on() {
        let on = CircumventionConfig::default();
        let off = CircumventionConfig {
            doh_canary: false,
            private_relay: false,
            ddr: false,
        };
        for name in [
            "use-application-dns.net",
            "mask.icloud.com",
            "mask-h2.icloud.com",
            "_dns.resolver.arpa",
        ] {
            assert!(answer(name, on).is_some(), "{name} should be answered");
            assert_eq!(answer(name, off), None, "{name} should pass when off");
        }
        assert!(matches!(
            answer("USE-APPLICATION-DNS.NET.", on),
            Some(SpecialAnswer::NxDomain(_))
        ));
        assert!(matches!(
            answer("_dns.resolver.arpa", on),
            Some(SpecialAnswer::NoData(_))
        ));
        assert_eq!(answer("www.icloud.com", on), None);
        assert_eq!(answer("x.use-application-dns.net", on), None);
    }
}
