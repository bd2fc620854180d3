//! Who is asking: maps a client's address and the listener it reached to a
//! profile — source-network rules first, then the listener's profile, then the
//! default.

use std::net::IpAddr;

use ipnet::IpNet;

/// Index of a profile in the policy's profile table.
pub type ProfileId = usize;

#[derive(Debug, Clone)]
pub struct ClientMap {
    /// Most specific network first, so the first hit is the longest prefix.
    rules: Vec<(IpNet, ProfileId)>,
    default_profile: ProfileId,
}

impl ClientMap {
    pub fn new(mut rules: Vec<(IpNet, ProfileId)>, default_profile: ProfileId) -> Self {
        // A stable sort keeps the config's order among networks of equal length.
        rules.sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        ClientMap {
            rules,
            default_profile,
        }
    }

    /// The profile for a client at `client` that reached a listener whose
    /// profile is `listener_profile`.
    pub fn profile_for(&self, client: IpAddr, listener_profile: Option<ProfileId>) -> ProfileId {
        let client = client.to_canonical();
        self.rules
            .iter()
            .find(|(net, _)| net.contains(&client))
            .map(|(_, profile)| *profile)
            .or(listener_profile)
            .unwrap_or(self.default_profile)
    }
}

impl ClientMap {
    /// Every profile a device inside `net` can be given by the rules, and
    /// whether the rules cover all of `net` (if not, devices in the gaps get
    /// their listener's profile or the default). Over-approximates: a rule
    /// that merely overlaps counts.
    pub fn profiles_within(&self, net: &IpNet) -> (Vec<ProfileId>, bool) {
        let overlapping = self
            .rules
            .iter()
            .filter(|(rule, _)| rule.contains(net) || net.contains(rule));
        let profiles = overlapping.clone().map(|(_, profile)| *profile).collect();
        let covered = overlapping.clone().any(|(rule, _)| rule.contains(net));
        (profiles, covered)
    }

    /// Every profile any source-network rule gives.
    pub fn rule_profiles(&self) -> impl Iterator<Item = ProfileId> + '_ {
        self.rules.iter().map(|(_, profile)| *profile)
    }

    pub fn default_profile(&self) -> ProfileId {
        self.default_profile
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        text.parse().expect("net")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn rules_then_listener_then_default() {
        let map = ClientMap::new(vec![(net("10.0.0.0/8"), 1), (net("10.0.20.0/24"), 2)], 0);
        assert_eq!(
            map.profile_for(ip("10.0.20.5"), Some(3)),
            2,
            "longest prefix wins"
        );
        assert_eq!(map.profile_for(ip("10.9.9.9"), Some(3)), 1);
        assert_eq!(
            map.profile_for(ip("192.168.1.2"), Some(3)),
            3,
            "listener next"
        );
        assert_eq!(map.profile_for(ip("192.168.1.2"), None), 0, "then default");
    }

    #[test]
    fn mapped_ipv4_clients_match_ipv4_rules() {
        let map = ClientMap::new(vec![(net("10.0.20.0/24"), 2)], 0);
        assert_eq!(map.profile_for(ip("::ffff:10.0.20.9"), None), 2);
    }
}
