//! What an override can be for and how long it lasts: the rooms, VLANs and
//! services a school's config offers, the three durations (this lesson, an
//! hour, the rest of the school day — never past 23:59 local time), and the
//! words used for a scope on the pages and in the audit trail.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::calendar::{Audience, Calendar, DayKind};
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

/// The school period happening at `now` (staff's view, so an INSET day
/// has its periods), as (what it is called, when it ends).
fn period_now(calendar: &Calendar, now: i64) -> Option<(String, i64)> {
    calendar
        .at(now, Audience::Staff)
        .periods
        .iter()
        .filter(|active| calendar.periods[active.index].school)
        .min_by_key(|active| active.ends_at)
        .map(|active| {
            (
                calendar.periods[active.index].label.to_lowercase(),
                active.ends_at,
            )
        })
}

/// When the school day holding `now` ends: the calendar's, else 16:00.
fn school_day_end(calendar: Option<&Calendar>, tz: TimeZone, now: i64) -> Option<i64> {
    match calendar {
        Some(calendar) => calendar.school_day_end(now, Audience::Staff),
        None => {
            let ends = local_clock(tz, now, SCHOOL_DAY_ENDS);
            (now < ends).then_some(ends)
        }
    }
}

/// Why nothing may be unlocked now without an administrator: the school
/// is out of term ("Saturday", "half term"). None in term or without a
/// calendar.
pub fn out_of_term(config: &Config, now: i64) -> Option<String> {
    let calendar = config.school_calendar.as_deref()?;
    match calendar.day_kind(calendar.day_of(now)) {
        DayKind::OutOfTerm(why) => Some(why),
        DayKind::Term | DayKind::Inset => None,
    }
}

/// When an override asked for `duration` at `now` ends: "this lesson" at
/// the end of the period in progress (45 minutes between periods or with
/// no calendar), "the rest of the day" at the end of the school day (or of
/// today, after it), never past 23:59.
pub fn ends_at(duration: &str, config: &Config, now: i64) -> Result<i64, String> {
    let tz = config.log.time_zone;
    let calendar = config.school_calendar.as_deref();
    let last = local_clock(tz, now, LAST_MINUTE);
    let wanted = match duration {
        "lesson" => calendar
            .and_then(|calendar| period_now(calendar, now))
            .map_or(now + LESSON_MINUTES * MINUTE_MS, |(_, ends)| ends),
        "hour" => now + 60 * MINUTE_MS,
        "day" => school_day_end(calendar, tz, now).unwrap_or(last),
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
pub fn lasting(config: &Config, now: i64) -> Vec<Lasting> {
    let tz = config.log.time_zone;
    let calendar = config.school_calendar.as_deref();
    let until = |duration: &str| {
        ends_at(duration, config, now)
            .map(|at| {
                let text = local_time(tz, at);
                format!("until {}", text.get(11..).unwrap_or(&text))
            })
            .unwrap_or_else(|_| "not possible now".into())
    };
    let day = if school_day_end(calendar, tz, now).is_some() {
        "The rest of the school day"
    } else {
        "The rest of today"
    };
    let lesson = match calendar.and_then(|calendar| period_now(calendar, now)) {
        Some((period, _)) => format!("This lesson ({period}, {})", until("lesson")),
        None => format!(
            "This lesson ({LESSON_MINUTES} minutes, {})",
            until("lesson")
        ),
    };
    vec![
        Lasting {
            value: "lesson",
            label: lesson,
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
        let config = Config::embedded_default().expect("config");
        let at = |d| local_time(tz, ends_at(d, &config, now).expect("possible"));
        assert_eq!(at("lesson"), "2026-07-01 14:45");
        assert_eq!(at("hour"), "2026-07-01 15:00");
        assert_eq!(at("day"), "2026-07-01 16:00");
        // After school, "the day" is the rest of today.
        let evening = now + 5 * 3_600_000;
        assert_eq!(
            local_time(tz, ends_at("day", &config, evening).expect("possible")),
            "2026-07-01 23:59"
        );
        // Late at night an hour is cut short at 23:59.
        let late = now + (9 * 60 + 30) * MINUTE_MS;
        assert_eq!(local_time(tz, late), "2026-07-01 23:30");
        assert_eq!(
            local_time(tz, ends_at("hour", &config, late).expect("possible")),
            "2026-07-01 23:59"
        );
        // In the last minute of the day nothing can be unlocked...
        let last_minute = late + 29 * MINUTE_MS + 30_000;
        assert!(ends_at("day", &config, last_minute).is_err());
        // ...and after midnight a new day starts.
        let tomorrow = late + 31 * MINUTE_MS;
        assert_eq!(
            local_time(tz, ends_at("lesson", &config, tomorrow).expect("possible")),
            "2026-07-02 00:46"
        );
        assert!(ends_at("week", &config, now).is_err());
        assert!(ends_at("", &config, now).is_err());
    }

    #[test]
    fn with_a_calendar_a_lesson_ends_with_its_period_and_the_day_with_school() {
        let text = format!(
            r#"
[server]
data_dir = "target/unused"
default_profile = "ks2"
[[listen]]
address = "127.0.0.1:0"
[[upstream]]
address = "127.0.0.1:53"
protocol = "udp"
[calendar]
bank_holidays = "{holidays}"
school_day_ends = "15:15"
terms = [{{ name = "Autumn", start = "2026-09-02", end = "2026-12-18" }}]
[[calendar.periods]]
name = "lesson-3"
start = "10:40"
end = "11:40"
[[calendar.periods]]
name = "club"
start = "15:15"
end = "17:00"
[profiles.ks2]
mode = "blocklist"
"#,
            holidays = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/lists/calendar/bank-holidays.json"
            )
        );
        let config = Config::parse(&text, crate::config::ConfigOrigin::default())
            .unwrap_or_else(|errors| panic!("{errors}"));
        let tz = TimeZone::EuropeLondon;
        // Wednesday 4 November 2026, 11:00 GMT: lesson 3 ends at 11:40.
        let now =
            crate::calendar::parse_date("2026-11-04").expect("date") * DAY_MS + 11 * 3_600_000;
        let at = |d, now| local_time(tz, ends_at(d, &config, now).expect("possible"));
        assert_eq!(at("lesson", now), "2026-11-04 11:40");
        assert_eq!(at("day", now), "2026-11-04 15:15");
        assert!(
            lasting(&config, now)[0]
                .label
                .starts_with("This lesson (lesson 3, until 11:40)")
        );
        // Between periods, a lesson is 45 minutes.
        assert_eq!(at("lesson", now + 60 * MINUTE_MS), "2026-11-04 12:45");
        // After school, the rest of today.
        assert_eq!(at("day", now + 5 * 3_600_000), "2026-11-04 23:59");
        assert_eq!(out_of_term(&config, now), None);
        // Saturday 7th: out of term, so only an administrator may unlock.
        let saturday = now + 3 * DAY_MS;
        assert_eq!(out_of_term(&config, saturday).as_deref(), Some("Saturday"));
    }
}
