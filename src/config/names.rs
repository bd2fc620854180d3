//! The names people read: profiles, rooms (`[[listen]]` addresses) and
//! networks (`[[clients]]` rules) as the school calls them ("Key Stage 2",
//! "Oak class Wi-Fi"). Ids and addresses stay in the config, the API, CSV
//! and the "why" detail; everything a head teacher reads goes through here,
//! so a page never falls back to "ks2" or "10.0.10.1:53" on its own.

use std::net::IpAddr;

use ipnet::IpNet;
use toml::Spanned;

use super::{ClientRule, Config, ListenConfig, Problems};

/// Longest display name: it has to fit a phone's table cell and a menu.
pub const MAX_DISPLAY_NAME: usize = 60;

/// What the shipped profiles are called when the config names them no
/// other way; any other id reads as itself, capitalised.
pub fn default_profile_name(id: &str) -> String {
    match id {
        "under5" => "Nursery (under 5)".into(),
        "eyfs" => "Early years".into(),
        "ks1" => "Key Stage 1".into(),
        "ks2" => "Key Stage 2".into(),
        "staff" => "Staff".into(),
        "guest" | "guests" => "Guests".into(),
        _ => {
            let words = id.replace(['-', '_'], " ");
            let mut chars = words.trim().chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => "Unnamed profile".into(),
            }
        }
    }
}

fn given(name: &Option<Spanned<String>>) -> Option<String> {
    name.as_ref()
        .map(|n| n.get_ref().trim().to_string())
        .filter(|n| !n.is_empty())
}

/// `10.0.20.x` for an IPv4 /24: the shorthand a technician writes on a
/// whiteboard; None for anything else, which has no plain short form.
fn short_network(net: &IpNet) -> Option<String> {
    match net {
        IpNet::V4(v4) if v4.prefix_len() == 24 => {
            let [a, b, c, _] = v4.network().octets();
            Some(format!("{a}.{b}.{c}.x"))
        }
        _ => None,
    }
}

impl Config {
    /// The profile `id` as people read it. An id no longer in the config
    /// (an old log row) still gets a readable name.
    pub fn profile_name(&self, id: &str) -> String {
        self.profiles
            .get(id)
            .and_then(|profile| given(&profile.display_name))
            .unwrap_or_else(|| default_profile_name(id))
    }

    /// The room a `[[listen]]` entry serves: its display name, else the
    /// name of its profile's network, else the school network.
    pub fn room_name(&self, listen: &ListenConfig) -> String {
        given(&listen.display_name).unwrap_or_else(|| match &listen.profile {
            Some(profile) => format!("{} network", self.profile_name(profile.get_ref())),
            None => "School network".into(),
        })
    }

    /// The room behind a listener address as the block log holds it
    /// (`10.0.10.1:53`); None for an address no longer listened on.
    pub fn listener_name(&self, address: &str) -> Option<String> {
        self.listen
            .iter()
            .find(|listen| listen.address.get_ref() == address)
            .map(|listen| self.room_name(listen))
    }

    /// A `[[clients]]` network: its display name, else its profile's
    /// devices and, for a /24, where they are ("Staff devices on 10.0.20.x").
    pub fn network_name(&self, rule: &ClientRule) -> String {
        given(&rule.display_name).unwrap_or_else(|| {
            let devices = format!("{} devices", self.profile_name(rule.profile.get_ref()));
            match super::parse_network(rule.network.get_ref())
                .ok()
                .and_then(|net| short_network(&net))
            {
                Some(short) => format!("{devices} on {short}"),
                None => devices,
            }
        })
    }

    /// The `[[clients]]` network `net` as people read it, if it is one.
    pub fn network_name_of(&self, net: &IpNet) -> Option<String> {
        self.clients
            .iter()
            .find(|rule| super::parse_network(rule.network.get_ref()).ok().as_ref() == Some(net))
            .map(|rule| self.network_name(rule))
    }

    /// Where a device asked from, as people read it: the most specific
    /// `[[clients]]` network holding it, else the room of its listener.
    pub fn place_name(&self, client: &str, listener: Option<&str>) -> Option<String> {
        let ip = client.parse::<IpAddr>().ok();
        let network = ip.and_then(|ip| {
            self.clients
                .iter()
                .filter_map(|rule| {
                    let net = super::parse_network(rule.network.get_ref()).ok()?;
                    net.contains(&ip).then_some((net.prefix_len(), rule))
                })
                .max_by_key(|(len, _)| *len)
                .map(|(_, rule)| self.network_name(rule))
        });
        network.or_else(|| listener.and_then(|address| self.listener_name(address)))
    }

