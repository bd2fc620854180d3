//! What an override can be for and how long it lasts: the rooms, VLANs and
//! services a school's config offers, the three durations (this lesson, an
//! hour, the rest of the school day — never past 23:59 local time), and the
//! words used for a scope on the pages and in the audit trail.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::clock::TimeZone;
use crate::config::Config;
use crate::policy::rules::OverrideScope;
use crate::web::view::local_time;

use super::UnlockForm;

/// A lesson, when nobody says how long theirs is.
pub const LESSON_MINUTES: i64 = 45;
/// When the school day ends (local time), for "the rest of the school day".
pub const SCHOOL_DAY_ENDS: (i64, i64) = (16, 0);
/// Nothing unlocked today lasts past this minute (local time).
pub const LAST_MINUTE: (i64, i64) = (23, 59);

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// One room or VLAN an override can be for.
pub struct Choice {
    /// `listener:<address>` or `network:<cidr>`.
    pub value: String,
    pub label: String,
}

/// One duration, with the time it would end if granted now.
pub struct Lasting {
    pub value: &'static str,
    pub label: String,
}

/// The rooms and VLANs: each `[[listen]]` address and `[[clients]]` network.
pub fn scopes(config: &Config) -> Vec<Choice> {
    let listeners = config.listen.iter().map(|listen| {
        let address = listen.address.get_ref();
        let room = config.room_name(listen);
        Choice {
            value: format!("listener:{address}"),
            // A room named after its profile needs the profile only once.
            label: match &listen.profile {
                Some(profile) if listen.display_name.is_some() => {
                    format!("{room} ({})", config.profile_name(profile.get_ref()))
                }
                _ => room,
            },
        }
    });
    let networks = config.clients.iter().map(|rule| {
        let name = config.network_name(rule);
        Choice {
            value: format!("network:{}", rule.network.get_ref()),
            label: match &rule.display_name {
                Some(_) => format!("{name} ({})", config.profile_name(rule.profile.get_ref())),
                None => name,
            },
        }
    });
    listeners.chain(networks).collect()
}

/// The services some profile blocks, as (name, what people call it).
pub fn services(config: &Config) -> Vec<(String, String)> {
    let mut names: Vec<String> = config
        .profiles
        .values()
        .flat_map(|profile| profile.block_services.iter())
        .map(|service| service.get_ref().clone())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let display =
                crate::config::category_name(&crate::config::catalogue::service_category(&name));
            (name, display)
        })
        .collect()
}

/// Who the form unlocks the site for. "The whole network" is one override
/// per address family the resolver listens on.
pub fn scope_of(form: &UnlockForm, config: &Config) -> Result<Vec<OverrideScope>, String> {
    match form.scope.as_str() {
        "device" => {
            let typed = form.device.trim();
            if let Ok(ip) = typed.parse::<IpAddr>() {
                return Ok(vec![OverrideScope::Device(ip)]);
            }
            let named = config
                .devices
                .iter()
                .find(|device| device.name.eq_ignore_ascii_case(typed))
                .and_then(|device| device.ip);
            match named {
                Some(ip) => Ok(vec![OverrideScope::Device(ip)]),
                None if typed.is_empty() => Err(
                    "Type the device's address (e.g. 10.0.20.31) or its name from the device list."
                        .into(),
                ),
                None => Err(format!(
                    "'{typed}' is neither an IP address nor a device named in the config. Type its address, e.g. 10.0.20.31."
                )),
            }
        }
        "room" => {
            let room = form.room.trim();
            if !scopes(config).iter().any(|choice| choice.value == room) {
                return Err("Choose the room or network from the list.".into());
            }
            match room.split_once(':') {
                Some(("listener", address)) => {
                    Ok(vec![OverrideScope::Listener(address.to_string())])
                }
                Some(("network", net)) => crate::config::parse_network(net)
                    .map(|net| vec![OverrideScope::Network(net)])
                    .map_err(|_| format!("the network {net} in the config is not usable")),
                _ => Err("Choose the room or network from the list.".into()),
            }
        }
        "network" => {
            let mut scopes = vec![OverrideScope::Network(IpNet::V4(Default::default()))];
            let listens_on_v6 = config.listen.iter().any(|listen| {
                listen
                    .address
                    .get_ref()
                    .parse::<SocketAddr>()
                    .is_ok_and(|address| address.is_ipv6())
            });
            if listens_on_v6 {
                scopes.push(OverrideScope::Network(IpNet::V6(Default::default())));
            }
            Ok(scopes)
        }
        _ => Err("Choose who the site is unlocked for: this device, a room, or everyone.".into()),
    }
}

/// The UTC instant of `hour:minute` local time on the local day of `now`.
fn local_clock(tz: TimeZone, now: i64, (hour, minute): (i64, i64)) -> i64 {
    let offset = |at: i64| i64::from(tz.offset_seconds(at)) * 1000;
    let day = (now + offset(now)).div_euclid(DAY_MS);
    let wall = day * DAY_MS + (hour * 60 + minute) * MINUTE_MS;
    wall - offset(wall - offset(wall))
}

