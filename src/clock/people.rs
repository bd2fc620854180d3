//! Times as people read them on the pages, in the weekly report and in
//! alerts: "Mon 7 Dec, 08:40" in the school's time zone. ISO times stay in
//! CSV, JSON and the "why" detail, where someone may need the exact instant.

use super::{TimeZone, civil_from_days};

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
/// The days' names in full, Monday first, for alerts and the calendar.
pub const DAY_NAMES: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
/// The months' names in full, January first.
pub const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The parts of a local moment the formats below share.
struct Local {
    days: i64,
    year: i64,
    minutes: i64,
}

fn local(tz: TimeZone, unix_ms: i64) -> Local {
    let local = unix_ms.saturating_add(i64::from(tz.offset_seconds(unix_ms)) * 1000);
    let days = local.div_euclid(86_400_000);
    let (year, _, _) = civil_from_days(days);
    Local {
        days,
        year,
        minutes: local.rem_euclid(86_400_000) / 60_000,
    }
}

fn clock(minutes: i64) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// "Mon 7 Dec" for a local day number (days since 1970-01-01).
pub fn day_name(days: i64) -> String {
    let (_, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday: index 3 when Monday is 0.
    let weekday = DAYS[(days + 3).rem_euclid(7) as usize];
    let month = MONTHS[(month as usize).saturating_sub(1) % 12];
    format!("{weekday} {day} {month}")
}

/// "Mon 7 Dec, 08:40".
pub fn when(tz: TimeZone, unix_ms: i64) -> String {
    let at = local(tz, unix_ms);
    format!("{}, {}", day_name(at.days), clock(at.minutes))
}

/// "Mon 7 Dec 2026, 08:40": for a time that may be in another year
/// (a review, a report's period, an unlock card kept for years).
pub fn when_with_year(tz: TimeZone, unix_ms: i64) -> String {
    let at = local(tz, unix_ms);
    let day = day_name(at.days);
    format!("{day} {}, {}", at.year, clock(at.minutes))
}

/// "today 08:40", "yesterday 16:05", otherwise as [`when`]; `now_ms` is
/// the moment the page is drawn.
pub fn when_near(tz: TimeZone, unix_ms: i64, now_ms: i64) -> String {
    let at = local(tz, unix_ms);
    match tz.local_day(now_ms) - at.days {
        0 => format!("today {}", clock(at.minutes)),
        1 => format!("yesterday {}", clock(at.minutes)),
        _ => when(tz, unix_ms),
    }
}

/// "Mon 7 Dec 2026" for the local day holding `unix_ms`.
pub fn date(tz: TimeZone, unix_ms: i64) -> String {
    let at = local(tz, unix_ms);
    format!("{} {}", day_name(at.days), at.year)
}

/// A `YYYY-MM-DD` date as people read it ("Mon 7 Dec 2026"); the text as
/// it stands when it is not such a date.
pub fn date_text(iso: &str) -> String {
    // UTC: a calendar date has no zone, and UTC adds no offset to its midnight.
    match super::start_of_day(iso, TimeZone::Utc) {
        Ok(midnight) => date(TimeZone::Utc, midnight),
        Err(_) => iso.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::days_from_civil;

    fn at(y: i64, m: u32, d: u32, h: i64, min: i64) -> i64 {
        days_from_civil(y, m, d) * 86_400_000 + h * 3_600_000 + min * 60_000
    }

    #[test]
    fn winter_is_gmt() {
        // 08:40 UTC on Monday 7 December 2026 is 08:40 GMT.
        let t = at(2026, 12, 7, 8, 40);
        assert_eq!(when(TimeZone::EuropeLondon, t), "Mon 7 Dec, 08:40");
        assert_eq!(when(TimeZone::Utc, t), "Mon 7 Dec, 08:40");
        assert_eq!(
            when_with_year(TimeZone::EuropeLondon, t),
            "Mon 7 Dec 2026, 08:40"
        );
        assert_eq!(date(TimeZone::EuropeLondon, t), "Mon 7 Dec 2026");
        assert_eq!(date_text("2026-12-07"), "Mon 7 Dec 2026");
        assert_eq!(date_text("not a date"), "not a date");
    }

    #[test]
    fn summer_is_bst_and_crosses_midnight() {
        // 07:40 UTC on Wednesday 1 July 2026 is 08:40 BST.
        assert_eq!(
            when(TimeZone::EuropeLondon, at(2026, 7, 1, 7, 40)),
            "Wed 1 Jul, 08:40"
        );
        // 23:30 UTC on Tuesday 30 June is already Wednesday in London.
        assert_eq!(
            when(TimeZone::EuropeLondon, at(2026, 6, 30, 23, 30)),
            "Wed 1 Jul, 00:30"
        );
        assert_eq!(
            when(TimeZone::Utc, at(2026, 6, 30, 23, 30)),
            "Tue 30 Jun, 23:30"
        );
    }

    #[test]
    fn clocks_change_on_the_last_sundays() {
        // 29 March 2026: 01:00 UTC is 02:00 BST; a minute before, 00:59 GMT.
        assert_eq!(
            when(TimeZone::EuropeLondon, at(2026, 3, 29, 0, 59)),
            "Sun 29 Mar, 00:59"
        );
        assert_eq!(
            when(TimeZone::EuropeLondon, at(2026, 3, 29, 1, 0)),
            "Sun 29 Mar, 02:00"
        );
        // 25 October 2026: 01:00 UTC is 01:00 GMT again.
        assert_eq!(
            when(TimeZone::EuropeLondon, at(2026, 10, 25, 0, 30)),
            "Sun 25 Oct, 01:30"
        );
        assert_eq!(
            when(TimeZone::EuropeLondon, at(2026, 10, 25, 1, 30)),
            "Sun 25 Oct, 01:30"
        );
    }

    #[test]
    fn near_times_say_today_and_yesterday() {
        let now = at(2026, 7, 1, 12, 0);
        let tz = TimeZone::EuropeLondon;
        assert_eq!(when_near(tz, at(2026, 7, 1, 7, 40), now), "today 08:40");
        assert_eq!(
            when_near(tz, at(2026, 6, 30, 15, 5), now),
            "yesterday 16:05"
        );
        // 23:30 UTC on 29 June is 00:30 BST on the 30th: yesterday, not two days ago.
        assert_eq!(
            when_near(tz, at(2026, 6, 29, 23, 30), now),
            "yesterday 00:30"
        );
        assert_eq!(
            when_near(tz, at(2026, 6, 28, 8, 0), now),
            "Sun 28 Jun, 09:00"
        );
    }
}