    pub(super) fn validate_names(&self, problems: &mut Problems<'_>) {
        let mut check = |name: &Option<Spanned<String>>, key: String| {
            let Some(name) = name else { return };
            let text = name.get_ref();
            let message = if text.trim().is_empty() {
                Some(
                    "is empty: give the name people use, e.g. \"Key Stage 2\", or leave it out"
                        .to_string(),
                )
            } else if text.trim().chars().count() > MAX_DISPLAY_NAME {
                Some(format!(
                    "is {} characters long: keep it to {MAX_DISPLAY_NAME}, it has to fit a phone's screen",
                    text.trim().chars().count()
                ))
            } else if text.chars().any(char::is_control) {
                Some("holds a control character (a tab or line break): write it on one line".into())
            } else {
                None
            };
            if let Some(message) = message {
                problems.at(&name.span(), key, message);
            }
        };
        for (id, profile) in &self.profiles {
            check(&profile.display_name, format!("profiles.{id}.display_name"));
        }
        for (i, listen) in self.listen.iter().enumerate() {
            check(&listen.display_name, format!("listen[{i}].display_name"));
        }
        for (i, rule) in self.clients.iter().enumerate() {
            check(&rule.display_name, format!("clients[{i}].display_name"));
        }

        // Two profiles, or two rooms, with one name could not be told apart
        // on a page or in an alert.
        let mut seen: Vec<(&String, String)> = Vec::new();
        for (id, profile) in &self.profiles {
            let name = self.profile_name(id);
            if let Some((other, _)) = seen.iter().find(|(_, n)| n.eq_ignore_ascii_case(&name)) {
                // Blame the profile whose name was written, not a default.
                let (blamed, other) = match &profile.display_name {
                    Some(_) => (id, *other),
                    None => (*other, id),
                };
                let span = self.profiles[blamed]
                    .display_name
                    .as_ref()
                    .map_or(0..0, Spanned::span);
                problems.at(
                    &span,
                    format!("profiles.{blamed}.display_name"),
                    format!("\"{name}\" is also the name of profile '{other}': give each profile its own name"),
                );
            }
            seen.push((id, name));
        }
        let mut rooms: Vec<(String, String)> = Vec::new();
        let named = self
            .listen
            .iter()
            .enumerate()
            .filter(|(_, l)| given(&l.display_name).is_some())
            .map(|(i, l)| {
                (
                    format!("listen[{i}]"),
                    self.room_name(l),
                    l.display_name.as_ref(),
                )
            })
            .chain(
                self.clients
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| given(&r.display_name).is_some())
                    .map(|(i, r)| {
                        (
                            format!("clients[{i}]"),
                            self.network_name(r),
                            r.display_name.as_ref(),
                        )
                    }),
            );
        for (key, name, spanned) in named {
            if let Some((other, _)) = rooms.iter().find(|(_, n)| n.eq_ignore_ascii_case(&name)) {
                problems.at(
                    &spanned.map_or(0..0, Spanned::span),
                    format!("{key}.display_name"),
                    format!("\"{name}\" is also the name of {other}: give each room or network its own name"),
                );
            }
            rooms.push((key, name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(extra: &str) -> Result<Config, crate::config::ConfigErrors> {
        // The shipped file (under5, ks1, ks2, staff; listen[0] on
        // 127.0.0.1:5353 without a profile) with tables added at its end.
        let text = format!(
            "{}\n[[listen]]\naddress = \"10.0.10.1:53\"\nprofile = \"under5\"\n\
             [[listen]]\naddress = \"10.0.30.1:53\"\nprofile = \"ks2\"\ndisplay_name = \"Oak class Wi-Fi\"\n\
             [profiles.after-school_club]\nmode = \"blocklist\"\n{extra}",
            crate::config::EMBEDDED_DEFAULT
        );
        Config::parse(
            &text,
            crate::config::ConfigOrigin {
                display_name: "test.toml".into(),
                base_dir: std::path::PathBuf::from("."),
                path: None,
                text: String::new(),
            },
        )
    }

    #[test]
    fn shipped_profiles_have_names_people_use() {
        assert_eq!(default_profile_name("under5"), "Nursery (under 5)");
        assert_eq!(default_profile_name("ks1"), "Key Stage 1");
        assert_eq!(default_profile_name("ks2"), "Key Stage 2");
        assert_eq!(default_profile_name("staff"), "Staff");
        assert_eq!(
            default_profile_name("after-school_club"),
            "After school club"
        );
        assert_eq!(default_profile_name("year6"), "Year6");
        assert_eq!(default_profile_name(""), "Unnamed profile");
    }

    #[test]
    fn display_names_win_and_defaults_fill_in() {
        let config = load(
            "[[clients]]\nnetwork = \"10.0.20.0/24\"\nprofile = \"staff\"\n\
             [[clients]]\nnetwork = \"10.0.21.0/25\"\nprofile = \"ks1\"\ndisplay_name = \"Library iPads\"\n\
             [[clients]]\nnetwork = \"10.0.22.0/23\"\nprofile = \"ks1\"\n",
        )
        .expect("valid");
        assert_eq!(config.profile_name("ks2"), "Key Stage 2");
        assert_eq!(
            config.profile_name("after-school_club"),
            "After school club"
        );
        assert_eq!(config.profile_name("removed"), "Removed");
        assert_eq!(
            config.listener_name("10.0.10.1:53").as_deref(),
            Some("Nursery (under 5) network")
        );
        assert_eq!(
            config.listener_name("10.0.30.1:53").as_deref(),
            Some("Oak class Wi-Fi")
        );
        assert_eq!(
            config.listener_name("127.0.0.1:5353").as_deref(),
            Some("School network")
        );
        assert_eq!(config.listener_name("10.9.9.9:53"), None);
        assert_eq!(
            config.network_name(&config.clients[0]),
            "Staff devices on 10.0.20.x"
        );
        assert_eq!(config.network_name(&config.clients[1]), "Library iPads");
        assert_eq!(
            config.network_name(&config.clients[2]),
            "Key Stage 1 devices"
        );
        // The most specific network wins over the listener.
        assert_eq!(
            config
                .place_name("10.0.21.7", Some("10.0.30.1:53"))
                .as_deref(),
            Some("Library iPads")
        );
        assert_eq!(
            config
                .place_name("10.0.30.7", Some("10.0.30.1:53"))
                .as_deref(),
            Some("Oak class Wi-Fi")
        );
        assert_eq!(config.place_name("10.0.30.7", None), None);
    }

    #[test]
    fn a_given_name_is_checked() {
        let config = load("").expect("valid");
        assert_eq!(config.profile_name("ks1"), "Key Stage 1");
        let named = load("[profiles.nursery]\nmode = \"allowlist\"\ndisplay_name = \"Nursery\"\n")
            .expect("valid");
        assert_eq!(named.profile_name("nursery"), "Nursery");

        let message = |extra: &str| match load(extra) {
            Ok(_) => panic!("{extra} should be refused"),
            Err(errors) => errors.to_string(),
        };
        let empty = message("[profiles.eyfs]\nmode = \"allowlist\"\ndisplay_name = \"  \"\n");
        assert!(
            empty.contains("profiles.eyfs.display_name: is empty"),
            "{empty}"
        );
        let long = message(&format!(
            "[profiles.eyfs]\nmode = \"allowlist\"\ndisplay_name = \"{}\"\n",
            "x".repeat(61)
        ));
        assert!(long.contains("61 characters long"), "{long}");
        let control =
            message("[profiles.eyfs]\nmode = \"allowlist\"\ndisplay_name = \"Early\\tyears\"\n");
        assert!(control.contains("control character"), "{control}");
        let twice =
            message("[profiles.eyfs]\nmode = \"allowlist\"\ndisplay_name = \"key stage 2\"\n");
        assert!(
            twice.contains("profiles.eyfs.display_name")
                && twice.contains("also the name of profile 'ks2'"),
            "{twice}"
        );
        let rooms = message(
            "[[clients]]\nnetwork = \"10.0.20.0/24\"\nprofile = \"staff\"\ndisplay_name = \"Oak class wi-fi\"\n",
        );
        assert!(
            rooms.contains("clients[0].display_name") && rooms.contains("listen[2]"),
            "{rooms}"
        );
    }
}
