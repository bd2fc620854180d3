//! Turns UTC millisecond timestamps into ISO 8601 text, in UTC and in the
//! school's own time zone (Europe/London or UTC), and dates typed as
//! YYYY-MM-DD into the local midnights they start.
//!
//! The UK rule is small enough to carry here rather than pull in a time zone
//! database: British Summer Time runs from 01:00 UTC on the last Sunday of
//! March to 01:00 UTC on the last Sunday of October. That rule has held
//! since 1996, which covers every timestamp this journal will ever hold.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

const MS_PER_DAY: i64 = 86_400_000;

/// The time zone a school's reports are shown in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum TimeZone {
    /// GMT in winter, BST (UTC+1) in summer.
    #[default]
    EuropeLondon,
    Utc,
}

#[derive(Debug, thiserror::Error)]
#[error("unsupported time zone {0:?}: use \"Europe/London\" or \"UTC\"")]
pub struct UnknownTimeZone(pub String);

impl FromStr for TimeZone {
    type Err = UnknownTimeZone;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "Europe/London" | "GB" => Ok(TimeZone::EuropeLondon),
            "UTC" | "Etc/UTC" | "Z" => Ok(TimeZone::Utc),
            other => Err(UnknownTimeZone(other.to_string())),
        }
    }
}

impl TryFrom<String> for TimeZone {
    type Error = UnknownTimeZone;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<TimeZone> for String {
    fn from(tz: TimeZone) -> String {
        tz.name().to_string()
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl TimeZone {
    pub fn name(self) -> &'static str {
        match self {
            TimeZone::EuropeLondon => "Europe/London",
            TimeZone::Utc => "UTC",
        }
    }

    /// Offset from UTC, in seconds, in force at `unix_ms`.
    pub fn offset_seconds(self, unix_ms: i64) -> i32 {
        match self {
            TimeZone::Utc => 0,
            TimeZone::EuropeLondon => {
                let (year, _, _) = civil_from_days(unix_ms.div_euclid(MS_PER_DAY));
                let start = last_sunday_1am_utc_ms(year, 3);
                let end = last_sunday_1am_utc_ms(year, 10);
                if (start..end).contains(&unix_ms) {
                    3600
                } else {
                    0
                }
            }
        }
    }

    /// The local calendar day holding `unix_ms`, as days since 1970-01-01.
    pub fn local_day(self, unix_ms: i64) -> i64 {
        (unix_ms + i64::from(self.offset_seconds(unix_ms)) * 1000).div_euclid(MS_PER_DAY)
    }

    /// The local midnight that starts local `day` (days since 1970-01-01).
    pub fn start_of_local_day(self, day: i64) -> i64 {
        let midnight_as_utc = day * MS_PER_DAY;
        // The offset in force at that midnight, read at an instant close to
        // it (the UK rule changes at 01:00 UTC, never near local midnight).
        midnight_as_utc - i64::from(self.offset_seconds(midnight_as_utc)) * 1000
    }

    /// The local midnight that starts the day holding `unix_ms`.
    pub fn day_start(self, unix_ms: i64) -> i64 {
        self.start_of_local_day(self.local_day(unix_ms))
    }

    /// The local midnight that ends the day holding `unix_ms` (days are 23
    /// or 25 hours long when the clocks change).
    pub fn day_end(self, unix_ms: i64) -> i64 {
        self.start_of_local_day(self.local_day(unix_ms) + 1)
    }

    /// `2025-06-01T13:00:00+01:00` (seconds precision; `+00:00` in winter).
    pub fn format_local(self, unix_ms: i64) -> String {
        let offset = self.offset_seconds(unix_ms);
        let mut out = format_naive(unix_ms.saturating_add(i64::from(offset) * 1000));
        let sign = if offset < 0 { '-' } else { '+' };
        let abs = offset.unsigned_abs();
        out.push_str(&format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60));
        out
    }
}

/// `2025-06-01T12:00:00Z`.
pub fn format_utc(unix_ms: i64) -> String {
    let mut out = format_naive(unix_ms);
    out.push('Z');
    out
}

fn format_naive(unix_ms: i64) -> String {
    let days = unix_ms.div_euclid(MS_PER_DAY);
    let secs_of_day = unix_ms.rem_euclid(MS_PER_DAY) / 1000;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        secs_of_day / 3600,
        (secs_of_day % 3600) / 60,
        secs_of_day % 60
    )
}