/// When an override asked for `duration` at `now` ends.
pub fn ends_at(duration: &str, tz: TimeZone, now: i64) -> Result<i64, String> {
    let last = local_clock(tz, now, LAST_MINUTE);
    let wanted = match duration {
        "lesson" => now + LESSON_MINUTES * MINUTE_MS,
        "hour" => now + 60 * MINUTE_MS,
        "day" => {
            let school_ends = local_clock(tz, now, SCHOOL_DAY_ENDS);
            if now < school_ends { school_ends } else { last }
        }
        _ => {
            return Err(
                "Choose how long: this lesson, one hour, or the rest of the school day.".into(),
            );
        }
    };
    let ends = wanted.min(last);
    if ends <= now {
        return Err(format!(
            "Nothing can be unlocked now: overrides end at {:02}:{:02} at the latest. Try again tomorrow.",
            LAST_MINUTE.0, LAST_MINUTE.1
        ));
    }
    Ok(ends)
}

/// The three durations, each with the time it would end if granted now.
pub fn lasting(tz: TimeZone, now: i64) -> Vec<Lasting> {
    let until = |duration: &str| {
        ends_at(duration, tz, now)
            .map(|at| {
                let text = local_time(tz, at);
                format!("until {}", text.get(11..).unwrap_or(&text))
            })
            .unwrap_or_else(|_| "not possible now".into())
    };
    let day = if now < local_clock(tz, now, SCHOOL_DAY_ENDS) {
        "The rest of the school day"
    } else {
        "The rest of today"
    };
    vec![
        Lasting {
            value: "lesson",
            label: format!(
                "This lesson ({LESSON_MINUTES} minutes, {})",
                until("lesson")
            ),
        },
        Lasting {
            value: "hour",
            label: format!("One hour ({})", until("hour")),
        },
        Lasting {
            value: "day",
            label: format!("{day} ({})", until("day")),
        },
    ]
}

/// A scope in words: "device 10.0.20.31 (Y5-iPad-07)", "the whole network".
pub fn describe_scope(scope: &OverrideScope, config: &Config) -> String {
    match scope {
        OverrideScope::Device(ip) => {
            match config.devices.iter().find(|device| device.ip == Some(*ip)) {
                Some(device) => device.name.clone(),
                None => format!("the device at {ip}"),
            }
        }
        OverrideScope::Network(net) if net.prefix_len() == 0 => "the whole network".into(),
        OverrideScope::Network(net) => config
            .network_name_of(net)
            .unwrap_or_else(|| format!("the devices on {net}")),
        OverrideScope::Listener(address) => config
            .listener_name(address)
            .unwrap_or_else(|| "a room no longer in the settings".into()),
    }
}

/// What an override unlocks, as people read it: the site's name, or the
/// service as "Fortnite (game)".
pub fn describe_target(target: &crate::policy::rules::OverrideTarget) -> String {
    use crate::policy::rules::OverrideTarget;
    match target {
        OverrideTarget::Domain(domain) => domain.clone(),
        OverrideTarget::Service(service) => {
            crate::config::category_name(&crate::config::catalogue::service_category(service))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-07-01 13:00 UTC is 14:00 in London (summer time).
    const SUMMER_1300_UTC: i64 = 1_782_910_800_000;

    #[test]
    fn durations_end_on_the_local_clock_and_never_after_the_last_minute() {
        let tz = TimeZone::EuropeLondon;
        let now = SUMMER_1300_UTC;
        assert_eq!(local_time(tz, now), "2026-07-01 14:00");
        let at = |d| local_time(tz, ends_at(d, tz, now).expect("possible"));
        assert_eq!(at("lesson"), "2026-07-01 14:45");
        assert_eq!(at("hour"), "2026-07-01 15:00");
        assert_eq!(at("day"), "2026-07-01 16:00");
        // After school, "the day" is the rest of today.
        let evening = now + 5 * 3_600_000;
        assert_eq!(
            local_time(tz, ends_at("day", tz, evening).expect("possible")),
            "2026-07-01 23:59"
        );
        // Late at night an hour is cut short at 23:59.
        let late = now + (9 * 60 + 30) * MINUTE_MS;
        assert_eq!(local_time(tz, late), "2026-07-01 23:30");
        assert_eq!(
            local_time(tz, ends_at("hour", tz, late).expect("possible")),
            "2026-07-01 23:59"
        );
        // In the last minute of the day nothing can be unlocked...
        let last_minute = late + 29 * MINUTE_MS + 30_000;
        assert!(ends_at("day", tz, last_minute).is_err());
        // ...and after midnight a new day starts.
        let tomorrow = late + 31 * MINUTE_MS;
        assert_eq!(
            local_time(tz, ends_at("lesson", tz, tomorrow).expect("possible")),
            "2026-07-02 00:46"
        );
        assert!(ends_at("week", tz, now).is_err());
        assert!(ends_at("", tz, now).is_err());
    }
}
