//! Staff overrides in force: which blocked names are released, for which
//! device, room or VLAN, until when. Consulted only once a name is blocked
//! (never for a locked category), so allowed lookups pay nothing for it.

use std::net::IpAddr;

use super::rules::{OverrideRow, OverrideScope, OverrideTarget};
use crate::config::catalogue::service_category;
use crate::name::{ReversedName, reverse_domain};

#[derive(Debug, Clone)]
enum Release {
    /// The reversed domain (`org.example`): it and its subdomains.
    Domain(String),
    /// A service's category (`service-youtube`).
    Category(String),
}

#[derive(Debug, Clone)]
struct ActiveOverride {
    id: i64,
    release: Release,
    scope: OverrideScope,
    expires_at_ms: i64,
}

/// The overrides granted and not yet ended; expiry is checked per lookup,
/// so an override stops at its minute even before the set is rebuilt.
#[derive(Debug, Clone, Default)]
pub struct OverrideSet {
    active: Vec<ActiveOverride>,
}

/// Who asked, as the scope of an override sees it.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    pub address: IpAddr,
    /// The `[[listen]]` address the question arrived on.
    pub listener: Option<&'a str>,
}

impl OverrideSet {
    pub fn new(rows: &[OverrideRow]) -> OverrideSet {
        let active = rows
            .iter()
            .filter(|row| row.ended_at.is_none())
            .map(|row| ActiveOverride {
                id: row.id,
                release: match &row.target {
                    OverrideTarget::Domain(domain) => Release::Domain(reverse_domain(domain)),
                    OverrideTarget::Service(service) => {
                        Release::Category(service_category(service))
                    }
                },
                scope: row.scope.clone(),
                expires_at_ms: row.expires_at,
            })
            .collect();
        OverrideSet { active }
    }

    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// The override that releases `name` (blocked by `category`, if a list
    /// blocked it) for `asker` at `now_ms`, if there is one.
    pub fn releases(
        &self,
        now_ms: i64,
        asker: Asker<'_>,
        name: &ReversedName,
        category: Option<&str>,
    ) -> Option<i64> {
        self.active
            .iter()
            .filter(|o| now_ms < o.expires_at_ms && in_scope(&o.scope, asker))
            .find(|o| match &o.release {
                Release::Domain(reversed) => covers(reversed.as_bytes(), name.as_bytes()),
                Release::Category(wanted) => category == Some(wanted.as_str()),
            })
            .map(|o| o.id)
    }
}

fn in_scope(scope: &OverrideScope, asker: Asker<'_>) -> bool {
    match scope {
        OverrideScope::Device(ip) => *ip == asker.address,
        OverrideScope::Network(net) => net.contains(&asker.address),
        OverrideScope::Listener(address) => asker.listener == Some(address.as_str()),
    }
}

/// Whether the reversed `rule` is `name` or one of its parents
/// (`org.example` covers `org.example.www`, not `org.examples`).
fn covers(rule: &[u8], name: &[u8]) -> bool {
    name.starts_with(rule) && (name.len() == rule.len() || name[rule.len()] == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(target: OverrideTarget, scope: OverrideScope, expires_at: i64) -> OverrideRow {
        OverrideRow {
            id: 7,
            target,
            scope,
            reason: "lesson".into(),
            granted_by: "ms.khan".into(),
            starts_at: 0,
            expires_at,
            ended_at: None,
            ended_by: None,
        }
    }

    fn name(domain: &str) -> ReversedName {
        ReversedName::from_domain(domain).expect("name")
    }

    #[test]
    fn a_domain_override_covers_subdomains_in_scope_until_it_expires() {
        let set = OverrideSet::new(&[row(
            OverrideTarget::Domain("example.org".into()),
            OverrideScope::Network("10.0.20.0/24".parse().expect("net")),
            1_000,
        )]);
        let pupil = Asker {
            address: "10.0.20.5".parse().expect("ip"),
            listener: None,
        };
        let elsewhere = Asker {
            address: "10.0.30.5".parse().expect("ip"),
            listener: None,
        };
        assert_eq!(
            set.releases(10, pupil, &name("www.example.org"), None),
            Some(7)
        );
        assert_eq!(set.releases(10, pupil, &name("example.org"), None), Some(7));
        assert_eq!(set.releases(10, pupil, &name("examples.org"), None), None);
        assert_eq!(
            set.releases(10, elsewhere, &name("example.org"), None),
            None
        );
        assert_eq!(set.releases(1_000, pupil, &name("example.org"), None), None);
    }

    #[test]
    fn a_service_override_matches_the_blocking_category_on_its_listener() {
        let set = OverrideSet::new(&[row(
            OverrideTarget::Service("youtube".into()),
            OverrideScope::Listener("10.0.20.1:53".into()),
            i64::MAX,
        )]);
        let asker = Asker {
            address: "10.0.20.5".parse().expect("ip"),
            listener: Some("10.0.20.1:53"),
        };
        let other = Asker {
            listener: Some("10.0.30.1:53"),
            ..asker
        };
        let video = name("www.youtube.com");
        assert_eq!(
            set.releases(0, asker, &video, Some("service-youtube")),
            Some(7)
        );
        assert_eq!(set.releases(0, asker, &video, Some("video")), None);
        assert_eq!(
            set.releases(0, other, &video, Some("service-youtube")),
            None
        );
    }
}