/// Unix ms of 01:00 UTC on the last Sunday of a 31-day `month`.
fn last_sunday_1am_utc_ms(year: i64, month: u32) -> i64 {
    let last_day = days_from_civil(year, month, 31);
    // 1970-01-01 was a Thursday, so day 0 has weekday 4 counting from Sunday.
    let weekday = (last_day + 4).rem_euclid(7);
    (last_day - weekday)
        .saturating_mul(MS_PER_DAY)
        .saturating_add(3_600_000)
}

/// Howard Hinnant's days-from-civil algorithm (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Midnight at the start of `day` (YYYY-MM-DD) in the school's time zone,
/// as Unix milliseconds.
pub fn start_of_day(day: &str, tz: TimeZone) -> Result<i64> {
    let parts: Vec<&str> = day.split('-').collect();
    let parsed = match parts.as_slice() {
        [y, m, d] => y
            .parse::<i64>()
            .ok()
            .zip(m.parse::<u32>().ok())
            .zip(d.parse::<u32>().ok())
            .map(|((y, m), d)| (y, m, d)),
        _ => None,
    };
    let Some((year, month, day_of_month)) = parsed.filter(|(y, m, d)| {
        // Years past 9999 are typing slips, and far enough out their
        // milliseconds overflow.
        (1..=9999).contains(y) && (1..=12).contains(m) && (1..=31).contains(d)
    }) else {
        bail!("'{day}' is not a date: write it as YYYY-MM-DD, e.g. 2026-11-23");
    };
    let midnight_utc = days_from_civil(year, month, day_of_month) * 86_400_000;
    // Local midnight is UTC midnight less the offset in force then.
    Ok(midnight_utc - i64::from(tz.offset_seconds(midnight_utc)) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_days_start_at_local_midnight_and_follow_the_clock_changes() {
        let tz = TimeZone::EuropeLondon;
        // 13:00 UTC on 1 July is 14:00 BST: the day began at 23:00 UTC.
        let start = tz.day_start(ms(2026, 7, 1, 13, 0));
        assert_eq!(start, ms(2026, 6, 30, 23, 0));
        assert_eq!(tz.day_start(start), start);
        assert_eq!(tz.day_start(start - 1), ms(2026, 6, 29, 23, 0));
        assert_eq!(tz.local_day(start), days_from_civil(2026, 7, 1));
        // Sunday 29 March 2026 has 23 hours; Sunday 25 October 25.
        let march = tz.day_start(ms(2026, 3, 29, 12, 0));
        assert_eq!(march, ms(2026, 3, 29, 0, 0));
        assert_eq!(tz.day_end(march) - march, 23 * 3_600_000);
        let october = tz.day_start(ms(2026, 10, 25, 12, 0));
        assert_eq!(october, ms(2026, 10, 24, 23, 0));
        assert_eq!(tz.day_end(october) - october, 25 * 3_600_000);
        assert_eq!(
            TimeZone::Utc.day_start(ms(2026, 3, 29, 12, 0)),
            ms(2026, 3, 29, 0, 0)
        );
    }

    fn ms(y: i64, m: u32, d: u32, h: i64, min: i64) -> i64 {
        (days_from_civil(y, m, d) * 86_400 + h * 3600 + min * 60) * 1000
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(1_700_000_000_123), "2023-11-14T22:13:20Z");
        assert_eq!(format_utc(-1000), "1969-12-31T23:59:59Z");
        assert_eq!(format_utc(ms(2024, 2, 29, 12, 0)), "2024-02-29T12:00:00Z");
        // Garbage read back from a damaged file must not panic.
        for t in [i64::MIN, i64::MAX] {
            let _ = TimeZone::EuropeLondon.format_local(t);
        }
    }

    #[test]
    fn london_switches_at_one_am_utc_on_last_sundays() {
        let tz = TimeZone::EuropeLondon;
        // 2025: BST from Sunday 30 March to Sunday 26 October.
        assert_eq!(tz.offset_seconds(ms(2025, 3, 30, 0, 59)), 0);
        assert_eq!(tz.offset_seconds(ms(2025, 3, 30, 1, 0)), 3600);
        assert_eq!(tz.offset_seconds(ms(2025, 10, 26, 0, 59)), 3600);
        assert_eq!(tz.offset_seconds(ms(2025, 10, 26, 1, 0)), 0);
        // 2024: 31 March and 27 October.
        assert_eq!(tz.offset_seconds(ms(2024, 3, 31, 1, 0)), 3600);
        assert_eq!(tz.offset_seconds(ms(2024, 3, 30, 12, 0)), 0);
        assert_eq!(tz.offset_seconds(ms(2024, 10, 27, 0, 30)), 3600);
        assert_eq!(
            tz.format_local(ms(2025, 6, 1, 12, 0)),
            "2025-06-01T13:00:00+01:00"
        );
        assert_eq!(
            tz.format_local(ms(2025, 12, 24, 23, 30)),
            "2025-12-24T23:30:00+00:00"
        );
        // Local midnight roll-over in summer.
        assert_eq!(
            tz.format_local(ms(2025, 7, 31, 23, 30)),
            "2025-08-01T00:30:00+01:00"
        );
        assert_eq!(
            TimeZone::Utc.format_local(ms(2025, 6, 1, 12, 0)),
            "2025-06-01T12:00:00+00:00"
        );
    }

    #[test]
    fn parses_names() {
        assert_eq!(
            "Europe/London".parse::<TimeZone>().ok(),
            Some(TimeZone::EuropeLondon)
        );
        assert_eq!("UTC".parse::<TimeZone>().ok(), Some(TimeZone::Utc));
        assert!("Europe/Paris".parse::<TimeZone>().is_err());
        let round: Result<TimeZone, _> = serde_json::from_str("\"Europe/London\"");
        assert_eq!(round.ok(), Some(TimeZone::EuropeLondon));
    }

    #[test]
    fn days_are_local_midnights() {
        assert_eq!(start_of_day("1970-01-01", TimeZone::Utc).expect("day"), 0);
        assert_eq!(
            start_of_day("2026-01-15", TimeZone::Utc).expect("day"),
            1_768_435_200_000
        );
        // In summer the school's midnight is 23:00 UTC the day before.
        assert_eq!(
            start_of_day("2026-07-01", TimeZone::EuropeLondon).expect("day"),
            start_of_day("2026-07-01", TimeZone::Utc).expect("day") - 3_600_000
        );
        assert_eq!(
            start_of_day("2026-12-01", TimeZone::EuropeLondon).expect("day"),
            start_of_day("2026-12-01", TimeZone::Utc).expect("day")
        );
        for bad in ["2026-13-01", "yesterday", "2026/01/01", "2026-01-32"] {
            assert!(start_of_day(bad, TimeZone::Utc).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_year_no_calendar_shows_is_refused_not_overflowed() {
        // Typed into a date field of the log, report or audit pages: the
        // milliseconds of such a year overflow an i64.
        for bad in [
            "300000000-01-01",
            "9223372036854775807-12-31",
            "-9223372036854775808-01-01",
            "0-01-01",
            "10000-01-01",
        ] {
            assert!(start_of_day(bad, TimeZone::EuropeLondon).is_err(), "{bad}");
        }
        assert!(start_of_day("9999-12-31", TimeZone::EuropeLondon).is_ok());
        assert!(start_of_day("0001-01-01", TimeZone::Utc).is_ok());
    }
}
